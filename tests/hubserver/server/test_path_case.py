"""Hub paths match ignoring case, as ASP.NET routing does: negotiate and every transport
answer at ``/HUBS/Analytics`` as at ``/hubs/analytics``; other paths still go to the ASGI
application (or 404)."""

from __future__ import annotations

import asyncio

import httpx
import websockets

from hubserver.options import ConnectionOptions
from tests.hubserver.server.harness import make_endpoint, running_server

PATH = "/hubs/analytics"


def client_for(port: int) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5)


async def negotiate(c: httpx.AsyncClient, path: str) -> str:
    r = await c.post(f"{path}/negotiate?negotiateVersion=1")
    assert r.status_code == 200, (path, r.status_code, r.text)
    return str(r.json()["connectionToken"])


async def test_negotiate_answers_at_any_case_of_the_hub_path() -> None:
    async with (
        running_server([make_endpoint(PATH)], access_log=False) as s,
        client_for(s.port) as c,
    ):
        for path in ("/HUBS/Analytics", "/Hubs/ANALYTICS", "/hubs/analytics"):
            await negotiate(c, path)
        upper = await c.post("/HUBS/ANALYTICS/NEGOTIATE/?negotiateVersion=1")
        assert upper.status_code == 200
        # Still the negotiate route (not the transport route): GET is 405 there.
        r = await c.get("/Hubs/Analytics/Negotiate")
        assert (r.status_code, r.headers["allow"]) == (405, "POST")


async def test_websocket_at_another_case_of_the_hub_path() -> None:
    async with (
        running_server([make_endpoint(PATH)], access_log=False) as s,
        client_for(s.port) as c,
    ):
        token = await negotiate(c, "/HUBS/Analytics")
        async with websockets.connect(f"ws://127.0.0.1:{s.port}/Hubs/AnalyticS?id={token}") as ws:
            await ws.send("hello")
            assert await asyncio.wait_for(ws.recv(), 2) == "hello"


async def test_sse_and_long_polling_at_another_case_of_the_hub_path() -> None:
    ep = make_endpoint(PATH, ConnectionOptions(long_poll_timeout=0.3))
    async with running_server([ep], access_log=False) as s, client_for(s.port) as c:
        token = await negotiate(c, "/hubs/Analytics")
        first = await c.get(f"/HUBS/ANALYTICS?id={token}")  # first poll answers at once
        assert (first.status_code, first.content) == (200, b"")
        post = await c.post(f"/Hubs/Analytics?id={token}", content=b"ping")
        assert post.status_code == 200
        poll = await c.get(f"/hubs/ANALYTICS/?id={token}")
        assert (poll.status_code, poll.content) == (200, b"ping")
        delete = await c.delete(f"/HUBS/analytics?id={token}")
        assert delete.status_code == 202

        token = await negotiate(c, "/HUBS/ANALYTICS")
        async with c.stream(
            "GET", f"/Hubs/Analytics?id={token}", headers={"accept": "text/event-stream"}
        ) as stream:
            assert stream.status_code == 200
            assert stream.headers["content-type"] == "text/event-stream"
            chunks = stream.aiter_raw()
            assert await anext(chunks) == b":\r\n"
            await c.post(f"/HUBS/ANALYTICS?id={token}", content=b"x")
            assert await anext(chunks) == b"data: x\r\n\r\n"
            await c.post(f"/hubs/analytics?id={token}", content=b"close")


async def test_other_paths_are_not_hub_paths_whatever_their_case() -> None:
    async with (
        running_server([make_endpoint(PATH)], access_log=False) as s,
        client_for(s.port) as c,
    ):
        for path in ("/hubs/analytic/negotiate", "/hubs/analyticsX/negotiate", "/HUBS"):
            assert (await c.post(path)).status_code == 404
