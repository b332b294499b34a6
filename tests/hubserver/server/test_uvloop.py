"""The server runs on uvloop (whose transports are not asyncio.Transport subclasses)."""

from __future__ import annotations

import httpx
import uvloop
import websockets

from tests.hubserver.server.harness import make_endpoint, running_server


async def _scenario() -> tuple[str, int, bytes]:
    async with running_server([make_endpoint()]) as s:
        async with websockets.connect(f"ws://127.0.0.1:{s.port}/hub") as ws:
            await ws.send("on uvloop")
            echoed = await ws.recv()
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{s.port}") as c:
            token = (await c.post("/hub/negotiate?negotiateVersion=1")).json()["connectionToken"]
            first = await c.get(f"/hub?id={token}")
            await c.post(f"/hub?id={token}", content=b"lp")
            data = (await c.get(f"/hub?id={token}")).content
    return str(echoed), first.status_code, data


def test_websocket_and_long_polling_work_on_uvloop() -> None:
    assert uvloop.run(_scenario()) == ("on uvloop", 200, b"lp")
