"""Agent-event ingestion: one batch, one transaction, a fixed number of statements.

Steps inside one write transaction (SQLite ``BEGIN IMMEDIATE``):

1. the organization must exist and be ingesting (active, trialing or past_due);
2. the agent row is upserted (``last_seen_at``) and its revocation checked;
3. every event id is claimed in ``processed_events`` with one multi-row
   ``INSERT ... ON CONFLICT DO NOTHING RETURNING event_id``: ids not returned were applied by an
   earlier batch and are skipped (idempotency, docs/agent.md "Reliability");
4. users first seen are created (``UserJoined`` is published for them after the commit);
5. the sessions the batch names (its session events and its detections) are read once,
   merged in memory, and written with one upsert; detections with one INSERT;
6. the metrics rollups (:class:`aiusage.metrics.rollup.RollupBatch`) receive every row change,
   each detection with the state of its session (the time model clips a detection to it),
   and flush their deltas, then extra hooks run: aggregates never drift from raw rows.

Session merge rules (also in the OpenAPI description of the endpoint): a SessionStarted sets
``start_time``, and ``tool``/``deviceId`` when given; the *first* SessionEnded sets
``end_time``, ``duration`` and ``aiUsageTime`` (a later one is recorded as processed but
changes nothing and is not published); a SessionEnded without a known start creates the session with
``start_time = end_time - duration`` until its SessionStarted arrives.

Nothing is published here: the caller publishes :attr:`IngestResult.published` after the
commit, so every event a client sees is durable.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import cache
from typing import Any, Protocol, cast

from sqlalchemy import bindparam, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from aiusage.domain.events import AgentEvent, AIDetected, SessionEnded, SessionStarted
from aiusage.domain.organizations import INGESTING_SUBSCRIPTIONS
from aiusage.errors import Forbidden, StoreError, Unauthorized
from aiusage.metrics.bulk import BulkWrite
from aiusage.metrics.rollup import DetectionFacts, RollupBatch, SessionFacts
from aiusage.store.database import Database
from aiusage.store.repositories import (
    agents,
    ai_sessions,
    in_list,
    insert_for,
    organizations,
    users,
)
from aiusage.store.tables import ai_detections, processed_events

STATUS_CACHE_S = 1.0
"""Seconds an organization's subscription status is reused across batches."""

_CHUNK = 500
"""Rows per multi-row statement (3-10 parameters each: far below every dialect's limit)."""


class RollupSink(Protocol):
    """Receives every raw-row change of a batch and writes derived aggregates before commit
    (satisfied by :class:`aiusage.metrics.rollup.RollupBatch`)."""

    def session_changed(self, before: SessionFacts | None, after: SessionFacts) -> None:
        """A session row was inserted (``before`` None) or updated."""

    def detection_added(self, detection: DetectionFacts) -> None:
        """A detection row was inserted."""

    def before_detections(self, conn: Connection) -> None:
        """The batch's session rows are written, its detections not yet."""

    def flush(self, conn: Connection) -> None:
        """Write the collected deltas in the caller's transaction."""


IngestionHook = Callable[[Connection, "IngestResult"], None]
"""Extra work inside the ingestion transaction, after the rows and rollups are written (a
synchronous function: on SQLite it runs in the database's writer thread)."""


@dataclass(slots=True)
class NewUser:
    """A user created because an agent reported it for the first time."""

    user_id: str
    email: str | None
    created_at: datetime


@dataclass(slots=True)
class IngestResult:
    """What one batch did.

    Attributes:
        org_id: The organization (from the agent token).
        accepted: Events applied now.
        duplicates: Events skipped because their id was applied before (or repeated).
        published: Applied events that changed state, in batch order, to publish.
        new_users: Users first seen in this batch (UserJoined).
        rollup: The rollup batch (its ``detections``/``orgs`` feed alerts and coalescing).
    """

    org_id: str
    accepted: int = 0
    duplicates: int = 0
    published: list[AgentEvent] = field(default_factory=list)
    new_users: list[NewUser] = field(default_factory=list)
    rollup: RollupSink | None = None


