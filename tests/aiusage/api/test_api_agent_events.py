import json
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from aiusage.store.repositories import AgentRepository, OrganizationRepository
from aiusage.store.tables import AISession, ProcessedEvent

NOW = datetime.now(UTC).replace(microsecond=0)


def iso(moment):
    return moment.isoformat().replace("+00:00", "Z")


def session_started(eid, sid, user="u1", tool="ChatGPT"):
    return {
        "eventId": eid,
        "type": "SessionStarted",
        "occurredAt": iso(NOW),
        "userId": user,
        "sessionId": sid,
        "startTime": iso(NOW - timedelta(minutes=10)),
        "tool": tool,
    }


def session_ended(eid, sid, user="u1"):
    return {
        "eventId": eid,
        "type": "SessionEnded",
        "occurredAt": iso(NOW),
        "userId": user,
        "sessionId": sid,
        "endTime": iso(NOW),
        "duration": 600,
        "aiUsageTime": 240.5,
    }


def ai_detected(eid, user="u1", tool="Claude"):
    return {
        "eventId": eid,
        "type": "AIDetected",
        "occurredAt": iso(NOW),
        "userId": user,
        "tool": tool,
        "duration": 30,
    }


async def _org(api, org="acme", status="active"):
    async with api.db.write() as conn:
        await OrganizationRepository().create(conn, org, org.title(), subscription_status=status)


async def _count(api, table):
    async with api.db.read() as conn:
        return (await conn.execute(select(func.count()).select_from(table))).scalar_one()


async def test_an_agent_batch_is_stored_then_published_to_its_organization(api) -> None:
    await _org(api)
    body = {"events": [session_started("e1", "s1"), ai_detected("e2"), session_ended("e3", "s1")]}
    response = await api.client.post(
        "/api/agent/events", json=body, headers=api.token("dev-1", "acme", "Agent")
    )
    assert response.status_code == 200
    assert response.json() == {"accepted": 3, "duplicates": 0}
    assert api.hub.methods() == ["UserJoined", "SessionStarted", "AIDetected", "SessionEnded"]
    assert {target for target, _, _ in api.hub.sent} == {"group:org:acme"}
    started = api.hub.payloads("SessionStarted")[0]
    assert started["sessionId"] == "s1" and started["userId"] == "u1"
    assert started["startTime"] == iso(NOW - timedelta(minutes=10))
    assert api.hub.payloads("SessionEnded")[0]["aiUsageTime"] == 240.5
    assert api.hub.payloads("UserJoined")[0]["userId"] == "u1"
    assert await _count(api, AISession.__table__) == 1


async def test_replayed_events_are_acknowledged_as_duplicates_and_not_republished(api) -> None:
    await _org(api)
    headers = api.token("dev-1", "acme", "Agent")
    body = {"events": [ai_detected("e1"), ai_detected("e2")]}
    await api.client.post("/api/agent/events", json=body, headers=headers)
    api.hub.sent.clear()
    again = await api.client.post(
        "/api/agent/events",
        json={"events": [ai_detected("e2"), ai_detected("e3")]},
        headers=headers,
    )
    assert again.json() == {"accepted": 1, "duplicates": 1}
    assert api.hub.methods() == ["AIDetected"]


async def test_one_invalid_event_refuses_the_whole_batch_with_per_event_errors(api) -> None:
    await _org(api)
    bad_time = session_started("e2", "s2")
    bad_time["startTime"] = "2026-05-01T10:00:00"  # no time zone
    negative = ai_detected("e3")
    negative["duration"] = -1
    body = {"events": [ai_detected("e1"), bad_time, negative, {"type": "Nope"}, "x"]}
    response = await api.client.post(
        "/api/agent/events", json=body, headers=api.token("dev-1", "acme", "Agent")
    )
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert [d["index"] for d in detail] == [1, 2, 3, 4]
    assert detail[0]["eventId"] == "e2"
    assert detail[0]["errors"] == ["startTime must include a time zone (e.g. 'Z' or '+02:00')"]
    assert detail[1]["errors"] == ["duration must not be negative"]
    assert "eventId is required" in detail[2]["errors"]
    assert any(e.startswith("type must be one of") for e in detail[2]["errors"])
    assert detail[3]["errors"] == ["event must be a JSON object"]
    assert await _count(api, ProcessedEvent.__table__) == 0
    assert api.hub.sent == []


async def test_more_than_a_thousand_events_are_refused(api) -> None:
    await _org(api)
    body = {"events": [ai_detected(f"e{i}") for i in range(1001)]}
    response = await api.client.post(
        "/api/agent/events", json=body, headers=api.token("dev-1", "acme", "Agent")
    )
    assert response.status_code == 422
    assert response.json()["detail"] == [
        {"index": None, "eventId": None, "errors": ["a batch holds at most 1000 events, got 1001"]}
    ]


