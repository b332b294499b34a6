"""Sans-I/O wire helpers of the load-test client: WebSocket client framing (RFC 6455), an
incremental HTTP/1.1 response parser (Content-Length, chunked, until-close), a Server-Sent
Events parser, SignalR record framing (JSON ``0x1E`` / MessagePack VarInt,
docs/spec/hub-protocol.md §3.1, docs/spec/messagepack.md §4.1) and the message *marker* that
carries a sequence number and a send timestamp.

Nothing here does I/O, so every piece is unit-tested on bytes. The client is written
independently of ``hubserver`` on purpose: a load tester that shared the server's codec would
not notice a codec bug on either side.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Final

# -- WebSocket (RFC 6455) --------------------------------------------------------------------

OP_CONT: Final = 0x0
OP_TEXT: Final = 0x1
OP_BINARY: Final = 0x2
OP_CLOSE: Final = 0x8
OP_PING: Final = 0x9
OP_PONG: Final = 0xA

_WS_GUID: Final = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def mask_payload(payload: bytes, key: bytes) -> bytes:
    """XOR ``payload`` with the 4-byte ``key`` (RFC 6455 §5.3), one big-int operation."""
    n = len(payload)
    if n == 0:
        return b""
    stream = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(stream, "big")).to_bytes(n, "big")


def client_frame(opcode: int, payload: bytes, key: bytes | None = None) -> bytes:
    """One final, masked client->server frame (clients MUST mask, RFC 6455 §5.1)."""
    key = os.urandom(4) if key is None else key
    n = len(payload)
    if n < 126:
        head = bytes((0x80 | opcode, 0x80 | n))
    elif n < 65536:
        head = bytes((0x80 | opcode, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x80 | opcode, 0x80 | 127)) + n.to_bytes(8, "big")
    return head + key + mask_payload(payload, key)


def upgrade_request(
    host: str, port: int, target: str, headers: dict[str, str]
) -> tuple[bytes, str]:
    """The HTTP upgrade request and its ``Sec-WebSocket-Key``."""
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [
        f"GET {target} HTTP/1.1",
        f"Host: {host}:{port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
    ]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode(), key


def accept_value(key: str) -> str:
    """The ``Sec-WebSocket-Accept`` a server must answer for ``key`` (RFC 6455 §4.2.2)."""
    # SHA-1 is what RFC 6455 prescribes here (a handshake check, not security).
    digest = hashlib.sha1(key.encode() + _WS_GUID, usedforsecurity=False).digest()
    return base64.b64encode(digest).decode()


class WsFrameError(Exception):
    """The server sent something RFC 6455 forbids (masked frame, oversized control frame)."""


class WsReader:
    """Incremental parser of server->client frames; reassembles fragmented messages.

    :meth:`feed` returns ``(opcode, payload)`` for every complete message or control frame.
    """

    __slots__ = ("_buf", "_frag", "_frag_op")

    def __init__(self) -> None:
        self._buf = bytearray()
        self._frag: bytearray | None = None
        self._frag_op = 0

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        """Parse ``data`` (appended to what is pending)."""
        # Hot path: usually nothing is pending and ``data`` holds whole frames; parse it in
        # place instead of copying it through the buffer.
        buf: bytes | bytearray
        if self._buf:
            self._buf += data
            buf = self._buf
        else:
            buf = data
        out: list[tuple[int, bytes]] = []
        pos = 0
        n = len(buf)
        while n - pos >= 2:
            b0 = buf[pos]
            b1 = buf[pos + 1]
            if b1 & 0x80:
                raise WsFrameError("server frames must not be masked")
            ln = b1 & 0x7F
            h = 2
            if ln == 126:
                if n - pos < 4:
                    break
                ln = (buf[pos + 2] << 8) | buf[pos + 3]
                h = 4
            elif ln == 127:
                if n - pos < 10:
                    break
                ln = int.from_bytes(buf[pos + 2 : pos + 10], "big")
                h = 10
            if n - pos < h + ln:
                break
            op = b0 & 0x0F
            payload = bytes(buf[pos + h : pos + h + ln])
            pos += h + ln
            fin = b0 & 0x80
            if op >= 0x8:
                if ln > 125 or not fin:
                    raise WsFrameError("invalid control frame")
                out.append((op, payload))
            elif op == OP_CONT:
                if self._frag is None:
                    raise WsFrameError("continuation without a first fragment")
                self._frag += payload
                if fin:
                    out.append((self._frag_op, bytes(self._frag)))
                    self._frag = None
            elif fin:
                out.append((op, payload))
            else:
                self._frag = bytearray(payload)
                self._frag_op = op
        if buf is self._buf:
            if pos:
                del self._buf[:pos]
        elif pos < n:
            self._buf = bytearray(buf[pos:])
        return out


# -- HTTP/1.1 responses ------------------------------------------------------------------------


class HttpError(Exception):
    """A malformed HTTP response."""


@dataclass(slots=True)
class HttpHead:
    """Status line and headers (names lower-cased)."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)


