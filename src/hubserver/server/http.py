"""HTTP/1.1 connection protocol on ``asyncio.Protocol`` + httptools (docs/adr/0001).

One :class:`HttpProtocol` per TCP connection. Requests for a hub endpoint are answered by
:class:`EndpointExchange` (an ``HttpExchange`` for the connection layer); everything else goes
to the ASGI fallback (:mod:`hubserver.server.asgi`). Pipelined requests are answered strictly
in order: while one is in flight, later ones are parsed into a queue and reading pauses.
After a WebSocket upgrade the socket's events go to the transport shell directly, so an idle
WebSocket costs no task, only this object and the transport's.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Callable, Sequence
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import parse_qsl, unquote

import httptools

from hubserver.connections.context import HttpRequestInfo
from hubserver.connections.endpoint import ConnectionEndpoint
from hubserver.server.access_log import log_access, request_id
from hubserver.transports.base import ByteChannel, RawStreamHandler

if TYPE_CHECKING:
    from hubserver.server.server import ServerState

logger = logging.getLogger("hubserver.server")

MAX_HEAD_SIZE = 64 * 1024
"""Request line + headers larger than this -> 431."""
MAX_BUFFERED_BODY = 64 * 1024
"""ASGI request body buffered before reading pauses (flow control)."""

_REASONS: dict[int, bytes] = {s.value: s.phrase.encode("ascii") for s in HTTPStatus}


def status_line(status: int) -> bytes:
    """``HTTP/1.1 <status> <reason>\\r\\n``."""
    return b"HTTP/1.1 %d %s\r\n" % (status, _REASONS.get(status, b""))


class Request:
    """A parsed request head plus its body state (shared by both cycle kinds)."""

    __slots__ = (
        "body_complete",
        "client",
        "headers",
        "host",
        "http_version",
        "keep_alive",
        "method",
        "path",
        "query_string",
        "raw_path",
        "request_id",
        "scheme",
        "start",
        "target",
        "upgrade",
    )

    def __init__(self) -> None:
        self.method = "GET"
        self.target = ""
        self.raw_path = b"/"
        self.path = "/"
        self.query_string = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.http_version = "1.1"
        self.keep_alive = True
        self.upgrade = False
        self.body_complete = False
        self.client: tuple[str, int] | None = None
        self.scheme = "http"
        self.host: str | None = None
        self.request_id = ""
        self.start = 0.0

    def header_map(self) -> dict[str, str]:
        """Lower-case header names; repeated headers joined with ``", "``."""
        out: dict[str, str] = {}
        for name, value in self.headers:
            key = name.decode("latin-1")
            text = value.decode("latin-1")
            out[key] = f"{out[key]}, {text}" if key in out else text
        return out


class Cycle:
    """Base of one request/response exchange on an :class:`HttpProtocol`."""

    __slots__ = ("disconnected", "done", "protocol", "request", "status")

    def __init__(self, protocol: HttpProtocol, request: Request) -> None:
        self.protocol = protocol
        self.request = request
        self.status = 0
        self.done = False
        self.disconnected = False

    def on_body(self, chunk: bytes) -> None:
        """A piece of the request body."""

    def on_body_complete(self) -> None:
        """The whole request was read."""

    def start(self) -> None:
        """Begin answering (this cycle is now at the head of the pipeline)."""

    def on_disconnect(self) -> None:
        """The client's socket is gone."""
        self.disconnected = True

    def finish(self) -> None:
        """The response is complete: log it and let the protocol move on."""
        if self.done:
            return
        self.done = True
        req = self.request
        if self.protocol.state.access_log:
            log_access(
                req.client,
                req.method,
                req.target,
                self.status,
                time.monotonic() - req.start,
                req.request_id,
            )
        self.protocol.cycle_finished(self)


