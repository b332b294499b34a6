"""Connection registry and disconnect sweep with an injected clock (docs/spec/negotiate.md §1.3,
docs/spec/transports.md §2.4, docs/spec/stateful-reconnect.md §5.3)."""

from __future__ import annotations

import asyncio
import re

from hubserver.connections.context import ConnectionContext, HttpRequestInfo
from hubserver.connections.manager import (
    ConnectionManager,
    ConnectionStatus,
    HttpConnectionContext,
    new_connection_id,
)
from hubserver.options import ConnectionOptions
from hubserver.transports.base import ConnectionLostError, TransportType
from hubserver.transports.long_polling import LongPollingTransport
from hubserver.transports.websocket import WebSocketTransport
from tests.hubserver.server.harness import EchoApp
from tests.hubserver.transports.fakes import FakeChannel

REQ = HttpRequestInfo("POST", "/hub/negotiate", {}, {})


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_ids_are_22_char_base64url() -> None:
    ids = {new_connection_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{22}", i) for i in ids)


async def test_version_0_token_is_the_id_and_version_1_token_is_separate() -> None:
    mgr = ConnectionManager(ConnectionOptions())
    v0 = mgr.create(REQ, None, 0)
    v1 = mgr.create(REQ, None, 1)
    assert v0.connection_token == v0.connection_id
    assert v1.connection_token != v1.connection_id
    assert mgr.get(v1.connection_token) is v1 and mgr.get(v1.connection_id) is None
    ctx: ConnectionContext = v1  # structural check of the shared contract
    assert ctx.transport is TransportType.NONE
    await mgr.stop()


async def test_sweep_disposes_unused_negotiated_connections_after_the_timeout() -> None:
    clock = Clock()
    mgr = ConnectionManager(ConnectionOptions(disconnect_timeout=15), clock)
    ctx = mgr.create(REQ, None, 1)
    clock.now += 14.9
    assert mgr.sweep() == 0
    clock.now += 0.1
    assert mgr.sweep() == 1
    assert ctx.status is ConnectionStatus.DISPOSED and len(mgr) == 0
    await mgr.stop()


async def test_parked_polls_are_never_swept_and_idle_lp_connections_are() -> None:
    clock = Clock()
    mgr = ConnectionManager(ConnectionOptions(disconnect_timeout=5), clock)
    ctx = mgr.create(REQ, None, 1)
    app = EchoApp(ctx)
    ctx.set_application(app)
    lp = LongPollingTransport(ctx, 90)
    ctx.attach_transport(lp, REQ)
    ctx.poll_active(True)
    clock.now += 100
    assert mgr.sweep() == 0
    ctx.poll_active(False)
    clock.now += 5
    assert mgr.sweep() == 1
    await asyncio.sleep(0)
    assert app.events == [("lost", None)]
    await mgr.stop()


async def test_sweeper_task_uses_the_injected_clock() -> None:
    clock = Clock()
    mgr = ConnectionManager(ConnectionOptions(disconnect_timeout=1), clock, sweep_interval=0.01)
    mgr.create(REQ, None, 1)
    await asyncio.sleep(0.03)
    assert len(mgr) == 1  # the clock did not move
    clock.now += 2
    for _ in range(50):
        if not len(mgr):
            break
        await asyncio.sleep(0.01)
    assert len(mgr) == 0
    await mgr.stop()


def _ws(ctx: HttpConnectionContext) -> tuple[WebSocketTransport, FakeChannel]:
    ws = WebSocketTransport(ctx, max_message_size=1024)
    channel = FakeChannel()
    ws.attach(channel)
    return ws, channel


async def test_stateful_connection_survives_an_ungraceful_drop_and_reattaches() -> None:
    clock = Clock()
    mgr = ConnectionManager(ConnectionOptions(disconnect_timeout=15), clock)
    ctx = mgr.create(REQ, None, 1, stateful_negotiated=True)
    app = EchoApp(ctx)
    ctx.set_application(app)
    ws1, _ = _ws(ctx)
    assert ctx.attach_transport(ws1, REQ) is True
    assert ctx.stateful_reconnect
    ws1.connection_lost(None)
    assert app.events == [("paused", None)]
    assert ctx.status is ConnectionStatus.INACTIVE and ctx.buffered_bytes() == 0
    clock.now += 10
    assert mgr.sweep() == 0
    ws2, channel2 = _ws(ctx)
    assert ctx.attach_transport(ws2, REQ) is False
    assert app.events == [("paused", None), ("resumed", None)]
    ctx.send(b"after", False)
    await asyncio.sleep(0)
    assert channel2.writes
    clock.now += 100
    assert mgr.sweep() == 0  # active again
    await mgr.stop()


async def test_stateful_reconnect_window_expires_with_an_error() -> None:
    clock = Clock()
    mgr = ConnectionManager(ConnectionOptions(disconnect_timeout=15), clock)
    ctx = mgr.create(REQ, None, 1, stateful_negotiated=True)
    app = EchoApp(ctx)
    ctx.set_application(app)
    ws, _ = _ws(ctx)
    ctx.attach_transport(ws, REQ)
    ws.connection_lost(None)
    clock.now += 15
    assert mgr.sweep() == 1
    await asyncio.sleep(0)
    assert app.events[-1][0] == "lost" and app.events[-1][1] is not None


async def test_non_stateful_ws_loss_disposes_with_connection_lost_error() -> None:
    mgr = ConnectionManager(ConnectionOptions())
    ctx = mgr.create(REQ, None, 1)
    app = EchoApp(ctx)
    ctx.set_application(app)
    ws, _ = _ws(ctx)
    ctx.attach_transport(ws, REQ)
    ws.connection_lost(None)
    await asyncio.sleep(0)
    assert app.events[0][0] == "lost" and isinstance(app.events[0][1], ConnectionLostError)
    assert len(mgr) == 0
    await mgr.stop()


async def test_graceful_close_disposes_even_a_stateful_connection() -> None:
    mgr = ConnectionManager(ConnectionOptions())
    ctx = mgr.create(REQ, None, 1, stateful_negotiated=True)
    app = EchoApp(ctx)
    ctx.set_application(app)
    ws, _ = _ws(ctx)
    ctx.attach_transport(ws, REQ)
    from tests.hubserver.transports.test_websocket_frames import masked

    ws.data_received(masked(0x8, b"\x03\xe8"))
    await asyncio.sleep(0)
    assert app.events == [("lost", None)]
    await mgr.stop()


async def test_close_is_idempotent_and_notifies_once() -> None:
    mgr = ConnectionManager(ConnectionOptions())
    ctx = mgr.create(REQ, None, 1)
    app = EchoApp(ctx)
    ctx.set_application(app)
    ws, channel = _ws(ctx)
    ctx.attach_transport(ws, REQ)
    ctx.close()
    ctx.close()
    ctx.abort()
    await asyncio.sleep(0)
    assert app.events == [("lost", None)]
    assert channel.data.endswith(b"\x88\x02\x03\xe8")
    await mgr.stop()


async def test_the_kept_request_has_no_credentials() -> None:
    mgr = ConnectionManager(ConnectionOptions())
    negotiate = HttpRequestInfo(
        "POST",
        "/hub/negotiate",
        {"organizationId": "acme"},
        {"authorization": "Bearer secret-1", "user-agent": "ua"},
    )
    ctx = mgr.create(negotiate, None, 1)
    assert ctx.request.headers == {"user-agent": "ua"}
    assert ctx.request.query == {"organizationId": "acme"}
    start = HttpRequestInfo(
        "GET",
        "/hub",
        {"id": ctx.connection_token, "access_token": "secret-2", "organizationId": "acme"},
        {"upgrade": "websocket"},
    )
    ctx.attach_transport(LongPollingTransport(ctx, ConnectionOptions()), start)
    assert ctx.request.query == {"id": ctx.connection_token, "organizationId": "acme"}
    assert "secret" not in repr(ctx.request)
    clean = HttpRequestInfo("GET", "/hub", {"id": "x"}, {})
    assert clean.without_credentials() is clean
    await mgr.stop()
