"""Repositories: the only place that turns rows into records and back (SQLAlchemy Core).

Every method takes the :class:`~sqlalchemy.ext.asyncio.AsyncConnection` of the caller's
transaction (``async with db.write() as conn``), so a use case composes several repository
calls into one atomic unit. Every tenant-owned query filters on ``org_id``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    String,
    Table,
    and_,
    any_,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from aiusage.domain.organizations import (
    ADMIN_ROLE,
    normalize_email,
    validate_name,
    validate_org_id,
    validate_role,
    validate_seats,
    validate_subscription,
    validate_team,
)
from aiusage.errors import Conflict, NotFound, ValidationError
from aiusage.store.tables import agents as agents
from aiusage.store.tables import ai_sessions as ai_sessions
from aiusage.store.tables import enrollment_codes as enrollment_codes
from aiusage.store.tables import metadata
from aiusage.store.tables import organizations as organizations
from aiusage.store.tables import users as users

_IN_CHUNK = 500
"""Values per ``IN (...)`` list (SQLite allows 32,766 parameters; PostgreSQL 65,535)."""


def insert_for(dialect: str, table: Table) -> Any:
    """The INSERT construct of dialect ``dialect`` (``"sqlite"`` or ``"postgresql"``); it has
    ``on_conflict_do_*``."""
    if dialect == "postgresql":
        # Imported where used: the PostgreSQL dialect is about 1 MB a SQLite server never needs.
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table)
    return sqlite.insert(table)


def dialect_insert(conn: AsyncConnection | Connection, table: Table) -> Any:
    """:func:`insert_for` the dialect of ``conn``."""
    return insert_for(conn.dialect.name, table)


def in_list(dialect: str, column: Any, name: str) -> Any:
    """``column IN (:name)`` with the list bound as one parameter: an array on PostgreSQL
    (``= ANY``), so the statement text, and asyncpg's prepared statement, is the same whatever
    the length; an expanding IN on SQLite (which has no arrays)."""
    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql  # see insert_for

        return column == any_(bindparam(name, type_=postgresql.ARRAY(String)))
    return column.in_(bindparam(name, expanding=True))


def utcnow() -> datetime:
    """Aware UTC now (the default clock of every repository method taking ``now``)."""
    return datetime.now(UTC)


# -- records ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OrganizationRecord:
    """One organization."""

    id: str
    name: str
    subscription_status: str
    approved_tools: tuple[str, ...]
    created_at: datetime
    seats: int | None = None


@dataclass(frozen=True, slots=True)
class UserRecord:
    """One user (``password_hash`` is None for employees who never log in)."""

    org_id: str
    id: str
    email: str | None
    role: str
    password_hash: str | None
    active: bool
    created_at: datetime
    last_seen_at: datetime | None
    team: str | None = None


@dataclass(frozen=True, slots=True)
class AgentRecord:
    """One enrolled device / agent."""

    org_id: str
    id: str
    user_id: str | None
    name: str
    token_id: str | None
    created_at: datetime
    revoked_at: datetime | None
    last_seen_at: datetime | None


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """One AI-usage session."""

    org_id: str
    id: str
    user_id: str
    device_id: str | None
    tool: str | None
    start_time: datetime
    end_time: datetime | None
    duration_s: float | None
    ai_usage_s: float | None


@dataclass(frozen=True, slots=True)
class SessionPage:
    """A page of sessions and the cursor of the next one (None: this is the last page)."""

    items: tuple[SessionRecord, ...]
    next_cursor: str | None


def _org(row: Any) -> OrganizationRecord:
    return OrganizationRecord(
        row.id,
        row.name,
        row.subscription_status,
        tuple(row.approved_tools or ()),
        row.created_at,
        row.seats,
    )


def _user(row: Any) -> UserRecord:
    return UserRecord(
        row.org_id,
        row.id,
        row.email,
        row.role,
        row.password_hash,
        bool(row.active),
        row.created_at,
        row.last_seen_at,
        row.team,
    )


def _agent(row: Any) -> AgentRecord:
    return AgentRecord(
        row.org_id,
        row.id,
        row.user_id,
        row.name,
        row.token_id,
        row.created_at,
        row.revoked_at,
        row.last_seen_at,
    )


# -- organizations ----------------------------------------------------------------------------


class OrganizationRepository:
    """Organizations and their subscription status."""

    async def create(
        self,
        conn: AsyncConnection,
        org_id: str,
        name: str,
        *,
        subscription_status: str = "active",
        approved_tools: Sequence[str] = (),
        now: datetime | None = None,
    ) -> OrganizationRecord:
        """Create an organization.

        Raises:
            ValidationError: Bad id, name or status.
            Conflict: The id is taken.
        """
        record = OrganizationRecord(
            validate_org_id(org_id),
            validate_name(name),
            validate_subscription(subscription_status),
            tuple(approved_tools),
            now or utcnow(),
        )
        try:
            async with conn.begin_nested():
                await conn.execute(
                    insert(organizations).values(
                        id=record.id,
                        name=record.name,
                        subscription_status=record.subscription_status,
                        approved_tools=list(record.approved_tools),
                        created_at=record.created_at,
                    )
                )
        except IntegrityError as exc:
            raise Conflict(f"organization {org_id!r} already exists") from exc
        return record

    async def get(self, conn: AsyncConnection, org_id: str) -> OrganizationRecord | None:
        """The organization, or None."""
        row = (
            await conn.execute(select(organizations).where(organizations.c.id == org_id))
        ).first()
        return _org(row) if row is not None else None

    async def list(self, conn: AsyncConnection) -> list[OrganizationRecord]:
        """Every organization, by id."""
        rows = await conn.execute(select(organizations).order_by(organizations.c.id))
        return [_org(row) for row in rows]

    async def subscription_status(self, conn: AsyncConnection, org_id: str) -> str | None:
        """The organization's subscription status, or None when it does not exist."""
        result = await conn.execute(
            select(organizations.c.subscription_status).where(organizations.c.id == org_id)
        )
        return cast(str | None, result.scalar_one_or_none())

    async def subscription_statuses(
        self, conn: AsyncConnection, org_ids: Collection[str]
    ) -> dict[str, str]:
        """``org id -> subscription status`` of those of ``org_ids`` that exist."""
        found: dict[str, str] = {}
        ids = sorted(org_ids)
        for i in range(0, len(ids), _IN_CHUNK):
            rows = await conn.execute(
                select(organizations.c.id, organizations.c.subscription_status).where(
                    organizations.c.id.in_(ids[i : i + _IN_CHUNK])
                )
            )
            found.update((str(org), str(status)) for org, status in rows)
        return found

    async def set_subscription(self, conn: AsyncConnection, org_id: str, status: str) -> None:
        """Change the subscription status.

        Raises:
            ValidationError: Unknown status.
            NotFound: No such organization.
        """
        validate_subscription(status)
        result = await conn.execute(
            update(organizations)
            .where(organizations.c.id == org_id)
            .values(subscription_status=status)
        )
        if result.rowcount == 0:
            raise NotFound(f"organization {org_id!r} does not exist")

    async def set_approved_tools(
        self, conn: AsyncConnection, org_id: str, tools: Sequence[str]
    ) -> None:
        """Replace the organization's list of approved AI tools.

        Raises:
            NotFound: No such organization.
        """
        result = await conn.execute(
            update(organizations)
            .where(organizations.c.id == org_id)
            .values(approved_tools=sorted({t.strip() for t in tools if t.strip()}))
        )
        if result.rowcount == 0:
            raise NotFound(f"organization {org_id!r} does not exist")

    async def set_seats(self, conn: AsyncConnection, org_id: str, seats: int | None) -> None:
        """Set (or clear, with None) the number of seats the organization monitors.

        Raises:
            ValidationError: Not a count in range.
            NotFound: No such organization.
        """
        result = await conn.execute(
            update(organizations)
            .where(organizations.c.id == org_id)
            .values(seats=validate_seats(seats))
        )
        if result.rowcount == 0:
            raise NotFound(f"organization {org_id!r} does not exist")

    async def remove(self, conn: AsyncConnection, org_id: str) -> int:
        """Delete the organization and every row it owns (users, agents, sessions, rollups,
        exports, alerts...); returns how many rows went with it.

        Every table with an ``org_id`` column is emptied of the organization explicitly, not
        only through ``ON DELETE CASCADE``: rollup and idempotency tables carry no foreign key
        (ingestion speed), and SQLite enforces foreign keys only when asked.

        Raises:
            NotFound: No such organization.
        """
        # The metrics rollups register their tables on the same metadata when imported; a
        # command-line process may not have imported them yet.
        import aiusage.metrics.tables  # noqa: F401

        if await self.lock(conn, org_id) is None:
            raise NotFound(f"organization {org_id!r} does not exist")
        removed = 0
        for table in reversed(metadata.sorted_tables):
            if table is organizations or "org_id" not in table.c:
                continue
            result = await conn.execute(delete(table).where(table.c.org_id == org_id))
            removed += max(result.rowcount or 0, 0)
        await conn.execute(delete(organizations).where(organizations.c.id == org_id))
        return removed + 1

    async def lock(self, conn: AsyncConnection, org_id: str) -> str | None:
        """Read the organization's status, locking its row until the transaction ends on
        PostgreSQL (membership changes of one organization then run one at a time; SQLite
        has one writer anyway). None when it does not exist."""
        query = select(organizations.c.subscription_status).where(organizations.c.id == org_id)
        if conn.dialect.name == "postgresql":
            query = query.with_for_update()
        return cast(str | None, (await conn.execute(query)).scalar_one_or_none())


