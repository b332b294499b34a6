"""Sans-I/O wire helpers of the load-test client: HTTP/1.1 responses (on httptools), a
Server-Sent Events parser, SignalR record framing (JSON ``0x1E`` / MessagePack VarInt,
docs/spec/hub-protocol.md §3.1, docs/spec/messagepack.md §4.1) and the message *marker* that
carries a sequence number and a send timestamp.

WebSocket framing is picows' (:mod:`aiusage.loadtest.client`), HTTP response parsing is
httptools' (llhttp): both are kept, compiled libraries the project already ships, and they are
at least as fast as the pure-Python parsers they replaced. What stays here is what no kept
library does for a raw asyncio stream: the SSE field parser (WHATWG ``text/event-stream``; the
Python SSE clients wrap requests/httpx response iterators, not bytes from a protocol callback)
and the SignalR record handling. The SignalR part is written independently of ``hubserver`` on
purpose: a load tester that shared the server's codec would not notice a codec bug on either
side. Nothing here does I/O, so every piece is unit-tested on bytes.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Final

import httptools

# -- HTTP/1.1 responses (httptools) ---------------------------------------------------------

MAX_HEAD_BYTES: Final = 65536
"""A response head larger than this is refused (the hub's heads are a few hundred bytes)."""


class HttpError(Exception):
    """A malformed HTTP response."""


@dataclass(slots=True)
class HttpHead:
    """Status line and headers (names lower-cased)."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class _Response:
    """One response as httptools reports it; :attr:`body` holds pieces not yet returned."""

    head: HttpHead | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: list[bytes] = field(default_factory=list)
    complete: bool = False
    head_bytes: int = 0


class HttpResponseReader:
    """Incremental response reader for keep-alive and streaming responses, on httptools.

    :meth:`feed` returns the current response's body pieces as they arrive (SSE needs them
    before the response ends); :attr:`head` is set once its head is complete and
    :attr:`complete` when its body is. Responses that follow on the same connection are
    parsed as their bytes arrive and become current with :meth:`next_response`.
    """

    __slots__ = ("_parser", "_queue")

    def __init__(self) -> None:
        self._queue: deque[_Response] = deque()
        self._parser = httptools.HttpResponseParser(self)

    # httptools callbacks ---------------------------------------------------------------

    def on_message_begin(self) -> None:
        """A new response starts."""
        self._queue.append(_Response())

    def on_header(self, name: bytes, value: bytes) -> None:
        """One complete header line (httptools joins continuation pieces)."""
        resp = self._queue[-1]
        resp.head_bytes += len(name) + len(value) + 4
        if resp.head_bytes > MAX_HEAD_BYTES:
            raise HttpError("response head too large")
        resp.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        """The head is complete: status and headers are known."""
        resp = self._queue[-1]
        resp.head = HttpHead(self._parser.get_status_code(), resp.headers)

    def on_body(self, body: bytes) -> None:
        """A piece of the body (de-chunked by httptools)."""
        self._queue[-1].body.append(body)

    def on_message_complete(self) -> None:
        """The body is complete."""
        self._queue[-1].complete = True

    # reader API ------------------------------------------------------------------------

    @property
    def head(self) -> HttpHead | None:
        """The current response's status and headers (None until its head is complete)."""
        return self._queue[0].head if self._queue else None

    @property
    def complete(self) -> bool:
        """True once the current response's body is complete."""
        return bool(self._queue) and self._queue[0].complete

    def next_response(self) -> None:
        """Make the next response on the connection current (drops a complete one)."""
        if self._queue and self._queue[0].complete:
            self._queue.popleft()

    def eof(self) -> None:
        """The peer closed: completes a body delimited by the end of the connection
        (RFC 9112 §6.3 item 8: no Content-Length, not chunked)."""
        if not self._queue:
            return
        resp = self._queue[0]
        head = resp.head
        if head is None or resp.complete:
            return
        if (
            "content-length" not in head.headers
            and "chunked" not in head.headers.get("transfer-encoding", "").lower()
        ):
            resp.complete = True

    def feed(self, data: bytes) -> list[bytes]:
        """Consume ``data``; return the current response's body bytes it completed.

        Raises:
            HttpError: Malformed response (httptools' parser refused it) or an oversized head.
        """
        if data:
            try:
                self._parser.feed_data(data)
            except httptools.HttpParserCallbackError as exc:
                cause = exc.__context__
                raise (cause if isinstance(cause, HttpError) else HttpError(str(exc))) from exc
            except httptools.HttpParserError as exc:
                raise HttpError(f"bad HTTP response: {exc}") from exc
        if not self._queue:
            return []
        resp = self._queue[0]
        out, resp.body = resp.body, []
        return out


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
    comments (``:``) and other fields ignored (docs/spec/transports.md §2.3).

    Our own on purpose, being 30 lines: the client is fed bytes by a read loop and its record
    splitter works on bytes. The SSE clients on PyPI pull instead: httpx-sse and
    aiohttp-sse-client iterate over their own HTTP client's response, sseclient-py over a
    blocking iterator of chunks, and each builds a text event object per event -- a decode and
    an object per message on the client's hot path, and a second HTTP stack in the client.
    """

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
