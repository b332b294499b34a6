"""RollupBatch: deltas of raw-row changes, written with additive upserts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from aiusage.metrics.rollup import DetectionFacts, RollupBatch, SessionFacts, hour_of, usage_hourly
from aiusage.metrics.tables import open_sessions, user_hour
from aiusage.store.repositories import OrganizationRepository

T = datetime(2026, 3, 10, 9, 40, tzinfo=UTC)


def facts(start, end=None, ai=None, tool=None) -> SessionFacts:
    return SessionFacts("acme", "s1", "alice", start, end, None if end is None else 600.0, ai, tool)


async def rows(db, table):
    async with db.read() as conn:
        return [dict(r) for r in (await conn.execute(select(table))).mappings()]


async def apply(db, *steps):
    batch = RollupBatch()
    for step in steps:
        step(batch)
    await db.run_write(batch.flush)
    return batch


@pytest.fixture
async def store(db):
    async with db.write() as conn:
        await OrganizationRepository().create(conn, "acme", "Acme")
    return db


async def test_a_corrected_start_moves_the_session_to_its_new_hour_and_retracts_the_old(store):
    synthetic = facts(T - timedelta(hours=2), T, ai=100.0)  # end known first
    await apply(store, lambda b: b.session_changed(None, synthetic))
    real = facts(T - timedelta(hours=3), T, ai=100.0)
    await apply(store, lambda b: b.session_changed(synthetic, real))
    by_hour = {r["hour"]: r for r in await rows(store, usage_hourly)}
    assert by_hour[hour_of(T - timedelta(hours=2))]["sessions_started"] == 0
    assert by_hour[hour_of(T - timedelta(hours=3))]["sessions_started"] == 1
    assert by_hour[hour_of(T)]["ai_usage_s"] == pytest.approx(100.0)  # counted once, at end
    activity = {r["hour"]: r["events"] for r in await rows(store, user_hour)}
    assert activity[hour_of(T - timedelta(hours=2))] == 0
    assert activity[hour_of(T - timedelta(hours=3))] == 1 and activity[hour_of(T)] == 1
    assert await rows(store, open_sessions) == []  # ended: never open


async def test_open_sessions_track_last_activity_and_leave_when_the_session_ends(store):
    detect = DetectionFacts("acme", "alice", "s1", "Claude", 5.0, T + timedelta(minutes=30))
    # Detection first (out of order): the row exists but does not count until the start.
    await apply(store, lambda b: b.detection_added(detect))
    (row,) = await rows(store, open_sessions)
    assert row["start_time"] is None and row["last_activity"] == detect.detected_at.timestamp()
    await apply(store, lambda b: b.session_changed(None, facts(T)))
    (row,) = await rows(store, open_sessions)
    assert row["start_time"] == T.timestamp()
    assert row["last_activity"] == detect.detected_at.timestamp()  # the later of the two
    await apply(
        store, lambda b: b.session_changed(facts(T), facts(T, T + timedelta(hours=1), 60.0))
    )
    assert await rows(store, open_sessions) == []


async def test_detections_without_a_session_count_as_ai_usage_and_by_tool(store):
    batch = await apply(
        store,
        lambda b: b.detection_added(DetectionFacts("acme", "bob", None, "DeepSeek", 7.5, T)),
        lambda b: b.detection_added(DetectionFacts("acme", "bob", "s9", "DeepSeek", 2.5, T)),
    )
    (row,) = await rows(store, usage_hourly)
    assert row["tool"] == "DeepSeek" and row["detections"] == 2
    assert row["detection_duration_s"] == pytest.approx(10.0)
    assert row["ai_usage_s"] == pytest.approx(7.5)  # the session's aiUsageTime covers the other
    assert batch.orgs == {"acme"} and len(batch.detections) == 2


def test_naive_datetimes_are_refused():
    with pytest.raises(ValueError):
        hour_of(datetime(2026, 3, 10, 9))