# -- users ------------------------------------------------------------------------------------


class UserRepository:
    """Users of every organization."""

    async def create(
        self,
        conn: AsyncConnection,
        org_id: str,
        *,
        email: str | None,
        role: str,
        password_hash: str | None = None,
        user_id: str | None = None,
        now: datetime | None = None,
    ) -> UserRecord:
        """Create a user (id generated when not given).

        Raises:
            ValidationError: Bad e-mail or role.
            NotFound: No such organization.
            Conflict: The e-mail or id is taken.
        """
        validate_role(role)
        normalized = normalize_email(email) if email is not None else None
        uid = user_id or f"u-{uuid.uuid4().hex[:20]}"
        if not 0 < len(uid) <= 64:
            raise ValidationError("user id must be 1-64 characters")
        if await OrganizationRepository().subscription_status(conn, org_id) is None:
            raise NotFound(f"organization {org_id!r} does not exist")
        record = UserRecord(
            org_id, uid, normalized, role, password_hash, True, now or utcnow(), None
        )
        try:
            async with conn.begin_nested():
                await conn.execute(
                    insert(users).values(
                        org_id=org_id,
                        id=uid,
                        email=normalized,
                        role=role,
                        password_hash=password_hash,
                        active=True,
                        created_at=record.created_at,
                    )
                )
        except IntegrityError as exc:
            raise Conflict(f"a user with e-mail {normalized!r} or id {uid!r} exists") from exc
        return record

    async def get(self, conn: AsyncConnection, org_id: str, user_id: str) -> UserRecord | None:
        """The user of that organization, or None."""
        row = (
            await conn.execute(select(users).where(users.c.org_id == org_id, users.c.id == user_id))
        ).first()
        return _user(row) if row is not None else None

    async def get_by_email(self, conn: AsyncConnection, email: str) -> UserRecord | None:
        """The user with that e-mail (case-insensitive), or None."""
        try:
            normalized = normalize_email(email)
        except ValidationError:
            return None
        row = (await conn.execute(select(users).where(users.c.email == normalized))).first()
        return _user(row) if row is not None else None

    async def role_of(self, conn: AsyncConnection, org_id: str, user_id: str) -> str | None:
        """The role of an *active* user, or None (unknown or deactivated)."""
        result = await conn.execute(
            select(users.c.role).where(
                users.c.org_id == org_id, users.c.id == user_id, users.c.active.is_(True)
            )
        )
        return cast(str | None, result.scalar_one_or_none())

    async def active_roles(self, conn: AsyncConnection, org_id: str) -> dict[str, str]:
        """``user id -> role`` of every active member of the organization (one query)."""
        return (await self.active_roles_of(conn, (org_id,)))[org_id]

    async def active_roles_of(
        self, conn: AsyncConnection, org_ids: Collection[str]
    ) -> dict[str, dict[str, str]]:
        """:meth:`active_roles` of several organizations (one query per 500 of them); every
        organization asked for is in the answer, with no members if it has none."""
        found: dict[str, dict[str, str]] = {org: {} for org in org_ids}
        ids = sorted(found)
        for i in range(0, len(ids), _IN_CHUNK):
            rows = await conn.execute(
                select(users.c.org_id, users.c.id, users.c.role).where(
                    users.c.org_id.in_(ids[i : i + _IN_CHUNK]), users.c.active.is_(True)
                )
            )
            for org, user_id, role in rows:
                found[str(org)][str(user_id)] = str(role)
        return found

    async def list(self, conn: AsyncConnection, org_id: str) -> list[UserRecord]:
        """The organization's users, by id."""
        rows = await conn.execute(
            select(users).where(users.c.org_id == org_id).order_by(users.c.id)
        )
        return [_user(row) for row in rows]

    async def set_role(self, conn: AsyncConnection, org_id: str, user_id: str, role: str) -> None:
        """Change a user's role (open hub connections re-check it, docs/spec/auth.md §9.4).

        Raises:
            ValidationError: Unknown role.
            NotFound: No such user.
        """
        validate_role(role)
        await self._update(conn, org_id, user_id, role=role)

    async def set_active(
        self, conn: AsyncConnection, org_id: str, user_id: str, active: bool
    ) -> None:
        """Activate or deactivate (remove) a user.

        Raises:
            NotFound: No such user.
        """
        await self._update(conn, org_id, user_id, active=active)

    async def set_password_hash(
        self, conn: AsyncConnection, org_id: str, user_id: str, password_hash: str
    ) -> None:
        """Store a new password hash.

        Raises:
            NotFound: No such user.
        """
        await self._update(conn, org_id, user_id, password_hash=password_hash)

    async def set_team(
        self, conn: AsyncConnection, org_id: str, user_id: str, team: str | None
    ) -> None:
        """Set (or clear, with None or blank) the user's team.

        Raises:
            ValidationError: Longer than 100 characters.
            NotFound: No such user.
        """
        await self._update(conn, org_id, user_id, team=validate_team(team))

    async def remove(self, conn: AsyncConnection, org_id: str, user_id: str) -> None:
        """Delete the user's membership row (their usage history stays, under their id).

        Raises:
            NotFound: No such user.
        """
        result = await conn.execute(
            delete(users).where(users.c.org_id == org_id, users.c.id == user_id)
        )
        if result.rowcount == 0:
            raise NotFound(f"user {user_id!r} does not exist in organization {org_id!r}")

    async def ensure_an_admin_remains(
        self,
        conn: AsyncConnection,
        org_id: str,
        user_id: str,
        *,
        role: str | None = None,
        active: bool | None = None,
        remove: bool = False,
    ) -> None:
        """Refuse a change of ``user_id`` (new ``role``, ``active`` flag, or removal) that
        would leave the organization without an active Admin. Call it in the transaction of
        the change: the organization row is locked first (PostgreSQL), so two Admins demoting
        each other at once cannot both succeed.

        Raises:
            Conflict: The user is the last active Admin and would stop being one.
        """
        await OrganizationRepository().lock(conn, org_id)
        admins = await self.active_admins(conn, org_id)
        if user_id not in admins:
            return
        stays = not remove and active is not False and role in (None, ADMIN_ROLE)
        if not stays and len(admins) == 1:
            raise Conflict(
                f"user {user_id!r} is the last active Admin of organization {org_id!r}: "
                "make another user Admin first"
            )

    async def active_admins(self, conn: AsyncConnection, org_id: str) -> set[str]:
        """Ids of the organization's active Admins."""
        rows = await conn.execute(
            select(users.c.id).where(
                users.c.org_id == org_id, users.c.role == ADMIN_ROLE, users.c.active.is_(True)
            )
        )
        return {str(uid) for (uid,) in rows}

    async def _update(
        self, conn: AsyncConnection, org_id: str, user_id: str, **values: Any
    ) -> None:
        result = await conn.execute(
            update(users).where(users.c.org_id == org_id, users.c.id == user_id).values(**values)
        )
        if result.rowcount == 0:
            raise NotFound(f"user {user_id!r} does not exist in organization {org_id!r}")