def parse_head(raw: bytes) -> HttpHead:
    """Parse ``HTTP/1.1 200 OK\\r\\nName: value...`` (without the blank line)."""
    lines = raw.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise HttpError(f"bad status line: {lines[0][:80]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return HttpHead(int(parts[1]), headers)


class HttpResponseReader:
    """Incremental response parser for keep-alive and streaming responses.

    :meth:`feed` returns body pieces as they arrive (SSE needs them before the response
    ends); :attr:`head` is set once the head is complete and :attr:`complete` when the body is.
    :meth:`next_response` keeps bytes that already belong to a following response.
    """

    __slots__ = ("_buf", "_chunk_left", "_left", "_mode", "complete", "head")

    def __init__(self) -> None:
        self._buf = bytearray()
        self.head: HttpHead | None = None
        self.complete = False
        self._mode = ""  # "length" | "chunked" | "close"
        self._left = 0
        self._chunk_left = -1  # -1: expecting a chunk-size line; -2: expecting CRLF after data

    def next_response(self) -> None:
        """Reset for the next response on the same connection."""
        self.head = None
        self.complete = False
        self._mode = ""
        self._left = 0
        self._chunk_left = -1

    def eof(self) -> None:
        """The peer closed: completes an until-close body."""
        if self._mode == "close":
            self.complete = True

    def feed(self, data: bytes) -> list[bytes]:
        """Consume ``data``; return the body bytes it completed."""
        self._buf += data
        out: list[bytes] = []
        if self.head is None:
            i = self._buf.find(b"\r\n\r\n")
            if i < 0:
                if len(self._buf) > 65536:
                    raise HttpError("response head too large")
                return out
            self.head = parse_head(bytes(self._buf[:i]))
            del self._buf[: i + 4]
            te = self.head.headers.get("transfer-encoding", "").lower()
            if "chunked" in te:
                self._mode = "chunked"
            elif "content-length" in self.head.headers:
                self._mode = "length"
                self._left = int(self.head.headers["content-length"])
            elif self.head.status in (101, 204, 304) or 100 <= self.head.status < 200:
                self._mode = "length"
                self._left = 0
            else:
                self._mode = "close"
        if self.complete:
            return out
        if self._mode == "length":
            take = min(self._left, len(self._buf))
            if take:
                out.append(bytes(self._buf[:take]))
                del self._buf[:take]
                self._left -= take
            if self._left == 0:
                self.complete = True
        elif self._mode == "close":
            if self._buf:
                out.append(bytes(self._buf))
                self._buf.clear()
        else:
            self._feed_chunked(out)
        return out

    def _feed_chunked(self, out: list[bytes]) -> None:
        buf = self._buf
        for _ in range(1_000_000):  # bounded: each pass consumes bytes or returns
            if self._chunk_left == -1:
                i = buf.find(b"\r\n")
                if i < 0:
                    return
                size_text = bytes(buf[:i]).split(b";", 1)[0].strip()
                try:
                    size = int(size_text, 16)
                except ValueError as exc:
                    raise HttpError(f"bad chunk size {size_text[:20]!r}") from exc
                del buf[: i + 2]
                if size == 0:
                    # Trailers (none expected) end with an empty line.
                    j = buf.find(b"\r\n")
                    if j < 0:
                        self._chunk_left = -3
                        return
                    del buf[: j + 2]
                    self.complete = True
                    return
                self._chunk_left = size
            elif self._chunk_left == -2:
                if len(buf) < 2:
                    return
                del buf[:2]
                self._chunk_left = -1
            elif self._chunk_left == -3:
                j = buf.find(b"\r\n")
                if j < 0:
                    return
                del buf[: j + 2]
                self.complete = True
                return
            else:
                if not buf:
                    return
                take = min(self._chunk_left, len(buf))
                out.append(bytes(buf[:take]))
                del buf[:take]
                self._chunk_left -= take
                if self._chunk_left == 0:
                    self._chunk_left = -2


def http_request(
    method: str,
    host: str,
    port: int,
    target: str,
    headers: dict[str, str],
    body: bytes = b"",
    *,
    keep_alive: bool = True,
) -> bytes:
    """Serialize one HTTP/1.1 request."""
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}:{port}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    if body or method in ("POST", "PUT"):
        lines.append(f"Content-Length: {len(body)}")
    if not keep_alive:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


