"""``BroadcastDashboardUpdate``: only Admin and SuperAdmin may call it, and only with a payload
that validates against the DashboardUpdate schema (docs/security.md); a refused call reaches
nobody and the caller gets a sanitized HubException naming the problem."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest

from aiusage.realtime.dashboard_update import MAX_PAYLOAD_BYTES, dashboard_update_problem
from tests.aiusage.api.p2b_support import iso, post_events
from tests.security.kit import invocations, settle

PREFIX = "An unexpected error occurred invoking 'BroadcastDashboardUpdate' on the server. "
MANAGER_REFUSED = (
    PREFIX + "HubException: Forbidden: only Admin and SuperAdmin may broadcast dashboard updates"
)


def updates(client):
    return [m.arguments[0] for m in invocations(client, "DashboardUpdate")]


async def test_a_manager_cannot_forge_the_numbers_admins_see(world, caplog):
    caplog.set_level(logging.INFO, logger="aiusage.realtime.hub")
    manager = await world.connect(world.token("max", "acme", "Manager"))
    admin = await world.connect(world.token("ann", "acme", "Admin"))
    completion = await manager.invoke(
        "BroadcastDashboardUpdate", "acme", {"activeSessions": 999999}
    )
    assert completion.error == MANAGER_REFUSED
    await settle()
    assert updates(admin) == [] and updates(manager) == []
    refusals = [r for r in caplog.records if "BroadcastDashboardUpdate refused" in r.getMessage()]
    assert [r.getMessage() for r in refusals] == [
        "BroadcastDashboardUpdate refused for max of acme: role"
    ]
    # The documented forms still reach the whole organization when an Admin sends them.
    envelope = {
        "metrics": {
            "organizationId": "acme",
            "activeSessions": 3,
            "adoptionRate": 0.5,
            "aiUsageSecondsToday": 120.5,
            "usageByTool": [{"tool": "ChatGPT", "detections": 2, "durationSeconds": 60}],
        },
        "trends": {"hourly": [{"hour": "2026-03-10T14:00:00Z", "sessions": 1}], "daily": []},
    }
    bare = {"activeSessions": 2, "totalUsers": 9, "adoptionRate": None}
    probe = {"probe": "p1", "seq": 4, "t0": 12.5, "tag": "latency"}
    for payload in (envelope, bare, probe):
        assert (await admin.invoke("BroadcastDashboardUpdate", "acme", payload)).error is None
    await settle()
    assert updates(manager) == updates(admin) == [envelope, bare, probe]


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        ({"activeSessions": 3, "x": 1}, "unknown field 'x'"),
        ({"metrics": {"forged": 1}}, "unknown field 'metrics.forged'"),
        ({"activeSessions": -1}, "activeSessions must be between 0 and 1000000000"),
        ({"activeSessions": 10**10}, "activeSessions must be between 0 and 1000000000"),
        ({"activeSessions": "999999"}, "activeSessions must be an integer"),
        ({"activeSessions": 1.5}, "activeSessions must be an integer"),
        ({"adoptionRate": 1.01}, "adoptionRate must be between 0 and 1"),
        ({"aiUsageSecondsToday": True}, "aiUsageSecondsToday must be a number"),
        ({"organizationId": "globex"}, "organizationId must be the target organization"),
        ({"metrics": [1]}, "metrics must be an object"),
        ({"trends": {"weekly": []}}, "unknown field 'trends.weekly'"),
        ({"trends": {"hourly": [1]}}, "trends.hourly must be a list of objects"),
        ({"tag": "x" * 257}, "strings must be at most 256 characters"),
        ({"usageByUser": [{}] * 1001}, "lists and objects must hold at most 1000 items"),
        ({"usageByTool": [[[[[[[1]]]]]]]}, "payload is nested deeper than 6 levels"),
        ({"seq": 2**60}, "integers must be within +/-2^53 (JavaScript's exact range)"),
    ],
)
async def test_an_admin_payload_outside_the_schema_reaches_nobody(world, payload, problem):
    admin = await world.connect(world.token("ann", "acme", "Admin"))
    colleague = await world.connect(world.token("bob", "acme", "Admin"))
    completion = await admin.invoke("BroadcastDashboardUpdate", "acme", payload)
    assert completion.error == f"{PREFIX}HubException: Invalid DashboardUpdate: {problem}"
    await settle()
    assert updates(colleague) == [] and updates(admin) == []


async def test_non_finite_numbers_from_messagepack_are_refused(world):
    admin = await world.connect(world.token("ann", "acme", "Admin"), protocol="messagepack")
    colleague = await world.connect(world.token("bob", "acme", "Admin"))
    for value in (float("nan"), float("inf")):
        completion = await admin.invoke("BroadcastDashboardUpdate", "acme", {"t0": value})
        assert completion.error == (
            f"{PREFIX}HubException: Invalid DashboardUpdate: numbers must be finite"
        )
    completion = await admin.invoke("BroadcastDashboardUpdate", "acme", {"tag": b"\x00"})
    assert completion.error == (
        f"{PREFIX}HubException: Invalid DashboardUpdate: payload must hold JSON values only"
    )
    await settle()
    assert updates(colleague) == []


def test_lone_surrogates_and_oversized_payloads_are_refused():
    # Checked on the function: the hub parsers may already refuse such frames themselves.
    assert dashboard_update_problem("acme", {"tag": "\ud800"}) == (
        "strings must not contain lone UTF-16 surrogates"
    )
    assert dashboard_update_problem("acme", {"\udc00": 1}) == (
        "strings must not contain lone UTF-16 surrogates"
    )
    big = {"usageByUser": [{"userId": "u" * 256} for _ in range(1000)]}
    assert dashboard_update_problem("acme", big) == f"payload exceeds {MAX_PAYLOAD_BYTES} bytes"
    assert dashboard_update_problem("acme", {"tag": "caf\u00e9 \U0001f600"}) is None
    # (The hub binds ``metrics: dict`` first: a non-object never reaches the method.)
    assert dashboard_update_problem("acme", [1, 2]) == "payload must be a JSON object"


async def test_the_servers_own_snapshot_validates(platform):
    # The schema lists the snapshot's fields: a field added to docs/metrics.md and to the
    # DashboardService must be added to the schema too, or this test fails.
    now = platform.clock.now
    start = now - timedelta(hours=2)
    events = [
        {
            "eventId": "s",
            "type": "SessionStarted",
            "occurredAt": iso(start),
            "userId": "alice",
            "sessionId": "s1",
            "startTime": iso(start),
            "tool": "ChatGPT",
        },
        {
            "eventId": "d",
            "type": "AIDetected",
            "occurredAt": iso(start + timedelta(minutes=10)),
            "userId": "alice",
            "sessionId": "s1",
            "tool": "Shadow AI",
            "duration": 300,
        },
        {
            "eventId": "e",
            "type": "SessionEnded",
            "occurredAt": iso(now),
            "userId": "alice",
            "sessionId": "s1",
            "endTime": iso(now - timedelta(minutes=30)),
            "duration": 5400,
            "aiUsageTime": 600,
        },
    ]
    await post_events(platform, "acme", events)
    snapshot = await platform.dashboard.snapshot("acme")
    assert snapshot["metrics"]["usageByTool"]  # the lists are exercised, not only empty
    assert dashboard_update_problem("acme", snapshot) is None
    assert dashboard_update_problem("acme", snapshot["metrics"]) is None
