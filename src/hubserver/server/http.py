"""HTTP/1.1 connection protocol on ``asyncio.Protocol`` + httptools (docs/adr/0001).

One :class:`HttpProtocol` per TCP connection. Requests for a hub endpoint are answered by
:class:`~hubserver.server.exchange.EndpointExchange` (an ``HttpExchange`` for the connection
layer); everything else goes to the ASGI fallback (:mod:`hubserver.server.asgi`).
Pipelined requests are answered strictly in order: while one is in flight, later ones are
parsed into a queue and reading pauses. After a WebSocket upgrade the socket's events go to
the transport shell directly, so an idle WebSocket costs no task, only this object and the
transport's.

Every response head, from a hub endpoint, the ASGI application or the server itself, is
written by :func:`hubserver.server.response.encode_head` (header validation, framing,
``Connection``). A request head over :data:`MAX_HEAD_SIZE` is answered 431; a hub request's
``Expect: 100-continue`` is answered only once the request was admitted, and never for
HTTP/1.0 (:func:`expects_continue`). The server's ``response_hook`` (:data:`ResponseHook`)
may add headers to every hub endpoint response, the WebSocket 101 included.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol, cast
from urllib.parse import unquote

import httptools

from hubserver.connections.context import HttpRequestInfo
from hubserver.server.access_log import log_access, request_id
from hubserver.server.proxy import TrustedProxies
from hubserver.server.response import (
    InvalidResponseHeader,
    text_response,
)
from hubserver.transports.base import ByteChannel, RawStreamHandler

logger = logging.getLogger("hubserver.server")

MAX_HEAD_SIZE = 64 * 1024
"""Request line + headers larger than this -> 431."""
MAX_BUFFERED_BODY = 64 * 1024
"""ASGI request body buffered before reading pauses (flow control)."""

_HEADER_NAMES: dict[bytes, str] = {}
_MAX_HEADER_NAMES = 256
_MAX_SHARED_NAME = 64

ResponseHook = Callable[[HttpRequestInfo, int, list[tuple[str, str]]], None]
"""Called with the request, the status and the header list of every hub endpoint response
(negotiate, long polling, Server-Sent Events, the WebSocket 101, errors) before its head is
written; it may append headers (``Set-Cookie``, custom ones). What it adds is validated like
any header: a CR, LF or NUL, or an exception from the hook, turns the answer into a 500."""


def log_invalid_header(request: Request, exc: InvalidResponseHeader) -> None:
    """One line for a refused response header (never its value: it may hold a secret)."""
    logger.error(
        "http.invalid_response_header method=%s path=%s header=%r",
        request.method,
        request.path,
        str(exc),
    )


class Request:
    """A parsed request head plus its body state (shared by both cycle kinds)."""

    __slots__ = (
        "body_complete",
        "client",
        "has_body",
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
        self.has_body = False
        """The head announced a body (Content-Length > 0 or Transfer-Encoding)."""
        self.client: tuple[str, int] | None = None
        self.scheme = "http"
        self.host: str | None = None
        self.request_id = ""
        self.start = 0.0

    def header_map(self) -> dict[str, str]:
        """Lower-case header names; repeated headers joined with ``", "``."""
        out: dict[str, str] = {}
        names = _HEADER_NAMES
        for name, value in self.headers:
            # A connection keeps its request's headers for its lifetime (the hub's
            # HttpRequestInfo): share the names every client sends, a bounded set of them.
            key = names.get(name)
            if key is None:
                key = name.decode("latin-1")
                if len(names) < _MAX_HEADER_NAMES and len(name) <= _MAX_SHARED_NAME:
                    names[name] = key
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

    def body_timed_out(self) -> None:
        """The request body did not arrive within the server's ``body_timeout``: answer 408
        when nothing was answered yet, and close the connection either way."""
        self.request.keep_alive = False
        if not self.status and not self.done:
            self.status = 408
            self.protocol.write(text_response(self.request, 408, b"Request Timeout"))
        if not self.done:
            self.finish()
        self.protocol.close()

    def finish(self, log_level: int = logging.INFO) -> None:
        """The response is complete: log it (at ``log_level``) and let the protocol move on."""
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
                log_level,
            )
        self.protocol.cycle_finished(self)


def expects_continue(request: Request) -> bool:
    """True when the client waits for ``100 Continue`` before sending the body (never for
    HTTP/1.0 clients, RFC 9110 §10.1.1)."""
    if request.http_version != "1.1":
        return False
    return any(n == b"expect" and v.strip().lower() == b"100-continue" for n, v in request.headers)


class ServerState(Protocol):
    """What every :class:`HttpProtocol` of one server shares (implemented by
    :class:`hubserver.server.server.ServerState`; declared here so that this module does not
    import the server that imports it)."""

    loop: asyncio.AbstractEventLoop
    connections: set[HttpProtocol]
    proxies: TrustedProxies
    access_log: bool
    keep_alive_timeout: float
    body_timeout: float
    stopping: bool
    response_hook: ResponseHook | None
    scheme: str
    """``https`` when the server speaks TLS, else ``http``."""

    def make_cycle(self, protocol: HttpProtocol, request: Request) -> Cycle:
        """Route a request: hub endpoint, ASGI fallback, or 404."""
        ...


class HttpProtocol(asyncio.Protocol):
    """One client TCP connection: parses requests and dispatches them."""

    __slots__ = (
        "_body_timer",
        "_head_size",
        "_head_too_large",
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
        self._head_too_large = False
        self._parsing: Request | None = None
        self._parsing_cycle: Cycle | None = None
        self.active: Cycle | None = None
        # Created by the first pipelined request: an empty deque is ~0.6 KB, kept by every
        # idle WebSocket otherwise, and pipelining is rare.
        self._pipeline: collections.deque[Cycle] | None = None
        self._raw: RawStreamHandler | None = None
        self._upgrade_buffer: bytearray | None = None
        self._idle_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
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
        self.cancel_body_timer()
        if self.write_drained is not None:
            self.write_drained.set()  # a sender waiting in drain() must not wait forever
        raw = self._raw
        if raw is not None:
            raw.connection_lost(exc)
            return
        cycles = list(self._pipeline) if self._pipeline else []
        self._pipeline = None
        if self.active is not None:
            cycles.insert(0, self.active)
        for cycle in cycles:
            cycle.on_disconnect()

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
            if self._head_too_large:
                self._bad_request(431, b"Request Header Fields Too Large")
            else:
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
        req.scheme = self.state.scheme
        self._parsing = req

    def on_url(self, url: bytes) -> None:
        self._url += url
        self._head_size += len(url)
        if self._head_size > MAX_HEAD_SIZE:
            self._head_too_large = True
            raise httptools.HttpParserError("request head too large")

    def on_header(self, name: bytes, value: bytes) -> None:
        req = self._parsing
        assert req is not None
        self._head_size += len(name) + len(value)
        if self._head_size > MAX_HEAD_SIZE:
            self._head_too_large = True
            raise httptools.HttpParserError("request head too large")
        name = name.lower()
        if name == b"content-length":
            req.has_body = value.strip() != b"0"
        elif name == b"transfer-encoding":
            req.has_body = True
        req.headers.append((name, value))

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
            self.arm_body_timer(cycle)
            cycle.start()
        else:
            # Pipelined: answer in order; stop reading until the current one is done.
            if self._pipeline is None:
                self._pipeline = collections.deque()
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
            if cycle is self.active:
                self.cancel_body_timer()
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

    def pause_reading(self) -> None:
        """Stop reading from the socket (e.g. until a request is authenticated)."""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        """Read from the socket again."""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()

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
        # Nor what it parsed: the upgrade request (its target carries a bearer token in
        # access_token) would stay with every WebSocket for its lifetime, ~3 KB each.
        self._url = b""
        self._parsing = None
        self._parsing_cycle = None
        self._pipeline = None
        self._cancel_idle_timer()
        self.cancel_body_timer()
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
        self.cancel_body_timer()
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
        pipeline = self._pipeline
        if pipeline:
            nxt = pipeline.popleft()
            self.active = nxt
            if not pipeline and self.transport is not None:
                self.transport.resume_reading()
            self.arm_body_timer(nxt)
            nxt.start()
            return
        if self.transport is not None:
            self.transport.resume_reading()
        self._arm_idle_timer()

    def _bad_request(self, status: int, text: bytes) -> None:
        if self.active is None and self.transport is not None:
            self.write(text_response(None, status, text))
        self.close()

    def arm_body_timer(self, cycle: Cycle) -> None:
        """(Re)start the body timeout of ``cycle``, the current request, if its body is
        still incomplete.

        Request heads are bounded by the idle timer; this bounds the body, so a client
        trickling one (slow POST) cannot hold a connection forever.
        """
        req = cycle.request
        timeout = self.state.body_timeout
        if timeout > 0 and req.has_body and not req.body_complete and not cycle.done:
            self.cancel_body_timer()
            self._body_timer = self.loop.call_later(timeout, self._body_timeout)

    def cancel_body_timer(self) -> None:
        """Stop the body timeout (the body is complete, or not being read on purpose)."""
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def _body_timeout(self) -> None:
        self._body_timer = None
        cycle = self.active
        if cycle is not None and not cycle.request.body_complete:
            logger.info(
                "http.body_timeout client=%s method=%s path=%s",
                cycle.request.client,
                cycle.request.method,
                cycle.request.path,
            )
            cycle.body_timed_out()

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
