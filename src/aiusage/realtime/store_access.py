"""The store's answers to P1's access questions.

:class:`StoreAccess` implements :class:`aiusage.realtime.access.AccessChecker` (hub connect and
revalidation: subscription status, membership role) and :class:`aiusage.auth.login.UserLookup`
(``POST /api/auth/login``) over the repositories.

Hub connects ask these questions for every request, and a connect storm (10,000 dashboards
reconnecting after a restart, each with its own user) would otherwise cost a database round
trip per user: membership is read per *organization* (one query returns every active member's
role), answers are reused for ``ttl`` seconds, and concurrent askers of the same organization
share one query (single flight). A change is seen within ``ttl`` (1 s by default, well inside
the 5 s revocation bound, docs/spec/auth.md §9.4).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Collection
from typing import Generic, TypeVar

from aiusage.store.database import Database
from aiusage.store.repositories import OrganizationRepository, UserRepository

_T = TypeVar("_T")


class _SingleFlight(Generic[_T]):
    """Per-key TTL cache whose concurrent misses share one load."""

    __slots__ = ("_clock", "_done", "_max", "_pending", "_ttl")

    def __init__(self, ttl: float, clock: Callable[[], float], max_entries: int = 10_000) -> None:
        self._ttl = ttl
        self._clock = clock
        self._max = max_entries
        self._done: dict[str, tuple[float, _T]] = {}
        self._pending: dict[str, asyncio.Future[_T]] = {}

    async def get(self, key: str, load: Callable[[], Awaitable[_T]]) -> _T:
        hit = self._done.get(key)
        if hit is not None and self._clock() - hit[0] < self._ttl:
            return hit[1]
        pending = self._pending.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[_T] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        try:
            value = await load()
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters re-raise it, nobody logs "never retrieved"
            raise
        finally:
            self._pending.pop(key, None)
        self.put(key, value)
        future.set_result(value)
        return value

    def put(self, key: str, value: _T) -> None:
        """Remember ``value`` for ``key`` from now on (a fresher answer loaded elsewhere)."""
        done = self._done
        now = self._clock()
        if len(done) >= self._max:
            # Expired answers go first: clearing everything when 10,000 organizations are
            # cached would send every connect of a storm back to the database.
            for stale in [k for k, (at, _) in done.items() if now - at >= self._ttl]:
                del done[stale]
            if len(done) >= self._max:
                done.clear()
        done[key] = (now, value)


class StoreAccess:
    """Access lookups over the database.

    Args:
        db: The database.
        ttl: Seconds an organization's status and memberships are reused.
        clock: Monotonic clock (injected in tests).
    """

    def __init__(
        self, db: Database, *, ttl: float = 1.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._db = db
        self._orgs = OrganizationRepository()
        self._users = UserRepository()
        self._statuses: _SingleFlight[str | None] = _SingleFlight(ttl, clock)
        self._members: _SingleFlight[dict[str, str]] = _SingleFlight(ttl, clock)

    async def subscription_status(self, org_id: str) -> str | None:
        """``active``, ``trialing``, ``past_due``, ``canceled``, or None for no such org."""

        async def load() -> str | None:
            async with self._db.read() as conn:
                return await self._orgs.subscription_status(conn, org_id)

        return await self._statuses.get(org_id, load)

    async def user_role(self, org_id: str, user_id: str) -> str | None:
        """The role of an active member, or None (unknown, removed or deactivated)."""

        async def load() -> dict[str, str]:
            async with self._db.read() as conn:
                return await self._users.active_roles(conn, org_id)

        members = await self._members.get(org_id, load)
        return members.get(user_id)

    async def subscription_statuses(self, org_ids: Collection[str]) -> dict[str, str | None]:
        """Fresh statuses of many organizations (read now, not from the cache, which they
        refresh)."""
        async with self._db.read() as conn:
            found = await self._orgs.subscription_statuses(conn, org_ids)
        statuses: dict[str, str | None] = {org: found.get(org) for org in org_ids}
        for org, status in statuses.items():
            self._statuses.put(org, status)
        return statuses

    async def user_roles(
        self, members: Collection[tuple[str, str]]
    ) -> dict[tuple[str, str], str | None]:
        """Fresh roles of many ``(org, user)`` pairs: every active member of their
        organizations is read at once (and refreshes the membership cache)."""
        async with self._db.read() as conn:
            by_org = await self._users.active_roles_of(conn, {org for org, _ in members})
        for org, roles in by_org.items():
            self._members.put(org, roles)
        return {(org, user): by_org[org].get(user) for org, user in members}

    async def get_user_by_email(self, email: str) -> tuple[str, str, str, str | None, bool] | None:
        """``(user_id, org_id, role, password_hash, active)`` for ``email``, or None."""
        async with self._db.read() as conn:
            user = await self._users.get_by_email(conn, email)
        if user is None:
            return None
        return (user.id, user.org_id, user.role, user.password_hash, user.active)
