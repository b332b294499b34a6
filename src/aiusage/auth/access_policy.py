"""One access decision for every authenticated request: REST routes and hub connects alike.

A valid token says who the caller was when it was signed; the store says who they are now.
:class:`AccessPolicy` asks the store (through an :class:`AccessChecker`, cached for about a
second) and answers with the principal to act as, or refuses with :class:`AccessRefused`:

=========================================================  ======  ==============================
situation                                                  status  message
=========================================================  ======  ==============================
token role not allowed for the route                       403     ``Forbidden``
organization unknown (never existed, or removed)           403     ``Unknown organization``
subscription not active/trialing                           403     ``Subscription inactive: <s>``
user unknown to the store (with ``require_user_record``)   403     ``Access revoked``
user removed or deactivated                                403     ``Access revoked``
store role (demoted user) not allowed for the route        403     ``Forbidden``
store unreachable                                          503     ``Service Unavailable``
=========================================================  ======  ==============================

Rules, in this order (docs/security.md "One access decision"):

* SuperAdmin is exempt from the subscription check (platform operators act across tenants),
  and from the organization match; an organization they *target* must exist.
* Agent tokens (devices, not people) are not users: the ingestion use case checks their
  organization, subscription and revocation itself; the policy passes them through.
* The store's role replaces the token's: a demoted Admin keeps a token saying Admin until it
  expires, and the store is the authority on membership.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Collection
from dataclasses import replace
from typing import Any, Final, Protocol

from aiusage.auth.principal import AGENT, SUPER_ADMIN, UserPrincipal

ACTIVE_SUBSCRIPTIONS: Final = frozenset({"active", "trialing"})
"""Subscription statuses that allow dashboards (REST and live analytics)."""

ACCESS_REVOKED: Final = "Access revoked"
UNKNOWN_ORGANIZATION: Final = "Unknown organization"
FORBIDDEN: Final = "Forbidden"
UNAVAILABLE: Final = "Service Unavailable"


class AccessChecker(Protocol):
    """The store's current view of organizations and memberships (implemented over the
    platform's repositories by :class:`aiusage.realtime.store_access.StoreAccess`)."""

    async def subscription_status(self, org_id: str) -> str | None:
        """``active``, ``trialing``, ``past_due``, ``canceled`` ..., or None for no such org."""
        ...

    async def user_role(self, org_id: str, user_id: str) -> str | None:
        """The role of an *active* member ``user_id`` of ``org_id``; None when the store has no
        active membership (unknown user, removed or deactivated)."""
        ...

    async def subscription_statuses(self, org_ids: Collection[str]) -> dict[str, str | None]:
        """:meth:`subscription_status` of many organizations at once (revalidation sweeps:
        a few queries for a thousand organizations instead of a thousand)."""
        ...

    async def user_roles(
        self, members: Collection[tuple[str, str]]
    ) -> dict[tuple[str, str], str | None]:
        """:meth:`user_role` of many ``(org_id, user_id)`` pairs at once."""
        ...


