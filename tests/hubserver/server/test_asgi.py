"""ASGI fallback: FastAPI through our HTTP/1.1 adapter (JSON, body, streaming, 404, lifespan)."""

from __future__ import annotations

import asyncio
import contextlib

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse

from tests.hubserver.server.harness import make_endpoint, raw_exchange, running_server


def make_app(events: list[str]) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        events.append("startup")
        yield {"greeting": "hello"}
        events.append("shutdown")

    app = FastAPI(lifespan=lifespan)

    @app.api_route("/api/items/{item_id}", methods=["GET", "HEAD"])
    async def item(item_id: int, request: Request) -> dict:
        return {
            "id": item_id,
            "greeting": request.state.greeting,
            "client": request.client.host if request.client else None,
            "scheme": request.url.scheme,
            "host": request.headers.get("host"),
        }

    @app.post("/api/echo")
    async def echo(request: Request) -> dict:
        body = await request.body()
        return {"size": len(body), "head": body[:5].decode()}

    @app.get("/api/stream")
    async def stream() -> StreamingResponse:
        async def gen():
            for i in range(3):
                yield f"part{i}\n".encode()
                await asyncio.sleep(0)

        return StreamingResponse(gen(), media_type="text/plain")

    @app.get("/api/boom")
    async def boom() -> dict:
        raise RuntimeError("boom")

    return app


async def test_fastapi_json_body_streaming_and_404() -> None:
    events: list[str] = []
    async with running_server([make_endpoint()], make_app(events)) as s:
        assert events == ["startup"]
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{s.port}") as c:
            r = await c.get("/api/items/7")
            assert r.status_code == 200
            assert r.json()["id"] == 7 and r.json()["greeting"] == "hello"
            big = b"x" * 300_000
            r = await c.post("/api/echo", content=big)
            assert r.json() == {"size": 300_000, "head": "xxxxx"}
            r = await c.get("/api/stream")
            assert r.text == "part0\npart1\npart2\n"
            assert r.headers["transfer-encoding"] == "chunked"
            assert (await c.get("/nope")).status_code == 404
            r = await c.get("/api/boom")
            assert r.status_code == 500
            # The hub endpoint still answers on the same server.
            assert (await c.post("/hub/negotiate")).status_code == 200
    assert events == ["startup", "shutdown"]


async def test_chunked_request_body_reaches_the_app() -> None:
    async with running_server([], make_app([])) as s:
        data = await raw_exchange(
            s.port,
            (
                b"POST /api/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n"
            ),
        )
    assert data.startswith(b"HTTP/1.1 200")
    assert data.endswith(b'{"size":7,"head":"abcde"}')


async def test_pipelined_requests_are_answered_in_order() -> None:
    async with running_server([make_endpoint()], make_app([])) as s:
        data = await raw_exchange(
            s.port,
            (
                b"GET /api/items/1 HTTP/1.1\r\nHost: x\r\n\r\n"
                b"POST /hub/negotiate HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
                b"GET /api/items/2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            ),
            read_until_close=True,
        )
    first = data.index(b'"id":1')
    second = data.index(b"negotiateVersion")
    third = data.index(b'"id":2')
    assert first < second < third
    assert data.count(b"HTTP/1.1 200 OK") == 3


async def test_client_disconnect_reaches_the_app_as_http_disconnect() -> None:
    seen: list[str] = []

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                msg = await receive()
                if msg["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        assert (await receive())["type"] == "http.request"
        seen.append((await receive())["type"])

    async with running_server([], app) as s:
        reader, writer = await asyncio.open_connection("127.0.0.1", s.port)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.close()
        for _ in range(100):
            if seen:
                break
            await asyncio.sleep(0.01)
    assert seen == ["http.disconnect"]


async def test_app_without_lifespan_support_still_serves() -> None:
    async def app(scope, receive, send):
        assert scope["type"] == "http"
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async with running_server([], app) as s, httpx.AsyncClient() as c:
        r = await c.get(f"http://127.0.0.1:{s.port}/")
    assert (r.status_code, r.text, r.headers["content-length"]) == (200, "ok", "2")


async def test_head_request_has_no_body_and_keep_alive_serves_several_requests() -> None:
    async with running_server([], make_app([])) as s:
        data = await raw_exchange(
            s.port,
            (
                b"HEAD /api/items/1 HTTP/1.1\r\nHost: x\r\n\r\n"
                b"GET /api/items/2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            ),
            read_until_close=True,
        )
    assert data.count(b"HTTP/1.1 200 OK") == 2
    assert data.count(b'"id"') == 1
    assert data.count(b"content-length:") == 2  # one per response, never duplicated


async def test_without_asgi_app_unknown_paths_are_404_and_garbage_is_400() -> None:
    async with running_server([make_endpoint()]) as s:
        async with httpx.AsyncClient() as c:
            assert (await c.get(f"http://127.0.0.1:{s.port}/x")).status_code == 404
        data = await raw_exchange(s.port, b"NOT HTTP AT ALL\r\n\r\n", read_until_close=True)
    assert data.startswith(b"HTTP/1.1 400 Bad Request")
