"""Transport requests at {path} over real sockets: every status and text of
docs/spec/transports.md §2.1-§2.5."""

from __future__ import annotations

import asyncio

import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

from hubserver.options import ConnectionOptions
from hubserver.transports.base import TransportType
from tests.hubserver.server.harness import (
    EchoApp,
    make_endpoint,
    raw_exchange,
    running_server,
    split_response,
)


async def new_token(client: httpx.AsyncClient, version: int = 1) -> str:
    doc = (await client.post(f"/hub/negotiate?negotiateVersion={version}")).json()
    return doc.get("connectionToken", doc["connectionId"])


def client_for(port: int) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5)


# --- shared error answers (docs/spec/transports.md §2.1) ------------------------------------------


@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
async def test_missing_id_is_400_connection_id_required(method: str) -> None:
    async with running_server([make_endpoint()]) as s, client_for(s.port) as c:
        r = await c.request(method, "/hub")
    assert (r.status_code, r.text) == (400, "Connection ID required")
    assert r.headers["content-type"] == "text/plain"


@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
async def test_unknown_id_is_404_no_connection_with_that_id(method: str) -> None:
    async with running_server([make_endpoint()]) as s, client_for(s.port) as c:
        r = await c.request(method, "/hub?id=nope")
    assert (r.status_code, r.text) == (404, "No Connection with that ID")


async def test_unknown_id_is_404_before_websocket_upgrade() -> None:
    async with running_server([make_endpoint()]) as s:
        with pytest.raises(InvalidStatus) as info:
            async with websockets.connect(f"ws://127.0.0.1:{s.port}/hub?id=nope"):
                pass
    assert info.value.response.status_code == 404
    assert info.value.response.body == b"No Connection with that ID"


async def test_sse_unknown_id_is_404() -> None:
    async with running_server([make_endpoint()]) as s, client_for(s.port) as c:
        r = await c.get("/hub?id=nope", headers={"accept": "text/event-stream"})
    assert (r.status_code, r.text) == (404, "No Connection with that ID")


@pytest.mark.parametrize(
    ("enabled", "headers", "name"),
    [
        (TransportType.LONG_POLLING, {"accept": "text/event-stream"}, "ServerSentEvents"),
        (TransportType.WEB_SOCKETS, {}, "LongPolling"),
    ],
)
async def test_disabled_transport_is_404_with_its_name(enabled, headers, name) -> None:
    ep = make_endpoint(options=ConnectionOptions(transports=enabled))
    async with running_server([ep]) as s, client_for(s.port) as c:
        token = await new_token(c)
        r = await c.get(f"/hub?id={token}", headers=headers)
    assert (r.status_code, r.text) == (
        404,
        f"{name} transport not supported by this end point type",
    )


async def test_disabled_websockets_is_404_before_upgrade() -> None:
    ep = make_endpoint(options=ConnectionOptions(transports=TransportType.LONG_POLLING))
    async with running_server([ep]) as s:
        with pytest.raises(InvalidStatus) as info:
            async with websockets.connect(f"ws://127.0.0.1:{s.port}/hub"):
                pass
    assert info.value.response.status_code == 404
    assert info.value.response.body == b"WebSockets transport not supported by this end point type"


async def test_changing_transport_mid_connection_is_400() -> None:
    async with running_server([make_endpoint()]) as s, client_for(s.port) as c:
        token = await new_token(c)
        assert (await c.get(f"/hub?id={token}")).status_code == 200  # LP started
        r = await c.get(f"/hub?id={token}", headers={"accept": "text/event-stream"})
        assert (r.status_code, r.text) == (400, "Cannot change transports mid-connection")
        with pytest.raises(InvalidStatus) as info:
            async with websockets.connect(f"ws://127.0.0.1:{s.port}/hub?id={token}"):
                pass
        assert info.value.response.status_code == 400