class EndpointExchange(Cycle):
    """A request for a hub endpoint; implements ``transports.base.HttpExchange``."""

    __slots__ = (
        "_body",
        "_body_size",
        "_disconnect_handler",
        "_extra_headers",
        "_streaming",
        "_too_large",
        "endpoint",
        "negotiate",
    )

    def __init__(
        self,
        protocol: HttpProtocol,
        request: Request,
        endpoint: ConnectionEndpoint,
        negotiate: bool,
    ) -> None:
        super().__init__(protocol, request)
        self.endpoint = endpoint
        self.negotiate = negotiate
        self._body: list[bytes] = []
        self._body_size = 0
        self._too_large = False
        self._extra_headers: list[tuple[str, str]] = []
        self._streaming = False
        self._disconnect_handler: Callable[[], None] | None = None

    # --- request side ---------------------------------------------------------------------

    def on_body(self, chunk: bytes) -> None:
        """Buffer the body up to the endpoint's ``application_max_buffer_size``."""
        if self._too_large:
            return
        self._body_size += len(chunk)
        if self._body_size > self.endpoint.options.application_max_buffer_size:
            self._too_large = True
            self._body.clear()
            if self.protocol.active is self:
                # Answer at once instead of reading (and discarding) an endless body.
                self._refuse_too_large()
            return
        self._body.append(chunk)

    def on_body_complete(self) -> None:
        """Start handling if this cycle is current."""
        if self.protocol.active is self:
            self._run()

    def start(self) -> None:
        """Handle once the body is complete."""
        if self._too_large:
            self._refuse_too_large()
        elif self.request.body_complete:
            self._run()

    def _refuse_too_large(self) -> None:
        self.request.keep_alive = False
        self.respond(413, b"Payload Too Large")

    def _run(self) -> None:
        if self.status:
            return  # already answered (413 while the body was still arriving)
        if self._too_large:
            self._refuse_too_large()
            return
        req = self.request
        headers = req.header_map()
        if req.host is not None:
            headers["host"] = req.host
        info = HttpRequestInfo(
            method=req.method,
            path=req.path,
            query=_query_map(req.query_string),
            headers=headers,
            client=req.client,
            scheme=req.scheme,
        )
        body = b"".join(self._body)
        self._body.clear()
        task = self.protocol.loop.create_task(
            self.endpoint.handle(info, body, self, negotiate=self.negotiate)
        )
        task.add_done_callback(self._handled)

    def _handled(self, task: asyncio.Task[None]) -> None:
        exc = None if task.cancelled() else task.exception()
        if exc is not None:
            logger.error("hub endpoint request failed", exc_info=exc)
            if not self.responded and not self.disconnected:
                self.request.keep_alive = False
                self.respond(500, b"Internal Server Error")
        # Returning without a response is legitimate: a parked long poll is answered later
        # by its transport.

    # --- HttpExchange ---------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """True when the socket is gone."""
        return self.disconnected or self.protocol.transport_closing()

    @property
    def responded(self) -> bool:
        """True once a response head was written."""
        return self.status != 0

    def add_header(self, name: str, value: str) -> None:
        """Header added to this exchange's response."""
        self._extra_headers.append((name, value))

    def _head(self, status: int, headers: Sequence[tuple[str, str]]) -> bytearray:
        self.status = status
        out = bytearray(status_line(status))
        for name, value in headers:
            out += f"{name}: {value}\r\n".encode("latin-1")
        for name, value in self._extra_headers:
            out += f"{name}: {value}\r\n".encode("latin-1")
        if not self.request.keep_alive:
            out += b"Connection: close\r\n"
        return out

    def respond(
        self,
        status: int,
        body: bytes = b"",
        content_type: str | None = "text/plain",
        headers: Sequence[tuple[str, str]] = (),
    ) -> None:
        """Write a complete response."""
        if self.status:
            return
        self._disconnect_handler = None
        head = self._head(status, headers)
        if content_type is not None:
            head += f"Content-Type: {content_type}\r\n".encode("latin-1")
        if status != 204 and status != 304:
            head += b"Content-Length: %d\r\n" % len(body)
        head += b"\r\n"
        if body and self.request.method != "HEAD":
            head += body
        self.protocol.write(bytes(head))
        self.finish()

    def start_stream(self, status: int, headers: Sequence[tuple[str, str]] = ()) -> None:
        """Write a chunked response head.

        The connection closes when the stream ends: an event stream occupies its socket for
        the connection's lifetime anyway, and signalrcore's SSE reader only notices the end
        of the stream when the socket closes.
        """
        self.request.keep_alive = False
        head = self._head(status, headers)
        head += b"Transfer-Encoding: chunked\r\n\r\n"
        self._streaming = True
        self.protocol.write(bytes(head))

    def write_chunk(self, data: bytes) -> None:
        """Write one chunk."""
        if data and self._streaming and not self.done:
            self.protocol.write(b"%x\r\n%s\r\n" % (len(data), data))

    def end_stream(self) -> None:
        """Write the last chunk and complete the response."""
        if self._streaming and not self.done:
            self._streaming = False
            self._disconnect_handler = None
            self.protocol.write(b"0\r\n\r\n")
            self.finish()

    def abort(self) -> None:
        """Drop the socket."""
        self._disconnect_handler = None
        self.protocol.abort()

    def get_write_buffer_size(self) -> int:
        """Bytes queued on the socket."""
        return self.protocol.write_buffer_size()

    def set_disconnect_handler(self, handler: Callable[[], None] | None) -> None:
        """Call ``handler`` if the socket is lost before the response completes."""
        self._disconnect_handler = handler

    def on_disconnect(self) -> None:
        """Socket lost: tell the transport (parked poll, SSE stream)."""
        super().on_disconnect()
        handler = self._disconnect_handler
        self._disconnect_handler = None
        if handler is not None and not self.done:
            handler()
        if not self.done and self.status:
            self.finish()  # log the interrupted response

    def upgrade(self, headers: Sequence[tuple[str, str]], handler: RawStreamHandler) -> ByteChannel:
        """Write 101 and hand the socket to ``handler``."""
        head = self._head(101, headers)
        head += b"\r\n"
        channel = self.protocol.switch_to_raw(handler, bytes(head))
        self.finish()
        return channel