# -- Server-Sent Events ------------------------------------------------------------------------


class SseReader:
    """Parses ``text/event-stream`` (WHATWG): ``data:`` lines joined with ``\\n`` per event,
    comments (``:``) and other fields ignored (docs/spec/transports.md §2.3)."""

    __slots__ = ("_buf", "_data")

    def __init__(self) -> None:
        self._buf = bytearray()
        self._data: list[bytes] = []

    def feed(self, data: bytes) -> list[bytes]:
        """Return the data of every event completed by ``data``."""
        self._buf += data
        events: list[bytes] = []
        buf = self._buf
        pos = 0
        while True:
            i = buf.find(b"\n", pos)
            if i < 0:
                break
            line = bytes(buf[pos:i])
            pos = i + 1
            if line.endswith(b"\r"):
                line = line[:-1]
            if not line:
                if self._data:
                    events.append(b"\n".join(self._data))
                    self._data = []
                continue
            if line.startswith(b":"):
                continue
            name, _, value = line.partition(b":")
            if name == b"data":
                self._data.append(value[1:] if value.startswith(b" ") else value)
        if pos:
            del buf[:pos]
        return events


# -- SignalR hub protocol ----------------------------------------------------------------------

RS: Final = b"\x1e"
JSON_PING: Final = b'{"type":6}\x1e'
MSGPACK_PING: Final = b"\x02\x91\x06"  # docs/spec/messagepack.md §4: [6], framed

INVOCATION: Final = 1
PING: Final = 6
CLOSE: Final = 7


def handshake_request(protocol: str) -> bytes:
    """``{"protocol":"json","version":1}`` + 0x1E (docs/spec/handshake.md §3.2)."""
    return json.dumps({"protocol": protocol, "version": 1}, separators=(",", ":")).encode() + RS


def ping_record(binary: bool) -> bytes:
    """A framed Ping for the protocol in use."""
    return MSGPACK_PING if binary else JSON_PING


class HandshakeRefused(Exception):
    """The server answered the handshake with ``{"error": ...}``."""


def parse_handshake_response(buf: bytearray) -> bool | None:
    """Consume the handshake response from ``buf``.

    Returns None while incomplete, True on success. The response is JSON + 0x1E for both
    protocols (docs/spec/handshake.md §3.2, docs/spec/messagepack.md §4); the bytes after it stay in
    ``buf``.

    Raises:
        HandshakeRefused: ``{"error": ...}``, or a response carrying a ``type``.
    """
    i = buf.find(RS)
    if i < 0:
        return None
    raw = bytes(buf[:i])
    del buf[: i + 1]
    try:
        obj = json.loads(raw)
    except ValueError as exc:
        raise HandshakeRefused(f"invalid handshake response {raw[:80]!r}") from exc
    if not isinstance(obj, dict) or "type" in obj:
        raise HandshakeRefused(f"not a handshake response: {raw[:80]!r}")
    if obj.get("error"):
        raise HandshakeRefused(str(obj["error"]))
    return True


def read_varint(buf: bytes | bytearray, pos: int) -> tuple[int, int] | None:
    """(value, bytes used) of the VarInt at ``pos``, None if incomplete (docs/spec/messagepack.md §4
    framing)."""
    value = 0
    shift = 0
    for k in range(5):
        if pos + k >= len(buf):
            return None
        b = buf[pos + k]
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, k + 1
        shift += 7
    raise ValueError("VarInt longer than 5 bytes")