async def test_other_methods_are_405() -> None:
    async with running_server([make_endpoint()]) as s, client_for(s.port) as c:
        r = await c.put("/hub?id=x")
    assert r.status_code == 405


# --- WebSockets (docs/spec/transports.md §2.2) ----------------------------------------------------


async def test_websocket_echoes_text_and_binary_frames() -> None:
    async with running_server([make_endpoint()]) as s, client_for(s.port) as c:
        token = await new_token(c)
        async with websockets.connect(f"ws://127.0.0.1:{s.port}/hub?id={token}") as ws:
            await ws.send("héllo")
            assert await ws.recv() == "héllo"
            await ws.send(b"\x00\x01\x02")
            assert await ws.recv() == b"\x00\x01\x02"
            pong = await ws.ping(b"x")
            await asyncio.wait_for(pong, 2)


async def test_websocket_without_id_creates_a_connection_skip_negotiation() -> None:
    ep = make_endpoint()
    async with running_server([ep]) as s, websockets.connect(f"ws://127.0.0.1:{s.port}/hub") as ws:
        await ws.send("x")
        assert await ws.recv() == "x"
        assert ep.connection_count() == 1
        conn = ep.connections()[0]
        assert conn.transport is TransportType.WEB_SOCKETS
        assert conn.connection_token == conn.connection_id


async def test_second_concurrent_websocket_is_409() -> None:
    async with running_server([make_endpoint()]) as s, client_for(s.port) as c:
        token = await new_token(c)
        async with websockets.connect(f"ws://127.0.0.1:{s.port}/hub?id={token}"):
            with pytest.raises(InvalidStatus) as info:
                async with websockets.connect(f"ws://127.0.0.1:{s.port}/hub?id={token}"):
                    pass
    assert info.value.response.status_code == 409


async def test_server_close_sends_close_1000() -> None:
    async with (
        running_server([make_endpoint()]) as s,
        websockets.connect(f"ws://127.0.0.1:{s.port}/hub") as ws,
    ):
        await ws.send("close")
        with pytest.raises(ConnectionClosed) as info:
            await ws.recv()
    assert info.value.rcvd is not None and info.value.rcvd.code == 1000


async def test_client_close_disposes_the_connection() -> None:
    ep = make_endpoint()
    EchoApp.instances.clear()
    async with running_server([ep]) as s:
        async with websockets.connect(f"ws://127.0.0.1:{s.port}/hub") as ws:
            await ws.send("x")
            await ws.recv()
        app = EchoApp.instances[-1]
        await asyncio.wait_for(app.lost.wait(), 2)
        assert ep.connection_count() == 0
        assert app.events[-1] == ("lost", None)


async def test_too_big_message_closes_with_1009() -> None:
    ep = make_endpoint(options=ConnectionOptions(websocket_max_message_size=10))
    async with running_server([ep]) as s, websockets.connect(f"ws://127.0.0.1:{s.port}/hub") as ws:
        await ws.send("x" * 11)
        with pytest.raises(ConnectionClosed) as info:
            await ws.recv()
    assert info.value.rcvd is not None and info.value.rcvd.code == 1009


async def test_post_on_websocket_connection_is_405() -> None:
    async with running_server([make_endpoint()]) as s, client_for(s.port) as c:
        token = await new_token(c)
        async with websockets.connect(f"ws://127.0.0.1:{s.port}/hub?id={token}"):
            r = await c.post(f"/hub?id={token}", content=b"x")
    assert (r.status_code, r.text) == (
        405,
        "POST requests are not allowed for WebSocket connections.",
    )


async def test_bad_websocket_version_is_426() -> None:
    async with running_server([make_endpoint()]) as s:
        data = await raw_exchange(
            s.port,
            (
                b"GET /hub HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n"
            ),
        )
    status, headers, _ = split_response(data)
    assert status == 426 and headers["sec-websocket-version"] == "13"


