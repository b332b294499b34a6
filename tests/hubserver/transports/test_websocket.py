"""WebSocket transport shell: coalesced writes, ping/pong, close handshake, failures."""

from __future__ import annotations

import asyncio

from hubserver.protocol.base import TransferFormat
from hubserver.protocol.messages import PingMessage
from hubserver.protocol.serialized import SerializedMessage
from hubserver.transports.base import ConnectionLostError
from hubserver.transports.websocket import WebSocketTransport
from hubserver.transports.websocket_frames import (
    OP_BINARY,
    OP_CLOSE,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    encode_close,
    encode_frame,
)
from tests.hubserver.transports.fakes import FakeChannel, FakeOwner
from tests.hubserver.transports.test_websocket_frames import masked


def make(max_size: int = 1 << 20, close_timeout: float = 5.0):
    owner = FakeOwner()
    channel = FakeChannel()
    ws = WebSocketTransport(owner, max_message_size=max_size, close_timeout=close_timeout)
    ws.attach(channel)
    return ws, owner, channel


async def tick() -> None:
    await asyncio.sleep(0)


async def test_sends_in_one_tick_are_coalesced_into_one_write() -> None:
    ws, _, channel = make()
    ws.send(b"a", False)
    ws.send(b"b", True)
    assert channel.writes == []
    assert ws.buffered_bytes() == 6
    await tick()
    assert channel.writes == [encode_frame(OP_TEXT, b"a") + encode_frame(OP_BINARY, b"b")]
    assert ws.buffered_bytes() == 0


class _Proto:
    def __init__(self, name: str, fmt: TransferFormat) -> None:
        self.name, self.transfer_format, self.version = name, fmt, 1
        self.writes = 0

    def write(self, message: object) -> bytes:
        self.writes += 1
        return b"payload"


async def test_send_serialized_frames_a_broadcast_once_per_protocol() -> None:
    msg = SerializedMessage(PingMessage())
    proto = _Proto("messagepack", TransferFormat.BINARY)
    transports = [make() for _ in range(3)]
    for ws, _, _ in transports:
        ws.send_serialized(msg, proto)  # type: ignore[arg-type]
    await tick()
    assert proto.writes == 1
    frames = {ch.data for _, _, ch in transports}
    assert frames == {encode_frame(OP_BINARY, b"payload")}
    assert msg.cached(("ws", "messagepack"), lambda: b"rebuilt") == encode_frame(
        OP_BINARY, b"payload"
    )


async def test_messages_reach_the_owner_and_pings_are_answered() -> None:
    ws, owner, channel = make()
    ws.data_received(masked(OP_TEXT, b"hi") + masked(OP_PING, b"p1"))
    assert owner.data == [b"hi"]
    await tick()
    assert channel.data == encode_frame(OP_PONG, b"p1")


async def test_client_close_is_echoed_and_reported_as_graceful() -> None:
    ws, owner, channel = make()
    ws.send(b"queued", False)
    ws.data_received(masked(OP_CLOSE, b"\x03\xe8"))
    assert channel.data == encode_frame(OP_TEXT, b"queued") + encode_close(1000)
    assert channel.closed
    assert owner.closed == [(ws, True, None)]
    ws.connection_lost(None)
    assert len(owner.closed) == 1


async def test_server_close_sends_1000_and_waits_for_the_peer() -> None:
    ws, owner, channel = make(close_timeout=0.01)
    ws.send(b"last", False)
    ws.close()
    assert channel.data == encode_frame(OP_TEXT, b"last") + encode_close(1000)
    assert not channel.closed
    ws.send(b"ignored", False)
    ws.data_received(masked(OP_CLOSE, b"\x03\xe8"))
    assert channel.closed and not channel.aborted
    assert owner.closed == []


async def test_server_close_aborts_after_the_close_timeout() -> None:
    ws, _, channel = make(close_timeout=0.01)
    ws.close()
    await asyncio.sleep(0.05)
    assert channel.aborted


async def test_protocol_violation_closes_with_its_code() -> None:
    ws, owner, channel = make()
    ws.data_received(b"\x81\x02hi")  # unmasked
    assert channel.data == encode_close(1002, "client frame not masked")
    assert channel.closed
    assert owner.closed[0][1] is False
    assert "protocol error" in str(owner.closed[0][2])


async def test_oversized_message_closes_with_1009() -> None:
    ws, _, channel = make(max_size=4)
    ws.data_received(masked(OP_BINARY, b"12345"))
    assert channel.data.startswith(b"\x88") and channel.data[2:4] == b"\x03\xf1"


async def test_socket_loss_without_close_frame_is_a_connection_lost_error() -> None:
    ws, owner, _ = make()
    ws.connection_lost(None)
    transport, graceful, exc = owner.closed[0]
    assert transport is ws and not graceful and isinstance(exc, ConnectionLostError)


async def test_paused_writing_holds_frames_until_resumed() -> None:
    ws, _, channel = make()
    ws.pause_writing()
    ws.send(b"a", False)
    ws.send(b"b", False)
    await tick()
    assert channel.writes == []
    ws.resume_writing()
    assert channel.writes == [encode_frame(OP_TEXT, b"a") + encode_frame(OP_TEXT, b"b")]


async def test_buffered_bytes_include_the_socket_buffer() -> None:
    ws, _, channel = make()
    channel.buffered = 100
    ws.send(b"abc", False)
    assert ws.buffered_bytes() == 105


async def test_abort_drops_queued_frames() -> None:
    ws, owner, channel = make()
    ws.send(b"x", False)
    ws.abort()
    await tick()
    assert channel.writes == [] and channel.aborted and owner.closed == []


async def test_a_failing_flush_does_not_stop_other_connections_from_flushing() -> None:
    class Broken(FakeChannel):
        def write(self, data: bytes) -> None:
            raise RuntimeError("socket exploded")

    owner = FakeOwner()
    bad = WebSocketTransport(owner, max_message_size=10)
    bad.attach(Broken())
    good, _, channel = make()
    bad.send(b"x", False)
    good.send(b"y", False)
    await tick()
    assert channel.writes == [encode_frame(OP_TEXT, b"y")]
