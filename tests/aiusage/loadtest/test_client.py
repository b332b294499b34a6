"""The client's connection logic on bytes (no server) and against a tiny loopback fake."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time

import msgpack
from picows import WSCloseCode, WSMsgType

from aiusage.loadtest import wire
from aiusage.loadtest.client import ClientConfig, Runtime, open_conn
from aiusage.loadtest.stats import bucket_of
from aiusage.loadtest.ws import WsConn

OP_TEXT = 0x1


def frame(opcode: int, payload: bytes) -> bytes:
    """An unmasked server frame (what the loopback fakes below write)."""
    n = len(payload)
    head = (
        bytes((0x80 | opcode, n)) if n < 126 else bytes((0x80 | opcode, 126)) + n.to_bytes(2, "big")
    )
    return head + payload


class FakeFrame:
    """The part of picows' WSFrame the client reads."""

    def __init__(self, msg_type: WSMsgType, payload: bytes, fin: bool = True) -> None:
        self.msg_type = msg_type
        self.payload = payload
        self.fin = fin

    def get_payload_as_bytes(self) -> bytes:
        return self.payload

    def get_payload_as_memoryview(self) -> memoryview:
        return memoryview(self.payload)

    def get_close_code(self) -> WSCloseCode:
        return WSCloseCode(int.from_bytes(self.payload[:2], "big"))


def invocation_json(marker: str) -> bytes:
    return (
        b'{"type":1,"target":"SessionStarted","arguments":[{"sessionId":"'
        + marker.encode()
        + b'","userId":"u"}]}\x1e'
    )


class FakeTransport:
    """The part of picows' WSTransport the client uses."""

    def __init__(self) -> None:
        self.sent: list[tuple[WSMsgType, bytes]] = []
        self.close_sent: list[WSCloseCode] = []
        self.disconnected = False
        self.close_handshake = None

    def send(self, msg_type: WSMsgType, payload: bytes) -> None:
        self.sent.append((msg_type, bytes(payload)))

    def send_close(self, code: WSCloseCode = WSCloseCode.OK) -> None:
        self.close_sent.append(code)

    def disconnect(self, graceful: bool = True) -> None:
        self.disconnected = True


async def open_signalr_conn(binary: bool) -> tuple[Runtime, WsConn, FakeTransport]:
    rt = Runtime(ClientConfig(host="127.0.0.1", port=1, orgs=["o"], run_id="r1"))
    conn = WsConn(rt, 0, "o", binary, "signalr")
    transport = FakeTransport()
    conn.on_ws_connected(transport)  # type: ignore[arg-type]
    kind = WSMsgType.BINARY if binary else WSMsgType.TEXT
    assert transport.sent[0] == (kind, wire.handshake_request("messagepack" if binary else "json"))
    conn.on_ws_frame(transport, FakeFrame(kind, b"{}\x1e"))  # type: ignore[arg-type]
    return rt, conn, transport


def deliver(conn: WsConn, transport: FakeTransport, payload: bytes, binary: bool = False) -> None:
    kind = WSMsgType.BINARY if binary else WSMsgType.TEXT
    conn.on_ws_frame(transport, FakeFrame(kind, payload))  # type: ignore[arg-type]


async def test_json_invocations_count_latency_sequence_and_duplicates() -> None:
    rt, conn, transport = await open_signalr_conn(binary=False)
    assert conn.ready and rt.open == 1
    # The JS client's first ping right after the handshake (docs/spec/handshake.md §3.2).
    assert transport.sent[1] == (WSMsgType.TEXT, wire.JSON_PING)
    t_us = int(time.time() * 1e6) - 5000  # sent 5 ms ago
    batch = (
        invocation_json(wire.make_marker("r1", 1, t_us))
        + b'{"type":6}\x1e'
        + invocation_json(wire.make_marker("r1", 2, t_us))
    )
    deliver(conn, transport, batch)
    deliver(conn, transport, invocation_json(wire.make_marker("r1", 2, t_us)))
    deliver(conn, transport, invocation_json(wire.make_marker("zz", 9, t_us)))
    assert rt.deliveries == 4
    assert rt.tracked == 3
    assert rt.duplicates == 1
    assert rt.server_pings == 1
    assert conn.tracker.distinct == 2 and conn.tracker.low == 3
    hist = rt.take_interval()
    assert hist.count == 3
    # The client's inlined bucket formula is the histogram's own.
    assert max(hist.buckets) == bucket_of(hist.max_us)
    assert sum(hist.buckets.values()) == 3
    assert 4_000 < hist.max_us < 1_000_000