async def test_frames_sent_right_after_the_upgrade_request_are_not_lost() -> None:
    from tests.hubserver.transports.test_websocket_frames import masked

    async with running_server([make_endpoint()]) as s:
        data = await raw_exchange(
            s.port,
            (
                b"GET /hub HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
                + masked(0x1, b"early")
            ),
        )
    head, _, rest = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101 Switching Protocols")
    assert b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in head
    assert rest == b"\x81\x05early"


# --- Server-Sent Events (docs/spec/transports.md §2.3) --------------------------------------------


async def test_sse_stream_format_and_post_echo() -> None:
    async with running_server([make_endpoint()]) as s, client_for(s.port) as c:
        token = await new_token(c)
        async with c.stream(
            "GET", f"/hub?id={token}", headers={"accept": "text/event-stream"}
        ) as stream:
            assert stream.status_code == 200
            assert stream.headers["content-type"] == "text/event-stream"
            assert stream.headers["cache-control"] == "no-cache,no-store"
            assert stream.headers["pragma"] == "no-cache"
            assert stream.headers["content-encoding"] == "identity"
            chunks = stream.aiter_raw()
            assert await anext(chunks) == b":\r\n"
            r = await c.post(f"/hub?id={token}", content=b'{"a":1}\x1e')
            assert (r.status_code, r.content) == (200, b"")
            assert await anext(chunks) == b'data: {"a":1}\x1e\r\n\r\n'
            with pytest.raises(InvalidStatus):
                async with websockets.connect(f"ws://127.0.0.1:{s.port}/hub?id={token}"):
                    pass
            second = await c.get(f"/hub?id={token}", headers={"accept": "text/event-stream"})
            assert second.status_code == 409
            await c.post(f"/hub?id={token}", content=b"close")
            rest = b"".join([chunk async for chunk in chunks])
            assert rest == b""  # the stream ended cleanly (chunked terminator consumed)
        r = await c.post(f"/hub?id={token}", content=b"x")
        assert r.status_code == 404


# --- Long polling (docs/spec/transports.md §2.4, §2.5) --------------------------------------------


async def test_long_polling_first_poll_data_timeout_and_no_cache_headers() -> None:
    ep = make_endpoint(options=ConnectionOptions(long_poll_timeout=0.3))
    async with running_server([ep]) as s, client_for(s.port) as c:
        token = await new_token(c)
        first = await c.get(f"/hub?id={token}&_=1")
        assert (first.status_code, first.content) == (200, b"")
        assert first.headers["content-type"] == "application/octet-stream"
        assert first.headers["content-length"] == "0"
        assert first.headers["cache-control"] == "no-cache, no-store"
        assert first.headers["pragma"] == "no-cache"
        assert first.headers["expires"] == "Thu, 01 Jan 1970 00:00:00 GMT"
        poll = asyncio.ensure_future(c.get(f"/hub?id={token}"))
        await asyncio.sleep(0.01)
        async with client_for(s.port) as c2:
            assert (await c2.post(f"/hub?id={token}", content=b"ping")).status_code == 200
        r = await poll
        assert (r.status_code, r.content) == (200, b"ping")
        idle = await c.get(f"/hub?id={token}")
        assert (idle.status_code, idle.content) == (200, b"")  # poll timeout


async def test_long_polling_ends_with_204_after_close_then_404() -> None:
    async with running_server([make_endpoint()]) as s, client_for(s.port) as c:
        token = await new_token(c)
        await c.get(f"/hub?id={token}")
        await c.post(f"/hub?id={token}", content=b"close")
        r = await c.get(f"/hub?id={token}")
        assert r.status_code == 204
        assert (await c.get(f"/hub?id={token}")).status_code == 404


async def test_displaced_poll_gets_204() -> None:
    async with (
        running_server([make_endpoint()]) as s,
        client_for(s.port) as c,
        client_for(s.port) as c2,
    ):
        token = await new_token(c)
        await c.get(f"/hub?id={token}")
        old = asyncio.ensure_future(c.get(f"/hub?id={token}"))
        await asyncio.sleep(0.05)
        new = asyncio.ensure_future(c2.get(f"/hub?id={token}"))
        assert (await old).status_code == 204
        await c2.post(f"/hub?id={token}", content=b"z")
        assert (await new).content == b"z"