@dataclass(slots=True)
class _SessionState:
    user_id: str
    device_id: str | None
    tool: str | None
    start_time: datetime
    end_time: datetime | None
    duration_s: float | None
    ai_usage_s: float | None

    def facts(self, org_id: str, session_id: str) -> SessionFacts:
        return SessionFacts(
            org_id=org_id,
            session_id=session_id,
            user_id=self.user_id,
            start_time=self.start_time,
            end_time=self.end_time,
            duration_s=self.duration_s,
            ai_usage_s=self.ai_usage_s,
            tool=self.tool,
            device_id=self.device_id,
        )


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> list[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


_DETECTION_COLUMNS = ("user_id", "session_id", "device_id", "tool", "duration_s", "detected_at")
"""Columns of a detection row after its key, in the order ingestion writes them."""

_SESSION_COLUMNS = (
    "user_id",
    "device_id",
    "tool",
    "start_time",
    "end_time",
    "duration_s",
    "ai_usage_s",
)


@dataclass(frozen=True, slots=True)
class _Statements:
    """The ingestion statements of one dialect, built once: constructing an ON CONFLICT
    statement (its ``excluded`` column proxies) cost more per batch than executing it."""

    org_lock: Any
    subscription: Any
    agent_seen: Any
    claim: Any
    user_seen: Any
    load_sessions: Any
    save_sessions: BulkWrite
    add_detections: BulkWrite


@cache
def _statements(dialect: str) -> _Statements:
    ins_agent = insert_for(dialect, agents)
    ins_user = insert_for(dialect, users)
    c = ai_sessions.c
    return _Statements(
        org_lock=text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
        subscription=select(organizations.c.subscription_status).where(
            organizations.c.id == bindparam("org")
        ),
        agent_seen=ins_agent.on_conflict_do_update(
            index_elements=["org_id", "id"],
            set_={"last_seen_at": ins_agent.excluded.last_seen_at},
        ).returning(agents.c.revoked_at),
        # executemany with RETURNING ("insertmanyvalues"): one statement, batched into
        # multi-row INSERTs by SQLAlchemy; ids that hit the primary key return no row.
        claim=insert_for(dialect, processed_events)
        .on_conflict_do_nothing()
        .returning(processed_events.c.event_id),
        # One upsert both creates first-seen users and refreshes last_seen_at; a row created
        # by this statement is the one whose created_at is this batch's ``now``.
        user_seen=ins_user.on_conflict_do_update(
            index_elements=["org_id", "id"], set_={"last_seen_at": ins_user.excluded.last_seen_at}
        ).returning(users.c.id, users.c.created_at),
        load_sessions=select(
            c.id,
            c.user_id,
            c.device_id,
            c.tool,
            c.start_time,
            c.end_time,
            c.duration_s,
            c.ai_usage_s,
        ).where(c.org_id == bindparam("org"), in_list(dialect, c.id, "ids")),
        # New and changed sessions in one statement: the merged state is final.
        save_sessions=BulkWrite(dialect, ai_sessions, dict.fromkeys(_SESSION_COLUMNS, "set")),
        add_detections=BulkWrite(dialect, ai_detections, {}, _DETECTION_COLUMNS),
    )


class Ingestor:
    """Applies validated agent batches to the store.

    The work of a batch is one synchronous function run by :meth:`Database.run_write`: on
    SQLite the whole transaction happens in the database's writer thread in one hop, so the
    event loop is free while it runs (see ``docs/benchmarks.md`` §3 for what that bought).

    Args:
        db: The database.
        rollup_factory: Makes the per-batch rollup sink (None: no rollups, e.g. in tests of
            raw-row behaviour).
        hooks: Extra in-transaction work (see :data:`IngestionHook`).
    """

    def __init__(
        self,
        db: Database,
        *,
        rollup_factory: Callable[[], RollupSink] | None = RollupBatch,
        hooks: Sequence[IngestionHook] = (),
    ) -> None:
        self.db = db
        self.rollup_factory = rollup_factory
        self.hooks = list(hooks)
        self._status_cache: dict[str, tuple[float, str | None]] = {}

    async def ingest(
        self,
        org_id: str,
        agent_id: str,
        events: Sequence[AgentEvent],
        *,
        now: datetime,
    ) -> IngestResult:
        """Apply one batch atomically and return what changed.

        Raises:
            Forbidden: Unknown organization or canceled subscription.
            Unauthorized: The agent is revoked.
            StoreError: A concurrent batch raced on the same new rows (PostgreSQL); nothing
                was applied and the agent should retry.
        """

        def apply(conn: Connection) -> IngestResult:
            return self._apply(conn, org_id, agent_id, events, now)

        try:
            return await self.db.run_write(apply)
        except IntegrityError as exc:
            # A foreign key to an organization removed since the status was cached is a
            # refusal, not a race to retry (docs/security.md "User lifecycle").
            self._status_cache.pop(org_id, None)
            async with self.db.read() as conn:
                gone = (
                    await conn.execute(
                        select(organizations.c.id).where(organizations.c.id == org_id)
                    )
                ).first() is None
            if gone:
                raise Forbidden(f"organization {org_id!r} does not exist") from exc
            raise StoreError("concurrent write conflict; retry the batch") from exc

    def _apply(
        self,
        conn: Connection,
        org_id: str,
        agent_id: str,
        events: Sequence[AgentEvent],
        now: datetime,
    ) -> IngestResult:
        stmts = _statements(conn.dialect.name)
        if conn.dialect.name == "postgresql":
            # Sessions are read, merged in memory and written back: two concurrent batches of
            # one organization touching the same session must not both merge from the same
            # snapshot (READ COMMITTED). Batches of one organization are serialized by a
            # transaction-scoped advisory lock; other organizations proceed in parallel.
            # (SQLite needs nothing: BEGIN IMMEDIATE already serializes writers.)
            conn.execute(stmts.org_lock, {"key": f"aiusage.ingest:{org_id}"})
        status = self._subscription_status(conn, stmts, org_id)
        if status is None:
            raise Forbidden(f"organization {org_id!r} does not exist")
        if status not in INGESTING_SUBSCRIPTIONS:
            raise Forbidden(f"organization {org_id!r} subscription is {status}")

        revoked_at = conn.execute(
            stmts.agent_seen,
            {
                "org_id": org_id,
                "id": agent_id,
                "name": agent_id,
                "created_at": now,
                "last_seen_at": now,
            },
        ).scalar_one()
        if revoked_at is not None:
            raise Unauthorized("this agent has been revoked")

        result = IngestResult(org_id)
        # Repeats inside the batch count as duplicates, like repeats of earlier batches.
        unique: dict[str, AgentEvent] = {}
        for event in events:
            unique.setdefault(event.event_id, event)
        result.duplicates = len(events) - len(unique)
        claimed: set[str] = set()
        if unique:
            rows = conn.execute(
                stmts.claim,
                [{"org_id": org_id, "event_id": eid, "received_at": now} for eid in unique],
            )
            claimed.update(rows.scalars())
        fresh = [e for e in unique.values() if e.event_id in claimed]
        result.accepted = len(fresh)
        result.duplicates += len(unique) - len(fresh)
        if not fresh:
            return result

        self._users(conn, stmts, org_id, fresh, now, result)
        rollup = self.rollup_factory() if self.rollup_factory is not None else None
        result.rollup = rollup
        sessions = self._sessions(conn, stmts, org_id, agent_id, fresh, rollup, result)
        detections = [e for e in fresh if isinstance(e, AIDetected)]
        if rollup is not None:
            rollup.before_detections(conn)
        if detections:
            stmts.add_detections.execute(
                conn,
                [
                    (
                        org_id,
                        d.event_id,
                        d.user_id,
                        d.session_id,
                        agent_id,
                        d.tool,
                        d.duration,
                        d.occurred_at,
                    )
                    for d in detections
                ],
            )
            if rollup is not None:
                for d in detections:
                    known = sessions.get(d.session_id) if d.session_id is not None else None
                    rollup.detection_added(
                        DetectionFacts(
                            org_id=org_id,
                            user_id=d.user_id,
                            session_id=d.session_id,
                            tool=d.tool,
                            duration_s=d.duration,
                            detected_at=d.occurred_at,
                            detection_id=d.event_id,
                            device_id=agent_id,
                            session=None
                            if known is None or d.session_id is None
                            else known.facts(org_id, d.session_id),
                        )
                    )
        if rollup is not None:
            rollup.flush(conn)
        for hook in self.hooks:
            hook(conn, result)
        return result

    def _subscription_status(self, conn: Connection, stmts: _Statements, org_id: str) -> str | None:
        # Cached for a moment: a cancellation takes effect within STATUS_CACHE_S (the agent
        # FK still guards against a deleted organization). The cache is only touched from the
        # thread running the transaction, one transaction at a time per process on SQLite;
        # on PostgreSQL a race costs at most one extra read.
        clock = time.monotonic()
        hit = self._status_cache.get(org_id)
        if hit is not None and clock - hit[0] < STATUS_CACHE_S:
            return hit[1]
        status = conn.execute(stmts.subscription, {"org": org_id}).scalar_one_or_none()
        if len(self._status_cache) > 10_000:
            self._status_cache.clear()
        self._status_cache[org_id] = (clock, status)
        return cast(str | None, status)

    def _users(
        self,
        conn: Connection,
        stmts: _Statements,
        org_id: str,
        fresh: Sequence[AgentEvent],
        now: datetime,
        result: IngestResult,
    ) -> None:
        user_ids = sorted({e.user_id for e in fresh})
        if not user_ids:
            return
        rows = conn.execute(
            stmts.user_seen,
            [
                {
                    "org_id": org_id,
                    "id": uid,
                    "email": None,
                    "role": "Employee",
                    "password_hash": None,
                    "active": True,
                    "created_at": now,
                    "last_seen_at": now,
                }
                for uid in user_ids
            ],
        )
        new_ids = {row.id for row in rows if row.created_at == now}
        result.new_users.extend(NewUser(uid, None, now) for uid in user_ids if uid in new_ids)

    def _load_sessions(
        self, conn: Connection, stmts: _Statements, org_id: str, session_ids: Sequence[str]
    ) -> dict[str, _SessionState]:
        """The current rows of the sessions a batch touches."""
        before: dict[str, _SessionState] = {}
        for chunk in _chunks(session_ids):
            rows = conn.execute(stmts.load_sessions, {"org": org_id, "ids": list(chunk)})
            for r in rows:
                before[r.id] = _SessionState(
                    r.user_id,
                    r.device_id,
                    r.tool,
                    r.start_time,
                    r.end_time,
                    r.duration_s,
                    r.ai_usage_s,
                )
        return before

    def _sessions(
        self,
        conn: Connection,
        stmts: _Statements,
        org_id: str,
        agent_id: str,
        fresh: Sequence[AgentEvent],
        rollup: RollupSink | None,
        result: IngestResult,
    ) -> dict[str, _SessionState]:
        """Merge the batch's session events; return the final state of every session the
        batch names (detections' sessions too: the time model clips a detection to it)."""
        session_ids = sorted(
            {e.session_id for e in fresh if isinstance(e, SessionStarted | SessionEnded)}
            | {e.session_id for e in fresh if isinstance(e, AIDetected) and e.session_id}
        )
        before = self._load_sessions(conn, stmts, org_id, session_ids) if session_ids else {}
        state: dict[str, _SessionState] = {k: replace(v) for k, v in before.items()}
        for event in fresh:
            if isinstance(event, SessionStarted):
                current = state.get(event.session_id)
                if current is None:
                    state[event.session_id] = _SessionState(
                        event.user_id,
                        event.device_id or agent_id,
                        event.tool,
                        event.start_time,
                        None,
                        None,
                        None,
                    )
                else:
                    current.start_time = event.start_time
                    current.user_id = event.user_id
                    current.tool = event.tool or current.tool
                    current.device_id = event.device_id or current.device_id
                result.published.append(event)
            elif isinstance(event, SessionEnded):
                current = state.get(event.session_id)
                if current is None:
                    state[event.session_id] = _SessionState(
                        event.user_id,
                        agent_id,
                        None,
                        event.end_time - timedelta(seconds=event.duration),
                        event.end_time,
                        event.duration,
                        event.ai_usage_time,
                    )
                elif current.end_time is None:
                    current.end_time = event.end_time
                    current.duration_s = event.duration
                    current.ai_usage_s = event.ai_usage_time
                else:
                    continue  # first end wins: a repeated end changes and publishes nothing
                result.published.append(event)
            else:
                result.published.append(event)

        new_ids = [sid for sid in sorted(state) if sid not in before]
        changed = [sid for sid in sorted(state) if sid in before and state[sid] != before[sid]]
        stmts.save_sessions.execute(
            conn,
            [
                (
                    org_id,
                    sid,
                    state[sid].user_id,
                    state[sid].device_id,
                    state[sid].tool,
                    state[sid].start_time,
                    state[sid].end_time,
                    state[sid].duration_s,
                    state[sid].ai_usage_s,
                )
                for sid in sorted([*new_ids, *changed])
            ],
        )
        if rollup is not None:
            for sid in new_ids:
                rollup.session_changed(None, state[sid].facts(org_id, sid))
            for sid in changed:
                rollup.session_changed(
                    before[sid].facts(org_id, sid), state[sid].facts(org_id, sid)
                )
        return state