async def test_msgpack_frames_and_server_close_end_the_connection() -> None:
    rt, conn, transport = await open_signalr_conn(binary=True)
    t_us = int(time.time() * 1e6)
    body = msgpack.packb([1, {}, None, "S", [{"sessionId": wire.make_marker("r1", 1, t_us)}], []])
    close = msgpack.packb([7, "bye", False])
    payload = bytes([len(body)]) + body + wire.MSGPACK_PING + bytes([len(close)]) + close
    deliver(conn, transport, payload, binary=True)
    assert rt.tracked == 1 and rt.server_pings == 1 and rt.closes_received == 1
    assert transport.close_sent == [WSCloseCode.OK] and transport.disconnected
    assert any("bye" in e for e in rt.errors)


async def test_fragmented_messages_are_reassembled_and_server_close_is_answered() -> None:
    rt, conn, transport = await open_signalr_conn(binary=False)
    record = invocation_json(wire.make_marker("r1", 1, int(time.time() * 1e6)))
    parts = [
        FakeFrame(WSMsgType.TEXT, record[:10], fin=False),
        FakeFrame(WSMsgType.CONTINUATION, record[10:30], fin=False),
        FakeFrame(WSMsgType.CONTINUATION, record[30:]),
    ]
    for part in parts:
        conn.on_ws_frame(transport, part)  # type: ignore[arg-type]
    assert rt.tracked == 1 and conn.tracker.low == 2
    conn.on_ws_frame(transport, FakeFrame(WSMsgType.CLOSE, (1001).to_bytes(2, "big")))  # type: ignore[arg-type]
    assert transport.close_sent == [WSCloseCode.GOING_AWAY] and transport.disconnected


async def test_a_continuation_without_a_first_fragment_drops_the_connection() -> None:
    rt, conn, transport = await open_signalr_conn(binary=False)
    conn.on_ws_frame(transport, FakeFrame(WSMsgType.CONTINUATION, b"x"))  # type: ignore[arg-type]
    assert transport.disconnected
    assert any("continuation" in e for e in rt.errors)


async def test_a_refused_upgrade_is_a_connect_error() -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    rt = Runtime(ClientConfig(host="127.0.0.1", port=port, kind="raw", orgs=["o"], run_id="r1"))
    conn = WsConn(rt, 0, "o", False, "raw")
    assert not await open_conn(conn, 1)
    assert rt.open == 0
    assert any("upgrade refused" in e and "403" in e for e in rt.errors), rt.errors
    server.close()
    await server.wait_closed()


async def test_socketio_client_connects_answers_pings_and_counts_events() -> None:
    """A loopback fake speaking Engine.IO v4 over WebSocket (what sio_server.py runs)."""
    got: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        assert "EIO=4" in head and "transport=websocket" in head and "org=o" in head
        key = next(
            h.split(":", 1)[1].strip()
            for h in head.split("\r\n")
            if h.lower().startswith("sec-websocket-key")
        )
        accept = base64.b64encode(
            hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()
        )
        writer.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
        )
        writer.write(frame(OP_TEXT, b'0{"sid":"x","pingInterval":25000,"pingTimeout":20000}'))
        for _ in range(2):
            h2 = await reader.readexactly(2)
            ln = h2[1] & 0x7F
            key4 = await reader.readexactly(4)
            body = await reader.readexactly(ln)
            got.append(bytes(b ^ key4[i % 4] for i, b in enumerate(body)))
            if got[-1] == b"40":
                writer.write(frame(OP_TEXT, b'40{"sid":"y"}'))
                marker = wire.make_marker("r1", 1, int(time.time() * 1e6))
                writer.write(
                    frame(
                        OP_TEXT,
                        b'42["SessionStarted",{"sessionId":"' + marker.encode() + b'"}]',
                    )
                )
                writer.write(frame(OP_TEXT, b"2"))
        await reader.read()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    rt = Runtime(
        ClientConfig(
            host="127.0.0.1",
            port=port,
            path="/socket.io/",
            kind="socketio",
            orgs=["o"],
            run_id="r1",
        )
    )
    conn = WsConn(rt, 0, "o", False, "socketio")
    assert await open_conn(conn, 1)
    for _ in range(100):
        if len(got) == 2 and rt.tracked:
            break
        await asyncio.sleep(0.02)
    assert got == [b"40", b"3"]
    assert rt.tracked == 1 and rt.open == 1
    rt.stopping = True
    conn.close()
    server.close()
    await server.wait_closed()
