"""HubServer(body_timeout=...): a request body that does not arrive in time gets 408 and the
connection is closed, on the ASGI path as on hub endpoints; complete bodies are unaffected and
a keep-alive connection is not cut after a request that had a body."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from hubserver.connections.context import HttpRequestInfo, Principal
from hubserver.types import Message
from tests.hubserver.server.harness import make_endpoint, running_server, split_response
from tests.support.slow_http import read_response, trickle

TIMEOUT = 0.3


class BodyApp:
    """ASGI app that reads the whole body and answers its size; records what receive() said."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message: Message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        size = 0
        while True:
            message = await receive()
            self.seen.append(message["type"])
            if message["type"] == "http.disconnect":
                return
            size += len(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = str(size).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})


def post(path: str, length: int) -> bytes:
    return f"POST {path} HTTP/1.1\r\nHost: t\r\nContent-Length: {length}\r\n\r\n".encode()


async def test_a_slow_body_on_the_asgi_path_gets_408_and_the_app_sees_a_disconnect() -> None:
    app = BodyApp()
    async with running_server([make_endpoint()], app, access_log=False, body_timeout=TIMEOUT) as s:
        started = time.monotonic()
        data, closed, _ = await trickle(s.port, post("/api/upload", 100), b"x" * 100, 0.1, 3.0)
        elapsed = time.monotonic() - started
        await asyncio.sleep(0.05)
    status, headers, body = split_response(data)
    assert (status, body, headers["connection"]) == (408, b"Request Timeout", "close")
    assert closed
    assert TIMEOUT <= elapsed < TIMEOUT + 1.0
    assert app.seen[-1] == "http.disconnect"


async def test_bodies_in_time_keep_the_connection_alive_past_the_timeout() -> None:
    app = BodyApp()
    async with running_server([make_endpoint()], app, access_log=False, body_timeout=TIMEOUT) as s:
        reader, writer = await asyncio.open_connection("127.0.0.1", s.port)
        try:
            writer.write(post("/api/upload", 4) + b"ab")
            await asyncio.sleep(TIMEOUT / 3)
            writer.write(b"cd")
            data, closed = await read_response(reader, TIMEOUT * 2)
            assert split_response(data)[0::2] == (200, b"4")
            assert not closed  # the body timer was cancelled when the body completed
            writer.write(post("/hub/negotiate?negotiateVersion=1", 0))
            data, closed = await read_response(reader, 0.5)
            assert split_response(data)[0] == 200
            assert not closed  # no body: no timer, keep-alive as before
        finally:
            writer.close()


async def test_zero_disables_the_body_timeout() -> None:
    app = BodyApp()
    async with running_server([make_endpoint()], app, access_log=False, body_timeout=0) as s:
        data, closed, _ = await trickle(s.port, post("/api/upload", 8), b"12345678", 0.1, 1.5)
    assert split_response(data)[0::2] == (200, b"8")
    assert not closed


async def test_on_hub_endpoints_the_body_timeout_counts_from_admission() -> None:
    async def slow_auth(request: HttpRequestInfo) -> Principal | None:
        await asyncio.sleep(TIMEOUT * 2)  # e.g. a slow store lookup
        return Principal("ann")

    ep = make_endpoint(authenticate=slow_auth)
    async with running_server([ep], access_log=False, body_timeout=TIMEOUT) as s:
        # The body is sent at once but only read after the hook accepted the request.
        data, _, _ = await trickle(
            s.port, post("/hub/negotiate?negotiateVersion=1", 2), b"{}", 0, 2
        )
    assert split_response(data)[0] == 200
