from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.util import await_only

from aiusage.domain.events import AIDetected, SessionEnded, SessionStarted
from aiusage.errors import Forbidden, Unauthorized
from aiusage.store.database import Database
from aiusage.store.ingest import Ingestor
from aiusage.store.repositories import AgentRepository, OrganizationRepository
from aiusage.store.tables import AIDetection, AISession, ProcessedEvent, UsageHourly, User

T0 = datetime(2026, 5, 1, 9, 15, tzinfo=UTC)
NOW = T0 + timedelta(hours=2)


def started(eid, sid, user="u1", at=T0, tool="ChatGPT"):
    return SessionStarted(eid, at, user, sid, at, tool, None)


def ended(eid, sid, user="u1", at=T0 + timedelta(minutes=30), duration=1800.0, ai=600.0):
    return SessionEnded(eid, at, user, sid, at, duration, ai)


def detected(eid, user="u1", tool="Claude", at=T0 + timedelta(minutes=5), sid=None):
    return AIDetected(eid, at, user, tool, 120.0, sid)


async def _org(db, org_id="acme", status="active"):
    async with db.write() as conn:
        await OrganizationRepository().create(
            conn, org_id, org_id.title(), subscription_status=status
        )


async def _count(db, table, **where):
    async with db.read() as conn:
        query = select(func.count()).select_from(table)
        for key, value in where.items():
            query = query.where(table.c[key] == value)
        return (await conn.execute(query)).scalar_one()


async def test_a_batch_writes_sessions_detections_users_and_rollups(db: Database) -> None:
    await _org(db)
    ingestor = Ingestor(db)
    result = await ingestor.ingest(
        "acme",
        "dev-1",
        [
            started("e1", "s1"),
            detected("e2", sid="s1"),
            ended("e3", "s1"),
            started("e4", "s2", user="u2"),
        ],
        now=NOW,
    )
    assert (result.accepted, result.duplicates) == (4, 0)
    assert [e.event_id for e in result.published] == ["e1", "e2", "e3", "e4"]
    assert sorted(u.user_id for u in result.new_users) == ["u1", "u2"]
    async with db.read() as conn:
        s1 = (
            await conn.execute(select(AISession.__table__).where(AISession.__table__.c.id == "s1"))
        ).one()
        hourly = (
            await conn.execute(select(UsageHourly.__table__).order_by("user_id", "tool"))
        ).all()
    assert (s1.start_time, s1.end_time, s1.duration_s, s1.ai_usage_s, s1.tool, s1.device_id) == (
        T0,
        T0 + timedelta(minutes=30),
        1800.0,
        600.0,
        "ChatGPT",
        "dev-1",
    )
    assert await _count(db, AIDetection.__table__) == 1
    assert await _count(db, User.__table__, org_id="acme") == 2
    by_key = {(r.user_id, r.tool): r for r in hourly}
    assert by_key[("u1", "ChatGPT")].sessions_started == 1
    assert by_key[("u1", "ChatGPT")].sessions_ended == 1
    assert by_key[("u1", "ChatGPT")].ai_usage_s == 600.0
    assert by_key[("u1", "Claude")].detections == 1
    assert by_key[("u2", "ChatGPT")].sessions_started == 1


async def test_replaying_a_batch_changes_nothing_and_counts_duplicates(db: Database) -> None:
    await _org(db)
    ingestor = Ingestor(db)
    batch = [started("e1", "s1"), detected("e2"), ended("e3", "s1")]
    await ingestor.ingest("acme", "dev-1", batch, now=NOW)
    again = await ingestor.ingest("acme", "dev-1", batch, now=NOW)
    assert (again.accepted, again.duplicates, again.published, again.new_users) == (0, 3, [], [])
    assert await _count(db, AIDetection.__table__) == 1
    assert await _count(db, ProcessedEvent.__table__) == 3
    async with db.read() as conn:
        started_total = (
            await conn.execute(select(func.sum(UsageHourly.__table__.c.sessions_started)))
        ).scalar_one()
    assert started_total == 1


async def test_an_event_id_repeated_inside_one_batch_is_a_duplicate(db: Database) -> None:
    await _org(db)
    result = await Ingestor(db).ingest("acme", "dev-1", [detected("e1"), detected("e1")], now=NOW)
    assert (result.accepted, result.duplicates) == (1, 1)


