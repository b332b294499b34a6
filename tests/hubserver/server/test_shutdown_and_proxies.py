"""Graceful stop, SO_REUSEPORT, keep-alive timeout and trusted X-Forwarded-* headers."""

from __future__ import annotations

import asyncio
import socket

import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from hubserver.server import HubServer
from hubserver.server.proxy import TrustedProxies
from tests.hubserver.server.harness import EchoApp, make_endpoint, raw_exchange, running_server
from tests.hubserver.server.test_asgi import make_app


async def test_graceful_stop_asks_applications_to_close_then_closes_with_1000() -> None:
    EchoApp.instances.clear()
    ep = make_endpoint()
    server = HubServer([ep], None, "127.0.0.1", 0)
    await server.start()
    ws = await websockets.connect(f"ws://127.0.0.1:{server.port}/hub")
    await ws.send("x")
    await ws.recv()
    await server.stop(grace=2)
    assert await ws.recv() == "bye"
    with pytest.raises(ConnectionClosed) as info:
        await ws.recv()
    assert info.value.rcvd is not None and info.value.rcvd.code == 1000
    assert ("shutdown", None) in EchoApp.instances[-1].events
    assert ep.connection_count() == 0
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", server.port)


async def test_stop_aborts_connections_that_do_not_drain_within_grace() -> None:
    class Stubborn(EchoApp):
        def server_shutdown(self) -> None:  # ignores the request
            self.events.append(("shutdown", None))

    from hubserver.connections.endpoint import ConnectionEndpoint

    ep = ConnectionEndpoint("/hub", Stubborn)
    server = HubServer([ep], None, "127.0.0.1", 0)
    await server.start()
    ws = await websockets.connect(f"ws://127.0.0.1:{server.port}/hub")
    await ws.send("x")
    await ws.recv()
    loop = asyncio.get_running_loop()
    started = loop.time()
    await server.stop(grace=0.1)
    assert loop.time() - started < 1.5
    with pytest.raises(ConnectionClosed):
        await asyncio.wait_for(ws.recv(), 2)
    assert ep.connection_count() == 0


async def test_reuse_port_lets_two_servers_share_a_port() -> None:
    first = HubServer([make_endpoint()], None, "127.0.0.1", 0, reuse_port=True)
    await first.start()
    second = HubServer([make_endpoint()], None, "127.0.0.1", first.port, reuse_port=True)
    await second.start()
    try:
        assert second.port == first.port
        opt = first.sockets[0].getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT)
        assert opt != 0
    finally:
        await second.stop(0.1)
        await first.stop(0.1)


async def test_idle_keep_alive_connections_are_closed_after_the_timeout() -> None:
    async with running_server([make_endpoint()], keep_alive_timeout=0.05) as s:
        reader, writer = await asyncio.open_connection("127.0.0.1", s.port)
        writer.write(b"POST /hub/negotiate HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        data = await asyncio.wait_for(reader.read(), 2)  # returns at EOF
        writer.close()
    assert data.startswith(b"HTTP/1.1 200 OK")


def test_trusted_proxy_resolution() -> None:
    proxies = TrustedProxies(["10.0.0.0/8", "127.0.0.1"])
    headers = {
        "x-forwarded-for": "6.6.6.6, 1.2.3.4, 10.0.0.5",
        "x-forwarded-proto": "https",
        "x-forwarded-host": "public.example",
    }
    assert proxies.resolve(("127.0.0.1", 5), "http", headers) == (
        ("1.2.3.4", 0),
        "https",
        "public.example",
    )
    assert proxies.resolve(("8.8.8.8", 5), "http", headers) == (("8.8.8.8", 5), "http", None)
    assert not TrustedProxies([])
    assert TrustedProxies(["*"]).is_trusted("9.9.9.9")


@pytest.mark.parametrize(
    ("trusted", "expected"),
    [
        ((), {"client": "127.0.0.1", "scheme": "http"}),
        (("127.0.0.1",), {"client": "203.0.113.9", "scheme": "https", "host": "public.example"}),
    ],
)
async def test_forwarded_headers_only_from_trusted_proxies(trusted, expected) -> None:
    async with (
        running_server([make_endpoint()], make_app([]), trusted_proxies=trusted) as s,
        httpx.AsyncClient() as c,
    ):
        r = await c.get(
            f"http://127.0.0.1:{s.port}/api/items/1",
            headers={
                "x-forwarded-for": "203.0.113.9",
                "x-forwarded-proto": "https",
                "x-forwarded-host": "public.example",
            },
        )
    doc = r.json()
    for key, value in expected.items():
        assert doc[key] == value


async def test_forwarded_proto_and_host_count_for_same_origin_checks() -> None:
    async with running_server([make_endpoint()], trusted_proxies=("127.0.0.1",)) as s:
        data = await raw_exchange(
            s.port,
            (
                b"POST /hub/negotiate HTTP/1.1\r\nHost: internal:8080\r\nContent-Length: 0\r\n"
                b"Origin: https://public.example\r\nX-Forwarded-Proto: https\r\n"
                b"X-Forwarded-Host: public.example\r\nConnection: close\r\n\r\n"
            ),
            read_until_close=True,
        )
    assert data.startswith(b"HTTP/1.1 200 OK")


async def test_a_stalled_request_head_is_dropped_after_the_keep_alive_timeout() -> None:
    async with running_server([make_endpoint()], keep_alive_timeout=0.05) as s:
        reader, writer = await asyncio.open_connection("127.0.0.1", s.port)
        writer.write(b"GET /hub HTTP/1.1\r\nHost: x\r\n")  # head never completed
        assert await asyncio.wait_for(reader.read(), 2) == b""
        writer.close()


async def test_an_endless_post_body_is_refused_with_413_without_reading_it_all() -> None:
    from hubserver.options import ConnectionOptions

    ep = make_endpoint(options=ConnectionOptions(application_max_buffer_size=10))
    async with running_server([ep]) as s:
        reader, writer = await asyncio.open_connection("127.0.0.1", s.port)
        writer.write(
            b"POST /hub?id=x HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n" + b"a" * 100
        )
        data = await asyncio.wait_for(reader.read(), 2)
        writer.close()
    assert data.startswith(b"HTTP/1.1 413 ") and data.endswith(b"Payload Too Large")


async def test_serve_runs_until_request_stop_then_stops_gracefully() -> None:
    server = HubServer([make_endpoint()], None, "127.0.0.1", 0)
    task = asyncio.ensure_future(server.serve(install_signal_handlers=False, grace=0.1))
    for _ in range(100):
        if server.sockets:
            break
        await asyncio.sleep(0.01)
    async with httpx.AsyncClient() as c:
        assert (await c.post(f"http://127.0.0.1:{server.port}/hub/negotiate")).status_code == 200
    server.request_stop()
    await asyncio.wait_for(task, 2)
    assert not server.sockets or all(s.fileno() == -1 for s in server.sockets)
