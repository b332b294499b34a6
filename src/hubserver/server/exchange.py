"""A hub endpoint request answered over the HTTP server: the connection layer's ``HttpExchange``.

:class:`EndpointExchange` is the :class:`~hubserver.server.http.Cycle` of a request for a hub
path (negotiate, long polling, Server-Sent Events, the WebSocket upgrade). It builds the
request's :class:`~hubserver.connections.context.HttpRequestInfo`, lets the
:class:`~hubserver.connections.endpoint.ConnectionEndpoint` answer it, and writes what the
endpoint asks for: one response, an event stream (chunked for HTTP/1.1 only), or the switch to
a WebSocket. Heads go through :func:`hubserver.server.response.encode_head`; the server's
``response_hook`` may add headers to each of them (docs/spec/transports.md §2.8).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from urllib.parse import parse_qsl

from hubserver.connections.context import HttpRequestInfo
from hubserver.connections.endpoint import ConnectionEndpoint
from hubserver.server.access_log import ROUTINE
from hubserver.server.http import (
    Cycle,
    HttpProtocol,
    Request,
    ResponseHook,
    expects_continue,
    log_invalid_header,
)
from hubserver.server.response import (
    CONTINUE,
    LAST_CHUNK,
    BodyMode,
    InvalidResponseHeader,
    chunk,
    encode_head,
    encode_headers,
    text_response,
)
from hubserver.transports.base import ByteChannel, RawStreamHandler

logger = logging.getLogger("hubserver.server")


class EndpointExchange(Cycle):
    """A request for a hub endpoint; implements ``transports.base.HttpExchange``."""

    __slots__ = (
        "_body",
        "_body_size",
        "_body_waiter",
        "_chunked",
        "_disconnect_handler",
        "_extra_headers",
        "_info",
        "_started",
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
        self._info: HttpRequestInfo | None = None
        self._streaming = False
        self._chunked = False
        self._disconnect_handler: Callable[[], None] | None = None
        self._body_waiter: asyncio.Future[None] | None = None
        self._started = False

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
        """Let :meth:`_serve` go on once the body is complete."""
        self._wake_body()

    def start(self) -> None:
        """Admit the request from its head, then read its body and serve it.

        Reading pauses until the endpoint's authentication hook has accepted the request:
        an unauthenticated client gets its 401 without the server reading (or waiting for)
        its body.
        """
        if self._started:
            return
        self._started = True
        if self._too_large:
            self._refuse_too_large()
            return
        if self.request.has_body and not self.request.body_complete:
            # Nothing is read while the hook runs, so the body timeout starts afterwards.
            self.protocol.pause_reading()
            self.protocol.cancel_body_timer()
        task = self.protocol.loop.create_task(self._serve())
        task.add_done_callback(self._handled)

    def _refuse_too_large(self) -> None:
        self.request.keep_alive = False
        self.respond(413, b"Payload Too Large")
        self._wake_body()

    def _wake_body(self) -> None:
        waiter = self._body_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _request_info(self) -> HttpRequestInfo:
        if self._info is not None:
            return self._info
        req = self.request
        headers = req.header_map()
        if req.host is not None:
            headers["host"] = req.host
        self._info = HttpRequestInfo(
            method=req.method,
            path=req.path,
            query=_query_map(req.query_string),
            headers=headers,
            client=req.client,
            scheme=req.scheme,
        )
        return self._info

    async def _serve(self) -> None:
        info = self._request_info()
        endpoint = self.endpoint
        ok, principal = await endpoint.admit(info, self, negotiate=self.negotiate)
        if not ok or self.status or self.disconnected:
            return
        if not self.request.body_complete:
            # Admitted: now read the body (bounded by the server's body timeout). A client
            # that sent `Expect: 100-continue` waits for our go before sending it; it gets
            # it only now, so a refused request never has its body sent at all.
            if expects_continue(self.request):
                self.protocol.write(CONTINUE)
            self._body_waiter = self.protocol.loop.create_future()
            self.protocol.resume_reading()
            self.protocol.arm_body_timer(self)  # counted from now, not from the head
            await self._body_waiter
            self._body_waiter = None
            if self.status or self.disconnected:
                return  # answered meanwhile (413, 408) or the client left
        if self._too_large:
            self._refuse_too_large()
            return
        body = b"".join(self._body)
        self._body.clear()
        endpoint.serve(info, body, self, negotiate=self.negotiate, principal=principal)

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

    def _head(
        self, status: int, headers: Sequence[tuple[str, str]], body_length: int | None
    ) -> tuple[bytes, BodyMode]:
        """The response head (:func:`~hubserver.server.response.encode_head`), after the
        server's response hook added its headers.

        Raises:
            InvalidResponseHeader: A header cannot be written (or the hook failed); a 500 was
                sent instead and the exchange is finished.
        """
        request = self.request
        all_headers = [*headers, *self._extra_headers]
        hook = self.protocol.state.response_hook
        try:
            if hook is not None:
                self._run_hook(hook, status, all_headers)
            head, mode = encode_head(request, status, encode_headers(all_headers), body_length)
        except InvalidResponseHeader as error:
            log_invalid_header(request, error)
            self._extra_headers.clear()
            self._respond_500()
            raise
        self.status = status
        return head, mode

    def _run_hook(self, hook: ResponseHook, status: int, headers: list[tuple[str, str]]) -> None:
        """Let the application add headers.

        Raises:
            InvalidResponseHeader: The hook raised (logged here with its traceback).
        """
        try:
            hook(self._request_info(), status, headers)
        except Exception as exc:
            logger.error("response hook failed", exc_info=exc)
            raise InvalidResponseHeader("(response hook)") from exc

    def _respond_500(self) -> None:
        """The fallback answer when a head cannot be written: no hook, no added headers."""
        self.request.keep_alive = False
        self.status = 500
        self._disconnect_handler = None
        self.protocol.write(text_response(self.request, 500, b"Internal Server Error"))
        self.finish()

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
        if content_type is not None:
            headers = [*headers, ("Content-Type", content_type)]
        try:
            head, mode = self._head(status, headers, len(body))
        except InvalidResponseHeader:
            return  # answered 500 instead
        self.protocol.write(head + body if body and mode is not BodyMode.NONE else head)
        # A poll or a send of an established connection is routine traffic, logged below
        # INFO (hubserver.server.access_log); negotiates and errors are not.
        self.finish(ROUTINE if status < 400 and not self.negotiate else logging.INFO)

    def start_stream(self, status: int, headers: Sequence[tuple[str, str]] = ()) -> None:
        """Write the head of a streaming response: chunked for HTTP/1.1, delimited by the
        end of the connection for HTTP/1.0 (which has no chunked encoding).

        The connection closes when the stream ends: an event stream occupies its socket for
        the connection's lifetime anyway, and signalrcore's SSE reader only notices the end
        of the stream when the socket closes.
        """
        self.request.keep_alive = False
        lost = self._disconnect_handler
        try:
            head, mode = self._head(status, headers, None)
        except InvalidResponseHeader:
            # Answered 500 instead: the stream never started, so its transport must end
            # (next tick: the endpoint attaches the transport after starting it).
            if lost is not None:
                self.protocol.loop.call_soon(lost)
            return
        self._chunked = mode is BodyMode.CHUNKED
        self._streaming = True
        self.protocol.write(head)

    def write_chunk(self, data: bytes) -> None:
        """Write one chunk."""
        if data and self._streaming and not self.done:
            if self._chunked:
                self.protocol.write(chunk(data))
            else:
                self.protocol.write(data)

    def end_stream(self) -> None:
        """Write the last chunk and complete the response (closing the connection)."""
        if self._streaming and not self.done:
            self._streaming = False
            self._disconnect_handler = None
            if self._chunked:
                self.protocol.write(LAST_CHUNK)
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
        self._wake_body()
        handler = self._disconnect_handler
        self._disconnect_handler = None
        if handler is not None and not self.done:
            handler()
        if not self.done and self.status:
            self.finish()  # log the interrupted response

    def body_timed_out(self) -> None:
        """408 and close (see :meth:`Cycle.body_timed_out`); the waiting handler gives up."""
        self.request.keep_alive = False
        self.respond(408, b"Request Timeout")
        self._wake_body()
        self.protocol.close()

    def upgrade(self, headers: Sequence[tuple[str, str]], handler: RawStreamHandler) -> ByteChannel:
        """Write 101 and hand the socket to ``handler``."""
        head, _ = self._head(101, headers, None)
        channel = self.protocol.switch_to_raw(handler, head)
        self.finish()
        return channel


def _query_map(query_string: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    if not query_string:
        return out
    text = query_string.decode("latin-1")
    if "%" in text or "+" in text:
        for key, value in parse_qsl(text, keep_blank_values=True):
            out.setdefault(key, value)
        return out
    # Nothing to unquote (the usual ``id=...&organizationId=...``): the same pairs as
    # parse_qsl without its per-field unquoting, which was a few percent of a connect.
    for field in text.split("&"):
        if field:
            key, _, value = field.partition("=")
            out.setdefault(key, value)
    return out
