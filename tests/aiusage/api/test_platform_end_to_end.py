"""The whole platform on 127.0.0.1 (real HTTP server, hub, store): an agent POST reaches the
right organization's dashboards and no other (the product's end-to-end promise)."""

import asyncio
import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import websockets

from aiusage.platform import Platform
from aiusage.settings import Settings
from aiusage.store.repositories import OrganizationRepository, UserRepository

RS = "\x1e"


async def _connect(base, token, org):
    async with httpx.AsyncClient(base_url=base) as http:
        neg = await http.post(
            "/hubs/analytics/negotiate?negotiateVersion=1",
            headers={"Authorization": f"Bearer {token}", "X-Organization-Id": org},
        )
        assert neg.status_code == 200, neg.text
        conn_token = neg.json()["connectionToken"]
    ws = await websockets.connect(
        f"{base.replace('http', 'ws')}/hubs/analytics?id={conn_token}&access_token={token}"
    )
    await ws.send(json.dumps({"protocol": "json", "version": 1}) + RS)
    assert (await asyncio.wait_for(ws.recv(), 5)) == "{}" + RS
    return ws


async def _invocations(ws, until, limit_s=5.0):
    """Collect invocation messages until ``until(target)`` or the time limit."""
    seen = []
    deadline = asyncio.get_running_loop().time() + limit_s
    while True:
        remaining = deadline - asyncio.get_running_loop().time()
        if remaining <= 0:
            return seen
        try:
            frame = await asyncio.wait_for(ws.recv(), remaining)
        except TimeoutError:
            return seen
        for record in frame.split(RS):
            if not record:
                continue
            message = json.loads(record)
            if message.get("type") == 1:
                seen.append((message["target"], message["arguments"]))
                if until(message["target"]):
                    return seen


@pytest.fixture
async def platform(tmp_path):
    p = await Platform.create(
        Settings(data_dir=tmp_path, port=0, access_log=False, dashboard_interval_s=0.2)
    )
    async with p.db.write() as conn:
        await OrganizationRepository().create(conn, "a", "A")
        await OrganizationRepository().create(conn, "b", "B")
        # Dashboards are store users: tokens of unknown subjects are refused.
        await UserRepository().create(conn, "a", email=None, role="Admin", user_id="admin-a")
        await UserRepository().create(conn, "b", email=None, role="Admin", user_id="admin-b")
    await p.start()
    try:
        yield p
    finally:
        await p.stop(grace=1.0)


async def test_an_agent_post_reaches_its_organizations_dashboards_only(platform) -> None:
    base = platform.base_url
    ws_a = await _connect(base, platform.issuer.issue("admin-a", "a", "Admin"), "a")
    ws_b = await _connect(base, platform.issuer.issue("admin-b", "b", "Admin"), "b")
    try:
        now = datetime.now(UTC)
        event = {
            "eventId": "e1",
            "type": "SessionStarted",
            "occurredAt": now.isoformat(),
            "userId": "u1",
            "sessionId": "s1",
            "startTime": (now - timedelta(seconds=5)).isoformat(),
            "tool": "ChatGPT",
        }
        async with httpx.AsyncClient(base_url=base) as http:
            response = await http.post(
                "/api/agent/events",
                json={"events": [event]},
                headers={"Authorization": f"Bearer {platform.issuer.issue('dev', 'a', 'Agent')}"},
            )
        assert response.json() == {"accepted": 1, "duplicates": 0}
        got_a = await _invocations(ws_a, lambda t: t == "DashboardUpdate")
        targets = [t for t, _ in got_a]
        assert targets[:2] == ["UserJoined", "SessionStarted"]
        started = dict(got_a)["SessionStarted"][0]
        assert (started["sessionId"], started["userId"]) == ("s1", "u1")
        assert "DashboardUpdate" in targets
        assert await _invocations(ws_b, lambda t: True, limit_s=0.5) == []
    finally:
        await ws_a.close()
        await ws_b.close()


async def test_readyz_and_login_work_through_the_real_server(platform) -> None:
    from aiusage.auth.passwords import hash_password

    async with platform.db.write() as conn:
        await UserRepository().create(
            conn, "a", email="boss@a.test", role="Admin", password_hash=hash_password("pw-123456")
        )
    async with httpx.AsyncClient(base_url=platform.base_url) as http:
        assert (await http.get("/readyz")).status_code == 200
        login = await http.post(
            "/api/auth/login", json={"email": "boss@a.test", "password": "pw-123456"}
        )
        assert login.status_code == 200
        token = login.json()["token"]
        sessions = await http.get("/api/sessions", headers={"Authorization": f"Bearer {token}"})
        assert sessions.status_code == 200 and sessions.json()["items"] == []


@pytest.mark.integration
async def test_user_create_on_the_cli_reaches_live_dashboards_through_redis(
    tmp_path, monkeypatch
) -> None:
    import uuid

    from aiusage.cli import main

    prefix = f"t{uuid.uuid4().hex[:10]}"
    monkeypatch.setenv("AIUSAGE_CHANNEL_PREFIX", prefix)
    monkeypatch.delenv("AIUSAGE_DATABASE_URL", raising=False)
    p = await Platform.create(
        Settings(
            data_dir=tmp_path,
            port=0,
            access_log=False,
            redis_url="redis://127.0.0.1:6379/0",
            channel_prefix=prefix,
        )
    )
    async with p.db.write() as conn:
        await OrganizationRepository().create(conn, "a", "A")
        await UserRepository().create(conn, "a", email=None, role="Admin", user_id="admin-a")
    await p.start()
    try:
        ws = await _connect(p.base_url, p.issuer.issue("admin-a", "a", "Admin"), "a")
        try:
            code = await asyncio.to_thread(
                main,
                [
                    "user",
                    "create",
                    "--email",
                    "new@a.test",
                    "--org",
                    "a",
                    "--role",
                    "Manager",
                    "--data-dir",
                    str(tmp_path),
                    "--redis-url",
                    "redis://127.0.0.1:6379/0",
                ],
            )
            assert code == 0
            got = await _invocations(ws, lambda t: t == "UserJoined")
            joined = dict(got)["UserJoined"][0]
            assert joined["email"] == "new@a.test" and joined["organizationId"] == "a"
        finally:
            await ws.close()
    finally:
        await p.stop(grace=1.0)


async def test_canceling_a_subscription_on_the_cli_closes_live_connections_within_5s(
    platform, tmp_path, monkeypatch
) -> None:
    from aiusage.cli import main

    monkeypatch.delenv("AIUSAGE_DATABASE_URL", raising=False)
    ws = await _connect(platform.base_url, platform.issuer.issue("admin-a", "a", "Admin"), "a")
    try:
        code = await asyncio.to_thread(
            main, ["org", "set-subscription", "a", "canceled", "--data-dir", str(tmp_path)]
        )
        assert code == 0
        closed = None
        deadline = asyncio.get_running_loop().time() + 5.0
        while closed is None and asyncio.get_running_loop().time() < deadline:
            try:
                frame = await asyncio.wait_for(ws.recv(), 0.5)
            except TimeoutError:
                continue
            except websockets.ConnectionClosed:
                closed = {"type": 7}
                break
            for record in frame.split(RS):
                if record and json.loads(record).get("type") == 7:
                    closed = json.loads(record)
        assert closed is not None, "connection still open 5 s after the subscription ended"
    finally:
        await ws.close()
