"""The "people" export (docs/metrics.md §9): one row per person over [from, to), from the same
rollups and code as the dashboard, checked against the independent oracle of the metrics tests
on SQLite and PostgreSQL, in CSV and JSONL, end to end through the REST API."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update
from tests.aiusage.api.p2b_support import iso, post_events
from tests.aiusage.metrics.breakdowns_oracle import World, parse, people_truth
from tests.aiusage.metrics.random_streams import make_stream

from aiusage.store.tables import User

APPROX = {"abs": 1e-3}


async def export(p, body: dict) -> tuple[dict, str]:
    admin = p.auth("mgr", "acme", "Admin")
    r = await p.client.post("/api/exports", json=body, headers=admin)
    assert r.status_code == 202, r.text
    await p.exports.wait_idle()
    job = (await p.client.get(f"/api/exports/{r.json()['id']}", headers=admin)).json()
    assert job["status"] == "done", job
    download = await p.client.get(job["downloadUrl"], headers=admin)
    assert download.status_code == 200
    return job, download.text


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
async def test_people_export_matches_the_oracle(platform, fmt):
    p = platform
    now = p.clock.now
    stream = make_stream(11, now, users=6, days=9)
    for agent, events in stream.batches:
        await post_events(p, "acme", events, agent=agent)
    async with p.db.write() as conn:
        await conn.execute(
            update(User.__table__)
            .where(User.__table__.c.org_id == "acme", User.__table__.c.id == "p01")
            .values(team="Support")
        )
    start = datetime(now.year, now.month, now.day, tzinfo=UTC) - timedelta(days=6)
    end = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
    body = {"from": iso(start), "to": iso(end), "format": fmt, "kind": "people"}
    job, text = await export(p, body)
    assert job["kind"] == "people"

    if fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(text)))
        assert list(rows[0]) == [
            "userId",
            "email",
            "team",
            "aiSeconds",
            "sessionSeconds",
            "sessions",
            "detections",
            "engaged",
            "lastActivity",
        ]
        people = {
            r["userId"]: {
                **r,
                "aiSeconds": float(r["aiSeconds"]),
                "sessionSeconds": float(r["sessionSeconds"]),
                "sessions": int(r["sessions"]),
                "detections": int(r["detections"]),
                "engaged": {"true": True, "false": False}[r["engaged"]],
                "team": r["team"] or None,
                "lastActivity": r["lastActivity"] or None,
            }
            for r in rows
        }
    else:
        people = {r["userId"]: r for r in map(json.loads, text.splitlines())}
    assert job["rowCount"] == len(people)

    world = World.replay(stream.batches)
    days = [start + timedelta(days=i) for i in range(7)]
    truth = people_truth(world, now, days, end)
    reporting = {e["userId"] for _, events in stream.batches for e in events}
    assert set(people) == reporting
    for user, row in people.items():
        t = truth[user]
        assert row["aiSeconds"] == pytest.approx(t.ai, **APPROX), user
        assert row["sessionSeconds"] == pytest.approx(t.session, **APPROX), user
        assert (row["sessions"], row["detections"]) == (t.sessions, t.detections), user
        assert row["engaged"] == t.engaged, user
        assert row["team"] == ("Support" if user == "p01" else None)
        assert parse(row["lastActivity"]) == t.last, user
    ai = [people[u]["aiSeconds"] for u in people]
    assert ai == sorted(ai, reverse=True)


async def test_people_export_needs_whole_utc_hours_and_a_known_kind(platform):
    p = platform
    admin = p.auth("mgr", "acme", "Admin")
    hour = p.clock.now.replace(minute=0, second=0, microsecond=0)
    bad = [
        {"from": iso(hour - timedelta(minutes=90)), "to": iso(hour), "kind": "people"},
        {"from": iso(hour - timedelta(hours=2)), "to": iso(hour), "kind": "teams"},
        {"from": iso(hour - timedelta(days=400)), "to": iso(hour), "kind": "people"},
    ]
    for body in bad:
        r = await p.client.post("/api/exports", json=body, headers=admin)
        assert r.status_code == 422, (body, r.text)
    # The same partial-hour range is fine for raw rows, the default kind.
    r = await p.client.post("/api/exports", json={**bad[0], "kind": "events"}, headers=admin)
    assert r.status_code == 202 and r.json()["kind"] == "events"
    await p.exports.wait_idle()


async def test_people_export_file_is_named_after_its_kind(platform):
    p = platform
    hour = p.clock.now.replace(minute=0, second=0, microsecond=0)
    body = {"from": iso(hour - timedelta(hours=5)), "to": iso(hour), "kind": "people"}
    job, text = await export(p, body)
    assert text.splitlines() == [
        "userId,email,team,aiSeconds,sessionSeconds,sessions,detections,engaged,lastActivity"
    ]
    url = job["downloadUrl"]
    r = await p.client.get(url, headers=p.auth("mgr", "acme", "Admin"))
    assert f"aiusage-people-{job['id']}.csv" in r.headers["content-disposition"]


async def test_the_kind_is_in_the_openapi_schema(platform):
    schema = (await platform.client.get("/openapi.json")).json()
    kind = schema["components"]["schemas"]["ExportRequest"]["properties"]["kind"]
    assert kind["enum"] == ["events", "people"] and kind["default"] == "events"
    assert "people" in kind["description"]