def split_records(buf: bytearray, binary: bool) -> list[bytes]:
    """Remove and return every complete record of ``buf`` (partial ones stay)."""
    out: list[bytes] = []
    if not binary:
        pos = 0
        while True:
            i = buf.find(RS, pos)
            if i < 0:
                break
            out.append(bytes(buf[pos:i]))
            pos = i + 1
        if pos:
            del buf[:pos]
        return out
    pos = 0
    while pos < len(buf):
        v = read_varint(buf, pos)
        if v is None:
            break
        size, used = v
        if pos + used + size > len(buf):
            break
        out.append(bytes(buf[pos + used : pos + used + size]))
        pos += used + size
    if pos:
        del buf[:pos]
    return out


def record_type(record: bytes, binary: bool) -> int:
    """The hub message type of one record (0 when unreadable).

    JSON fast path: hubserver and .NET write ``type`` first; anything else goes through
    ``json.loads`` (properties may come in any order, docs/spec/hub-protocol.md §3.3).
    """
    if binary:
        # [type, ...]: fixarray (0x90-0x9f) or array16/32 header, then a positive fixint.
        if not record:
            return 0
        h = record[0]
        off = 1 if 0x90 <= h <= 0x9F else 3 if h == 0xDC else 5 if h == 0xDD else -1
        if off < 0 or off >= len(record):
            return 0
        t = record[off]
        return t if t < 0x80 else 0
    if record.startswith(b'{"type":') and len(record) > 8 and 0x30 <= record[8] <= 0x39:
        if len(record) > 9 and 0x30 <= record[9] <= 0x39:
            return int(record[8:10])
        return record[8] - 0x30
    try:
        obj = json.loads(record)
    except ValueError:
        return 0
    kind: object = obj.get("type") if isinstance(obj, dict) else None
    return kind if isinstance(kind, int) else 0


def close_error(record: bytes, binary: bool) -> tuple[str | None, bool]:
    """``(error, allowReconnect)`` of a Close record (docs/spec/hub-protocol.md §3.7,
    docs/spec/messagepack.md §4)."""
    try:
        if binary:
            import msgpack

            arr = msgpack.unpackb(record, raw=False)
            err = arr[1] if len(arr) > 1 else None
            allow = bool(arr[2]) if len(arr) > 2 else False
            return (err if isinstance(err, str) else None), allow
        obj = json.loads(record)
        err = obj.get("error")
        return (err if isinstance(err, str) else None), bool(obj.get("allowReconnect"))
    except (ValueError, TypeError, IndexError):
        return None, False


# -- the marker: sequence number + send time inside a pushed message -------------------------

MARK_END: Final = b"~"


def make_marker(run_id: str, seq: int, t_us: int) -> str:
    """``~<run>.<seq>.<t_us>~``: printable ASCII without spaces, so it passes as an agent
    ``sessionId`` (<= 64 chars) and survives JSON, MessagePack, SSE and Socket.IO unchanged."""
    return f"~{run_id}.{seq}.{t_us}~"


def marker_prefix(run_id: str) -> bytes:
    """The bytes every marker of a run starts with."""
    return f"~{run_id}.".encode()


def parse_marker(data: bytes, prefix: bytes, start: int, end: int) -> tuple[int, int, int] | None:
    """The first marker of the run in ``data[start:end]``: ``(seq, t_us, position after it)``."""
    pos = data.find(prefix, start, end)
    if pos < 0:
        return None
    first = pos + len(prefix)
    stop = data.find(MARK_END, first, end)
    if stop < 0:
        return None
    seq_b, dot, t_b = data[first:stop].partition(b".")
    if not (dot and seq_b.isdigit() and t_b.isdigit()):
        return parse_marker(data, prefix, stop + 1, end) if stop + 1 < end else None
    return int(seq_b), int(t_b), stop + 1


def iter_markers(data: bytes, prefix: bytes) -> Iterator[tuple[int, int]]:
    """``(seq, t_us)`` of every marker of the run in ``data`` (bounded by its length)."""
    pos = data.find(prefix)
    plen = len(prefix)
    while pos >= 0:
        start = pos + plen
        end = data.find(MARK_END, start)
        if end < 0:
            return
        seq_b, dot, t_b = data[start:end].partition(b".")
        if dot and seq_b.isdigit() and t_b.isdigit():
            yield int(seq_b), int(t_b)
        pos = data.find(prefix, end + 1)
