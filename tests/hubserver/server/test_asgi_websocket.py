"""WebSocket upgrades to non-hub paths reach the ASGI application as a ``websocket`` scope
(accept, send, receive, close, refusal, denial response), served by HubServer to a real
``websockets`` client, next to a hub endpoint that keeps its own WebSockets."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
import websockets
from fastapi import FastAPI
from fastapi import WebSocket as FastApiWebSocket
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.hubserver.server.harness import make_endpoint, raw_exchange, running_server

WAIT = 3.0


class Recorder:
    """What the application saw."""

    def __init__(self) -> None:
        self.scopes: list[dict[str, Any]] = []
        self.disconnects: list[tuple[int, str | None]] = []
        self.disconnected = asyncio.Event()


def make_app(rec: Recorder) -> Starlette:
    async def echo(ws: WebSocket) -> None:
        rec.scopes.append(dict(ws.scope))
        offered = ws.scope["subprotocols"]
        await ws.accept(subprotocol=offered[-1] if offered else None, headers=[(b"x-app", b"echo")])
        try:
            while True:
                message = await ws.receive()
                if message["type"] == "websocket.disconnect":
                    raise WebSocketDisconnect(message["code"], message.get("reason"))
                if message.get("text") is not None:
                    await ws.send_text("echo:" + message["text"])
                else:
                    await ws.send_bytes(b"echo:" + message["bytes"])
        except WebSocketDisconnect as exc:
            rec.disconnects.append((exc.code, exc.reason))
            rec.disconnected.set()

    async def reject(ws: WebSocket) -> None:
        await ws.close(code=1008)

    async def deny(ws: WebSocket) -> None:
        await ws.send_denial_response(PlainTextResponse("no entry", status_code=401))

    async def server_closes(ws: WebSocket) -> None:
        await ws.accept()
        await ws.send_text("bye")
        await ws.close(code=4001, reason="done")

    async def fails_before_accept(ws: WebSocket) -> None:
        raise RuntimeError("boom")

    async def fails_after_accept(ws: WebSocket) -> None:
        await ws.accept()
        raise RuntimeError("boom")

    async def returns_after_accept(ws: WebSocket) -> None:
        await ws.accept()
        await ws.send_text("hi")

    async def waits(ws: WebSocket) -> None:
        await ws.accept()
        message = await ws.receive()
        rec.disconnects.append((message["code"], message.get("reason")))
        rec.disconnected.set()

    async def hello(_request: Any) -> PlainTextResponse:
        return PlainTextResponse("hello")

    return Starlette(
        routes=[
            Route("/hello", hello),
            WebSocketRoute("/ws/echo", echo),
            WebSocketRoute("/ws/reject", reject),
            WebSocketRoute("/ws/deny", deny),
            WebSocketRoute("/ws/server-closes", server_closes),
            WebSocketRoute("/ws/fails-before", fails_before_accept),
            WebSocketRoute("/ws/fails-after", fails_after_accept),
            WebSocketRoute("/ws/returns", returns_after_accept),
            WebSocketRoute("/ws/waits", waits),
        ]
    )


async def test_text_and_binary_messages_subprotocol_headers_and_the_client_s_close() -> None:
    rec = Recorder()
    async with running_server([make_endpoint()], make_app(rec), access_log=False) as s:
        url = f"ws://127.0.0.1:{s.port}/ws/echo?room=a%20b"
        async with websockets.connect(url, subprotocols=["x.v1", "x.v2"]) as ws:  # type: ignore[list-item]
            assert ws.subprotocol == "x.v2"
            assert ws.response is not None and ws.response.headers["x-app"] == "echo"
            await ws.send("héllo")
            assert await asyncio.wait_for(ws.recv(), WAIT) == "echo:héllo"
            await ws.send(b"\x00\xff")
            assert await asyncio.wait_for(ws.recv(), WAIT) == b"echo:\x00\xff"
            big = "x" * 200_000  # several TCP reads, one message
            await ws.send(big)
            assert await asyncio.wait_for(ws.recv(), WAIT) == "echo:" + big
            await ws.close(code=4000, reason="client done")
        await asyncio.wait_for(rec.disconnected.wait(), WAIT)
        # The same server still serves HTTP to the app and hub WebSockets to the endpoint.
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{s.port}") as c:
            assert (await c.get("/hello")).text == "hello"
        async with websockets.connect(f"ws://127.0.0.1:{s.port}/hub") as hub_ws:
            await hub_ws.send(b"raw")
            assert await asyncio.wait_for(hub_ws.recv(), WAIT) == "raw"
    assert rec.disconnects == [(4000, "client done")]
    scope = rec.scopes[0]
    assert (scope["type"], scope["scheme"], scope["path"]) == ("websocket", "ws", "/ws/echo")
    assert scope["query_string"] == b"room=a%20b"
    assert scope["subprotocols"] == ["x.v1", "x.v2"]
    assert scope["asgi"]["spec_version"] == "2.4"
    assert "websocket.http.response" in scope["extensions"]
    assert scope["client"][0] == "127.0.0.1"


async def test_the_application_s_close_reaches_the_client_with_its_code_and_reason() -> None:
    async with (
        running_server([], make_app(Recorder()), access_log=False) as s,
        websockets.connect(f"ws://127.0.0.1:{s.port}/ws/server-closes") as ws,
    ):
        assert await asyncio.wait_for(ws.recv(), WAIT) == "bye"
        with pytest.raises(ConnectionClosed) as info:
            await asyncio.wait_for(ws.recv(), WAIT)
    assert info.value.rcvd is not None
    assert (info.value.rcvd.code, info.value.rcvd.reason) == (4001, "done")


@pytest.mark.parametrize(
    ("path", "status", "body"),
    [
        ("/ws/reject", 403, b""),  # websocket.close before accept
        ("/ws/deny", 401, b"no entry"),  # the denial-response extension
        ("/ws/fails-before", 500, b"Internal Server Error"),
        ("/ws/no-such-route", 403, b""),  # Starlette's router closes unknown WebSocket paths
    ],
)
async def test_refused_upgrades_get_an_http_answer(path: str, status: int, body: bytes) -> None:
    async with running_server([], make_app(Recorder()), access_log=False) as s:
        with pytest.raises(InvalidStatus) as info:
            async with websockets.connect(f"ws://127.0.0.1:{s.port}{path}"):
                pass
    assert info.value.response.status_code == status
    assert info.value.response.body == body


@pytest.mark.parametrize(("path", "code"), [("/ws/fails-after", 1011), ("/ws/returns", 1000)])
async def test_an_application_that_ends_after_accepting_closes_the_websocket(
    path: str, code: int
) -> None:
    async with (
        running_server([], make_app(Recorder()), access_log=False) as s,
        websockets.connect(f"ws://127.0.0.1:{s.port}{path}") as ws,
    ):
        with pytest.raises(ConnectionClosed) as info:
            while True:
                await asyncio.wait_for(ws.recv(), WAIT)
    assert info.value.rcvd is not None and info.value.rcvd.code == code


async def test_bad_handshakes_are_refused_before_the_application_runs() -> None:
    rec = Recorder()
    async with running_server([], make_app(rec), access_log=False) as s:
        base = b"GET /ws/echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        old_version = await raw_exchange(
            s.port,
            base + b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            b"Sec-WebSocket-Version: 8\r\n\r\n",
            read_until_close=True,
        )
        bad_key = await raw_exchange(
            s.port,
            base + b"Sec-WebSocket-Key: short\r\nSec-WebSocket-Version: 13\r\n\r\n",
            read_until_close=True,
        )
    assert old_version.startswith(b"HTTP/1.1 426 ")
    assert b"\r\nSec-WebSocket-Version: 13\r\n" in old_version
    assert b"Connection: close" in old_version
    assert bad_key.startswith(b"HTTP/1.1 400 ")
    assert rec.scopes == []


async def test_a_message_over_the_limit_is_closed_with_1009() -> None:
    rec = Recorder()
    app = make_app(rec)
    async with running_server([], app, access_log=False, websocket_max_message_size=1000) as s:
        async with websockets.connect(f"ws://127.0.0.1:{s.port}/ws/echo") as ws:
            await ws.send("x" * 1001)
            with pytest.raises(ConnectionClosed) as info:
                await asyncio.wait_for(ws.recv(), WAIT)
        await asyncio.wait_for(rec.disconnected.wait(), WAIT)
    assert info.value.rcvd is not None and info.value.rcvd.code == 1009
    assert rec.disconnects[0][0] == 1009


async def test_a_lost_socket_is_a_1006_disconnect_and_stop_says_going_away() -> None:
    rec = Recorder()
    async with running_server([], make_app(rec), access_log=False) as s:
        reader, writer = await asyncio.open_connection("127.0.0.1", s.port)
        writer.write(
            b"GET /ws/waits HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT)
        assert head.startswith(b"HTTP/1.1 101 ")
        assert b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n" in head
        writer.transport.abort()
        await asyncio.wait_for(rec.disconnected.wait(), WAIT)
        assert rec.disconnects == [(1006, "")]

        rec.disconnected.clear()
        ws = await websockets.connect(f"ws://127.0.0.1:{s.port}/ws/waits")
        stopping = asyncio.create_task(s.stop(grace=2.0))
        with pytest.raises(ConnectionClosed) as info:
            await asyncio.wait_for(ws.recv(), WAIT)
        await asyncio.wait_for(stopping, WAIT)
    assert info.value.rcvd is not None and info.value.rcvd.code == 1001
    assert rec.disconnects[-1] == (1001, "server stopping")


async def test_a_fastapi_websocket_route_works_over_hubserver() -> None:
    api = FastAPI()

    @api.websocket("/api/live")
    async def live(ws: FastApiWebSocket) -> None:
        await ws.accept()
        name = await ws.receive_text()
        await ws.send_json({"hello": name, "path": ws.url.path})
        await ws.close()

    async with (
        running_server([make_endpoint()], api, access_log=False) as s,
        websockets.connect(f"ws://127.0.0.1:{s.port}/api/live") as ws,
    ):
        await ws.send("ann")
        assert await asyncio.wait_for(ws.recv(), WAIT) == '{"hello":"ann","path":"/api/live"}'


async def test_other_upgrades_are_answered_as_plain_http_and_the_connection_closes() -> None:
    async with running_server([], make_app(Recorder()), access_log=False) as s:
        data = await raw_exchange(
            s.port,
            b"GET /hello HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\n"
            b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n",
            read_until_close=True,
        )
    assert data.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"Connection: close\r\n" in data
    assert data.endswith(b"hello")
