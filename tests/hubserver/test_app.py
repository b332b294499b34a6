"""map_hub end to end: HubServer on 127.0.0.1, the `websockets` client doing the SignalR
handshake by hand (docs/spec/transports.md §2.2, docs/spec/handshake.md §3.2,
docs/spec/hub-protocol.md §3.7)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
import pytest
import websockets
from websockets.asyncio.client import connect

from hubserver import (
    AuthenticationFailed,
    ConnectionOptions,
    HttpRequestInfo,
    Hub,
    HubServer,
    InMemoryLifetimeManager,
    MappedHub,
    Principal,
    map_hub,
)
from hubserver.protocol.messages import CompletionMessage, InvocationMessage
from hubserver.protocol.registry import MESSAGEPACK

RS = "\x1e"


class EchoHub(Hub):
    async def echo(self, message: str) -> str:
        return message

    async def join(self, group: str) -> None:
        await self.groups.add(self.context.connection_id, group)

    async def count(self, n: int) -> AsyncIterator[int]:
        for i in range(n):
            yield i

    async def who(self) -> str | None:
        return self.context.user_id


@pytest.fixture
async def served() -> AsyncIterator[tuple[MappedHub, int]]:
    mapped = map_hub("/hubs/echo", EchoHub)
    server = HubServer([mapped.endpoint], None, "127.0.0.1", 0, access_log=False)
    await mapped.start()
    await server.start()
    try:
        yield mapped, server.port
    finally:
        await server.stop(grace=1.0)
        await mapped.stop(timeout=1.0)


@pytest.fixture
async def served_stateful() -> AsyncIterator[tuple[MappedHub, int]]:
    mapped = map_hub(
        "/hubs/echo", EchoHub, connection_options=ConnectionOptions(allow_stateful_reconnects=True)
    )
    server = HubServer([mapped.endpoint], None, "127.0.0.1", 0, access_log=False)
    await server.start()
    try:
        yield mapped, server.port
    finally:
        await server.stop(grace=1.0)
        await mapped.stop(timeout=1.0)


async def _recv_records(ws, count: int) -> list[dict]:
    records: list[dict] = []
    while len(records) < count:
        frame = await asyncio.wait_for(ws.recv(), 2.0)
        assert isinstance(frame, str)
        records += [json.loads(r) for r in frame.split(RS) if r]
    return records


async def test_map_hub_defaults_to_the_in_memory_lifetime() -> None:
    mapped = map_hub("/h", EchoHub)
    assert isinstance(mapped.lifetime, InMemoryLifetimeManager)
    assert mapped.hub_context is mapped.handler.hub_context
    assert mapped.endpoint.path == "/h"


async def test_websocket_handshake_invoke_and_stream_over_a_real_socket(served) -> None:
    mapped, port = served
    async with connect(f"ws://127.0.0.1:{port}/hubs/echo") as ws:  # skipNegotiation
        await ws.send('{"protocol":"json","version":1}' + RS)
        assert await asyncio.wait_for(ws.recv(), 2.0) == "{}" + RS
        await ws.send('{"type":1,"invocationId":"0","target":"echo","arguments":["hi"]}' + RS)
        assert await _recv_records(ws, 1) == [{"type": 3, "invocationId": "0", "result": "hi"}]
        await ws.send('{"type":4,"invocationId":"1","target":"Count","arguments":[2]}' + RS)
        assert await _recv_records(ws, 3) == [
            {"type": 2, "invocationId": "1", "item": 0},
            {"type": 2, "invocationId": "1", "item": 1},
            {"type": 3, "invocationId": "1"},
        ]
        assert len(mapped.handler.local_connections()) == 1


async def test_negotiated_connection_receives_group_pushes_from_the_hub_context(served) -> None:
    mapped, port = served
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"http://127.0.0.1:{port}/hubs/echo/negotiate?negotiateVersion=1"
        )
    body = response.json()
    token = body["connectionToken"]
    async with connect(f"ws://127.0.0.1:{port}/hubs/echo?id={token}") as ws:
        await ws.send('{"protocol":"json","version":1}' + RS)
        assert await asyncio.wait_for(ws.recv(), 2.0) == "{}" + RS
        await ws.send('{"type":1,"invocationId":"0","target":"Join","arguments":["g"]}' + RS)
        assert (await _recv_records(ws, 1))[0]["result"] is None
        await mapped.hub_context.clients.group("g").send("News", {"n": 1})
        assert await _recv_records(ws, 1) == [
            {"type": 1, "target": "News", "arguments": [{"n": 1}]}
        ]
        ids = [c.connection_id for c in mapped.handler.local_connections()]
        assert ids == [body["connectionId"]]


async def test_server_stop_sends_close_with_allow_reconnect(served) -> None:
    mapped, port = served
    ws = await connect(f"ws://127.0.0.1:{port}/hubs/echo")
    try:
        await ws.send('{"protocol":"json","version":1}' + RS)
        assert await asyncio.wait_for(ws.recv(), 2.0) == "{}" + RS
        await asyncio.sleep(0.01)
        await mapped.handler.shutdown(timeout=1.0)
        assert await _recv_records(ws, 1) == [{"type": 7, "allowReconnect": True}]
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 2.0)
        assert ws.close_code == 1000
    finally:
        await ws.close()


async def test_messagepack_over_binary_websocket_frames(served) -> None:
    _mapped, port = served
    async with connect(f"ws://127.0.0.1:{port}/hubs/echo") as ws:
        await ws.send('{"protocol":"messagepack","version":1}' + RS)
        assert await asyncio.wait_for(ws.recv(), 2.0) == b"{}\x1e"  # binary frame
        await ws.send(MESSAGEPACK.write(InvocationMessage("Echo", ["bin"], invocation_id="1")))
        frame = await asyncio.wait_for(ws.recv(), 2.0)
        assert isinstance(frame, bytes)
        messages, _ = MESSAGEPACK.parse(frame)
        assert messages == [CompletionMessage.with_result("1", "bin")]


async def test_authenticate_hook_principal_reaches_the_hub() -> None:
    async def authenticate(request: HttpRequestInfo) -> Principal | None:
        token = request.query.get("access_token")
        if token != "alice-token":
            raise AuthenticationFailed(401, "Unauthorized")
        return Principal("alice")

    mapped = map_hub("/hubs/secure", EchoHub, authenticate=authenticate)
    server = HubServer([mapped.endpoint], None, "127.0.0.1", 0, access_log=False)
    await server.start()
    try:
        url = f"ws://127.0.0.1:{server.port}/hubs/secure"
        with pytest.raises(websockets.InvalidStatus) as refused:
            await connect(url)
        assert refused.value.response.status_code == 401
        async with connect(url + "?access_token=alice-token") as ws:
            await ws.send('{"protocol":"json","version":1}' + RS)
            assert await asyncio.wait_for(ws.recv(), 2.0) == "{}" + RS
            await ws.send('{"type":1,"invocationId":"0","target":"Who","arguments":[]}' + RS)
            assert (await _recv_records(ws, 1))[0]["result"] == "alice"
    finally:
        await server.stop(grace=1.0)
        await mapped.stop(timeout=1.0)


async def test_stateful_reconnect_resumes_on_a_new_socket_and_replays(served_stateful) -> None:
    mapped, port = served_stateful
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"http://127.0.0.1:{port}/hubs/echo/negotiate"
            "?negotiateVersion=1&useStatefulReconnect=true"
        )
    body = response.json()
    assert body["useStatefulReconnect"] is True
    url = f"ws://127.0.0.1:{port}/hubs/echo?id={body['connectionToken']}"
    join = '{"type":1,"invocationId":"0","target":"Join","arguments":["g"]}' + RS
    ws1 = await connect(url)
    await ws1.send('{"protocol":"json","version":2}' + RS)
    assert await asyncio.wait_for(ws1.recv(), 2.0) == "{}" + RS
    await ws1.send(join)  # client trackable #1
    assert (await _recv_records(ws1, 1))[0] == {"type": 3, "invocationId": "0", "result": None}
    await mapped.hub_context.clients.group("g").send("N", 1)
    assert await _recv_records(ws1, 1) == [{"type": 1, "target": "N", "arguments": [1]}]
    connection = mapped.handler.local_connections()[0]
    assert connection.stateful
    ws1.transport.abort()  # ungraceful drop: no close frame
    outbox = connection.outbox
    assert outbox is not None
    for _ in range(200):
        if outbox.paused:
            break
        await asyncio.sleep(0.005)
    assert outbox.paused
    await mapped.hub_context.clients.group("g").send("N", 2)
    await mapped.hub_context.clients.group("g").send("N", 3)
    # same token, no handshake (docs/spec/stateful-reconnect.md §5.3)
    async with connect(url) as ws2:
        # Client: Sequence {oldest unacked = 1} then its replay of the Join (a duplicate).
        await ws2.send('{"type":9,"sequenceId":1}' + RS + join)
        records = await _recv_records(ws2, 5)
        assert records == [
            {"type": 9, "sequenceId": 1},
            {"type": 3, "invocationId": "0", "result": None},
            {"type": 1, "target": "N", "arguments": [1]},
            {"type": 1, "target": "N", "arguments": [2]},
            {"type": 1, "target": "N", "arguments": [3]},
        ]
        await ws2.send('{"type":1,"invocationId":"1","target":"Echo","arguments":["after"]}' + RS)
        assert await _recv_records(ws2, 1) == [{"type": 3, "invocationId": "1", "result": "after"}]
        # The duplicate Join was dropped: still exactly one membership, one connection.
        assert len(mapped.handler.local_connections()) == 1