async def test_delete_is_202_and_completes_a_pending_poll_with_204() -> None:
    EchoApp.instances.clear()
    ep = make_endpoint()
    async with running_server([ep]) as s, client_for(s.port) as c, client_for(s.port) as c2:
        token = await new_token(c)
        await c.get(f"/hub?id={token}")
        poll = asyncio.ensure_future(c.get(f"/hub?id={token}"))
        await asyncio.sleep(0.05)
        r = await c2.delete(f"/hub?id={token}")
        assert (r.status_code, r.content) == (202, b"")
        assert (await poll).status_code == 204
        assert ep.connection_count() == 0
        await asyncio.wait_for(EchoApp.instances[-1].lost.wait(), 1)


async def test_delete_on_non_long_polling_connection_is_400() -> None:
    async with running_server([make_endpoint()]) as s, client_for(s.port) as c:
        token = await new_token(c)
        async with websockets.connect(f"ws://127.0.0.1:{s.port}/hub?id={token}"):
            r = await c.delete(f"/hub?id={token}")
    assert (r.status_code, r.text) == (
        400,
        "Cannot terminate this connection using the DELETE endpoint.",
    )


async def test_oversized_post_is_413() -> None:
    ep = make_endpoint(options=ConnectionOptions(application_max_buffer_size=4))
    async with running_server([ep]) as s, client_for(s.port) as c:
        token = await new_token(c)
        await c.get(f"/hub?id={token}")
        r = await c.post(f"/hub?id={token}", content=b"12345")
    assert r.status_code == 413


async def test_disconnect_sweep_disposes_a_long_polling_client_that_stopped_polling() -> None:
    now = [0.0]
    ep = make_endpoint(
        options=ConnectionOptions(disconnect_timeout=15), clock=lambda: now[0], sweep_interval=0.01
    )
    async with running_server([ep]) as s, client_for(s.port) as c:
        token = await new_token(c)
        await c.get(f"/hub?id={token}")
        await asyncio.sleep(0.03)
        assert ep.connection_count() == 1
        now[0] = 15.0
        for _ in range(100):
            if ep.connection_count() == 0:
                break
            await asyncio.sleep(0.01)
        assert ep.connection_count() == 0
        assert (await c.get(f"/hub?id={token}")).status_code == 404


async def test_data_posted_before_the_first_poll_reaches_the_application() -> None:
    # signalrcore's long polling POSTs its handshake before its first GET.
    EchoApp.instances.clear()
    async with running_server([make_endpoint()]) as s, client_for(s.port) as c:
        token = await new_token(c)
        assert (await c.post(f"/hub?id={token}", content=b"early")).status_code == 200
        assert (await c.get(f"/hub?id={token}")).content == b""  # first poll
        assert (await c.get(f"/hub?id={token}")).content == b"early"  # echoed by the app
    assert EchoApp.instances[-1].events[0] == ("data", b"early")


async def test_sse_response_closes_the_socket_when_the_stream_ends() -> None:
    async with running_server([make_endpoint()]) as s, client_for(s.port) as c:
        token = await new_token(c)
        reader, writer = await asyncio.open_connection("127.0.0.1", s.port)
        writer.write(
            f"GET /hub?id={token} HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n".encode()
        )
        await writer.drain()
        await asyncio.sleep(0.05)
        await c.post(f"/hub?id={token}", content=b"close")
        data = await asyncio.wait_for(reader.read(), 2)  # EOF: the server closed the socket
        writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    assert b"Transfer-Encoding: chunked" in head and b"Connection: close" in head
    assert body == b"3\r\n:\r\n\r\n0\r\n\r\n"
