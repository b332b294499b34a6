"""Sans-I/O RFC 6455 codec for the server side: handshake key, frame parser and frame writer.

No asyncio, no sockets: :class:`FrameParser` is fed bytes and returns complete messages and
control frames; :func:`encode_frame` returns bytes to write. The shell in
:mod:`hubserver.transports.websocket` pumps bytes between this and the socket.

Only what a SignalR server needs is implemented: no extensions (so RSV bits must be zero), no
subprotocols. Violations raise :class:`WebSocketProtocolError` carrying the close code the
server must answer with (RFC 6455 §7.4.1).
"""

from __future__ import annotations

import base64
import hashlib
import struct
from typing import Final

# RFC 6455 §5.2 opcodes.
OP_CONTINUATION: Final = 0x0
OP_TEXT: Final = 0x1
OP_BINARY: Final = 0x2
OP_CLOSE: Final = 0x8
OP_PING: Final = 0x9
OP_PONG: Final = 0xA

# RFC 6455 §7.4.1 close codes used by this server.
CLOSE_NORMAL: Final = 1000
CLOSE_GOING_AWAY: Final = 1001
CLOSE_PROTOCOL_ERROR: Final = 1002
CLOSE_NO_STATUS: Final = 1005
CLOSE_INVALID_DATA: Final = 1007
CLOSE_TOO_BIG: Final = 1009
CLOSE_INTERNAL_ERROR: Final = 1011

_GUID: Final = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_MAX_CONTROL_PAYLOAD: Final = 125

# RFC 6455 §7.4.1/§7.4.2: codes a peer may send in a Close frame. 1005/1006/1015 are reserved
# for local use and must never appear on the wire; 3000-4999 belong to libraries/apps.
_VALID_PEER_CODES: Final = frozenset(
    {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014}
)


class WebSocketProtocolError(Exception):
    """The peer broke RFC 6455; close the connection with :attr:`code`.

    Args:
        code: Close code to send (1002 protocol error, 1007 invalid data, 1009 too big).
        reason: Short text for logs and the close frame (no secrets, ASCII).
    """

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def accept_key(key: str) -> str:
    """``Sec-WebSocket-Accept`` value for a client's ``Sec-WebSocket-Key`` (RFC 6455 §4.2.2)."""
    digest = hashlib.sha1(key.encode("ascii") + _GUID).digest()  # noqa: S324 - mandated by RFC
    return base64.b64encode(digest).decode("ascii")


def is_valid_client_key(key: str) -> bool:
    """True when ``key`` is base64 of exactly 16 bytes (RFC 6455 §4.1 item 7)."""
    try:
        return len(base64.b64decode(key.encode("ascii"), validate=True)) == 16
    except (ValueError, UnicodeEncodeError):
        return False


def unmask(payload: bytes | bytearray | memoryview, mask: bytes) -> bytes:
    """XOR ``payload`` with the 4-byte ``mask`` (RFC 6455 §5.3).

    Done as one big-integer XOR over the whole payload instead of a per-byte Python loop:
    CPython's arbitrary-precision ints make this a handful of C loops over machine words.
    """
    n = len(payload)
    if n == 0:
        return b""
    key = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(key, "little")).to_bytes(n, "little")


def encode_frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    """One unmasked server frame (RFC 6455 §5.1: servers must not mask)."""
    n = len(payload)
    first = (0x80 if fin else 0) | opcode
    if n < 126:
        header = bytes((first, n))
    elif n < 0x10000:
        header = struct.pack("!BBH", first, 126, n)
    else:
        header = struct.pack("!BBQ", first, 127, n)
    return header + payload


def encode_close(code: int = CLOSE_NORMAL, reason: str = "") -> bytes:
    """A Close frame carrying ``code`` and a UTF-8 ``reason`` (truncated to fit 125 bytes)."""
    body = struct.pack("!H", code) + reason.encode("utf-8")[: _MAX_CONTROL_PAYLOAD - 2]
    return encode_frame(OP_CLOSE, body)


def parse_close_payload(payload: bytes) -> tuple[int, str]:
    """Code and reason of a received Close frame (RFC 6455 §5.5.1, §7.1.5).

    An empty payload means "no status" (1005).

    Raises:
        WebSocketProtocolError: 1-byte payload or invalid code (1002), reason not UTF-8 (1007).
    """
    if not payload:
        return CLOSE_NO_STATUS, ""
    if len(payload) == 1:
        raise WebSocketProtocolError(CLOSE_PROTOCOL_ERROR, "close frame too short")
    (code,) = struct.unpack("!H", payload[:2])
    if code not in _VALID_PEER_CODES and not 3000 <= code <= 4999:
        raise WebSocketProtocolError(CLOSE_PROTOCOL_ERROR, "invalid close code")
    try:
        reason = payload[2:].decode("utf-8")
    except UnicodeDecodeError:
        raise WebSocketProtocolError(CLOSE_INVALID_DATA, "invalid close reason") from None
    return code, reason


