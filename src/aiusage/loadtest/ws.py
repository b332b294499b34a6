"""WebSocket connections of the load-test client (SignalR, Socket.IO over Engine.IO v4, raw),
on picows: the upgrade, masking, frame parsing and Ping replies run in picows' compiled code.

A module of its own because picows belongs to the optional ``loadtest`` extra:
:func:`aiusage.loadtest.client.make_conn` imports it when the first connection is made.
"""

from __future__ import annotations

import asyncio
import time
from typing import Final

from picows import (
    WSCloseCode,
    WSError,
    WSFrame,
    WSListener,
    WSMsgType,
    WSTransport,
    ws_connect,
)

from aiusage.loadtest import wire
from aiusage.loadtest.client import (
    CONN_SLOTS,
    HTTP_TIMEOUT_S,
    Conn,
    Runtime,
    negotiate,
    query_string,
)

_TEXT: Final = WSMsgType.TEXT
_BINARY: Final = WSMsgType.BINARY
_CONTINUATION: Final = WSMsgType.CONTINUATION
_CLOSE: Final = WSMsgType.CLOSE

WS_READ_BUFFER: Final = 4096
"""picows' initial read buffer per connection (it grows when a frame needs more). Client RSS
per idle connection measured at 2,000: 17.6 KB with 4 KiB, 30 KB with picows' 16 KiB default,
78 KB with 64 KiB, where a pushed message is a few hundred bytes."""