# -- agents and enrollment --------------------------------------------------------------------


def hash_code(code: str) -> str:
    """SHA-256 hex of an enrollment code (only the hash is stored)."""
    return hashlib.sha256(code.strip().encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Enrollment:
    """What redeeming an enrollment code yields."""

    org_id: str
    user_id: str | None
    device_id: str


class AgentRepository:
    """Devices running the agent, and the one-time codes that enroll them (docs/agent.md)."""

    async def get(self, conn: AsyncConnection, org_id: str, agent_id: str) -> AgentRecord | None:
        """The agent, or None."""
        row = (
            await conn.execute(
                select(agents).where(agents.c.org_id == org_id, agents.c.id == agent_id)
            )
        ).first()
        return _agent(row) if row is not None else None

    async def list(self, conn: AsyncConnection, org_id: str) -> list[AgentRecord]:
        """The organization's agents, by id."""
        rows = await conn.execute(
            select(agents).where(agents.c.org_id == org_id).order_by(agents.c.id)
        )
        return [_agent(row) for row in rows]

    async def register(
        self,
        conn: AsyncConnection,
        org_id: str,
        agent_id: str,
        *,
        user_id: str | None = None,
        name: str = "",
        token_id: str | None = None,
        now: datetime | None = None,
    ) -> AgentRecord:
        """Create (or re-key) an agent row; clears a previous revocation of the same id.

        Raises:
            NotFound: No such organization.
        """
        if await OrganizationRepository().subscription_status(conn, org_id) is None:
            raise NotFound(f"organization {org_id!r} does not exist")
        moment = now or utcnow()
        ins = dialect_insert(conn, agents).values(
            org_id=org_id,
            id=agent_id,
            user_id=user_id,
            name=name[:200],
            token_id=token_id,
            created_at=moment,
        )
        await conn.execute(
            ins.on_conflict_do_update(
                index_elements=["org_id", "id"],
                set_={
                    "user_id": ins.excluded.user_id,
                    "name": ins.excluded.name,
                    "token_id": ins.excluded.token_id,
                    "revoked_at": None,
                },
            )
        )
        record = await self.get(conn, org_id, agent_id)
        assert record is not None
        return record

    async def revoke(
        self, conn: AsyncConnection, org_id: str, agent_id: str, now: datetime | None = None
    ) -> None:
        """Revoke an agent: its token is refused from now on.

        Raises:
            NotFound: No such agent.
        """
        result = await conn.execute(
            update(agents)
            .where(agents.c.org_id == org_id, agents.c.id == agent_id)
            .values(revoked_at=now or utcnow())
        )
        if result.rowcount == 0:
            raise NotFound(f"agent {agent_id!r} does not exist in organization {org_id!r}")

    async def is_revoked(self, conn: AsyncConnection, org_id: str, agent_id: str) -> bool:
        """True when the agent exists and is revoked."""
        result = await conn.execute(
            select(agents.c.revoked_at).where(agents.c.org_id == org_id, agents.c.id == agent_id)
        )
        return result.scalar_one_or_none() is not None

    async def create_enrollment_code(
        self,
        conn: AsyncConnection,
        org_id: str,
        *,
        user_id: str | None = None,
        ttl: timedelta = timedelta(hours=24),
        now: datetime | None = None,
    ) -> str:
        """Create a one-time enrollment code and return it (it is not stored in clear).

        Raises:
            NotFound: No such organization or user.
        """
        if await OrganizationRepository().subscription_status(conn, org_id) is None:
            raise NotFound(f"organization {org_id!r} does not exist")
        if user_id is not None and await UserRepository().get(conn, org_id, user_id) is None:
            raise NotFound(f"user {user_id!r} does not exist in organization {org_id!r}")
        if ttl <= timedelta(0):
            raise ValidationError("ttl must be positive")
        moment = now or utcnow()
        # 128 bits, grouped for reading aloud / typing: XXXX-XXXX-... (base32, no padding).
        raw = base64.b32encode(secrets.token_bytes(15)).decode()
        code = "-".join(raw[i : i + 4] for i in range(0, len(raw), 4))
        await conn.execute(
            insert(enrollment_codes).values(
                code_hash=hash_code(code),
                org_id=org_id,
                user_id=user_id,
                created_at=moment,
                expires_at=moment + ttl,
            )
        )
        return code

    async def redeem_enrollment_code(
        self,
        conn: AsyncConnection,
        code: str,
        *,
        device_name: str = "",
        now: datetime | None = None,
    ) -> Enrollment:
        """Use a code once: marks it used and registers a new agent row.

        Raises:
            NotFound: Unknown, expired or already used code (one message for all three, so a
                guesser learns nothing).
        """
        moment = now or utcnow()
        device_id = f"dev-{uuid.uuid4().hex[:20]}"
        result = await conn.execute(
            update(enrollment_codes)
            .where(
                enrollment_codes.c.code_hash == hash_code(code),
                enrollment_codes.c.used_at.is_(None),
                enrollment_codes.c.expires_at > moment,
            )
            .values(used_at=moment, device_id=device_id)
            .returning(enrollment_codes.c.org_id, enrollment_codes.c.user_id)
        )
        row = result.first()
        if row is None:
            raise NotFound("enrollment code is unknown, expired or already used")
        await self.register(
            conn, row.org_id, device_id, user_id=row.user_id, name=device_name, now=moment
        )
        return Enrollment(row.org_id, row.user_id, device_id)


# -- sessions ---------------------------------------------------------------------------------

MAX_PAGE_SIZE = 500


def encode_cursor(start_time: datetime, session_id: str) -> str:
    """Opaque cursor for the keyset ``(start_time, id)`` of the last row of a page."""
    payload = json.dumps([start_time.astimezone(UTC).isoformat(), session_id])
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """Inverse of :func:`encode_cursor`.

    Raises:
        ValidationError: The cursor was not made by this server.
    """
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        start, sid = json.loads(base64.urlsafe_b64decode(padded.encode()))
        moment = datetime.fromisoformat(start)
        if moment.tzinfo is None or not isinstance(sid, str):
            raise ValueError("bad cursor")
        return moment, sid
    except (ValueError, TypeError) as exc:
        raise ValidationError("invalid cursor") from exc


class SessionRepository:
    """Reads of AI sessions (writes happen in :mod:`aiusage.store.ingest`)."""

    async def page(
        self,
        conn: AsyncConnection,
        org_id: str,
        *,
        user_id: str | None = None,
        tool: str | None = None,
        start_from: datetime | None = None,
        start_to: datetime | None = None,
        cursor: str | None = None,
        limit: int = 100,
    ) -> SessionPage:
        """Sessions of one organization, newest start first, filtered and keyset-paginated.

        ``start_from`` is inclusive and ``start_to`` exclusive (on ``start_time``).

        Raises:
            ValidationError: Bad cursor or limit.
        """
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise ValidationError(f"limit must be between 1 and {MAX_PAGE_SIZE}")
        c = ai_sessions.c
        query = select(ai_sessions).where(c.org_id == org_id)
        if user_id is not None:
            query = query.where(c.user_id == user_id)
        if tool is not None:
            query = query.where(c.tool == tool)
        if start_from is not None:
            query = query.where(c.start_time >= start_from)
        if start_to is not None:
            query = query.where(c.start_time < start_to)
        if cursor is not None:
            after_start, after_id = decode_cursor(cursor)
            query = query.where(
                or_(
                    c.start_time < after_start,
                    and_(c.start_time == after_start, c.id < after_id),
                )
            )
        rows = (
            await conn.execute(query.order_by(c.start_time.desc(), c.id.desc()).limit(limit + 1))
        ).all()
        items = tuple(
            SessionRecord(
                r.org_id,
                r.id,
                r.user_id,
                r.device_id,
                r.tool,
                r.start_time,
                r.end_time,
                r.duration_s,
                r.ai_usage_s,
            )
            for r in rows[:limit]
        )
        next_cursor = None
        if len(rows) > limit:
            last = items[-1]
            next_cursor = encode_cursor(last.start_time, last.id)
        return SessionPage(items, next_cursor)

    async def count(self, conn: AsyncConnection, org_id: str) -> int:
        """Number of sessions of the organization."""
        result = await conn.execute(
            select(func.count()).select_from(ai_sessions).where(ai_sessions.c.org_id == org_id)
        )
        return int(result.scalar_one())
