"""Connection-layer parts of cross-server resume (docs/spec/stateful-reconnect.md §5.4, §5.5):
the resumable token, parking on shutdown, handing a connection over and adopting one."""

from __future__ import annotations

import asyncio
import re

from hubserver.connections.manager import (
    ConnectionManager,
    ConnectionStatus,
    HttpConnectionContext,
    claimed_connection_id,
    new_resumable_token,
)
from hubserver.options import ConnectionOptions
from tests.hubserver.connections.test_manager import REQ, Clock, _ws
from tests.hubserver.server.harness import EchoApp


def test_a_resumable_token_names_its_connection_and_hides_a_secret() -> None:
    tokens = {new_resumable_token("c" * 22) for _ in range(50)}
    assert len(tokens) == 50
    for token in tokens:
        assert re.fullmatch(r"c{22}\.[A-Za-z0-9_-]{22}", token)
        assert claimed_connection_id(token) == "c" * 22
    for other in ("c" * 22, "c" * 22 + ".", "short.secretsecretsecretsecre", "a.b.c"):
        assert claimed_connection_id(other) is None


async def test_only_stateful_negotiate_v1_connections_get_a_resumable_token() -> None:
    mgr = ConnectionManager(ConnectionOptions())
    stateful = mgr.create(REQ, None, 1, stateful_negotiated=True)
    plain = mgr.create(REQ, None, 1)
    v0 = mgr.create(REQ, None, 0, stateful_negotiated=True)
    assert claimed_connection_id(stateful.connection_token) == stateful.connection_id
    assert claimed_connection_id(plain.connection_token) is None
    assert v0.connection_token == v0.connection_id
    await mgr.stop()


def attached(
    mgr: ConnectionManager, stateful: bool = True
) -> tuple[HttpConnectionContext, EchoApp, object]:
    """A connection on a WebSocket, with an application recording its events."""
    ctx = mgr.create(REQ, None, 1, stateful_negotiated=stateful)
    app = EchoApp(ctx)
    ctx.set_application(app)
    ws, _ = _ws(ctx)
    ctx.attach_transport(ws, REQ)
    return ctx, app, ws


async def test_parking_drops_the_socket_but_keeps_the_connection_paused() -> None:
    clock = Clock()
    mgr = ConnectionManager(ConnectionOptions(disconnect_timeout=15), clock)
    ctx, app, _transport = attached(mgr)
    assert ctx.park() is True
    assert ctx.current_transport is None and ctx.status is ConnectionStatus.INACTIVE
    assert app.events == [("paused", None)]
    assert ctx.park() is False  # nothing left to park
    # A reconnect to this server still resumes it; unclaimed, it expires like any pause.
    clock.now += 15
    assert mgr.sweep() == 1
    await asyncio.sleep(0)
    assert app.events[-1][0] == "lost"
    await mgr.stop()


async def test_a_non_stateful_connection_is_not_parked() -> None:
    mgr = ConnectionManager(ConnectionOptions())
    ctx, _app, ws = attached(mgr, stateful=False)
    assert ctx.park() is False
    assert ctx.current_transport is ws
    await mgr.stop()


async def test_handing_over_forgets_the_connection_without_telling_the_application() -> None:
    mgr = ConnectionManager(ConnectionOptions())
    ctx, app, _transport = attached(mgr)
    ctx.pause_for_handover()
    ctx.hand_over()
    await asyncio.sleep(0)
    assert ctx.status is ConnectionStatus.DISPOSED
    assert mgr.get(ctx.connection_token) is None and len(mgr) == 0
    assert app.events == [("paused", None)]  # no "lost": its hooks run where it lives on
    await mgr.stop()


async def test_an_adopted_connection_is_resumed_by_the_next_websocket() -> None:
    mgr = ConnectionManager(ConnectionOptions())
    token = new_resumable_token("r" * 22)
    ctx = mgr.adopt(token, REQ, None)
    assert mgr.get(token) is ctx and ctx.connection_id == "r" * 22
    assert ctx.stateful_reconnect
    app = EchoApp(ctx)
    ctx.set_application(app)
    ws, _ = _ws(ctx)
    assert ctx.attach_transport(ws, REQ) is False  # not a new connection: no new application
    assert app.events == [("resumed", None)]
    await mgr.stop()