async def test_event_ids_are_scoped_to_the_organization(db: Database) -> None:
    await _org(db, "a")
    await _org(db, "b")
    ingestor = Ingestor(db)
    ra = await ingestor.ingest("a", "dev", [started("e1", "s1")], now=NOW)
    rb = await ingestor.ingest("b", "dev", [started("e1", "s1", user="other")], now=NOW)
    assert ra.accepted == rb.accepted == 1
    assert await _count(db, AISession.__table__, org_id="a", user_id="u1") == 1
    assert await _count(db, AISession.__table__, org_id="b", user_id="other") == 1


async def test_an_end_before_its_start_derives_the_start_until_the_start_arrives(
    db: Database,
) -> None:
    await _org(db)
    ingestor = Ingestor(db)
    end_at = T0 + timedelta(minutes=30)
    await ingestor.ingest(
        "acme", "dev", [ended("e2", "s1", at=end_at, duration=600.0, ai=60.0)], now=NOW
    )
    async with db.read() as conn:
        row = (await conn.execute(select(AISession.__table__))).one()
    assert row.start_time == end_at - timedelta(seconds=600) and row.end_time == end_at
    await ingestor.ingest("acme", "dev", [started("e1", "s1", at=T0)], now=NOW)
    async with db.read() as conn:
        row = (await conn.execute(select(AISession.__table__))).one()
        hourly = (
            await conn.execute(
                select(UsageHourly.__table__).where(UsageHourly.__table__.c.sessions_started != 0)
            )
        ).all()
    assert (row.start_time, row.end_time, row.tool, row.ai_usage_s) == (T0, end_at, "ChatGPT", 60.0)
    assert sum(r.sessions_started for r in hourly) == 1


async def test_only_the_first_end_of_a_session_counts(db: Database) -> None:
    await _org(db)
    ingestor = Ingestor(db)
    await ingestor.ingest(
        "acme", "dev", [started("e1", "s1"), ended("e2", "s1", ai=100.0)], now=NOW
    )
    second = await ingestor.ingest("acme", "dev", [ended("e3", "s1", ai=999.0)], now=NOW)
    assert (second.accepted, second.published) == (1, [])
    async with db.read() as conn:
        row = (await conn.execute(select(AISession.__table__))).one()
        total_ai = (
            await conn.execute(select(func.sum(UsageHourly.__table__.c.ai_usage_s)))
        ).scalar_one()
    assert row.ai_usage_s == 100.0 and total_ai == 100.0


@pytest.mark.parametrize("status", ["canceled", None])
async def test_unknown_or_canceled_organizations_are_refused(db: Database, status) -> None:
    if status is not None:
        await _org(db, "acme", status)
    with pytest.raises(Forbidden):
        await Ingestor(db).ingest("acme", "dev", [detected("e1")], now=NOW)
    assert await _count(db, ProcessedEvent.__table__) == 0


async def test_past_due_organizations_still_ingest(db: Database) -> None:
    await _org(db, "acme", "past_due")
    result = await Ingestor(db).ingest("acme", "dev", [detected("e1")], now=NOW)
    assert result.accepted == 1


async def test_a_revoked_agent_is_refused_and_nothing_is_applied(db: Database) -> None:
    await _org(db)
    async with db.write() as conn:
        await AgentRepository().register(conn, "acme", "dev-9")
        await AgentRepository().revoke(conn, "acme", "dev-9")
    with pytest.raises(Unauthorized):
        await Ingestor(db).ingest("acme", "dev-9", [detected("e1")], now=NOW)
    assert await _count(db, ProcessedEvent.__table__) == 0
    assert await _count(db, AIDetection.__table__) == 0


async def test_in_transaction_hooks_see_the_result_and_can_veto(db: Database) -> None:
    await _org(db)
    seen = []

    def hook(conn, result):
        seen.append(result.accepted)
        raise RuntimeError("veto")

    with pytest.raises(RuntimeError):
        await Ingestor(db, hooks=[hook]).ingest("acme", "dev", [detected("e1")], now=NOW)
    assert seen == [1]
    assert await _count(db, ProcessedEvent.__table__) == 0


async def test_a_thousand_event_batch_is_applied_in_one_go(db: Database) -> None:
    await _org(db)
    events = []
    for i in range(250):
        sid = f"s{i}"
        events += [
            started(f"a{i}", sid, user=f"u{i % 20}"),
            detected(f"b{i}", user=f"u{i % 20}", sid=sid),
            detected(f"c{i}", user=f"u{i % 20}"),
            ended(f"d{i}", sid, user=f"u{i % 20}"),
        ]
    result = await Ingestor(db).ingest("acme", "dev", events, now=NOW)
    assert result.accepted == 1000
    assert await _count(db, AISession.__table__) == 250
    assert await _count(db, AIDetection.__table__) == 500


