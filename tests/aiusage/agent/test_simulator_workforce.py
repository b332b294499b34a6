"""The demo's workforce through the real ingestion API: one token per device, history first."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from tests.aiusage.api.p2b_support import open_platform

from aiusage.agent.simulator import simulate_workforce
from aiusage.agent.workforce import Workforce, demo_people
from aiusage.demo import DEMO_EMPLOYEES, DEMO_ORG, HISTORY_DAYS, demo_workforce, seed_demo
from aiusage.store.repositories import AgentRepository, UserRepository
from aiusage.store.tables import AIDetection, AISession


@pytest.fixture
async def platform(tmp_path):
    p = await open_platform(tmp_path, orgs=())
    try:
        yield p
    finally:
        await p.close()


async def test_seed_gives_every_employee_a_team_or_none_and_an_enrolled_device(platform):
    await seed_demo(platform.db)
    await seed_demo(platform.db)  # idempotent
    async with platform.db.read() as conn:
        users = {u.id: u for u in await UserRepository().list(conn, DEMO_ORG)}
        agents = await AgentRepository().list(conn, DEMO_ORG)
    people = demo_people(DEMO_EMPLOYEES, platform.clock())
    for person in people:
        assert users[person.user_id].team == person.team
        assert users[person.user_id].email == person.email
    owners = {a.user_id for a in agents if a.revoked_at is None and a.user_id is not None}
    assert owners == {p.user_id for p in people}
    assert sum(1 for p in people if p.team is None) >= 1


async def test_workforce_posts_history_per_device_then_heartbeats(platform):
    p = platform
    await seed_demo(p.db)
    first = await demo_workforce(p.db, now=p.clock())
    assert first.start == p.clock() - timedelta(days=HISTORY_DAYS)
    people = demo_people(10, p.clock())
    workforce = Workforce(people, start=p.clock() - timedelta(days=1), anchor=p.clock(), seed=2)
    tokens = {x.device_id: p.token(x.device_id, DEMO_ORG, "Agent") for x in people}
    mono = {"t": 0.0}

    async def fake_sleep(seconds: float) -> None:
        mono["t"] += seconds
        p.clock.advance(seconds=seconds)

    stats = await simulate_workforce(
        "http://test",
        tokens,
        org=DEMO_ORG,
        workforce=workforce,
        duration=600,
        interval=60,
        heartbeat=300,
        client=p.client,
        clock=lambda: mono["t"],
        wall_clock=p.clock,
        sleep=fake_sleep,
    )
    await p.ingestion.drain()
    assert stats.failed_batches == 0, stats.errors
    assert stats.accepted == stats.events_sent > 100
    device_of = {x.user_id: x.device_id for x in people}
    async with p.db.read() as conn:
        sessions = (await conn.execute(select(AISession.user_id, AISession.device_id))).all()
        detections = (await conn.execute(select(AIDetection.user_id, AIDetection.device_id))).all()
        agents = {a.id: a for a in await AgentRepository().list(conn, DEMO_ORG)}
    assert sessions and detections
    assert all(device_of[user] == device for user, device in [*sessions, *detections])
    # Devices of people who still work check in even without events; a lapsed one does not.
    for person in people:
        seen = agents[person.device_id].last_seen_at
        assert (seen is not None) == (person.habit != "lapsed"), person
    later = await demo_workforce(p.db, now=p.clock())
    assert later.start == p.clock()  # a restart does not post the history again
