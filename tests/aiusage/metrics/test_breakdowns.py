"""Breakdowns (docs/metrics.md §10, §11) against an independent oracle, on SQLite and PostgreSQL.

Random event streams go through the real ingestion path (shuffled batches, repeats, open
sessions, midnight crossings, detections outside their session); every breakdown field is
compared with :mod:`tests.aiusage.metrics.breakdowns_oracle`, which replays the raw events in
plain Python.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update
from tests.aiusage.metrics.breakdowns_oracle import (
    World,
    devices_truth,
    local_day_starts,
    parse,
    people_truth,
    tools_truth,
)
from tests.aiusage.metrics.random_streams import make_stream

from aiusage.domain.events import parse_batch
from aiusage.errors import ValidationError
from aiusage.metrics.breakdowns import compute_breakdowns
from aiusage.metrics.service import DashboardService
from aiusage.metrics.windows import Windows, is_approved, parse_timezone
from aiusage.store.ingest import Ingestor
from aiusage.store.repositories import AgentRepository, OrganizationRepository, UserRepository
from aiusage.store.tables import Organization, User

NOW = datetime(2026, 3, 10, 14, 25, 30, tzinfo=UTC)
ORG = "acme"
APPROVED = ["ChatGPT", "copilot"]
TEAMS = {"p00": "Sales", "p01": "Sales", "p02": "R&D", "p04": "R&D"}
APPROX = {"abs": 1e-3}


async def load(db, seed: int, basis: str) -> tuple[World, dict]:
    """Ingest a random stream into ``acme`` (and noise into another org); set up ``basis``."""
    stream = make_stream(seed, NOW)
    async with db.write() as conn:
        orgs = OrganizationRepository()
        await orgs.create(conn, ORG, "Acme", approved_tools=APPROVED, now=NOW - timedelta(days=99))
        await orgs.create(conn, "other", "Other", now=NOW)
        # A dashboard account that never used an agent, and a person only enrolled.
        await UserRepository().create(conn, ORG, email="boss@acme.test", role="Admin", now=NOW)
        await UserRepository().create(conn, ORG, email=None, role="Employee", user_id="newbie")
        if basis == "enrolledDevices":
            for user in [*stream.users[:4], "newbie"]:
                await AgentRepository().register(
                    conn, ORG, f"dev-{user}", user_id=user, name=f"{user}'s laptop", now=NOW
                )
    ingestor = Ingestor(db)
    for agent, events in stream.batches:
        await ingestor.ingest(
            ORG, agent, parse_batch({"events": events}, max_events=1000, now=NOW), now=NOW
        )
    noise = stream.batches[0][1]
    await ingestor.ingest(
        "other", "dev-x", parse_batch({"events": noise}, max_events=1000, now=NOW), now=NOW
    )
    async with db.write() as conn:
        for user, team in TEAMS.items():
            await conn.execute(
                update(User.__table__)
                .where(User.__table__.c.org_id == ORG, User.__table__.c.id == user)
                .values(team=team)
            )
        await UserRepository().set_active(conn, ORG, stream.users[-1], False)
        if basis == "seats":
            await conn.execute(
                update(Organization.__table__)
                .where(Organization.__table__.c.id == ORG)
                .values(seats=5)
            )
        if basis == "enrolledDevices":
            await AgentRepository().revoke(conn, ORG, f"dev-{stream.users[3]}", now=NOW)
    info = {
        "users": stream.users,
        "deactivated": stream.users[-1],
        "enrolled": set(stream.users[:3]) | {"newbie"},
        "reported": {e["userId"] for _, events in stream.batches for e in events},
    }
    return World.replay(stream.batches), info


def expected(world: World, info: dict, basis: str, zone: str, days: int) -> dict:
    windows = Windows.at(NOW, parse_timezone(zone))
    day_starts = local_day_starts(NOW, zone, days)
    truth = people_truth(world, NOW, day_starts, windows.end)
    reported = info["reported"]
    members = {u for u in [*info["users"], "newbie"] if u != info["deactivated"]}
    if basis == "seats":
        count, named = 5, None
        watched = members & reported
    elif basis == "enrolledDevices":
        count, named = len(info["enrolled"]), info["enrolled"]
        watched = info["enrolled"]
    else:
        named = {u for u in members if truth[u].active}
        count = len(named)
        watched = members & reported
    pool = (members if named is None else named) & {u for u, p in truth.items() if p.ai > 0}
    listed = set(watched) | {
        u
        for u, p in truth.items()
        if p.active or p.ai > 0 or p.session > 0 or p.sessions or p.detections
    }
    cutoff = NOW - timedelta(days=7)
    return {
        "windows": windows,
        "truth": truth,
        "count": count,
        "numerator": len(pool),
        "listed": listed,
        "inactive": {u for u in watched if truth[u].last is None or truth[u].last < cutoff},
        "start": day_starts[0],
    }


CASES = [
    (1, "reportingPeople", "UTC", 30),
    (2, "seats", "America/Los_Angeles", 7),
    (3, "enrolledDevices", "Europe/Paris", 90),
    (4, "reportingPeople", "Asia/Tokyo", 7),
]


@pytest.mark.parametrize(("seed", "basis", "zone", "days"), CASES)
async def test_breakdowns_match_the_oracle(db, seed, basis, zone, days):
    world, info = await load(db, seed, basis)
    want = expected(world, info, basis, zone, days)
    windows = want["windows"]
    async with db.read() as conn:
        got = await compute_breakdowns(conn, ORG, windows, NOW, period_days=days)
    truth = want["truth"]

    assert got["monitoredBasis"] == basis
    assert got["monitoredPeople"] == want["count"]
    assert got["adoptionNumerator"] == want["numerator"]
    rate = min(1.0, want["numerator"] / want["count"]) if want["count"] else None
    assert got["adoptionRate"] == (pytest.approx(rate) if rate is not None else None)

    people = {p["userId"]: p for p in got["people"]}
    assert set(people) == want["listed"]
    for user, p in people.items():
        t = truth[user]
        assert p["aiSeconds"] == pytest.approx(t.ai, **APPROX), user
        assert p["sessionSeconds"] == pytest.approx(t.session, **APPROX), user
        assert p["aiSeconds"] <= p["sessionSeconds"] + 1e-6, user
        assert (p["sessions"], p["detections"]) == (t.sessions, t.detections), user
        assert p["engaged"] == t.engaged, user
        assert p["team"] == TEAMS.get(user)
        assert (parse(p["lastActivity"]) if p["lastActivity"] else None) == t.last, user
    ai = [p["aiSeconds"] for p in got["people"]]
    assert ai == sorted(ai, reverse=True)

    users = [t for u, t in truth.items() if u in want["listed"] and t.ai > 0]
    engaged = sum(1 for t in users if t.engaged)
    assert (got["engagedUsers"], got["casualUsers"]) == (engaged, len(users) - engaged)
    assert got["engagement"] == {"engagedMinSeconds": 3600.0, "engagedMinDays": 3}

    quiet = [q["userId"] for q in got["inactivePeople"]]
    assert set(quiet) == want["inactive"] and got["inactiveCount"] == len(quiet)
    lasts = [truth[u].last for u in quiet]
    never = [u for u in quiet if truth[u].last is None]
    assert quiet[: len(never)] == never, "never-active people come first"
    assert lasts[len(never) :] == sorted(lasts[len(never) :])

    teams = {t["team"]: t for t in got["byTeam"]}
    for team in {TEAMS.get(u) for u in want["listed"]}:
        members = [u for u in want["listed"] if TEAMS.get(u) == team]
        row = teams[team]
        assert row["people"] == len(members)
        assert row["aiSeconds"] == pytest.approx(sum(truth[u].ai for u in members), **APPROX)
        assert row["sessionSeconds"] == pytest.approx(
            sum(truth[u].session for u in members), **APPROX
        )
        assert row["activePeople"] == sum(
            1 for u in members if truth[u].active or truth[u].session > 0 or truth[u].ai > 0
        )
    assert set(teams) == {TEAMS.get(u) for u in want["listed"]}

    devices = devices_truth(world, NOW, want["start"], windows.end)
    got_devices = {d["deviceId"]: d for d in got["byDevice"]}
    assert set(got_devices) == set(devices)
    for device, d in got_devices.items():
        assert d["aiSeconds"] == pytest.approx(devices[device]["aiSeconds"], **APPROX)
        assert d["sessions"] == devices[device]["sessions"]
        if basis == "enrolledDevices" and device in {f"dev-{u}" for u in info["enrolled"]}:
            assert d["userId"] == device.removeprefix("dev-")
            assert d["name"] == f"{d['userId']}'s laptop"
            assert d["lastSeen"] is not None

    tools = tools_truth(world, NOW, want["start"], windows.end)
    shadow = {t["tool"]: t for t in got["shadowAi"]["tools"]}
    assert set(shadow) == {t for t in tools if not is_approved(t, APPROVED)}
    week = windows.week_start
    for name, t in shadow.items():
        truth_tool = tools[name]
        assert t["people"] == len(truth_tool["people"]), name
        assert t["peopleAllTime"] == len(truth_tool["ever"]), name
        assert t["detections"] == truth_tool["detections"], name
        assert t["aiSeconds"] == pytest.approx(truth_tool["aiSeconds"], **APPROX), name
        assert parse(t["firstSeen"]) == truth_tool["first"], name
        assert parse(t["lastSeen"]) == truth_tool["last"], name
        assert t["newThisWeek"] == (truth_tool["first"] >= week), name
    assert set(got["shadowAi"]["newThisWeek"]) == {n for n, t in shadow.items() if t["newThisWeek"]}


async def test_adoption_is_null_without_monitored_people_and_period_is_checked(db):
    async with db.write() as conn:
        await OrganizationRepository().create(conn, ORG, "Acme", now=NOW)
    windows = Windows.at(NOW)
    async with db.read() as conn:
        got = await compute_breakdowns(conn, ORG, windows, NOW, period_days=30)
        with pytest.raises(ValidationError):
            await compute_breakdowns(conn, ORG, windows, NOW, period_days=14)
    assert got["monitoredBasis"] == "reportingPeople"
    assert (got["monitoredPeople"], got["adoptionRate"], got["adoptionNumerator"]) == (0, None, 0)
    assert got["people"] == [] and got["inactivePeople"] == [] and got["byTeam"] == []
    assert got["shadowAi"] == {"tools": [], "newThisWeek": []}


@pytest.mark.parametrize(("seed", "basis", "zone", "days"), CASES[:2])
async def test_breakdowns_add_up_to_the_snapshot_totals(db, seed, basis, zone, days):
    """The dashboard's lists and tiles agree: people and teams sum to the period totals."""
    await load(db, seed, basis)
    snap = await DashboardService(db, clock=lambda: NOW).snapshot(ORG, tz=zone, period=f"{days}d")
    m = snap["metrics"]
    assert len(m["people"]) < 500  # uncapped here, so the sums below cover everyone
    for field, total in (
        ("aiSeconds", "aiSecondsPeriod"),
        ("sessionSeconds", "sessionSecondsPeriod"),
    ):
        assert sum(p[field] for p in m["people"]) == pytest.approx(m[total], abs=1e-2), field
        assert sum(t[field] for t in m["byTeam"]) == pytest.approx(m[total], abs=1e-2), field
    ai_users = sum(1 for p in m["people"] if p["aiSeconds"] > 0)
    assert ai_users == m["aiUsersPeriod"] == m["engagedUsers"] + m["casualUsers"]
    assert sum(t["activePeople"] for t in m["byTeam"]) == m["activeUsersPeriod"]
    top = [(u["userId"], u["aiSeconds"]) for u in m["usageByUser"]]
    assert top == [(p["userId"], p["aiSeconds"]) for p in m["people"][: len(top)]]
