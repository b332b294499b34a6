"""``HubServer(response_hook=...)``: the application adds headers and cookies to every hub
endpoint response (negotiate, long polling, Server-Sent Events, the WebSocket 101), with a
real server; what the hook adds is validated like any header."""

from __future__ import annotations

import asyncio
import logging

import httpx
import pytest
import websockets

from hubserver.connections.context import HttpRequestInfo
from tests.hubserver.server.harness import make_endpoint, running_server

Seen = list[tuple[str, str, int]]


def cookie_hook(seen: Seen):  # type: ignore[no-untyped-def]
    """Adds a cookie naming the request and a custom header; records what it was shown."""

    def hook(request: HttpRequestInfo, status: int, headers: list[tuple[str, str]]) -> None:
        seen.append((request.method, request.path, status))
        kind = "negotiate" if request.path.endswith("/negotiate") else request.method
        headers.append(("Set-Cookie", f"affinity=node-1; Path=/; HttpOnly; X={kind}"))
        headers.append(("X-Served-By", f"node-1 {request.query.get('id', '-')[:4]}"))

    return hook


async def test_negotiate_long_polling_sse_and_the_websocket_101_carry_the_hook_s_headers() -> None:
    seen: Seen = []
    async with (
        running_server([make_endpoint()], access_log=False, response_hook=cookie_hook(seen)) as s,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{s.port}", timeout=5) as c,
    ):
        negotiate = await c.post("/hub/negotiate?negotiateVersion=1")
        assert negotiate.status_code == 200
        assert "X=negotiate" in negotiate.headers["set-cookie"]
        assert negotiate.headers["x-served-by"] == "node-1 -"

        # Long polling: the first poll, a send, a data poll, the DELETE.
        token = negotiate.json()["connectionToken"]
        first = await c.get(f"/hub?id={token}")
        assert (first.status_code, first.headers["set-cookie"].endswith("X=GET")) == (200, True)
        send = await c.post(f"/hub?id={token}", content=b"ping")
        assert (send.status_code, send.headers["set-cookie"].endswith("X=POST")) == (200, True)
        poll = await c.get(f"/hub?id={token}")
        assert (poll.content, poll.headers["x-served-by"]) == (b"ping", f"node-1 {token[:4]}")
        delete = await c.delete(f"/hub?id={token}")
        assert (delete.status_code, delete.headers["set-cookie"].endswith("X=DELETE")) == (
            202,
            True,
        )

        # Server-Sent Events: the headers arrive with the stream's head.
        token = (await c.post("/hub/negotiate?negotiateVersion=1")).json()["connectionToken"]
        async with c.stream(
            "GET", f"/hub?id={token}", headers={"accept": "text/event-stream"}
        ) as stream:
            assert stream.headers["content-type"] == "text/event-stream"
            assert stream.headers["set-cookie"].endswith("X=GET")
            assert stream.headers["x-served-by"] == f"node-1 {token[:4]}"

        # WebSocket: on the 101.
        async with websockets.connect(f"ws://127.0.0.1:{s.port}/hub") as ws:
            assert ws.response is not None
            assert ws.response.status_code == 101
            assert ws.response.headers["Set-Cookie"].endswith("X=GET")
            await ws.send(b"echo")
            assert await asyncio.wait_for(ws.recv(), 2) == "echo"  # echoed as text

        # Errors pass the hook too (middleware sees every answer).
        missing = await c.get("/hub?id=nope")
        assert (missing.status_code, "affinity=" in missing.headers["set-cookie"]) == (404, True)
    assert ("POST", "/hub/negotiate", 200) in seen
    assert ("GET", "/hub", 101) in seen
    assert ("GET", "/hub", 404) in seen


@pytest.mark.parametrize(
    "value", ["a=1\r\nX-Forged: yes", "a=1\nb", "a=1\x00"], ids=["crlf", "lf", "nul"]
)
async def test_a_hook_adding_cr_lf_or_nul_gets_a_500_and_nothing_it_added(
    value: str, caplog: pytest.LogCaptureFixture
) -> None:
    def hook(request: HttpRequestInfo, status: int, headers: list[tuple[str, str]]) -> None:
        headers.append(("Set-Cookie", value))

    async with (
        running_server([make_endpoint()], access_log=False, response_hook=hook) as s,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{s.port}", timeout=5) as c,
    ):
        with caplog.at_level(logging.ERROR, "hubserver.server"):
            r = await c.post("/hub/negotiate?negotiateVersion=1")
    assert (r.status_code, r.text) == (500, "Internal Server Error")
    assert "set-cookie" not in r.headers and "x-forged" not in r.headers
    assert [rec.message for rec in caplog.records if "invalid_response_header" in rec.message]


async def test_a_failing_hook_gets_a_500_and_the_websocket_is_not_upgraded(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def hook(request: HttpRequestInfo, status: int, headers: list[tuple[str, str]]) -> None:
        raise RuntimeError("boom")

    async with running_server([make_endpoint()], access_log=False, response_hook=hook) as s:
        with (
            caplog.at_level(logging.ERROR, "hubserver.server"),
            pytest.raises(websockets.InvalidStatus) as info,
        ):
            async with websockets.connect(f"ws://127.0.0.1:{s.port}/hub"):
                pass
    assert info.value.response.status_code == 500
    assert any("response hook failed" in rec.message for rec in caplog.records)


async def test_without_a_hook_responses_are_unchanged() -> None:
    async with (
        running_server([make_endpoint()], access_log=False) as s,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{s.port}", timeout=5) as c,
    ):
        r = await c.post("/hub/negotiate?negotiateVersion=1")
    assert r.status_code == 200
    assert "set-cookie" not in r.headers
