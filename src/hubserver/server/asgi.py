"""Minimal ASGI 3 HTTP adapter: everything that is not a hub endpoint goes to ``asgi_app``.

Implements the HTTP connection scope of the ASGI spec: ``http.request`` messages with body
chunks and ``more_body``, ``http.response.start`` / ``http.response.body`` with streaming
(chunked transfer encoding when the app gives no ``content-length``), ``http.disconnect``
when the client goes away, keep-alive and in-order pipelining (handled by ``HttpProtocol``).
WebSocket scopes are not offered: WebSockets are served natively (docs/adr/0001).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from hubserver.server.http import (
    MAX_BUFFERED_BODY,
    Cycle,
    InvalidResponseHeader,
    Request,
    check_response_headers,
    connection_header,
    expects_continue,
    log_invalid_header,
    status_line,
)
from hubserver.types import ASGIApp, Message

if TYPE_CHECKING:
    from hubserver.server.http import HttpProtocol

logger = logging.getLogger("hubserver.server")

_NO_BODY_STATUSES = frozenset({204, 304})
_500 = (
    b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Content-Length: 21\r\nConnection: close\r\n\r\nInternal Server Error"
)


class AsgiCycle(Cycle):
    """One HTTP request served by the ASGI application."""

    __slots__ = (
        "_body",
        "_body_event",
        "_body_size",
        "_chunked",
        "_expect_continue",
        "_head_sent",
        "_headers",
        "_no_body",
        "_reading_paused",
        "_request_done",
        "_started",
        "app",
        "lifespan_state",
    )

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
        self._body: list[bytes] = []
        self._body_size = 0
        self._body_event: asyncio.Event | None = None
        self._reading_paused = False
        self._request_done = False
        self._started = False
        self._head_sent = False
        self._chunked = False
        self._no_body = request.method == "HEAD"
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
        self._wake()

    def on_body_complete(self) -> None:
        """The body is complete."""
        self._wake()

    def on_disconnect(self) -> None:
        """Wake a pending ``receive()`` so it returns ``http.disconnect``."""
        super().on_disconnect()
        self._wake()
        if not self.done:
            self.finish()

    def body_timed_out(self) -> None:
        """408 unless the application already answered; its pending ``receive()`` returns
        ``http.disconnect`` (the rest of the body will never come)."""
        self.request.keep_alive = False
        if not self._head_sent and not self.done:
            self._head_sent = True
            self.status = 408
            self.protocol.write(
                b"HTTP/1.1 408 Request Timeout\r\nContent-Type: text/plain\r\n"
                b"Content-Length: 15\r\nConnection: close\r\n\r\nRequest Timeout"
            )
        self.disconnected = True
        self._wake()
        if not self.done:
            self.finish()
        self.protocol.close()

    def _wake(self) -> None:
        if self._body_event is not None:
            self._body_event.set()

    def start(self) -> None:
        """Run the application as a task."""
        task = self.protocol.loop.create_task(self._run())
        task.add_done_callback(_log_task_error)

    def _scope(self) -> dict[str, Any]:
        req = self.request
        headers = req.headers
        if req.host is not None:
            headers = [(n, v) for n, v in headers if n != b"host"]
            headers.append((b"host", req.host.encode("latin-1")))
        sock = (
            self.protocol.transport.get_extra_info("sockname") if self.protocol.transport else None
        )
        server = (str(sock[0]), int(sock[1])) if isinstance(sock, tuple) else None
        scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": req.http_version,
            "method": req.method,
            "scheme": req.scheme,
            "path": req.path,
            "raw_path": req.raw_path,
            "query_string": req.query_string,
            "root_path": "",
            "headers": headers,
            "client": req.client,
            "server": server,
            # The access log's request id, so the application logs the same one.
            "extensions": {"hubserver.request_id": req.request_id},
        }
        if self.lifespan_state is not None:
            scope["state"] = dict(self.lifespan_state)
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
            self.protocol.write(_500)
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
                    self.protocol.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            await self._wait()

    async def _wait(self) -> None:
        event = self._body_event
        if event is None:
            event = self._body_event = asyncio.Event()
        event.clear()
        await event.wait()

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
            try:
                check_response_headers(self._headers)
            except InvalidResponseHeader as exc:
                # Never written: a CR/LF in a value would forge headers or a whole response.
                # The client gets a 500; the application's further sends are ignored.
                log_invalid_header(self.request, exc)
                self._fail()
            return
        if kind != "http.response.body":
            raise RuntimeError(f"ASGI: unexpected message type {kind!r}")
        if not self._started:
            raise RuntimeError("ASGI: 'http.response.body' before 'http.response.start'")
        body = bytes(message.get("body", b""))
        more = bool(message.get("more_body", False))
        protocol = self.protocol
        if not self._head_sent:
            protocol.write(self._head(body, more))
        if body and not self._no_body:
            if self._chunked:
                protocol.write(b"%x\r\n%s\r\n" % (len(body), body))
            else:
                protocol.write(body)
        if more:
            await protocol.drain()
            return
        if self._chunked:
            protocol.write(b"0\r\n\r\n")
        self.finish()
        # A receive() waiting for the request body's end must return http.disconnect now.
        self._wake()

    def _head(self, first_body: bytes, more: bool) -> bytes:
        self._head_sent = True
        status = self.status
        out = bytearray(status_line(status))
        has_length = False
        for name, value in self._headers:
            if name == b"content-length":
                has_length = True
                continue
            if name == b"transfer-encoding":
                continue  # we decide the framing
            elif name == b"connection":
                if value.lower() == b"close":
                    self.request.keep_alive = False
                continue  # we decide it: connection_header() below
            out += name + b": " + value + b"\r\n"
        if has_length:
            out += b"".join(
                n + b": " + v + b"\r\n" for n, v in self._headers if n == b"content-length"
            )
        no_body = status in _NO_BODY_STATUSES or status < 200
        if no_body:
            self._no_body = True
        elif not has_length:
            if not more:
                out += b"content-length: %d\r\n" % len(first_body)
            elif self.request.http_version == "1.1":
                self._chunked = True
                out += b"transfer-encoding: chunked\r\n"
            else:
                # HTTP/1.0 has no chunked encoding: the body ends when the connection does.
                self.request.keep_alive = False
        out += connection_header(self.request)
        out += b"\r\n"
        return bytes(out)


def _log_task_error(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("ASGI cycle task failed", exc_info=task.exception())
