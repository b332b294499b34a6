"""Upgrading a store with history: migration 0003 removes orphan open-session rows and builds
the union-time rollups from the raw rows, equal to what ingestion maintains incrementally."""

from __future__ import annotations

from alembic import command
from sqlalchemy import insert, select

from aiusage.metrics.intervals import union
from aiusage.metrics.tables import (
    cover,
    device_hour,
    open_sessions,
    person_hour,
    person_seen,
    tool_hour,
    tool_seen,
)
from aiusage.store.migrate import alembic_config

from .test_kpi_correctness import NOW, ORG, check_snapshot, load_stream

HOUR_TABLES = (person_hour, tool_hour, device_hour)


async def rollups(db) -> dict:
    found: dict = {}
    async with db.read() as conn:
        for table in (*HOUR_TABLES, tool_seen, person_seen):
            pk = [c.name for c in table.primary_key.columns]
            rows = {}
            for r in (await conn.execute(select(table))).mappings():
                values = {k: v for k, v in r.items() if k not in pk}
                # Incremental deltas may leave float residue where a rebuild writes no row.
                if table in HOUR_TABLES and all(abs(v) < 1e-6 for v in values.values()):
                    continue
                rows[tuple(r[k] for k in pk)] = {
                    k: round(v, 6) if isinstance(v, float) else v for k, v in values.items()
                }
            found[table.name] = rows
        pieces: dict = {}
        for r in await conn.execute(select(cover)):
            pieces.setdefault((r.org_id, r.user_id, r.dim), []).append((r.start_s, r.end_s))
        found["metrics_cover"] = {k: union(v) for k, v in pieces.items()}
    return found


async def test_the_upgrade_rebuilds_the_rollups_and_drops_orphan_open_sessions(db):
    await load_stream(db)
    incremental = await rollups(db)
    assert incremental["metrics_person_hour"] and incremental["metrics_cover"]

    def downgrade(conn):
        command.downgrade(alembic_config(conn), "0002")

    def upgrade(conn):
        command.upgrade(alembic_config(conn), "head")

    async with db.write() as conn:
        await conn.run_sync(downgrade)
        # What a detection processed after its session (s-old2, ended) left behind before.
        await conn.execute(
            insert(open_sessions).values(
                org_id=ORG, session_id="s-old2", user_id=None, start_time=None, last_activity=1.0
            )
        )
        await conn.run_sync(upgrade)
    rebuilt = await rollups(db)
    assert rebuilt == incremental
    async with db.read() as conn:
        ids = {r.session_id for r in await conn.execute(select(open_sessions))}
    assert "s-old2" not in ids
    await check_snapshot(db, NOW, None)
