"""Keep-alive, client timeout and token expiry (docs/spec/hub-protocol.md §3.6, §3.7), driven by the
handler's shared ticker on a fake clock."""

from __future__ import annotations

import asyncio

from hubserver.connections.context import Principal
from hubserver.hub.handler import HubConnectionHandler
from hubserver.options import HubOptions
from hubserver.protocol.messages import PingMessage
from hubserver.transports.base import TransportType
from tests.hubserver.hub.conftest import SampleHub
from tests.support.hub_client import HubTestClient, settle, wait_until

PING = b'{"type":6}\x1e'
TIMEOUT_CLOSE = b'{"type":7,"error":"Connection closed with an error.","allowReconnect":true}\x1e'


def payloads(client: HubTestClient) -> list[bytes]:
    return [p for p, _ in client.ctx.sent[1:]]


async def test_ping_is_sent_after_15_seconds_without_sending(client, clock, handler):
    clock.advance(14)
    handler.tick()
    assert payloads(client) == []
    clock.advance(1)
    handler.tick()
    assert payloads(client) == [PING]
    clock.advance(14)
    handler.tick()
    assert payloads(client) == [PING]
    clock.advance(1)
    handler.tick()
    assert payloads(client) == [PING, PING]


async def test_messagepack_ping_bytes(connect, clock, handler):
    client = await connect("messagepack")
    clock.advance(15)
    handler.tick()
    assert client.ctx.sent[1:] == [(bytes.fromhex("02 91 06"), True)]


async def test_any_sent_message_postpones_the_ping(client, clock, handler):
    clock.advance(10)
    await client.invoke("Echo", "x")
    handler.tick()  # notices the send at t=10
    clock.advance(5)
    handler.tick()
    assert PING not in payloads(client)
    clock.advance(10)
    handler.tick()
    assert payloads(client)[-1] == PING


async def test_client_timeout_is_not_enforced_before_the_first_client_ping(client, clock, handler):
    for _ in range(10):
        clock.advance(10)
        handler.tick()
    assert not client.ctx.closed


async def test_client_timeout_closes_30_seconds_after_the_last_message(
    client, clock, handler, lifetime
):
    client.send_message(PingMessage())
    handler.tick()
    clock.advance(29)
    handler.tick()
    assert not client.ctx.closed
    clock.advance(1)
    handler.tick()
    assert payloads(client)[-1] == TIMEOUT_CLOSE
    assert client.ctx.closed
    await wait_until(lambda: lifetime.local_connection_count() == 0)


async def test_received_messages_reset_the_client_timeout(client, clock, handler):
    client.send_message(PingMessage())
    for _ in range(5):
        clock.advance(20)
        client.send_message(PingMessage())
        handler.tick()
    assert not client.ctx.closed


async def test_long_polling_gets_no_pings_and_no_client_timeout(connect, clock, handler):
    client = await connect(transport=TransportType.LONG_POLLING)
    client.send_message(PingMessage())
    for _ in range(10):
        clock.advance(20)
        handler.tick()
    assert payloads(client) == []
    assert not client.ctx.closed


async def test_expired_token_closes_with_allow_reconnect_and_no_error(connect, handler, wall_clock):
    principal = Principal("u1", expires_at=wall_clock.now + 60)
    client = await connect(principal=principal)
    wall_clock.advance(59)
    handler.tick()
    assert not client.ctx.closed
    wall_clock.advance(1)
    handler.tick()
    assert payloads(client) == [b'{"type":7,"allowReconnect":true}\x1e']
    assert client.ctx.closed


async def test_one_shared_ticker_task_serves_many_connections(lifetime):
    handler = HubConnectionHandler(
        SampleHub, lifetime, HubOptions(keep_alive_interval=0.05), tick_interval=0.01
    )
    before = len(asyncio.all_tasks())
    clients = [HubTestClient(handler) for _ in range(50)]
    for c in clients:
        await c.connect()
    await settle(20)
    # Idle connections own no task: only the ticker is added.
    assert len(asyncio.all_tasks()) == before + 1
    await wait_until(lambda: all(PING in payloads(c) for c in clients), timeout=2.0)
    for c in clients:
        c.ctx.drop()
    await wait_until(lambda: handler.connection_count() == 0)
    await wait_until(lambda: not handler._ticker.running, timeout=2.0)


async def test_test_client_tick_helper_advances_the_clock(client, clock):
    client.tick(clock, 15)
    assert payloads(client) == [PING]
