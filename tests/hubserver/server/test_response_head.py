"""HTTP/1.1 response-head rules over raw sockets: HTTP/1.0 clients never get chunked encoding
and get their keep-alive confirmed; oversized request heads get 431; ``Expect: 100-continue``
on hub POSTs is answered only once the request is authenticated; response headers carrying
CR/LF (from the ASGI application or an endpoint) are refused with a 500, never written."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx
import pytest

from hubserver.connections.context import HttpRequestInfo, Principal
from hubserver.connections.endpoint import ConnectionEndpoint
from hubserver.options import ConnectionOptions
from hubserver.transports.base import HttpExchange
from tests.hubserver.server.harness import (
    EchoApp,
    make_endpoint,
    raw_exchange,
    running_server,
    split_response,
    token_auth,
)
from tests.support.slow_http import read_response

QUIET = 0.3


def client_for(port: int) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5)


async def new_token(c: httpx.AsyncClient, headers: dict[str, str] | None = None) -> str:
    r = await c.post("/hub/negotiate?negotiateVersion=1", headers=headers or {})
    assert r.status_code == 200, r.text
    return str(r.json()["connectionToken"])


async def open_raw(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port)


async def read_head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    """One response head: (status, lower-cased headers, the raw head)."""
    raw = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 2)
    status, headers, _ = split_response(raw)
    return status, headers, raw


# --- HTTP/1.0 ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "framing", "first", "event", "end"),
    [
        # HTTP/1.0 has no chunked encoding: raw bytes, the stream ends with the connection.
        ("1.0", None, b":\r\n", b"data: hello\r\n\r\n", b""),
        ("1.1", "chunked", b"3\r\n:\r\n\r\n", b"f\r\ndata: hello\r\n\r\n\r\n", b"0\r\n\r\n"),
    ],
)
async def test_event_streams_are_chunked_for_http_1_1_only(
    version: str, framing: str | None, first: bytes, event: bytes, end: bytes
) -> None:
    async with running_server([make_endpoint()], access_log=False) as s, client_for(s.port) as c:
        token = await new_token(c)
        reader, writer = await open_raw(s.port)
        try:
            writer.write(
                f"GET /hub?id={token} HTTP/{version}\r\nHost: t\r\n"
                "Accept: text/event-stream\r\n\r\n".encode()
            )
            status, headers, _ = await read_head(reader)
            assert (status, headers["content-type"]) == (200, "text/event-stream")
            assert (headers.get("transfer-encoding"), headers["connection"]) == (framing, "close")
            assert await asyncio.wait_for(reader.readexactly(len(first)), 2) == first
            assert (await c.post(f"/hub?id={token}", content=b"hello")).status_code == 200
            assert await asyncio.wait_for(reader.readexactly(len(event)), 2) == event
            await c.post(f"/hub?id={token}", content=b"close")
            rest, closed = await read_response(reader, 2)
        finally:
            writer.close()
    assert (rest, closed) == (end, True)


async def test_http_1_0_keep_alive_is_confirmed_and_honoured() -> None:
    request = (
        b"POST /hub/negotiate?negotiateVersion=1 HTTP/1.0\r\nHost: t\r\n"
        b"Connection: keep-alive\r\nContent-Length: 0\r\n\r\n"
    )
    async with running_server([make_endpoint()], access_log=False) as s:
        reader, writer = await open_raw(s.port)
        try:
            for _ in range(2):  # the same socket carries a second request
                writer.write(request)
                status, headers, _ = await read_head(reader)
                assert (status, headers["connection"]) == (200, "keep-alive")
                await reader.readexactly(int(headers["content-length"]))
        finally:
            writer.close()
        data = await raw_exchange(
            s.port,
            b"POST /hub/negotiate?negotiateVersion=1 HTTP/1.0\r\nHost: t\r\n"
            b"Content-Length: 0\r\n\r\n",
            read_until_close=True,
        )
    status, headers, _ = split_response(data)
    assert (status, headers["connection"]) == (200, "close")


# --- 431 ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "request_head",
    [
        b"GET /hub?x=" + b"a" * (70 * 1024) + b" HTTP/1.1\r\nHost: t\r\n\r\n",
        b"GET /hub HTTP/1.1\r\nHost: t\r\nX-Big: " + b"b" * (70 * 1024) + b"\r\n\r\n",
        b"GET /hub HTTP/1.1\r\nHost: t\r\n"
        + b"".join(b"X-H%d: %s\r\n" % (i, b"c" * 1000) for i in range(70))
        + b"\r\n",
    ],
    ids=["long-target", "long-header", "many-headers"],
)
async def test_an_oversized_request_head_is_431_and_closed(request_head: bytes) -> None:
    async with running_server([make_endpoint()], access_log=False) as s:
        data = await raw_exchange(s.port, request_head, read_until_close=True)
    status, headers, body = split_response(data)
    assert data.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")
    assert (status, headers["connection"], body) == (
        431,
        "close",
        b"Request Header Fields Too Large",
    )


async def test_a_malformed_request_is_still_400() -> None:
    async with running_server([make_endpoint()], access_log=False) as s:
        data = await raw_exchange(s.port, b"NOT HTTP AT ALL\r\n\r\n", read_until_close=True)
    assert split_response(data)[0] == 400


# --- Expect: 100-continue on hub POSTs --------------------------------------------------------


def expect_post(target: str, token: str, length: int, version: str = "1.1") -> bytes:
    return (
        f"POST {target} HTTP/{version}\r\nHost: t\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Length: {length}\r\nExpect: 100-continue\r\n\r\n"
    ).encode()


async def test_100_continue_is_sent_once_the_post_is_authenticated_then_the_body_is_read() -> None:
    ep = make_endpoint(authenticate=token_auth)
    async with running_server([ep], access_log=False) as s, client_for(s.port) as c:
        token = await new_token(c, {"authorization": "Bearer alice"})
        await c.get(f"/hub?id={token}", headers={"authorization": "Bearer alice"})  # 1st poll
        reader, writer = await open_raw(s.port)
        try:
            writer.write(expect_post(f"/hub?id={token}", "alice", 4))
            interim, _ = await read_response(reader, QUIET)
            assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
            writer.write(b"ping")
            status, headers, _ = await read_head(reader)
            assert status == 200
        finally:
            writer.close()
        poll = await c.get(f"/hub?id={token}", headers={"authorization": "Bearer alice"})
        assert poll.content == b"ping"


async def test_a_refused_post_gets_its_401_without_100_continue() -> None:
    ep = make_endpoint(authenticate=token_auth)
    async with running_server([ep], access_log=False) as s:
        data = await raw_exchange(
            s.port, expect_post("/hub?id=whatever", "bad", 4), read_until_close=True
        )
    assert data.startswith(b"HTTP/1.1 401 ")
    assert b"100 Continue" not in data


async def test_negotiate_with_expect_gets_100_continue_then_its_answer() -> None:
    ep = make_endpoint(authenticate=token_auth)
    async with running_server([ep], access_log=False) as s:
        reader, writer = await open_raw(s.port)
        try:
            writer.write(expect_post("/hub/negotiate?negotiateVersion=1", "alice", 2))
            interim, _ = await read_response(reader, QUIET)
            assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
            writer.write(b"{}")
            status, _, _ = await read_head(reader)
        finally:
            writer.close()
    assert status == 200


async def test_an_http_1_0_client_never_gets_100_continue() -> None:
    ep = make_endpoint(authenticate=token_auth)
    async with running_server([ep], access_log=False) as s:
        reader, writer = await open_raw(s.port)
        try:
            writer.write(expect_post("/hub/negotiate?negotiateVersion=1", "alice", 2, "1.0"))
            interim, _ = await read_response(reader, QUIET)
            writer.write(b"{}")
            data, _ = await read_response(reader, 2)
        finally:
            writer.close()
    assert interim == b""
    assert data.startswith(b"HTTP/1.1 200 OK\r\n")


# --- CR/LF in response headers --------------------------------------------------------------


class HeaderApp:
    """ASGI app that reads the request body, then answers with the headers it is given and
    a body."""

    def __init__(self, headers: list[tuple[bytes, bytes]]) -> None:
        self.headers = headers
        self.body_sent = False

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            raise RuntimeError("no lifespan support")  # tolerated, as by uvicorn
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 200, "headers": self.headers})
        await send({"type": "http.response.body", "body": b"secret body"})
        self.body_sent = True


@pytest.mark.parametrize(
    "bad",
    [
        (b"x-trace", b"a\r\nSet-Cookie: session=forged"),
        (b"x-trace", b"a\nSet-Cookie: session=forged"),
        (b"x-trace", b"a\rb"),
        (b"set-cookie\r\nx-evil", b"1"),
        (b"bad name", b"1"),
    ],
)
async def test_asgi_headers_with_cr_or_lf_are_refused_with_500_and_one_log_line(
    bad: tuple[bytes, bytes], caplog: pytest.LogCaptureFixture
) -> None:
    app = HeaderApp([(b"content-type", b"text/plain"), bad])
    caplog.set_level(logging.INFO, logger="hubserver")
    async with running_server([make_endpoint()], app, access_log=False) as s:
        data = await raw_exchange(
            s.port, b"GET /api/x HTTP/1.1\r\nHost: t\r\n\r\n", read_until_close=True
        )
    status, headers, body = split_response(data)
    assert (status, body) == (500, b"Internal Server Error")
    assert b"forged" not in data and b"secret body" not in data and b"x-evil" not in data
    assert app.body_sent  # the application was not broken, only its response refused
    lines = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(lines) == 1
    assert lines[0].getMessage().startswith("http.invalid_response_header method=GET path=/api/x")
    assert b"forged" not in lines[0].getMessage().encode()


async def test_asgi_headers_that_are_fine_pass_unchanged() -> None:
    app = HeaderApp([(b"content-type", b"text/plain"), (b"x-trace", b"a b\tc")])
    async with running_server([make_endpoint()], app, access_log=False) as s:
        data = await raw_exchange(s.port, b"GET /api/x HTTP/1.1\r\nHost: t\r\n\r\n")
    status, headers, body = split_response(data)
    assert (status, headers["x-trace"], body) == (200, "a b\tc", b"secret body")


class HeaderAddingEndpoint(ConnectionEndpoint):
    """An endpoint whose responses carry an application header (as a response hook would)."""

    value = ""

    async def admit(
        self, request: HttpRequestInfo, exchange: HttpExchange, *, negotiate: bool
    ) -> tuple[bool, Principal | None]:
        exchange.add_header("X-Trace", self.value)
        return await super().admit(request, exchange, negotiate=negotiate)


async def test_endpoint_headers_with_cr_or_lf_are_refused_with_500(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ep = HeaderAddingEndpoint("/hub", EchoApp, ConnectionOptions(), None)
    caplog.set_level(logging.INFO, logger="hubserver")
    async with running_server([ep], access_log=False) as s, client_for(s.port) as c:
        HeaderAddingEndpoint.value = "ok"
        good = await c.post("/hub/negotiate?negotiateVersion=1")
        assert (good.status_code, good.headers["x-trace"]) == (200, "ok")
        HeaderAddingEndpoint.value = "a\r\nSet-Cookie: session=forged"
        bad = await c.post("/hub/negotiate?negotiateVersion=1")
    assert (bad.status_code, bad.text) == (500, "Internal Server Error")
    assert "set-cookie" not in bad.headers and "x-trace" not in bad.headers
    lines = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.getMessage().split(" ")[0] for r in lines] == ["http.invalid_response_header"]


async def test_an_event_stream_refused_for_its_headers_ends_its_connection() -> None:
    ep = HeaderAddingEndpoint("/hub", EchoApp, ConnectionOptions(), None)
    EchoApp.instances.clear()
    async with running_server([ep], access_log=False) as s, client_for(s.port) as c:
        HeaderAddingEndpoint.value = "ok"
        token = await new_token(c)
        HeaderAddingEndpoint.value = "caf\u20ac"  # not Latin-1: cannot be written either
        r = await c.get(f"/hub?id={token}", headers={"accept": "text/event-stream"})
        assert (r.status_code, r.text) == (500, "Internal Server Error")
        app = EchoApp.instances[-1]
        await asyncio.wait_for(app.lost.wait(), 2)  # the connection did not linger
        HeaderAddingEndpoint.value = "ok"
        assert (await c.post(f"/hub?id={token}", content=b"x")).status_code == 404


async def test_the_asgi_path_confirms_http_1_0_keep_alive_and_decides_the_connection_header() -> (
    None
):
    app = HeaderApp([(b"content-type", b"text/plain"), (b"connection", b"upgrade")])
    request = b"GET /api/x HTTP/1.0\r\nHost: t\r\nConnection: keep-alive\r\n\r\n"
    async with running_server([make_endpoint()], app, access_log=False) as s:
        reader, writer = await open_raw(s.port)
        try:
            for _ in range(2):
                writer.write(request)
                status, headers, raw = await read_head(reader)
                assert (status, headers["connection"]) == (200, "keep-alive")
                assert raw.lower().count(b"connection:") == 1
                assert await reader.readexactly(11) == b"secret body"
        finally:
            writer.close()


async def test_the_asgi_path_never_sends_100_continue_to_http_1_0() -> None:
    app = HeaderApp([(b"content-type", b"text/plain")])
    async with running_server([make_endpoint()], app, access_log=False) as s:
        reader, writer = await open_raw(s.port)
        try:
            writer.write(
                b"POST /api/x HTTP/1.0\r\nHost: t\r\nExpect: 100-continue\r\n"
                b"Content-Length: 2\r\n\r\n"
            )
            interim, _ = await read_response(reader, QUIET)
            writer.write(b"{}")
            data, _ = await read_response(reader, 2)
        finally:
            writer.close()
    assert interim == b""
    assert split_response(data)[0] == 200