class WsConn(Conn, WSListener):
    """One WebSocket connection: SignalR, Socket.IO (Engine.IO v4) or raw, per ``mode``.

    The upgrade, masking, frame parsing and Ping replies are picows' (compiled); this class
    gets whole frames in :meth:`on_ws_frame` and reassembles fragmented messages.
    """

    __slots__ = (*CONN_SLOTS, "_done", "_frag", "_frag_type", "_state", "buf", "mode", "transport")

    def __init__(self, rt: Runtime, index: int, org: str, binary: bool, mode: str) -> None:
        Conn.__init__(self, rt, index, org, "ws" if mode == "signalr" else mode, binary)
        self.mode = mode
        self.transport: WSTransport | None = None
        self.buf = bytearray()
        self._frag: bytearray | None = None
        self._frag_type = _TEXT
        self._state = 0  # 0 upgrading, 1 hub handshake, 2 open
        self._done: asyncio.Future[None] | None = None

    async def start(self) -> None:
        cfg = self.rt.cfg
        source = cfg.sources[self.index % len(cfg.sources)]
        if self.mode == "signalr" and cfg.skip_negotiation:
            # Several server processes behind one port (SO_REUSEPORT) and no sticky proxy: a
            # negotiated id would only be known to the process that answered the negotiate.
            target = f"{cfg.path}?" + query_string({"organizationId": self.org})
        elif self.mode == "signalr":
            token = await negotiate(self, source)
            target = f"{cfg.path}?" + query_string({"id": token, "organizationId": self.org})
        elif self.mode == "socketio":
            target = f"{cfg.path}?" + query_string(
                {"EIO": "4", "transport": "websocket", "org": self.org}
            )
        else:
            target = f"{cfg.path}?" + query_string({"org": self.org})
        self.buf = bytearray()
        self._frag = None
        self._state = 0
        self._done = self.rt.loop.create_future()
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for runs its awaitable in a task
        # of its own, two extra tasks per connect in a storm, on the cores the server under
        # test uses too.
        try:
            async with asyncio.timeout(HTTP_TIMEOUT_S):
                transport, _ = await ws_connect(
                    lambda: self,
                    f"ws://{cfg.host}:{cfg.port}{target}",
                    extra_headers=self.headers(),
                    websocket_handshake_timeout=HTTP_TIMEOUT_S,
                    max_redirects=0,
                    read_buffer_init_size=WS_READ_BUFFER,
                    local_addr=(source, 0),
                )
        except WSError as exc:
            # picows checked the 101 status and Sec-WebSocket-Accept (RFC 6455 §4.1).
            raise ConnectionError(f"upgrade refused: {exc}") from exc
        try:
            async with asyncio.timeout(HTTP_TIMEOUT_S):
                await self._done
        except BaseException:
            transport.disconnect(graceful=False)
            raise

    def _fail(self, exc: BaseException) -> None:
        if self._done is not None and not self._done.done():
            self._done.set_exception(exc)

    def _opened(self) -> None:
        self._state = 2
        self.mark_ready()
        if self._done is not None and not self._done.done():
            self._done.set_result(None)

    def on_ws_connected(self, transport: WSTransport) -> None:
        """Upgrade accepted: start the hub handshake (SignalR) or wait for Engine.IO's open."""
        self.transport = transport
        if self.mode == "signalr":
            self._state = 1
            self._send(
                _BINARY if self.binary else _TEXT,
                wire.handshake_request("messagepack" if self.binary else "json"),
            )
        elif self.mode == "raw":
            self._opened()
        else:
            self._state = 1  # wait for the Engine.IO open packet

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        """The TCP connection is gone (either side)."""
        self._fail(ConnectionError("closed during connect"))
        self.transport = None
        info = transport.close_handshake
        recv = info.recv if info is not None else None
        self.mark_lost(f"closed by server ({recv.code})" if recv is not None else "closed")

    def _send(self, msg_type: WSMsgType, payload: bytes) -> None:
        if self.transport is not None:
            self.transport.send(msg_type, payload)
            self.last_sent = time.monotonic()

    def _close_transport(self) -> None:
        if self.transport is not None:
            self.transport.send_close(WSCloseCode.OK)
            self.transport.disconnect()

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        """One frame from the server (picows has unmasked it and answered Pings)."""
        msg_type = frame.msg_type
        if msg_type in (_TEXT, _BINARY):
            if not frame.fin:
                self._frag = bytearray(frame.get_payload_as_memoryview())
                self._frag_type = msg_type
                return
            payload = frame.get_payload_as_bytes()
        elif msg_type == _CONTINUATION:
            if self._frag is None:
                self.rt.error("ws: continuation without a first fragment")
                transport.disconnect(graceful=False)
                return
            self._frag += frame.get_payload_as_memoryview()
            if not frame.fin:
                return
            payload = bytes(self._frag)
            self._frag = None
        elif msg_type == _CLOSE:
            transport.send_close(frame.get_close_code())
            transport.disconnect()
            return
        else:  # Pong (Pings are answered by picows)
            return
        if not self._on_payload(payload, time.time()):
            self._close_transport()

    def _on_payload(self, payload: bytes, now: float) -> bool:
        if self.mode == "raw":
            self.on_message(payload, now)
            return True
        if self.mode == "socketio":
            return self._on_eio(payload, now)
        if self._state == 1:
            self.buf += payload
            try:
                if wire.parse_handshake_response(self.buf) is None:
                    return True
            except wire.HandshakeRefused as exc:
                self._fail(ConnectionError(f"handshake refused: {exc}"))
                return False
            # The JS client pings right after the handshake (docs/spec/handshake.md §3.2.6).
            self.send_ping()
            self._opened()
            if not self.buf:
                return True
            payload = bytes(self.buf)
            self.buf.clear()
        # One WebSocket message holds whole records (docs/spec/transports.md §2.2).
        if self.binary:
            records = wire.split_records(bytearray(payload), True)
            return all(self.on_record(record, now) for record in records)
        pos = 0
        for _ in range(len(payload)):  # bounded: every pass consumes one record
            i = payload.find(b"\x1e", pos)
            if i < 0:
                break
            # Fast path: an Invocation as hubserver/.NET write it (type first,
            # docs/spec/hub-protocol.md §3.3).
            if payload.startswith(b'{"type":1,', pos):
                self.on_message(payload, now, pos, i)
            elif not self.on_record(payload[pos:i], now):
                return False
            pos = i + 1
        return True

    def _on_eio(self, payload: bytes, now: float) -> bool:
        """Engine.IO v4 packets: 0 open, 2 ping -> 3 pong, 4 message (Socket.IO 0/2 inside)."""
        if not payload:
            return True
        kind = payload[:1]
        if kind == b"2":
            self._send(_TEXT, b"3")
            self.rt.server_pings += 1
        elif kind == b"0":
            self._send(_TEXT, b"40")  # Socket.IO CONNECT to namespace "/"
        elif kind == b"4":
            sio = payload[1:2]
            if sio == b"0":
                self._opened()
            elif sio == b"2":
                self.on_message(payload, now)
            elif sio == b"4":
                self._fail(ConnectionError(f"socket.io connect error {payload[:100]!r}"))
                return False
        elif kind == b"1":
            return False
        return True

    def send_ping(self) -> None:
        if self.mode == "signalr" and self.transport is not None:
            self._send(_BINARY if self.binary else _TEXT, wire.ping_record(self.binary))

    def close(self) -> None:
        if self.transport is not None:
            if self.mode == "signalr" and self._state == 2:
                close = b"\x03\x92\x07\xc0" if self.binary else b'{"type":7}\x1e'
                self._send(_BINARY if self.binary else _TEXT, close)
            self._close_transport()