class FrameParser:
    """Incremental parser of client frames; reassembles fragmented messages.

    :meth:`feed` returns a list of ``(opcode, payload)`` events where opcode is
    :data:`OP_TEXT`/:data:`OP_BINARY` for a complete (reassembled, unmasked) message, or
    :data:`OP_PING`/:data:`OP_PONG`/:data:`OP_CLOSE` for a control frame. Text messages are
    checked to be valid UTF-8 but returned as bytes (the layer above parses bytes).

    Args:
        max_message_size: Largest message (sum of fragments) accepted; bigger -> 1009.
    """

    __slots__ = ("_buf", "_frag_opcode", "_frag_parts", "_frag_size", "max_message_size")

    def __init__(self, max_message_size: int) -> None:
        self.max_message_size = max_message_size
        self._buf = b""
        self._frag_opcode = 0
        self._frag_parts: list[bytes] | None = None
        self._frag_size = 0

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        """Consume ``data``; return every complete event it finishes.

        Raises:
            WebSocketProtocolError: the peer violated RFC 6455 (the parser is then unusable).
        """
        buf = self._buf + data if self._buf else data
        events: list[tuple[int, bytes]] = []
        pos = 0
        end = len(buf)
        while end - pos >= 2:
            b0 = buf[pos]
            b1 = buf[pos + 1]
            length = b1 & 0x7F
            header = 2
            if length == 126:
                if end - pos < 4:
                    break
                length = (buf[pos + 2] << 8) | buf[pos + 3]
                header = 4
            elif length == 127:
                if end - pos < 10:
                    break
                (length,) = struct.unpack_from("!Q", buf, pos + 2)
                header = 10
                if length >> 63:
                    # RFC 6455 §5.2: the most significant bit MUST be 0.
                    raise WebSocketProtocolError(CLOSE_PROTOCOL_ERROR, "invalid frame length")
            opcode = b0 & 0x0F
            # Validate before waiting for the payload so an oversized frame fails at once
            # instead of being buffered.
            self._check_header(b0, b1, opcode, length)
            if not b1 & 0x80:
                # RFC 6455 §5.1: a server MUST close on an unmasked client frame.
                raise WebSocketProtocolError(CLOSE_PROTOCOL_ERROR, "client frame not masked")
            start = pos + header + 4
            stop = start + length
            if stop > end:
                break
            payload = unmask(memoryview(buf)[start:stop], bytes(buf[start - 4 : start]))
            pos = stop
            event = self._on_frame(b0 & 0x80 != 0, opcode, payload)
            if event is not None:
                events.append(event)
        self._buf = bytes(buf[pos:]) if pos < end else b""
        return events

    def _check_header(self, b0: int, b1: int, opcode: int, length: int) -> None:
        if b0 & 0x70:
            # RFC 6455 §5.2: RSV1-3 MUST be 0 unless an extension was negotiated (none is).
            raise WebSocketProtocolError(CLOSE_PROTOCOL_ERROR, "reserved bits set")
        if opcode >= 0x8:
            if opcode not in (OP_CLOSE, OP_PING, OP_PONG):
                raise WebSocketProtocolError(CLOSE_PROTOCOL_ERROR, "unknown opcode")
            # RFC 6455 §5.5: control frames are at most 125 bytes and never fragmented.
            if length > _MAX_CONTROL_PAYLOAD:
                raise WebSocketProtocolError(CLOSE_PROTOCOL_ERROR, "control frame too long")
            if not b0 & 0x80:
                raise WebSocketProtocolError(CLOSE_PROTOCOL_ERROR, "fragmented control frame")
            return
        if opcode not in (OP_CONTINUATION, OP_TEXT, OP_BINARY):
            raise WebSocketProtocolError(CLOSE_PROTOCOL_ERROR, "unknown opcode")
        if opcode == OP_CONTINUATION:
            if self._frag_parts is None:
                raise WebSocketProtocolError(CLOSE_PROTOCOL_ERROR, "unexpected continuation")
            total = self._frag_size + length
        else:
            if self._frag_parts is not None:
                # RFC 6455 §5.4: a new data frame may not start inside a fragmented message.
                raise WebSocketProtocolError(CLOSE_PROTOCOL_ERROR, "expected continuation")
            total = length
        if total > self.max_message_size:
            raise WebSocketProtocolError(CLOSE_TOO_BIG, "message too big")

    def _on_frame(self, fin: bool, opcode: int, payload: bytes) -> tuple[int, bytes] | None:
        if opcode >= 0x8:
            return opcode, payload
        if opcode == OP_CONTINUATION:
            parts = self._frag_parts
            assert parts is not None  # checked in _check_header
            parts.append(payload)
            self._frag_size += len(payload)
            if not fin:
                return None
            opcode = self._frag_opcode
            payload = b"".join(parts)
            self._frag_parts = None
            self._frag_size = 0
        elif not fin:
            self._frag_opcode = opcode
            self._frag_parts = [payload]
            self._frag_size = len(payload)
            return None
        if opcode == OP_TEXT:
            try:
                payload.decode("utf-8")
            except UnicodeDecodeError:
                # RFC 6455 §8.1: invalid UTF-8 in a text message -> fail with 1007.
                raise WebSocketProtocolError(CLOSE_INVALID_DATA, "invalid UTF-8") from None
        return opcode, payload
