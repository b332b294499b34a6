"""One connection flooding the hub with messages is closed with a clear error while another
connection's invocations stay fast. Real server and WebSockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import logging
import statistics
import time

import pytest
import websockets

from hubserver.connections.endpoint import ConnectionEndpoint
from hubserver.hub.handler import HubConnectionHandler
from hubserver.lifetime.memory import InMemoryLifetimeManager
from hubserver.server.server import HubServer
from tests.hubserver.hub.conftest import SampleHub

pytestmark = pytest.mark.integration

RS = "\x1e"
PING = '{"type":6}' + RS
FLOOD_CLOSE = (
    '{"type":7,"error":"Connection closed with an error. Inbound message budget exceeded: '
    'more than 100 messages per second."}' + RS
)


async def handshake(url: str) -> websockets.ClientConnection:
    ws = await websockets.connect(url, max_size=None)
    await ws.send('{"protocol":"json","version":1}' + RS)
    assert await asyncio.wait_for(ws.recv(), 5) == "{}" + RS
    return ws


async def flood(ws: websockets.ClientConnection, frames: int, per_frame: int) -> list[str]:
    """Send up to ``frames`` WebSocket messages of ``per_frame`` Pings; what came back."""
    received: list[str] = []

    async def read() -> None:
        try:
            while True:
                received.append(str(await ws.recv()))
        except websockets.ConnectionClosed:
            return

    reader = asyncio.create_task(read())
    payload = PING * per_frame
    try:
        for _ in range(frames):
            await ws.send(payload)
    except websockets.ConnectionClosed:
        pass
    await asyncio.wait_for(reader, 10)
    return received


async def echo_latencies(ws: websockets.ClientConnection, count: int) -> list[float]:
    out = []
    for i in range(count):
        started = time.perf_counter()
        invocation = {"type": 1, "invocationId": str(i), "target": "echo", "arguments": ["x"]}
        await ws.send(json.dumps(invocation) + RS)
        while True:
            reply = str(await asyncio.wait_for(ws.recv(), 5))
            if '"type":3' in reply:
                break
        out.append(time.perf_counter() - started)
    return out


async def test_a_flooding_connection_is_closed_and_others_stay_fast(
    caplog: pytest.LogCaptureFixture,
) -> None:
    handler = HubConnectionHandler(SampleHub, InMemoryLifetimeManager())
    endpoint = ConnectionEndpoint("/hub", handler.create_application)
    server = HubServer([endpoint], None, "127.0.0.1", 0, access_log=False)
    await server.start()
    caplog.set_level(logging.INFO)
    url = f"ws://127.0.0.1:{server.port}/hub"
    try:
        flooder = await handshake(url)
        other = await handshake(url)
        flood_task = asyncio.create_task(flood(flooder, frames=3000, per_frame=100))
        latencies = await echo_latencies(other, 50)
        received = await flood_task
        assert received[-1] == FLOOD_CLOSE
        assert flooder.close_code == 1000
        assert handler.stats.inbound_budget_closes == 1
        # Far fewer than the 300,000 Pings sent were processed before the close.
        assert handler.stats.messages_received < 5_000
        assert statistics.median(latencies) < 0.05
        assert (await echo_latencies(other, 1))[0] < 1.0
        lines = [
            r for r in caplog.records if r.getMessage().startswith("hub.inbound_budget_exceeded")
        ]
        assert len(lines) == 1
        await other.close()
    finally:
        await server.stop(grace=0.5)
        await endpoint.stop()
