"""The store's answers to P1's access questions.

:class:`StoreAccess` implements :class:`aiusage.realtime.access.AccessChecker` (hub connect and
revalidation: subscription status, membership role) and :class:`aiusage.auth.login.UserLookup`
(``POST /api/auth/login``) over the repositories.

Hub connects ask these questions for every request, and a connect storm (10,000 dashboards
reconnecting after a restart, each with its own user and organization) would otherwise cost a
database round trip or two per connect, queued one after the other: an organization's
subscription status and its active members' roles are read together, answers are reused for
``ttl`` seconds, and the organizations missing from the cache are read in batches: every
organization asked for while a read is in flight goes into the next read (one query per 500
organizations), so a storm costs a few reads per second whatever its number of users. A
change is seen within ``ttl`` of the read that missed it (1 s by default, well inside the 5 s
revocation bound, docs/spec/auth.md §9.4).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Collection
from typing import Final, Generic, TypeAlias, TypeVar

from aiusage.store.database import Database
from aiusage.store.repositories import OrganizationRepository, UserRepository

_T = TypeVar("_T")

_OrgAnswer: TypeAlias = tuple[str | None, dict[str, str]]
"""An organization's subscription status (None: no such organization) and its active members'
roles (user id -> role)."""

MAX_BATCH: Final = 2000
"""Organizations per batched read (the repositories split it into IN lists of 500)."""


class _TtlMap(Generic[_T]):
    """Per-key answers, each used until it is ``ttl`` old."""

    __slots__ = ("_clock", "_done", "_max", "_ttl")

    def __init__(self, ttl: float, clock: Callable[[], float], max_entries: int = 10_000) -> None:
        self._ttl = ttl
        self._clock = clock
        self._max = max_entries
        self._done: dict[str, tuple[float, _T]] = {}

    def fresh(self, key: str) -> tuple[float, _T] | None:
        """``(read at, answer)`` while the answer is younger than the TTL, else None."""
        hit = self._done.get(key)
        if hit is not None and self._clock() - hit[0] < self._ttl:
            return hit
        return None

    def put(self, key: str, value: _T, at: float | None = None) -> None:
        """Remember ``value`` for ``key``, read at ``at`` (default: now)."""
        done = self._done
        now = self._clock()
        if len(done) >= self._max and key not in done:
            # Expired answers go first: clearing everything when 10,000 organizations are
            # cached would send every connect of a storm back to the database.
            for stale in [k for k, (t, _) in done.items() if now - t >= self._ttl]:
                del done[stale]
            if len(done) >= self._max:
                done.clear()
        done[key] = (now if at is None else at, value)


class _OrgReads:
    """The organizations whose answers are missing, read in batches: one read in flight, and
    whoever misses meanwhile joins the next one."""

    __slots__ = ("_queued", "_read", "_runner")

    def __init__(self, read: Callable[[Collection[str]], Awaitable[dict[str, _OrgAnswer]]]) -> None:
        self._read = read
        self._queued: dict[str, asyncio.Future[_OrgAnswer]] = {}
        self._runner: asyncio.Task[None] | None = None

    async def get(self, org_id: str) -> _OrgAnswer:
        """``org_id``'s answer from a read that starts after this call (raises what the read
        raised)."""
        future = self._queued.get(org_id)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            self._queued[org_id] = future
            if self._runner is None:
                # Started on the next loop pass: the misses of this pass join the first read.
                self._runner = asyncio.get_running_loop().create_task(self._run())
        # Shielded: one cancelled request must not cancel the read the others wait for.
        return await asyncio.shield(future)

    async def _run(self) -> None:
        try:
            while self._queued:
                batch: dict[str, asyncio.Future[_OrgAnswer]] = {}
                for org_id in list(self._queued)[:MAX_BATCH]:
                    batch[org_id] = self._queued.pop(org_id)
                try:
                    answers = await self._read(batch)
                except Exception as exc:
                    for future in batch.values():
                        if not future.done():
                            future.set_exception(exc)
                            future.exception()  # waiters re-raise it; nothing logs it twice
                    continue
                except BaseException:
                    for future in batch.values():
                        future.cancel()
                    raise
                for org_id, future in batch.items():
                    if not future.done():
                        future.set_result(answers[org_id])
        finally:
            self._runner = None
            for future in self._queued.values():  # cancelled (shutdown): nobody waits forever
                future.cancel()
            self._queued.clear()


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
        self._clock = clock
        self._orgs = OrganizationRepository()
        self._users = UserRepository()
        self._statuses: _TtlMap[str | None] = _TtlMap(ttl, clock)
        self._members: _TtlMap[dict[str, str]] = _TtlMap(ttl, clock)
        self._reads = _OrgReads(self._read)

    async def subscription_status(self, org_id: str) -> str | None:
        """``active``, ``trialing``, ``past_due``, ``canceled``, or None for no such org."""
        hit = self._statuses.fresh(org_id)
        if hit is not None:
            return hit[1]
        return (await self._reads.get(org_id))[0]

    async def user_role(self, org_id: str, user_id: str) -> str | None:
        """The role of an active member, or None (unknown, removed or deactivated)."""
        hit = self._members.fresh(org_id)
        if hit is not None:
            return hit[1].get(user_id)
        return (await self._reads.get(org_id))[1].get(user_id)

    async def _read(self, org_ids: Collection[str]) -> dict[str, _OrgAnswer]:
        """The status and active members of ``org_ids`` (one read transaction), also put in
        the caches, stamped with the time the read started."""
        started = self._clock()
        async with self._db.read() as conn:
            statuses = await self._orgs.subscription_statuses(conn, org_ids)
            members = await self._users.active_roles_of(conn, org_ids)
        answers: dict[str, _OrgAnswer] = {}
        for org_id in org_ids:
            status, roles = statuses.get(org_id), members[org_id]
            self._statuses.put(org_id, status, started)
            self._members.put(org_id, roles, started)
            answers[org_id] = (status, roles)
        return answers

    async def subscription_statuses(self, org_ids: Collection[str]) -> dict[str, str | None]:
        """Fresh statuses of many organizations (read now, not from the cache, which they
        refresh)."""
        started = self._clock()
        async with self._db.read() as conn:
            found = await self._orgs.subscription_statuses(conn, org_ids)
        statuses: dict[str, str | None] = {org: found.get(org) for org in org_ids}
        for org, status in statuses.items():
            self._statuses.put(org, status, started)
        return statuses

    async def user_roles(
        self, members: Collection[tuple[str, str]]
    ) -> dict[tuple[str, str], str | None]:
        """Fresh roles of many ``(org, user)`` pairs: every active member of their
        organizations is read at once (and refreshes the membership cache)."""
        started = self._clock()
        async with self._db.read() as conn:
            by_org = await self._users.active_roles_of(conn, {org for org, _ in members})
        for org, roles in by_org.items():
            self._members.put(org, roles, started)
        return {(org, user): by_org[org].get(user) for org, user in members}

    async def get_user_by_email(self, email: str) -> tuple[str, str, str, str | None, bool] | None:
        """``(user_id, org_id, role, password_hash, active)`` for ``email``, or None."""
        async with self._db.read() as conn:
            user = await self._users.get_by_email(conn, email)
        if user is None:
            return None
        return (user.id, user.org_id, user.role, user.password_hash, user.active)
