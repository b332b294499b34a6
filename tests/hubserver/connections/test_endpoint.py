"""ConnectionEndpoint driven through a fake exchange (no sockets)."""

from __future__ import annotations

import asyncio

from hubserver.connections.context import HttpRequestInfo, Principal
from tests.hubserver.server.harness import make_endpoint
from tests.hubserver.transports.fakes import FakeExchange


def req(method: str, path: str = "/hub", **query: str) -> HttpRequestInfo:
    return HttpRequestInfo(method, path, query, {"host": "h"})


async def test_a_client_leaving_during_authentication_leaves_no_active_connection() -> None:
    gate = asyncio.Event()

    async def slow_auth(request: HttpRequestInfo) -> Principal | None:
        await gate.wait()
        return None

    ep = make_endpoint(authenticate=slow_auth)
    negotiate = FakeExchange()
    handle = asyncio.ensure_future(
        ep.handle(req("POST", "/hub/negotiate"), b"", negotiate, negotiate=True)
    )
    gate.set()
    await handle
    token = ep.connections()[0].connection_token
    gate.clear()
    poll = FakeExchange()
    task = asyncio.ensure_future(ep.handle(req("GET", id=token), b"", poll, negotiate=False))
    await asyncio.sleep(0)
    poll.closed = True  # the client disconnects while the hook is still running
    gate.set()
    await task
    assert poll.status is None
    conn = ep.connections()[0]
    assert conn.current_transport is None and conn.application is None
    await ep.stop()


async def test_negotiate_records_the_principal_and_post_requires_the_same_user() -> None:
    async def auth(request: HttpRequestInfo) -> Principal | None:
        return Principal(user_id=request.headers.get("x-user", "anon"))

    ep = make_endpoint(authenticate=auth)
    ex = FakeExchange()
    await ep.handle(
        HttpRequestInfo("POST", "/hub/negotiate", {}, {"x-user": "a"}), b"", ex, negotiate=True
    )
    conn = ep.connections()[0]
    assert conn.principal == Principal("a")
    other = FakeExchange()
    await ep.handle(
        HttpRequestInfo("POST", "/hub", {"id": conn.connection_token}, {"x-user": "b"}),
        b"x",
        other,
        negotiate=False,
    )
    assert (other.status, other.body) == (403, b"Forbidden")
    await ep.stop()


class PlainApp:
    """An application without ``server_shutdown``: shutdown closes it directly."""

    def __init__(self, ctx) -> None:
        self.lost: list[BaseException | None] = []

    def data_received(self, data: bytes) -> None:
        pass

    def transport_paused(self) -> None:
        pass

    def transport_resumed(self) -> None:
        pass

    def connection_lost(self, exc: BaseException | None) -> None:
        self.lost.append(exc)


async def test_shutdown_closes_applications_without_a_shutdown_hook_and_refuses_new_ones() -> None:
    from hubserver.connections.endpoint import ConnectionEndpoint

    apps: list[PlainApp] = []
    ep = ConnectionEndpoint("/hub", lambda ctx: apps.append(PlainApp(ctx)) or apps[-1])
    ex = FakeExchange()
    await ep.handle(req("POST", "/hub/negotiate"), b"", ex, negotiate=True)
    token = ep.connections()[0].connection_token
    sse = FakeExchange()
    await ep.handle(
        HttpRequestInfo("GET", "/hub", {"id": token}, {"accept": "text/event-stream"}),
        b"",
        sse,
        negotiate=False,
    )
    assert sse.status == 200
    await ep.shutdown()
    assert sse.ended and ep.connection_count() == 0
    await asyncio.sleep(0)
    assert apps[0].lost == [None]
    refused = FakeExchange()
    await ep.handle(req("POST", "/hub/negotiate"), b"", refused, negotiate=True)
    assert refused.status == 503
    await ep.stop()