class _InterleavingIngestor(Ingestor):
    """Holds each batch between reading its sessions and writing them until the other batch
    has read too (or 0.3 s passed): the interleaving that loses updates without a lock.

    Only PostgreSQL can interleave: there ``_apply`` runs through ``run_sync`` on the event
    loop, and ``await_only`` lets the other transaction run meanwhile. On SQLite the batches
    are applied one after the other by the writer thread (the test then checks the merge).
    """

    def __init__(self, db):
        super().__init__(db)
        self.arrived = 0
        self.both = None

    def _load_sessions(self, conn, stmts, org_id, session_ids):
        rows = super()._load_sessions(conn, stmts, org_id, session_ids)
        if conn.dialect.name == "postgresql":
            await_only(self._rendezvous())
        return rows

    async def _rendezvous(self):
        import asyncio
        import contextlib

        if self.both is None:
            self.both = asyncio.Event()
        self.arrived += 1
        if self.arrived >= 2:
            self.both.set()
        # On timeout the other batch is blocked behind us (serialized): go on.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.both.wait(), 0.3)


async def test_concurrent_batches_touching_one_session_merge_without_double_counting(
    db: Database,
) -> None:
    """Start and end of one session in two batches applied at the same time."""
    import asyncio

    await _org(db)
    ingestor = _InterleavingIngestor(db)
    # Different agents and users: nothing but the session row is shared by the two batches.
    await asyncio.gather(
        ingestor.ingest("acme", "dev-a", [started("a1", "s1", user="u1")], now=NOW),
        ingestor.ingest("acme", "dev-b", [ended("b1", "s1", user="u2", ai=60.0)], now=NOW),
    )
    async with db.read() as conn:
        rows = (await conn.execute(select(AISession.__table__))).all()
        started_total = (
            await conn.execute(select(func.sum(UsageHourly.__table__.c.sessions_started)))
        ).scalar_one()
        ended_total = (
            await conn.execute(select(func.sum(UsageHourly.__table__.c.sessions_ended)))
        ).scalar_one()
    assert len(rows) == 1
    row = rows[0]
    assert (row.start_time, row.tool, row.ai_usage_s) == (T0, "ChatGPT", 60.0)
    assert (started_total, ended_total) == (1, 1)


async def test_a_detection_processed_after_its_session_ended_leaves_no_open_session(
    db: Database,
) -> None:
    from aiusage.metrics.tables import open_sessions

    await _org(db)
    ingestor = Ingestor(db)
    await ingestor.ingest("acme", "dev1", [started("e1", "s1"), ended("e2", "s1")], now=NOW)
    # Late, in its own batch, and in the batch that ends the session.
    await ingestor.ingest("acme", "dev1", [detected("e3", sid="s1")], now=NOW)
    await ingestor.ingest(
        "acme",
        "dev1",
        [started("e4", "s2"), ended("e5", "s2"), detected("e6", sid="s2")],
        now=NOW,
    )
    assert await _count(db, open_sessions) == 0


async def test_union_time_clips_detections_to_their_session_and_counts_overlaps_once(
    db: Database,
) -> None:
    from aiusage.metrics.tables import person_hour, tool_hour

    await _org(db)
    ingestor = Ingestor(db)
    # Session 09:15-09:45; two tools at once 09:18-09:20 (120 s of AI time, not 240); a 120 s
    # ChatGPT detection ending at 09:16 is clipped to the minute inside the session.
    await ingestor.ingest(
        "acme",
        "dev1",
        [
            detected("d1", tool="Claude", sid="s1"),  # before its session is known
            started("e1", "s1"),
            detected("d2", tool="ChatGPT", sid="s1"),
            detected("d3", tool="ChatGPT", at=T0 + timedelta(minutes=1), sid="s1"),
        ],
        now=NOW,
    )
    await ingestor.ingest("acme", "dev1", [ended("e2", "s1")], now=NOW)
    async with db.read() as conn:
        (person,) = (await conn.execute(select(person_hour))).all()
        tools = {r.tool: r.ai_s for r in await conn.execute(select(tool_hour))}
    assert person.ai_s == pytest.approx(180.0) and person.session_s == pytest.approx(1800.0)
    assert tools == {"Claude": pytest.approx(120.0), "ChatGPT": pytest.approx(180.0)}