async def test_bodies_that_are_not_json_or_too_large_are_refused(db, tmp_path_factory) -> None:
    from support.api_app import open_harness

    api = await open_harness(db, tmp_path_factory.getbasetemp(), max_body_bytes=1000)
    try:
        await _org(api)
        headers = api.token("dev-1", "acme", "Agent")
        response = await api.client.post("/api/agent/events", content=b"{nope", headers=headers)
        assert response.status_code == 400
        big = json.dumps({"events": [ai_detected(f"e{i}") for i in range(20)]}).encode()
        response = await api.client.post("/api/agent/events", content=big, headers=headers)
        assert response.status_code == 413
    finally:
        await api.client.aclose()


async def test_only_agent_tokens_may_post_events(api) -> None:
    await _org(api)
    body = {"events": [ai_detected("e1")]}
    assert (await api.client.post("/api/agent/events", json=body)).status_code == 401
    bad = {"Authorization": "Bearer not-a-token"}
    assert (await api.client.post("/api/agent/events", json=body, headers=bad)).status_code == 401
    admin = api.token("boss", "acme", "Admin")
    assert (await api.client.post("/api/agent/events", json=body, headers=admin)).status_code == 403


async def test_revoked_agents_and_canceled_organizations_are_refused(api) -> None:
    await _org(api)
    await _org(api, "gone", "canceled")
    async with api.db.write() as conn:
        await AgentRepository().register(conn, "acme", "dev-x")
        await AgentRepository().revoke(conn, "acme", "dev-x")
    body = {"events": [ai_detected("e1")]}
    revoked = await api.client.post(
        "/api/agent/events", json=body, headers=api.token("dev-x", "acme", "Agent")
    )
    assert revoked.status_code == 401
    canceled = await api.client.post(
        "/api/agent/events", json=body, headers=api.token("dev-1", "gone", "Agent")
    )
    assert canceled.status_code == 403
    assert canceled.json()["code"] == "forbidden"
    assert await _count(api, ProcessedEvent.__table__) == 0


async def test_a_publish_failure_does_not_fail_an_acknowledged_batch(api) -> None:
    await _org(api)
    api.hub.fail_with = ConnectionError("backplane down")
    response = await api.client.post(
        "/api/agent/events",
        json={"events": [ai_detected("e1")]},
        headers=api.token("dev-1", "acme", "Agent"),
    )
    assert response.status_code == 200
    assert api.service.stats.publish_failures == 1
    assert await _count(api, ProcessedEvent.__table__) == 1


async def test_post_commit_callbacks_receive_the_rollup_of_the_batch(db, tmp_path_factory) -> None:
    from support.api_app import open_harness

    seen = []

    async def callback(batch):
        seen.append(sorted(batch.orgs))

    api = await open_harness(db, tmp_path_factory.getbasetemp(), after_commit=[callback])
    try:
        await _org(api)
        await api.client.post(
            "/api/agent/events",
            json={"events": [ai_detected("e1")]},
            headers=api.token("dev-1", "acme", "Agent"),
        )
        await api.service.drain()
        assert seen == [["acme"]]
    finally:
        await api.client.aclose()


def _perf_batches(count):
    batches = []
    for b in range(count):
        events = []
        for i in range(25):
            n = b * 25 + i
            sid, user = f"s{n}", f"u{n % 20}"
            events += [
                session_started(f"a{n}", sid, user=user),
                ai_detected(f"b{n}", user=user),
                ai_detected(f"c{n}", user=user),
                session_ended(f"d{n}", sid, user=user),
            ]
        batches.append(json.dumps({"events": events}).encode())
    return batches


# Throughput is measured by bench/bench_ingest.py (docs/benchmarks.md), not in a timed test.


async def test_a_batch_costs_the_same_few_database_round_trips_whatever_its_size(api) -> None:
    """No per-event statements: 100 and 1,000 events cost the same number of round trips."""
    if api.db.dialect != "sqlite":
        return  # round trips are counted on aiosqlite's worker thread
    import aiosqlite.core

    await _org(api)
    headers = api.token("dev-1", "acme", "Agent")
    small, large = (
        _perf_batches(1),
        [
            json.dumps(
                {"events": [e for b in _perf_batches(12)[2:12] for e in json.loads(b)["events"]]}
            ).encode()
        ],
    )
    await api.client.post("/api/agent/events", content=_perf_batches(13)[12], headers=headers)
    calls = []
    original = aiosqlite.core.Connection._execute

    async def counting(self, fn, *args, **kwargs):
        calls.append(fn)
        return await original(self, fn, *args, **kwargs)

    aiosqlite.core.Connection._execute = counting
    try:
        counts = []
        for body in (small[0], large[0]):
            calls.clear()
            response = await api.client.post("/api/agent/events", content=body, headers=headers)
            assert response.status_code == 200
            assert response.json()["accepted"] == len(json.loads(body)["events"])
            counts.append(len(calls))
    finally:
        aiosqlite.core.Connection._execute = original
    assert counts[0] == counts[1]
    assert counts[0] <= 40
