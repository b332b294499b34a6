"""Malformed hub input is refused when parsed: one log line and a Close with error for the
sender, never a traceback, and never one ERROR line per recipient of a broadcast."""

from __future__ import annotations

import asyncio
import logging

import pytest
import websockets

from hubserver.connections.endpoint import ConnectionEndpoint
from hubserver.hub.handler import HubConnectionHandler
from hubserver.lifetime.memory import InMemoryLifetimeManager
from hubserver.options import HubOptions
from hubserver.protocol.framing import write_varint
from hubserver.protocol.messages import CloseMessage
from hubserver.server.server import HubServer
from tests.hubserver.hub.conftest import SampleHub
from tests.support.hub_client import FakeClock, HubTestClient, settle

RECIPIENTS = 20
REFUSED = CloseMessage(error="Connection closed with an error.", allow_reconnect=True)


def handler() -> HubConnectionHandler:
    return HubConnectionHandler(
        SampleHub,
        InMemoryLifetimeManager(),
        HubOptions(),
        FakeClock(),
        wall_clock=FakeClock(start=1_800_000_000.0),
        auto_tick=False,
    )


def problems(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


def protocol_error_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage() for r in caplog.records if r.getMessage().startswith("hub.protocol_error")
    ]


async def audience(h: HubConnectionHandler, protocol: str) -> list[HubTestClient]:
    clients = [HubTestClient(h, protocol) for _ in range(RECIPIENTS)]
    for client in clients:
        await client.connect()
    return clients


@pytest.mark.parametrize("protocol", ["json", "messagepack"])
async def test_a_broadcast_with_an_unwritable_payload_is_refused_once_at_parse_time(
    protocol: str, caplog: pytest.LogCaptureFixture
) -> None:
    h = handler()
    receivers = await audience(h, "json") + await audience(h, "messagepack")
    sender = HubTestClient(h, protocol)
    await sender.connect()
    caplog.set_level(logging.INFO)
    if protocol == "json":
        # A lone surrogate: JSON-escaped it parses, but no recipient could be sent it.
        sender.send_raw(b'{"type":1,"target":"to_all","arguments":["\\ud800"]}\x1e')
    else:
        # 600 nested maps: msgpack unpacks them, but its packer stops at 511 levels.
        value = b"\x81\xa1k" * 600 + b"\xa1x"
        body = b"\x95\x01\x80\xc0\xa6to_all\x91" + value
        sender.send_raw(write_varint(len(body)) + body)
    await settle()
    assert sender.last_close() == REFUSED
    assert sender.ctx.closed
    for receiver in receivers:
        assert receiver.invocations() == []
    assert problems(caplog) == []
    lines = protocol_error_lines(caplog)
    assert len(lines) == 1
    assert f"connection_id={sender.connection_id}" in lines[0]
    # The recipients still get a valid broadcast.
    other = HubTestClient(h)
    await other.connect()
    await other.invoke("to_all", "fine")
    await settle()
    assert [m.arguments for m in receivers[0].invocations()] == [["fine"]]


@pytest.mark.parametrize(
    "record",
    [
        b'{"type":1,"invocationId":"\\udc00","target":"echo","arguments":["x"]}\x1e',
        b'{"type":4,"invocationId":"\\ud800","target":"counter","arguments":[2]}\x1e',
        b'{"type":1,"invocationId":"1","target":"echo","arguments":["\\udfff"]}\x1e',
    ],
)
async def test_a_lone_surrogate_in_an_invocation_closes_without_a_traceback(
    record: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    client = HubTestClient(handler())
    await client.connect()
    caplog.set_level(logging.INFO)
    client.send_raw(record)
    await settle()
    assert client.last_close() == REFUSED
    assert problems(caplog) == []
    assert len(protocol_error_lines(caplog)) == 1


async def test_the_real_server_closes_a_websocket_sending_a_lone_surrogate(
    caplog: pytest.LogCaptureFixture,
) -> None:
    h = HubConnectionHandler(SampleHub, InMemoryLifetimeManager())
    endpoint = ConnectionEndpoint("/hub", h.create_application)
    server = HubServer([endpoint], None, "127.0.0.1", 0, access_log=False)
    await server.start()
    caplog.set_level(logging.INFO)
    try:
        async with websockets.connect(f"ws://127.0.0.1:{server.port}/hub") as ws:
            await ws.send('{"protocol":"json","version":1}\x1e')
            assert await asyncio.wait_for(ws.recv(), 5) == "{}\x1e"
            await ws.send(
                '{"type":1,"invocationId":"\\ud800","target":"echo","arguments":["x"]}\x1e'
            )
            frames = []
            with pytest.raises(websockets.ConnectionClosed):
                while True:
                    frames.append(await asyncio.wait_for(ws.recv(), 5))
        assert frames == [
            '{"type":7,"error":"Connection closed with an error.","allowReconnect":true}\x1e'
        ]
        await asyncio.sleep(0.05)  # the disconnect path runs after the socket closed
        assert problems(caplog) == []
        assert len(protocol_error_lines(caplog)) == 1
    finally:
        await server.stop(grace=0.5)
        await endpoint.stop()


async def test_a_lone_surrogate_in_the_handshake_is_a_handshake_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = HubTestClient(handler())
    caplog.set_level(logging.INFO)
    # Before: the refusal text quoted the protocol name and could not be encoded (raised).
    client.send_raw(b'{"protocol":"\\ud800","version":1}\x1e')
    await settle()
    assert client.ctx.sent == [
        (b'{"error":"An unexpected error occurred during connection handshake."}\x1e', False)
    ]
    assert client.ctx.closed
    assert problems(caplog) == []
