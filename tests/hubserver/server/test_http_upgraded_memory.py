"""What an HTTP connection keeps once it became a WebSocket: nothing of the HTTP layer but
its request's headers, whose names are shared.

Every idle WebSocket keeps its ``HttpProtocol`` for its lifetime, so what that object holds is
paid once per connected dashboard (docs/benchmarks.md §8).
"""

from __future__ import annotations

import asyncio

import websockets

from hubserver.server.http import HttpProtocol, Request
from tests.hubserver.server.harness import make_endpoint, running_server

END = b"]}]}"


def _protocols(server: object) -> list[HttpProtocol]:
    state = server._state  # type: ignore[attr-defined]
    return list(state.connections)


async def test_an_upgraded_connection_keeps_no_parser_request_or_pipeline() -> None:
    async with (
        running_server([make_endpoint()]) as s,
        websockets.connect(f"ws://127.0.0.1:{s.port}/hub?access_token=secret") as ws,
    ):
        await ws.send("x")
        assert await ws.recv() == "x"
        (proto,) = _protocols(s)
        assert proto._raw is not None
        assert proto._parser is None
        assert proto._parsing is None and proto._parsing_cycle is None
        assert proto._url == b""
        assert proto._pipeline is None


async def test_a_keep_alive_connection_allocates_a_pipeline_only_when_requests_pipeline() -> None:
    # The negotiate document ends with the last transport's formats.
    negotiate = b"POST /hub/negotiate HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
    async with running_server([make_endpoint()]) as s:
        reader, writer = await asyncio.open_connection("127.0.0.1", s.port)
        try:
            writer.write(negotiate)
            assert (await reader.readuntil(END)).startswith(b"HTTP/1.1 200")
            (proto,) = _protocols(s)
            assert proto._pipeline is None
            writer.write(negotiate * 3)
            answers = b""
            while answers.count(END) < 3:
                answers += await asyncio.wait_for(reader.read(65536), 2)
            assert answers.count(b"HTTP/1.1 200 OK") == 3
            assert proto._pipeline is not None and not proto._pipeline
        finally:
            writer.close()


def test_requests_share_header_names_but_not_values() -> None:
    # The hub keeps each connection's request headers for its lifetime.
    first, second = Request(), Request()
    for req, key in ((first, b"k1"), (second, b"k2")):
        req.headers = [(b"upgrade", b"websocket"), (b"sec-websocket-key", key)]
    a, b = first.header_map(), second.header_map()
    assert a == {"upgrade": "websocket", "sec-websocket-key": "k1"}
    for x, y in zip(a, b, strict=True):
        assert x is y
    long_name = b"x-" + b"n" * 100  # not shared: the set of shared names stays small
    first.headers = second.headers = [(long_name, b"v")]
    assert next(iter(first.header_map())) is not next(iter(second.header_map()))
