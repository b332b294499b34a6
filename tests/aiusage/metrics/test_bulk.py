"""BulkWrite: the SQLite fast path writes exactly what the SQLAlchemy statement writes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from sqlalchemy import insert, select, text

from aiusage.metrics.bulk import BulkWrite
from aiusage.metrics.tables import tool_seen
from aiusage.store.repositories import OrganizationRepository, ai_sessions

T = datetime(2026, 3, 10, 9, 40, 5, 123456, tzinfo=UTC)


async def test_fast_rows_read_back_like_rows_written_by_sqlalchemy(sqlite_db):
    db = sqlite_db
    async with db.write() as conn:
        await OrganizationRepository().create(conn, "acme", "Acme")
    columns = ("user_id", "device_id", "tool", "start_time", "end_time", "duration_s", "ai_usage_s")
    bulk = BulkWrite("sqlite", ai_sessions, dict.fromkeys(columns, "set"))
    paris = timezone(timedelta(hours=1))
    row = ("u1", "dev", None, T.astimezone(paris), None, None, None)

    def write(conn):
        bulk.execute(conn, [("acme", "fast", *row)])
        conn.execute(
            insert(ai_sessions).values(org_id="acme", id="core", **dict(zip(columns, row)))
        )

    await db.run_write(write)
    async with db.read() as conn:
        stored = {
            r.id: tuple(r)[1:]
            for r in await conn.execute(text("SELECT id, start_time, end_time FROM ai_sessions"))
        }
        typed = {r.id: r.start_time for r in await conn.execute(select(ai_sessions))}
    assert stored["fast"] == stored["core"]
    assert typed["fast"] == typed["core"] == T


async def test_conflicts_keep_the_min_the_max_and_the_sum(sqlite_db):
    db = sqlite_db
    async with db.write() as conn:
        await OrganizationRepository().create(conn, "acme", "Acme")
    seen = BulkWrite(
        "sqlite", tool_seen, {"first_seen": "min", "last_seen": "max", "detections": "add"}
    )

    def write(conn):
        seen.execute(conn, [("acme", "Claude", "u1", T, T, 1)])
        seen.execute(conn, [("acme", "Claude", "u1", T - timedelta(days=1), T, 2)])
        seen.execute(conn, [("acme", "Claude", "u1", T, T + timedelta(hours=1), 3)])

    await db.run_write(write)
    async with db.read() as conn:
        (r,) = (await conn.execute(select(tool_seen))).all()
    assert (r.first_seen, r.last_seen, r.detections) == (
        T - timedelta(days=1),
        T + timedelta(hours=1),
        6,
    )
