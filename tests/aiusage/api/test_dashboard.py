"""GET /api/dashboard: same structure as DashboardUpdate, tenant-scoped."""

from __future__ import annotations

from datetime import timedelta

import pytest
from tests.aiusage.api.p2b_support import iso, open_platform, post_events


@pytest.fixture
async def platform(tmp_path):
    p = await open_platform(tmp_path)
    try:
        yield p
    finally:
        await p.close()


def session_events(p, user: str, sid: str, minutes_ago: int, tool: str = "ChatGPT"):
    start = p.clock.now - timedelta(minutes=minutes_ago)
    return [
        {
            "eventId": f"{sid}-s",
            "type": "SessionStarted",
            "occurredAt": iso(start),
            "userId": user,
            "sessionId": sid,
            "startTime": iso(start),
        },
        {
            "eventId": f"{sid}-d",
            "type": "AIDetected",
            "occurredAt": iso(start),
            "userId": user,
            "sessionId": sid,
            "tool": tool,
            "duration": 30,
        },
    ]


async def test_dashboard_returns_metrics_and_trends_of_the_callers_organization(platform):
    await post_events(platform, "acme", session_events(platform, "alice", "s1", 10))
    await post_events(
        platform,
        "globex",
        session_events(platform, "bob", "s2", 10) + session_events(platform, "bob", "s3", 5),
    )
    response = await platform.client.get(
        "/api/dashboard", headers=platform.auth("m1", "acme", "Manager")
    )
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"metrics", "trends"}
    assert body["metrics"]["organizationId"] == "acme"
    assert body["metrics"]["activeSessions"] == 1
    assert body["metrics"]["sessionsToday"] == 1
    assert len(body["trends"]["hourly"]) == 24 and len(body["trends"]["daily"]) == 30
    # The same structure the hub pushes and GetDashboardSnapshot returns.
    assert body == await platform.dashboard.snapshot("acme")


async def test_dashboard_update_is_pushed_to_the_org_group_after_ingestion(platform):
    await post_events(platform, "acme", session_events(platform, "alice", "s1", 10))
    assert await platform.coalescer.flush_due() == ["acme"]
    pushes = platform.hub.of("DashboardUpdate")
    assert [p.group for p in pushes] == ["org:acme"]
    assert pushes[0].args[0]["metrics"]["activeSessions"] == 1


async def test_employee_and_agent_roles_are_refused_and_a_foreign_org_is_forbidden(platform):
    for role in ("Employee", "Agent"):
        r = await platform.client.get("/api/dashboard", headers=platform.auth("x", "acme", role))
        assert r.status_code == 403
    r = await platform.client.get(
        "/api/dashboard?organizationId=globex", headers=platform.auth("a", "acme")
    )
    assert r.status_code == 403
    assert (await platform.client.get("/api/dashboard")).status_code == 401


async def test_super_admin_may_read_another_organization(platform):
    await post_events(platform, "globex", session_events(platform, "bob", "s2", 10))
    r = await platform.client.get(
        "/api/dashboard?organizationId=globex",
        headers=platform.auth("root", "platform", "SuperAdmin"),
    )
    assert r.status_code == 200
    assert r.json()["metrics"]["organizationId"] == "globex"
    assert r.json()["metrics"]["sessionsToday"] == 1


async def test_time_zone_parameter_is_validated(platform):
    ok = await platform.client.get(
        "/api/dashboard?tz=Europe/Paris", headers=platform.auth("a", "acme")
    )
    assert ok.status_code == 200 and ok.json()["metrics"]["timezone"] == "Europe/Paris"
    bad = await platform.client.get(
        "/api/dashboard?tz=Asia/Kolkata", headers=platform.auth("a", "acme")
    )
    assert bad.status_code == 422


async def test_the_period_and_the_zone_shape_the_answer_and_bad_ones_are_422(platform):
    await post_events(platform, "acme", session_events(platform, "alice", "s1", 10))
    headers = platform.auth("m1", "acme", "Manager")
    r = await platform.client.get("/api/dashboard?period=7d&tz=Europe/Paris", headers=headers)
    assert r.status_code == 200
    body = r.json()
    assert body["metrics"]["period"] == "7d" and body["metrics"]["periodDays"] == 7
    assert body["metrics"]["timezone"] == "Europe/Paris" and len(body["trends"]["daily"]) == 7
    r = await platform.client.get("/api/dashboard?period=90d", headers=headers)
    assert r.json()["metrics"]["period"] == "90d" and len(r.json()["trends"]["daily"]) == 90
    for bad in ("period=1y", "tz=Asia/Kolkata", "tz=Nowhere/Else"):
        assert (
            await platform.client.get(f"/api/dashboard?{bad}", headers=headers)
        ).status_code == 422
