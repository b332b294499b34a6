"""Lifetime of trust for open connections (docs/spec/auth.md §9.4).

Token expiry is the engine's job (``Principal.expires_at``: Close with ``allowReconnect:
true``, the client reconnects with a fresh token). What a token cannot express is a change in
the store: a canceled subscription, a removed or demoted user. :class:`AccessRevalidator`
sweeps the local connections every ``interval`` seconds (2 s by default, so a change is acted
on within one sweep plus one lookup: well under the 5 s the issue requires) and closes the
connections that lost access with ``{"type":7,"error":"Access revoked"}`` and *no*
``allowReconnect``: reconnecting would only be refused again.

Cost: two bulk lookups per sweep (the statuses of every distinct organization, the roles of
every distinct known (organization, user) pair; a query per 500 organizations each),
whatever the number of connections. One lookup per organization, as before, cost 1,000
queries every sweep with 1,000 organizations connected and took a third of the process.
A failing lookup (database down) keeps connections open: an outage of the store must not
disconnect every dashboard; the next sweep tries again.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Final, Protocol

from aiusage.auth.principal import DASHBOARD_ROLES, UserPrincipal
from aiusage.realtime.access import (
    ACTIVE_SUBSCRIPTIONS,
    KNOWN_USER_CLAIM,
    PRINCIPAL_ITEM,
    AccessChecker,
    principal_of,
)
from hubserver import Principal

_log = logging.getLogger("aiusage.realtime.revalidation")

REVOKED: Final = "Access revoked"
DEFAULT_INTERVAL: Final = 2.0


class RevalidatedConnection(Protocol):
    """What the sweep needs from a hub connection (``hubserver.hub.HubConnection``)."""

    @property
    def principal(self) -> Principal | None:
        """The principal from the authentication hook."""
        ...

    def close(self, error: str | None = None, allow_reconnect: bool = False) -> Any:
        """Send a Close message and end the connection."""
        ...


class ConnectionSource(Protocol):
    """``hubserver.hub.HubConnectionHandler``: the connections of this process."""

    def local_connections(self) -> Iterable[Any]:
        """Live connections (each a :class:`RevalidatedConnection`)."""
        ...


class AccessRevalidator:
    """Closes connections whose organization or user lost access.

    Args:
        connections: The hub connection handler (``local_connections()``).
        access_checker: Store lookups.
        interval: Seconds between sweeps.
        clock: Monotonic clock (sweep timing statistics; injected for tests).
        sleep: Awaitable sleep (injected for tests).
    """

    def __init__(
        self,
        connections: ConnectionSource,
        access_checker: AccessChecker,
        *,
        interval: float = DEFAULT_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._connections = connections
        self._checker = access_checker
        self._interval = interval
        self._clock = clock
        self._sleep = sleep
        self._task: asyncio.Task[None] | None = None
        self.revoked_total = 0
        """Connections closed because access was revoked (for /metrics)."""
        self.last_sweep_seconds = 0.0
        """Duration of the last sweep."""

    async def sweep(self) -> int:
        """Check every local connection once; returns how many were closed."""
        started = self._clock()
        entries: list[tuple[Any, UserPrincipal, bool]] = []
        for conn in list(self._connections.local_connections()):
            principal = getattr(conn, "principal", None)
            if principal is None:
                continue
            items = getattr(conn, "items", None)
            cached = items.get(PRINCIPAL_ITEM) if isinstance(items, dict) else None
            if isinstance(cached, UserPrincipal):
                user = cached  # parsed once by the hub, reused by every sweep
            else:
                try:
                    user = principal_of(principal)
                except ValueError:
                    continue  # not one of ours (no org/role): nothing to revalidate
            known = isinstance(principal.claims, Mapping) and KNOWN_USER_CLAIM in principal.claims
            entries.append((conn, user, known))
        if not entries:
            self.last_sweep_seconds = self._clock() - started
            return 0
        orgs = {user.org for _, user, _ in entries if not user.is_super_admin}
        pairs = {(user.org, user.sub) for _, user, known in entries if known}
        try:
            statuses = await self._checker.subscription_statuses(orgs) if orgs else {}
            roles = await self._checker.user_roles(pairs) if pairs else {}
        except Exception:  # the store is down: keep everyone, retry next sweep
            _log.warning("access revalidation skipped: lookup failed", exc_info=True)
            self.last_sweep_seconds = self._clock() - started
            return 0
        closed = 0
        for conn, user, known in entries:
            reason = None
            if not user.is_super_admin and statuses.get(user.org) not in ACTIVE_SUBSCRIPTIONS:
                reason = f"subscription {statuses.get(user.org)!r}"
            elif known and roles.get((user.org, user.sub)) not in DASHBOARD_ROLES:
                reason = f"user role now {roles.get((user.org, user.sub))!r}"
            if reason is None:
                continue
            _log.info("closing connection of %s (org %s): %s", user.sub, user.org, reason)
            result = conn.close(error=REVOKED, allow_reconnect=False)
            if inspect.isawaitable(result):
                await result
            closed += 1
        self.revoked_total += closed
        self.last_sweep_seconds = self._clock() - started
        return closed

    async def run(self) -> None:
        """Sweep forever, every ``interval`` seconds (cancel to stop)."""
        while True:
            try:
                await self.sweep()
            except Exception:  # never let one bad sweep end revalidation
                _log.exception("access revalidation sweep failed")
            await self._sleep(self._interval)

    def start(self) -> None:
        """Run :meth:`run` in a background task."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(
                self.run(), name="aiusage-access-revalidation"
            )

    async def stop(self) -> None:
        """Cancel the background task and wait for it."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