def _query_map(query_string: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    if query_string:
        for key, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
            out.setdefault(key, value)
    return out


class HttpProtocol(asyncio.Protocol):
    """One client TCP connection: parses requests and dispatches them."""

    __slots__ = (
        "_head_size",
        "_idle_timer",
        "_parser",
        "_parsing",
        "_parsing_cycle",
        "_pipeline",
        "_raw",
        "_upgrade_buffer",
        "_url",
        "active",
        "client",
        "loop",
        "paused_writing",
        "state",
        "transport",
        "write_drained",
    )

    def __init__(self, state: ServerState) -> None:
        self.state = state
        self.loop = state.loop
        self.transport: asyncio.Transport | None = None
        self._parser: Any = httptools.HttpRequestParser(self)
        self._url = b""
        self._head_size = 0
        self._parsing: Request | None = None
        self._parsing_cycle: Cycle | None = None
        self.active: Cycle | None = None
        self._pipeline: collections.deque[Cycle] = collections.deque()
        self._raw: RawStreamHandler | None = None
        self._upgrade_buffer: bytearray | None = None
        self._idle_timer: asyncio.TimerHandle | None = None
        self.client: tuple[str, int] | None = None
        self.paused_writing = False
        self.write_drained: asyncio.Event | None = None

    # --- asyncio.Protocol -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's TCPTransport is not an asyncio.Transport subclass (only registered
        # virtually for some versions), so no isinstance check here.
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple) and len(peer) >= 2:
            self.client = (str(peer[0]), int(peer[1]))
        self.state.connections.add(self)
        self._arm_idle_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self.state.connections.discard(self)
        self._cancel_idle_timer()
        raw = self._raw
        if raw is not None:
            raw.connection_lost(exc)
            return
        cycles = list(self._pipeline)
        self._pipeline.clear()
        if self.active is not None:
            cycles.insert(0, self.active)
        for cycle in cycles:
            cycle.on_disconnect()
        if self.write_drained is not None:
            self.write_drained.set()

    def eof_received(self) -> bool | None:
        if self._raw is not None:
            self._raw.eof_received()
        return None

    def pause_writing(self) -> None:
        self.paused_writing = True
        if self._raw is not None:
            self._raw.pause_writing()

    def resume_writing(self) -> None:
        self.paused_writing = False
        if self._raw is not None:
            self._raw.resume_writing()
        if self.write_drained is not None:
            self.write_drained.set()

    def data_received(self, data: bytes) -> None:
        raw = self._raw
        if raw is not None:
            raw.data_received(data)
            return
        if self._upgrade_buffer is not None:
            self._upgrade_buffer += data
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            offset = exc.args[0] if exc.args and isinstance(exc.args[0], int) else len(data)
            # Bytes after the upgrade request belong to the new protocol; hold them (and
            # stop reading) until the endpoint decides whether to switch.
            self._upgrade_buffer = bytearray(data[offset:])
            if self.transport is not None:
                self.transport.pause_reading()
        except httptools.HttpParserError:
            self._bad_request(400, b"Bad Request")

    # --- httptools callbacks --------------------------------------------------------------

    def on_message_begin(self) -> None:
        # The idle timer keeps running until the head is complete: a client that stalls
        # mid-head (slowloris) is dropped after keep_alive_timeout.
        self._url = b""
        self._head_size = 0
        req = Request()
        req.start = time.monotonic()
        req.client = self.client
        self._parsing = req

    def on_url(self, url: bytes) -> None:
        self._url += url
        self._head_size += len(url)
        if self._head_size > MAX_HEAD_SIZE:
            raise httptools.HttpParserError("request head too large")

    def on_header(self, name: bytes, value: bytes) -> None:
        req = self._parsing
        assert req is not None
        self._head_size += len(name) + len(value)
        if self._head_size > MAX_HEAD_SIZE:
            raise httptools.HttpParserError("request head too large")
        req.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        self._cancel_idle_timer()
        req = self._parsing
        assert req is not None
        parser = self._parser
        req.method = parser.get_method().decode("ascii")
        req.http_version = parser.get_http_version()
        req.keep_alive = parser.should_keep_alive()
        req.upgrade = parser.should_upgrade()
        target = self._url.decode("latin-1")
        req.target = target
        path, _, query = target.partition("?")
        if path.startswith(("http://", "https://")):
            # Absolute-form target (RFC 9112 §3.2.2): keep only the path.
            path = "/" + path.split("/", 3)[3] if path.count("/") >= 3 else "/"
        req.raw_path = path.encode("latin-1")
        req.path = unquote(path)
        req.query_string = query.encode("latin-1")
        proxies = self.state.proxies
        if proxies:
            headers = req.header_map()
            req.client, req.scheme, req.host = proxies.resolve(req.client, req.scheme, headers)
            rid = headers.get("x-request-id")
        else:
            rid = None
            for name, value in req.headers:
                if name == b"x-request-id":
                    rid = value.decode("latin-1")
                    break
        req.request_id = request_id(rid)
        cycle = self.state.make_cycle(self, req)
        self._parsing_cycle = cycle
        if self.active is None:
            self.active = cycle
            cycle.start()
        else:
            # Pipelined: answer in order; stop reading until the current one is done.
            self._pipeline.append(cycle)
            if self.transport is not None:
                self.transport.pause_reading()

    def on_body(self, body: bytes) -> None:
        if self._parsing_cycle is not None:
            self._parsing_cycle.on_body(body)

    def on_message_complete(self) -> None:
        cycle = self._parsing_cycle
        if cycle is not None:
            cycle.request.body_complete = True
            cycle.on_body_complete()

    # --- used by cycles -------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        """Write to the socket unless it is closing."""
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.write(data)

    def write_buffer_size(self) -> int:
        """Bytes queued on the socket."""
        transport = self.transport
        return transport.get_write_buffer_size() if transport is not None else 0

    def transport_closing(self) -> bool:
        """True when the socket is closed or closing."""
        return self.transport is None or self.transport.is_closing()

    def abort(self) -> None:
        """Drop the socket."""
        if self.transport is not None:
            self.transport.abort()

    def close(self) -> None:
        """Close the socket after flushing."""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def is_idle(self) -> bool:
        """True when no request is in flight and no upgrade happened (closable at stop)."""
        return self.active is None and self._raw is None

    async def drain(self) -> None:
        """Wait until the socket accepts more data (ASGI send flow control)."""
        if not self.paused_writing or self.transport_closing():
            return
        if self.write_drained is None:
            self.write_drained = asyncio.Event()
        self.write_drained.clear()
        await self.write_drained.wait()

    def switch_to_raw(self, handler: RawStreamHandler, head: bytes) -> ByteChannel:
        """Write the 101 head and route the socket's events to ``handler`` from now on."""
        transport = self.transport
        assert transport is not None
        transport.write(head)
        self._raw = handler
        # The HTTP parser is never used again on this socket: free it (idle WS memory).
        self._parser = None
        self._cancel_idle_timer()
        leftover = bytes(self._upgrade_buffer) if self._upgrade_buffer else b""
        self._upgrade_buffer = None
        if leftover:
            # Delivered next tick so the endpoint finishes attaching the transport first.
            self.loop.call_soon(handler.data_received, leftover)
        if self.paused_writing:
            handler.pause_writing()
        transport.resume_reading()
        return transport

    def cycle_finished(self, cycle: Cycle) -> None:
        """Move to the next pipelined request, or close / go idle."""
        if cycle is not self.active:
            return
        self.active = None
        if self._raw is not None:
            return
        req = cycle.request
        if (
            not req.keep_alive
            or self._upgrade_buffer is not None
            or not req.body_complete
            or self.state.stopping
        ):
            # After a refused upgrade the byte stream is no longer HTTP; an unread request
            # body would have to be drained: close instead.
            self.close()
            return
        if self._pipeline:
            nxt = self._pipeline.popleft()
            self.active = nxt
            if not self._pipeline and self.transport is not None:
                self.transport.resume_reading()
            nxt.start()
            return
        if self.transport is not None:
            self.transport.resume_reading()
        self._arm_idle_timer()

    def _bad_request(self, status: int, text: bytes) -> None:
        if self.active is None and self.transport is not None:
            self.write(
                status_line(status) + b"Content-Type: text/plain\r\nContent-Length: %d\r\n"
                b"Connection: close\r\n\r\n%s" % (len(text), text)
            )
        self.close()

    def _arm_idle_timer(self) -> None:
        self._cancel_idle_timer()
        timeout = self.state.keep_alive_timeout
        if timeout > 0:
            self._idle_timer = self.loop.call_later(timeout, self._idle_timeout)

    def _cancel_idle_timer(self) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None

    def _idle_timeout(self) -> None:
        self._idle_timer = None
        if self.is_idle():
            self.close()