class AccessRefused(Exception):
    """The policy refuses the request.

    Args:
        status: HTTP status (403, or 503 when the store cannot answer).
        message: Client-facing text (one of the module table's messages).
    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def subscription_refusal(status: str | None) -> str | None:
    """The 403 text for a subscription status, or None when it allows access."""
    if status is None:
        return UNKNOWN_ORGANIZATION
    if status not in ACTIVE_SUBSCRIPTIONS:
        return f"Subscription inactive: {status}"
    return None


_MISS: Final[Any] = object()
"""What :meth:`TtlCache.cached` returns when it has no fresh answer (None is an answer)."""


class TtlCache:
    """Tiny per-key cache in front of the checker: long polling re-authenticates every request
    and every REST call asks the same questions; a second is far below the 5 s bound on
    revocation (docs/security.md).

    An answer is never used once it is ``ttl`` old. While requests keep asking, it is reloaded
    in the background once it is half that old (refresh-ahead), so that requests do not queue
    behind a store read every ``ttl`` seconds (at 10,000 long polls a second that queue was a
    fifth of the process's time); concurrent misses share one load.
    """

    __slots__ = ("_clock", "_data", "_loading", "_max", "_refresh_after", "_ttl")

    def __init__(self, ttl: float, clock: Callable[[], float], max_entries: int = 10_000) -> None:
        self._ttl = ttl
        self._refresh_after = ttl / 2
        self._clock = clock
        self._data: dict[Any, tuple[float, str | None]] = {}
        self._loading: dict[Any, asyncio.Future[str | None]] = {}
        self._max = max_entries

    def cached(self, key: Any, load: Callable[[], Awaitable[str | None]]) -> Any:
        """The fresh answer for ``key`` without waiting, or :data:`_MISS` (then call
        :meth:`get`). An answer past half its life starts a background reload."""
        if self._ttl <= 0:
            return _MISS
        hit = self._data.get(key)
        if hit is None:
            return _MISS
        age = self._clock() - hit[0]
        if age >= self._ttl:
            return _MISS
        if age >= self._refresh_after and key not in self._loading:
            self._start(key, load).add_done_callback(_ignore_failure)
        return hit[1]

    async def get(self, key: Any, load: Callable[[], Awaitable[str | None]]) -> str | None:
        """The cached answer for ``key``, or ``await load()`` (then cached)."""
        if self._ttl <= 0:
            return await load()
        value = self.cached(key, load)
        if value is not _MISS:
            return value  # type: ignore[no-any-return]
        pending = self._loading.get(key)
        if pending is None:
            pending = self._start(key, load)
        # Shielded: one cancelled request must not cancel the load the others wait for.
        return await asyncio.shield(pending)

    def _start(
        self, key: Any, load: Callable[[], Awaitable[str | None]]
    ) -> asyncio.Future[str | None]:
        future = asyncio.ensure_future(self._load(key, load))
        self._loading[key] = future
        return future

    async def _load(self, key: Any, load: Callable[[], Awaitable[str | None]]) -> str | None:
        started = self._clock()  # the answer is as old as the moment it was asked for
        try:
            value = await load()
        finally:
            self._loading.pop(key, None)
        data = self._data
        if len(data) >= self._max:
            now = self._clock()
            for stale in [k for k, (at, _) in data.items() if now - at >= self._ttl]:
                del data[stale]
            if len(data) >= self._max:
                data.clear()
        data[key] = (started, value)
        return value


def _ignore_failure(future: asyncio.Future[str | None]) -> None:
    # A failed background reload changes nothing: the cached answer expires as usual and the
    # request that then misses loads again and sees the failure (503).
    if not future.cancelled():
        future.exception()


class AccessPolicy:
    """Decides, from the store, whether a verified principal may act.

    Args:
        checker: Subscription and membership lookups.
        require_user_record: Refuse principals whose ``sub`` the store does not know (the
            default of ``aiusage serve``; ``AIUSAGE_ALLOW_UNKNOWN_USERS`` turns it off for
            development and load tests). A user the store *does* know is always checked.
        cache_ttl: Seconds an answer is reused (0 disables; the checker may cache as well).
        clock: Monotonic clock of the cache.
    """

    def __init__(
        self,
        checker: AccessChecker,
        *,
        require_user_record: bool = True,
        cache_ttl: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.checker = checker
        self.require_user_record = require_user_record
        self._statuses = TtlCache(cache_ttl, clock)
        self._roles = TtlCache(cache_ttl, clock)

    async def decide(
        self,
        user: UserPrincipal,
        allowed_roles: Collection[str] | None,
        target_org: str | None = None,
    ) -> tuple[UserPrincipal, str | None]:
        """The principal to act as, and the store's role for it (None: not in the store).

        Args:
            user: The verified token's principal.
            allowed_roles: Roles the route admits (None: any role).
            target_org: The organization the request acts on when it is not the token's
                (only SuperAdmin gets this far with another one).

        Raises:
            AccessRefused: With the status and message of the module table.
        """
        if allowed_roles is not None and user.roles.isdisjoint(allowed_roles):
            raise AccessRefused(403, FORBIDDEN)
        if user.roles == {AGENT}:
            return user, None
        try:
            # Cache hits are answered without a coroutine per lookup (every long poll asks).
            key = (user.org, user.sub)
            store_role = self._roles.cached(key, lambda: self.checker.user_role(*key))
            if store_role is _MISS:
                store_role = await self._roles.get(key, lambda: self.checker.user_role(*key))
            # A token saying SuperAdmin counts only while the store agrees (or does not know
            # the subject and unknown subjects are trusted).
            super_admin = user.is_super_admin and store_role in (None, SUPER_ADMIN)
            if not super_admin:
                status = self._statuses.cached(user.org, self._status_loader(user.org))
                if status is _MISS:
                    status = await self._status(user.org)
                refusal = subscription_refusal(status)
                if refusal is not None:
                    raise AccessRefused(403, refusal)
            elif (
                target_org is not None
                and target_org != user.org
                and await self._status(target_org) is None
            ):
                raise AccessRefused(403, UNKNOWN_ORGANIZATION)
        except AccessRefused:
            raise
        except Exception as exc:
            # The store is unreachable: neither a yes nor a no. 503 lets clients retry.
            raise AccessRefused(503, UNAVAILABLE) from exc
        if store_role is None:
            if self.require_user_record:
                raise AccessRefused(403, ACCESS_REVOKED)
            return user, None
        if allowed_roles is not None and store_role not in allowed_roles:
            raise AccessRefused(403, FORBIDDEN)
        claims = dict(user.claims)
        claims["role"] = store_role
        return replace(user, roles=frozenset({store_role}), claims=claims), store_role

    def _status_loader(self, org_id: str) -> Callable[[], Awaitable[str | None]]:
        return lambda: self.checker.subscription_status(org_id)

    async def _status(self, org_id: str) -> str | None:
        return await self._statuses.get(org_id, self._status_loader(org_id))
