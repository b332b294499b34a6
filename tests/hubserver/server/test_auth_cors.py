"""Authentication hook and CORS on every hub request (docs/spec/auth.md §9.1,
docs/spec/transports.md §2.7, docs/spec/checklist.md §7.6)."""

from __future__ import annotations

import httpx
import pytest
import websockets
from websockets.exceptions import InvalidStatus

from hubserver.options import ConnectionOptions
from tests.hubserver.server.harness import make_endpoint, running_server, token_auth


def client_for(port: int) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5)


def bearer(user: str) -> dict[str, str]:
    return {"authorization": f"Bearer {user}"}


@pytest.mark.parametrize(("token", "status"), [(None, 401), ("bad", 401), ("evil", 403)])
async def test_negotiate_refused_by_the_hook_with_its_status(token, status) -> None:
    async with (
        running_server([make_endpoint(authenticate=token_auth)]) as s,
        client_for(s.port) as c,
    ):
        r = await c.post("/hub/negotiate", headers=bearer(token) if token else {})
    assert r.status_code == status
    assert r.headers["content-type"] == "text/plain"
    assert r.text == ("Unauthorized" if status == 401 else "Forbidden")
    if status == 401:
        assert r.headers["www-authenticate"] == "Bearer"


async def test_token_from_query_or_header_and_every_transport_request_is_checked() -> None:
    async with (
        running_server([make_endpoint(authenticate=token_auth)]) as s,
        client_for(s.port) as c,
    ):
        token = (await c.post("/hub/negotiate?negotiateVersion=1&access_token=alice")).json()[
            "connectionToken"
        ]
        # LP GET / POST / DELETE without credentials -> 401; with another user -> 403.
        for method in ("GET", "POST", "DELETE"):
            assert (await c.request(method, f"/hub?id={token}")).status_code == 401
            r = await c.request(method, f"/hub?id={token}", headers=bearer("mallory"))
            assert r.status_code == 403
        assert (await c.get(f"/hub?id={token}", headers=bearer("alice"))).status_code == 200
        r = await c.post(f"/hub?id={token}", headers=bearer("alice"), content=b"x")
        assert r.status_code == 200
        sse = await c.get(f"/hub?id={token}", headers={"accept": "text/event-stream"})
        assert sse.status_code == 401
        assert (await c.delete(f"/hub?id={token}&access_token=alice")).status_code == 202


async def test_websocket_upgrade_requires_the_same_user() -> None:
    async with (
        running_server([make_endpoint(authenticate=token_auth)]) as s,
        client_for(s.port) as c,
    ):
        token = (await c.post("/hub/negotiate?negotiateVersion=1", headers=bearer("alice"))).json()[
            "connectionToken"
        ]
        url = f"ws://127.0.0.1:{s.port}/hub?id={token}"
        for extra, status in (("", 401), ("&access_token=evil", 403), ("&access_token=bob", 403)):
            with pytest.raises(InvalidStatus) as info:
                async with websockets.connect(url + extra):
                    pass
            assert info.value.response.status_code == status
        async with websockets.connect(url, additional_headers=bearer("alice")) as ws:
            await ws.send("ok")
            assert await ws.recv() == "ok"


async def test_principal_reaches_the_connection_context() -> None:
    ep = make_endpoint(authenticate=token_auth)
    async with (
        running_server([ep]) as s,
        websockets.connect(f"ws://127.0.0.1:{s.port}/hub?access_token=carol") as ws,
    ):
        await ws.send("x")
        await ws.recv()
        (conn,) = ep.connections()
        assert conn.principal is not None and conn.principal.user_id == "carol"


async def test_cross_origin_requests_need_an_allowed_origin() -> None:
    ep = make_endpoint(options=ConnectionOptions(allowed_origins=("https://dash.example",)))
    async with running_server([ep]) as s, client_for(s.port) as c:
        ok = await c.post("/hub/negotiate", headers={"origin": "https://dash.example"})
        assert ok.status_code == 200
        assert ok.headers["access-control-allow-origin"] == "https://dash.example"
        assert ok.headers["access-control-allow-credentials"] == "true"
        assert ok.headers["vary"] == "Origin"
        bad = await c.post("/hub/negotiate", headers={"origin": "https://evil.example"})
        assert bad.status_code == 403
        same = await c.post("/hub/negotiate", headers={"origin": f"http://127.0.0.1:{s.port}"})
        assert same.status_code == 200 and "access-control-allow-origin" not in same.headers
        none = await c.post("/hub/negotiate")
        assert none.status_code == 200
        with pytest.raises(InvalidStatus) as info:
            async with websockets.connect(
                f"ws://127.0.0.1:{s.port}/hub", origin="https://evil.example"
            ):
                pass
        assert info.value.response.status_code == 403


async def test_preflight_is_204_with_methods_and_headers() -> None:
    ep = make_endpoint(options=ConnectionOptions(allowed_origins=("*",)))
    async with running_server([ep]) as s, client_for(s.port) as c:
        for path in ("/hub/negotiate", "/hub"):
            r = await c.options(
                path,
                headers={
                    "origin": "https://x.example",
                    "access-control-request-method": "POST",
                    "access-control-request-headers": "authorization, x-custom",
                },
            )
            assert r.status_code == 204
            assert r.headers["access-control-allow-origin"] == "https://x.example"
            assert r.headers["access-control-allow-methods"] == "GET, POST, DELETE, OPTIONS"
            assert "x-custom" in r.headers["access-control-allow-headers"]
            assert "x-organization-id" in r.headers["access-control-allow-headers"]


async def test_preflight_from_a_refused_origin_is_403() -> None:
    async with running_server([make_endpoint()]) as s, client_for(s.port) as c:
        r = await c.options("/hub/negotiate", headers={"origin": "https://evil.example"})
    assert r.status_code == 403
