"""Minimal ASGI 3 HTTP adapter: everything that is not a hub endpoint goes to ``asgi_app``.

Implements the HTTP connection scope of the ASGI spec: ``http.request`` messages with body
chunks and ``more_body``, ``http.response.start`` / ``http.response.body`` with streaming
(chunked transfer encoding when the app gives no ``content-length``), ``http.disconnect``
when the client goes away, keep-alive and in-order pipelining (handled by ``HttpProtocol``).
The head is written by :func:`hubserver.server.response.encode_head` (docs/spec/transports.md
§2.8). WebSocket upgrades to non-hub paths are :mod:`hubserver.server.asgi_websocket`'s.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from hubserver.server.http import (
    MAX_BUFFERED_BODY,
    Cycle,
    Request,
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
    text_response,
)
from hubserver.types import ASGIApp, Message

if TYPE_CHECKING:
    from hubserver.server.http import HttpProtocol

logger = logging.getLogger("hubserver.server")


def connection_scope(
    cycle: Cycle, kind: str, spec_version: str, lifespan_state: dict[str, Any] | None
) -> dict[str, Any]:
    """The keys an ASGI ``http`` and ``websocket`` scope share, for ``cycle``'s request
    (``Host`` as resolved through trusted proxies, the lifespan state copied)."""
    req = cycle.request
    headers = req.headers
    if req.host is not None:
        headers = [(n, v) for n, v in headers if n != b"host"]
        headers.append((b"host", req.host.encode("latin-1")))
    transport = cycle.protocol.transport
    sock = transport.get_extra_info("sockname") if transport is not None else None
    scope: dict[str, Any] = {
        "type": kind,
        "asgi": {"version": "3.0", "spec_version": spec_version},
        "http_version": req.http_version,
        "scheme": req.scheme,
        "path": req.path,
        "raw_path": req.raw_path,
        "query_string": req.query_string,
        "root_path": "",
        "headers": headers,
        "client": req.client,
        "server": (str(sock[0]), int(sock[1])) if isinstance(sock, tuple) else None,
        # The access log's request id, so the application logs the same one.
        "extensions": {"hubserver.request_id": req.request_id},
    }
    if lifespan_state is not None:
        scope["state"] = dict(lifespan_state)
    return scope


class AppCycle(Cycle):
    """A request served by the ASGI application: its ``receive()`` sleeps until
    :meth:`wake` (body bytes, a WebSocket message, the client leaving)."""

    __slots__ = ("_event", "app", "lifespan_state")

    def __init__(
        self,
        protocol: HttpProtocol,
        request: Request,
        app: ASGIApp,
        lifespan_state: dict[str, Any] | None,
    ) -> None:
        super().__init__(protocol, request)
        self.app = app
        self.lifespan_state = lifespan_state
        self._event: asyncio.Event | None = None

    def wake(self) -> None:
        """Let a waiting :meth:`wait_woken` return."""
        if self._event is not None:
            self._event.set()

    async def wait_woken(self) -> None:
        """Sleep until the next :meth:`wake` (the event is created on first use only)."""
        event = self._event
        if event is None:
            event = self._event = asyncio.Event()
        event.clear()
        await event.wait()


class AsgiCycle(AppCycle):
    """One HTTP request served by the ASGI application."""

    __slots__ = (
        "_body",
        "_body_size",
        "_expect_continue",
        "_head_sent",
        "_headers",
        "_mode",
        "_reading_paused",
        "_request_done",
        "_started",
    )

    def __init__(
        self,
        protocol: HttpProtocol,
        request: Request,
        app: ASGIApp,
        lifespan_state: dict[str, Any] | None,
    ) -> None:
        super().__init__(protocol, request, app, lifespan_state)
        self._body: list[bytes] = []
        self._body_size = 0
        self._reading_paused = False
        self._request_done = False
        self._started = False
        self._head_sent = False
        self._mode = BodyMode.RAW
        self._headers: list[tuple[bytes, bytes]] = []
        self._expect_continue = expects_continue(request)

    # --- request body ---------------------------------------------------------------------

    def on_body(self, chunk: bytes) -> None:
        """Queue a body chunk; pause reading when too much is buffered."""
        self._body.append(chunk)
        self._body_size += len(chunk)
        if self._body_size > MAX_BUFFERED_BODY and not self._reading_paused:
            self._reading_paused = True
            if self.protocol.transport is not None:
                self.protocol.transport.pause_reading()
        self.wake()

    def on_body_complete(self) -> None:
        """The body is complete."""
        self.wake()

    def on_disconnect(self) -> None:
        """Wake a pending ``receive()`` so it returns ``http.disconnect``."""
        super().on_disconnect()
        self.wake()
        if not self.done:
            self.finish()

    def body_timed_out(self) -> None:
        """408 unless the application already answered; its pending ``receive()`` returns
        ``http.disconnect`` (the rest of the body will never come)."""
        self.request.keep_alive = False
        if not self._head_sent and not self.done:
            self._head_sent = True
            self.status = 408
            self.protocol.write(text_response(self.request, 408, b"Request Timeout"))
        self.disconnected = True
        self.wake()
        if not self.done:
            self.finish()
        self.protocol.close()

    def start(self) -> None:
        """Run the application as a task."""
        task = self.protocol.loop.create_task(self._run())
        task.add_done_callback(_log_task_error)

    def _scope(self) -> dict[str, Any]:
        scope = connection_scope(self, "http", "2.3", self.lifespan_state)
        scope["method"] = self.request.method
        return scope

    async def _run(self) -> None:
        try:
            await self.app(self._scope(), self.receive, self.send)
        except BaseException as exc:
            if isinstance(exc, asyncio.CancelledError):
                self._fail()
                raise
            logger.error("ASGI application raised", exc_info=exc)
            self._fail()
            return
        if not self.done:
            if not self._started:
                logger.error("ASGI application returned without starting a response")
            self._fail()

    def _fail(self) -> None:
        if self.done:
            return
        self.request.keep_alive = False
        if not self._head_sent and not self.disconnected:
            self.status = 500
            self.protocol.write(text_response(self.request, 500, b"Internal Server Error"))
            self.finish()
        else:
            # Mid-response failure: the client can only notice by the connection closing.
            self.protocol.close()
            self.finish()

    # --- ASGI callables -------------------------------------------------------------------

    async def receive(self) -> Message:
        """Next ``http.request`` chunk; once the body was delivered, ``http.disconnect`` when
        the client goes away or the response is complete."""
        while True:
            if self.disconnected or self.done:
                return {"type": "http.disconnect"}
            if not self._request_done:
                if self._body or self.request.body_complete:
                    body = b"".join(self._body) if len(self._body) != 1 else self._body[0]
                    self._body.clear()
                    self._body_size = 0
                    if self._reading_paused:
                        self._reading_paused = False
                        if self.protocol.transport is not None:
                            self.protocol.transport.resume_reading()
                    more = not self.request.body_complete
                    self._request_done = not more
                    return {"type": "http.request", "body": body, "more_body": more}
                if self._expect_continue and not self._started:
                    # RFC 9110 §10.1.1: the client waits for this before sending the body.
                    self._expect_continue = False
                    self.protocol.write(CONTINUE)
            await self.wait_woken()

    async def send(self, message: Message) -> None:
        """Handle ``http.response.start`` and ``http.response.body``."""
        kind = message["type"]
        if self.disconnected or self.done:
            return
        if kind == "http.response.start":
            if self._started:
                raise RuntimeError("ASGI: 'http.response.start' sent twice")
            self._started = True
            self.status = int(message["status"])
            self._headers = [(bytes(n).lower(), bytes(v)) for n, v in message.get("headers", ())]
            return
        if kind != "http.response.body":
            raise RuntimeError(f"ASGI: unexpected message type {kind!r}")
        if not self._started:
            raise RuntimeError("ASGI: 'http.response.body' before 'http.response.start'")
        body = bytes(message.get("body", b""))
        more = bool(message.get("more_body", False))
        protocol = self.protocol
        if not self._head_sent:
            try:
                head, self._mode = encode_head(
                    self.request, self.status, self._headers, None if more else len(body)
                )
            except InvalidResponseHeader as exc:
                # Never written: a CR/LF in a value would forge headers or a whole response.
                # The client gets a 500; the application's further sends are ignored.
                log_invalid_header(self.request, exc)
                self._fail()
                return
            self._head_sent = True
            protocol.write(head)
        mode = self._mode
        if body and mode is not BodyMode.NONE:
            protocol.write(chunk(body) if mode is BodyMode.CHUNKED else body)
        if more:
            await protocol.drain()
            return
        if mode is BodyMode.CHUNKED:
            protocol.write(LAST_CHUNK)
        self.finish()
        # A receive() waiting for the request body's end must return http.disconnect now.
        self.wake()


def _log_task_error(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("ASGI cycle task failed", exc_info=task.exception())
