"""Stateful reconnect at the connection layer (docs/spec/stateful-reconnect.md §5.3)."""

from __future__ import annotations

import asyncio

import httpx
import pytest
import websockets
from websockets.exceptions import InvalidStatus

from hubserver.options import ConnectionOptions
from tests.hubserver.server.harness import EchoApp, make_endpoint, running_server


async def stateful_token(port: int) -> str:
    async with httpx.AsyncClient() as c:
        r = await c.post(
            f"http://127.0.0.1:{port}/hub/negotiate?negotiateVersion=1&useStatefulReconnect=true"
        )
    assert r.json()["useStatefulReconnect"] is True
    return str(r.json()["connectionToken"])


async def wait_for(predicate, timeout: float = 2.0) -> None:
    for _ in range(int(timeout / 0.01)):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met")


async def test_ungraceful_drop_pauses_and_a_new_upgrade_resumes() -> None:
    EchoApp.instances.clear()
    ep = make_endpoint(options=ConnectionOptions(allow_stateful_reconnects=True))
    async with running_server([ep]) as s:
        token = await stateful_token(s.port)
        url = f"ws://127.0.0.1:{s.port}/hub?id={token}"
        ws = await websockets.connect(url)
        await ws.send("one")
        assert await ws.recv() == "one"
        app = EchoApp.instances[-1]
        ws.transport.abort()  # no close frame
        await wait_for(lambda: ("paused", None) in app.events)
        assert ep.connection_count() == 1
        async with websockets.connect(url) as ws2:
            await wait_for(lambda: ("resumed", None) in app.events)
            await ws2.send("two")
            assert await ws2.recv() == "two"
        await asyncio.wait_for(app.lost.wait(), 2)  # graceful close disposes
        assert [e for e, _ in app.events if e in ("paused", "resumed", "lost")] == [
            "paused",
            "resumed",
            "lost",
        ]


async def test_without_stateful_reconnect_a_drop_disposes() -> None:
    EchoApp.instances.clear()
    ep = make_endpoint()
    async with running_server([ep]) as s:
        async with httpx.AsyncClient() as c:
            token = (
                await c.post(f"http://127.0.0.1:{s.port}/hub/negotiate?negotiateVersion=1")
            ).json()["connectionToken"]
        ws = await websockets.connect(f"ws://127.0.0.1:{s.port}/hub?id={token}")
        await ws.send("x")
        await ws.recv()
        ws.transport.abort()
        app = EchoApp.instances[-1]
        await asyncio.wait_for(app.lost.wait(), 2)
        assert app.events[-1][1] is not None
        with pytest.raises(InvalidStatus) as info:
            async with websockets.connect(f"ws://127.0.0.1:{s.port}/hub?id={token}"):
                pass
        assert info.value.response.status_code == 404


async def test_reconnect_window_expires_after_the_disconnect_timeout() -> None:
    EchoApp.instances.clear()
    now = [0.0]
    ep = make_endpoint(
        options=ConnectionOptions(allow_stateful_reconnects=True, disconnect_timeout=15),
        clock=lambda: now[0],
        sweep_interval=0.01,
    )
    async with running_server([ep]) as s:
        token = await stateful_token(s.port)
        ws = await websockets.connect(f"ws://127.0.0.1:{s.port}/hub?id={token}")
        await ws.send("x")
        await ws.recv()
        ws.transport.abort()
        app = EchoApp.instances[-1]
        await wait_for(lambda: ("paused", None) in app.events)
        now[0] = 16.0
        await asyncio.wait_for(app.lost.wait(), 2)
        assert ep.connection_count() == 0
