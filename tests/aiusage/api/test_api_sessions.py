from datetime import UTC, datetime, timedelta

from aiusage.domain.events import SessionEnded, SessionStarted
from aiusage.store.ingest import Ingestor
from aiusage.store.repositories import OrganizationRepository

T0 = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)


async def _seed(api):
    async with api.db.write() as conn:
        await OrganizationRepository().create(conn, "acme", "Acme")
        await OrganizationRepository().create(conn, "rival", "Rival")
    ingestor = Ingestor(api.db)
    events = []
    for i in range(7):
        start = T0 + timedelta(minutes=10 * i)
        events.append(
            SessionStarted(
                f"a{i}", start, f"u{i % 2}", f"s{i}", start, "ChatGPT" if i % 3 else "Claude", None
            )
        )
    events.append(SessionEnded("z0", T0, "u0", "s0", T0 + timedelta(minutes=5), 300.0, 100.0))
    await ingestor.ingest("acme", "dev", events, now=T0 + timedelta(hours=1))
    await ingestor.ingest(
        "rival",
        "dev",
        [SessionStarted("r", T0, "x", "secret", T0, None, None)],
        now=T0 + timedelta(hours=1),
    )


async def test_sessions_are_listed_newest_first_for_the_callers_organization(api) -> None:
    await _seed(api)
    response = await api.client.get("/api/sessions", headers=api.token("boss", "acme", "Manager"))
    assert response.status_code == 200
    body = response.json()
    assert [s["sessionId"] for s in body["items"]] == ["s6", "s5", "s4", "s3", "s2", "s1", "s0"]
    assert body["nextCursor"] is None
    oldest = body["items"][-1]
    assert oldest == {
        "sessionId": "s0",
        "userId": "u0",
        "deviceId": "dev",
        "tool": "Claude",
        "startTime": "2026-05-01T08:00:00Z",
        "endTime": "2026-05-01T08:05:00Z",
        "duration": 300.0,
        "aiUsageTime": 100.0,
        "active": False,
    }


async def test_cursor_pages_cover_every_session_exactly_once(api) -> None:
    await _seed(api)
    headers = api.token("boss", "acme", "Admin")
    seen, cursor = [], None
    for _ in range(10):
        params = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        body = (await api.client.get("/api/sessions", params=params, headers=headers)).json()
        seen += [s["sessionId"] for s in body["items"]]
        cursor = body["nextCursor"]
        if cursor is None:
            break
    assert seen == ["s6", "s5", "s4", "s3", "s2", "s1", "s0"]


async def test_filters_by_user_tool_and_time_range(api) -> None:
    await _seed(api)
    headers = api.token("boss", "acme", "Admin")

    async def ids(**params):
        body = (await api.client.get("/api/sessions", params=params, headers=headers)).json()
        return [s["sessionId"] for s in body["items"]]

    assert await ids(userId="u1") == ["s5", "s3", "s1"]
    assert await ids(tool="Claude") == ["s6", "s3", "s0"]
    assert await ids(**{"from": "2026-05-01T08:20:00Z", "to": "2026-05-01T10:40:00+02:00"}) == [
        "s3",
        "s2",
    ]


async def test_other_tenants_and_roles_are_kept_out(api) -> None:
    await _seed(api)
    rival = (await api.client.get("/api/sessions", headers=api.token("r", "rival", "Admin"))).json()
    assert [s["sessionId"] for s in rival["items"]] == ["secret"]
    mismatch = await api.client.get(
        "/api/sessions", headers=api.token("boss", "acme", "Admin") | {"X-Organization-Id": "rival"}
    )
    assert mismatch.status_code == 403
    employee = await api.client.get("/api/sessions", headers=api.token("e", "acme", "Employee"))
    assert employee.status_code == 403
    agent = await api.client.get("/api/sessions", headers=api.token("d", "acme", "Agent"))
    assert agent.status_code == 403
    assert (await api.client.get("/api/sessions")).status_code == 401
    root = await api.client.get(
        "/api/sessions",
        params={"organizationId": "rival"},
        headers=api.token("root", "platform", "SuperAdmin"),
    )
    assert [s["sessionId"] for s in root.json()["items"]] == ["secret"]


async def test_bad_cursor_timestamp_or_limit_is_a_client_error(api) -> None:
    await _seed(api)
    headers = api.token("boss", "acme", "Admin")
    assert (
        await api.client.get("/api/sessions", params={"cursor": "junk"}, headers=headers)
    ).status_code == 400
    assert (
        await api.client.get("/api/sessions", params={"from": "yesterday"}, headers=headers)
    ).status_code == 400
    assert (
        await api.client.get(
            "/api/sessions", params={"from": "2026-05-01T08:00:00"}, headers=headers
        )
    ).status_code == 400
    assert (
        await api.client.get("/api/sessions", params={"limit": 501}, headers=headers)
    ).status_code == 422
