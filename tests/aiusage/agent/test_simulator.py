"""The traffic simulator: realistic sessions through the real ingestion API."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from tests.aiusage.api.p2b_support import open_platform

from aiusage.agent.simulator import UNAPPROVED_TOOLS, TrafficModel, simulate, union_seconds
from aiusage.cli import main
from aiusage.store.tables import AIDetection, AISession

T0 = datetime(2026, 3, 10, 14, 25, tzinfo=UTC)


def test_traffic_model_produces_consistent_sessions():
    model = TrafficModel(5, seed=7, unapproved_share=0.2, mean_session_s=30)
    now = T0
    events = []
    for _ in range(200):
        events += model.step(now, 3)
        now += timedelta(seconds=1)
    events += model.end_all(now)
    assert model.open_sessions == 0
    started = {e["sessionId"]: e for e in events if e["type"] == "SessionStarted"}
    ended = [e for e in events if e["type"] == "SessionEnded"]
    assert {e["sessionId"] for e in ended} == set(started)  # every session ends exactly once
    assert len(ended) == len(started)
    for e in ended:
        assert 0 <= e["aiUsageTime"] <= e["duration"]
    detections = [e for e in events if e["type"] == "AIDetected"]
    assert all(d["sessionId"] in started for d in detections)
    assert any(d["tool"] in UNAPPROVED_TOOLS for d in detections)
    assert len({e["eventId"] for e in events}) == len(events)
    # Seeded: the same run again gives the same events.
    again = TrafficModel(5, seed=7, unapproved_share=0.2, mean_session_s=30)
    assert again.step(T0, 3) == TrafficModel(
        5, seed=7, unapproved_share=0.2, mean_session_s=30
    ).step(T0, 3)


def test_traffic_model_detections_are_physically_possible_at_any_rate():
    # 30 events per second for 5 users: uses must shrink, not overlap or start before a session.
    model = TrafficModel(5, seed=11, mean_session_s=20)
    now, events = T0, []
    for _ in range(120):
        events += model.step(now, 30)
        now += timedelta(seconds=1)
    events += model.end_all(now)
    starts = {e["sessionId"]: e["occurredAt"] for e in events if e["type"] == "SessionStarted"}
    last_end: dict[tuple[str, str], datetime] = {}
    for e in (e for e in events if e["type"] == "AIDetected"):
        end = datetime.fromisoformat(e["occurredAt"])
        begin = end - timedelta(seconds=e["duration"])
        assert begin >= datetime.fromisoformat(starts[e["sessionId"]])
        key = (e["sessionId"], e["tool"])
        assert begin >= last_end.get(key, begin)  # one tool is not used twice at once
        last_end[key] = end
    for e in (e for e in events if e["type"] == "SessionEnded"):
        assert 0 <= e["aiUsageTime"] <= e["duration"]


def test_union_seconds_counts_overlaps_once():
    t = T0
    spans = [(t, t + timedelta(seconds=10)), (t + timedelta(seconds=5), t + timedelta(seconds=20))]
    spans.append((t + timedelta(seconds=30), t + timedelta(seconds=31)))
    assert union_seconds(spans) == 21.0
    assert union_seconds([]) == 0.0


@pytest.fixture
async def platform(tmp_path):
    p = await open_platform(tmp_path)
    try:
        yield p
    finally:
        await p.close()


async def test_simulation_posts_through_the_api_for_the_duration_and_ends_its_sessions(platform):
    p = platform
    mono = {"t": 0.0}
    sleeps: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        sleeps.append(seconds)
        mono["t"] += seconds
        p.clock.advance(seconds=seconds)

    stats = await simulate(
        "http://test",
        p.token("sim", "acme", "Agent"),
        org="acme",
        users=4,
        rate=25,
        duration=10,
        seed=1,
        unapproved_share=0.3,
        client=p.client,
        clock=lambda: mono["t"],
        wall_clock=p.clock,
        sleep=fake_sleep,
    )
    assert stats.failed_batches == 0, stats.errors
    await p.ingestion.drain()
    assert len(sleeps) == 10  # bounded by the duration
    assert stats.accepted == stats.events_sent >= 250
    async with p.db.read() as conn:
        open_sessions = (
            await conn.execute(
                select(func.count()).select_from(AISession).where(AISession.end_time.is_(None))
            )
        ).scalar_one()
        detections = (
            await conn.execute(select(func.count()).select_from(AIDetection))
        ).scalar_one()
    assert open_sessions == 0 and detections > 100
    snap = await p.dashboard.snapshot("acme")
    assert snap["metrics"]["sessionsToday"] > 0 and snap["metrics"]["unapprovedDetectionsToday"] > 0
    assert snap["metrics"]["activeSessions"] == 0
    assert [s.args[0]["type"] for s in p.hub.of("Alert")].count("UnapprovedTool") >= 1


async def test_simulation_counts_refused_batches_instead_of_crashing(platform):
    stats = await simulate(
        "http://test",
        platform.token("sim", "acme", "Employee"),  # not an Agent token: 403
        org="acme",
        users=2,
        rate=5,
        duration=1,
        client=platform.client,
        clock=iter([0.0, 0.0, 2.0, 2.0]).__next__,
        wall_clock=platform.clock,
        sleep=lambda s: _noop(),
    )
    assert stats.failed_batches >= 1 and stats.accepted == 0
    assert "HTTP 403" in stats.errors[0]


async def _noop() -> None:
    return None


def test_cli_mints_an_agent_token_from_the_data_dir_and_prints_a_summary(tmp_path, capsys):
    code = main(
        [
            "agent",
            "simulate",
            "--server",
            "http://127.0.0.1:9",
            "--org",
            "acme",
            "--users",
            "3",
            "--rate",
            "5",
            "--duration",
            "0",
            "--data-dir",
            str(tmp_path),
        ]
    )
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["eventsSent"] == 0 and summary["failedBatches"] == 0
    assert (tmp_path / "jwt-signing-key.pem").exists()


def test_cli_rejects_bad_arguments(tmp_path, capsys):
    assert (
        main(
            [
                "agent",
                "simulate",
                "--server",
                "http://x",
                "--org",
                "a",
                "--rate",
                "0",
                "--token",
                "t",
            ]
        )
        == 2
    )
    with pytest.raises(SystemExit):
        main(
            [
                "agent",
                "simulate",
                "--server",
                "http://x",
                "--org",
                "a",
                "--token",
                "t",
                "--data-dir",
                "d",
            ]
        )


@pytest.mark.integration
async def test_simulation_over_real_http_to_a_server_on_loopback(platform):
    import asyncio

    import uvicorn

    from aiusage.agent.simulator import mint_agent_token

    p = platform
    config = uvicorn.Config(p.app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(500):  # bounded wait for the listening socket
            if server.started:
                break
            await asyncio.sleep(0.01)
        assert server.started
        port = server.servers[0].sockets[0].getsockname()[1]
        token = mint_agent_token(p.data_dir.parent / "keys", "acme")
        stats = await simulate(
            f"http://127.0.0.1:{port}",
            token,
            org="acme",
            users=3,
            rate=40,
            duration=0.5,
            batch_interval=0.1,
            wall_clock=p.clock,
        )
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
    assert stats.failed_batches == 0, stats.errors
    assert stats.accepted == stats.events_sent > 0
