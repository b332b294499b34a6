"""ASGI ``websocket`` scope: WebSocket upgrades to non-hub paths served by the ASGI application.

Implements the WebSocket connection scope of the ASGI spec (version 2.4): ``receive()``
returns ``websocket.connect``, then ``websocket.receive`` (``text`` or ``bytes``) and finally
``websocket.disconnect`` with the close code and reason; ``send()`` takes
``websocket.accept`` (``subprotocol``, ``headers``), ``websocket.send``, ``websocket.close``
(before the accept: the upgrade is refused with 403) and, through the
``websocket.http.response`` extension, a denial response of the application's own. Sending
after the client left raises :class:`ClientDisconnected`.

The handshake is checked before the application is called (``GET``, ``Sec-WebSocket-Version:
13``, a valid key: else 400/426, docs/spec/transports.md §2.9). Frames are parsed and written
by :mod:`hubserver.transports.websocket_frames`, the hub transport's codec; the 101 head by
:func:`hubserver.server.response.encode_head`.
"""

from __future__ import annotations

import asyncio
import collections
import enum
import logging
from typing import TYPE_CHECKING, Any

from hubserver.server.asgi import AppCycle, connection_scope
from hubserver.server.http import Request, log_invalid_header
from hubserver.server.response import (
    LAST_CHUNK,
    BodyMode,
    InvalidResponseHeader,
    chunk,
    encode_head,
    text_response,
)
from hubserver.transports.base import ByteChannel
from hubserver.transports.websocket_frames import (
    CLOSE_GOING_AWAY,
    CLOSE_INTERNAL_ERROR,
    CLOSE_NO_STATUS,
    CLOSE_NORMAL,
    OP_BINARY,
    OP_TEXT,
    FrameParser,
    WebSocketProtocolError,
    accept_key,
    encode_close,
    encode_frame,
    is_valid_client_key,
)
from hubserver.transports.websocket_receive import FrameReceiver
from hubserver.types import ASGIApp, Message

if TYPE_CHECKING:
    from hubserver.server.http import HttpProtocol

logger = logging.getLogger("hubserver.server")

CLOSE_ABNORMAL = 1006
"""Reported to the application when the socket ended without a Close frame (RFC 6455 §7.1.5)."""
CLOSE_TIMEOUT = 5.0
"""Seconds to wait for the client's Close frame after the application's."""
_DENIAL_EXTENSION = "websocket.http.response"


class ClientDisconnected(OSError):
    """``send()`` after the client's socket is gone (ASGI spec 2.4: an ``IOError``)."""


class _State(enum.Enum):
    CONNECTING = 0  # before websocket.accept / close / a denial response
    DENYING = 1  # a denial response is being streamed
    OPEN = 2
    CLOSING = 3  # our Close frame was sent, the client's is awaited
    CLOSED = 4


def is_websocket_upgrade(request: Request) -> bool:
    """True for an HTTP/1.1 upgrade request asking for ``websocket``."""
    return request.upgrade and any(
        name == b"upgrade" and value.strip().lower() == b"websocket"
        for name, value in request.headers
    )


class AsgiWebSocketCycle(AppCycle, FrameReceiver):
    """One WebSocket served by the ASGI application; after the 101 it is also the socket's
    :class:`~hubserver.transports.base.RawStreamHandler`.

    Args:
        protocol: The HTTP connection the upgrade request came on.
        request: The upgrade request.
        app: The ASGI application.
        lifespan_state: State from the lifespan startup (copied into the scope).
        max_message_size: Largest incoming message; bigger -> close 1009.
        registry: The server's live ASGI WebSockets (closed with 1001 at stop).
    """

    __slots__ = (
        "_channel",
        "_close_timer",
        "_connect_sent",
        "_disconnect",
        "_inbound",
        "_inbound_size",
        "_parser",
        "_reading_paused",
        "_registry",
        "_response_mode",
        "_state",
        "max_message_size",
    )

    _OPEN = _State.OPEN
    _CLOSED = _State.CLOSED

    def __init__(
        self,
        protocol: HttpProtocol,
        request: Request,
        app: ASGIApp,
        lifespan_state: dict[str, Any] | None,
        max_message_size: int,
        registry: set[AsgiWebSocketCycle],
    ) -> None:
        super().__init__(protocol, request, app, lifespan_state)
        self.max_message_size = max_message_size
        self._registry = registry
        self._state = _State.CONNECTING
        self._connect_sent = False
        self._channel: ByteChannel | None = None
        self._parser = FrameParser(max_message_size)
        self._inbound: collections.deque[tuple[Message, int]] = collections.deque(
            [({"type": "websocket.connect"}, 0)]
        )
        self._inbound_size = 0
        self._reading_paused = False
        self._disconnect: Message | None = None
        self._close_timer: asyncio.TimerHandle | None = None
        self._response_mode = BodyMode.RAW

    # --- request side ---------------------------------------------------------------------

    def on_body_complete(self) -> None:
        """An upgrade request's body (rare) is complete: start if waiting for it."""
        if self.protocol.active is self:
            self.start()

    def start(self) -> None:
        """Check the handshake, then run the application as a task."""
        req = self.request
        if not req.body_complete or self.done or self._connect_sent:
            return
        headers = {n: v.strip() for n, v in req.headers}
        if headers.get(b"sec-websocket-version") != b"13":
            self._refuse(426, b"Unsupported WebSocket version", [(b"Sec-WebSocket-Version", b"13")])
            return
        key = headers.get(b"sec-websocket-key", b"").decode("latin-1")
        if req.method != "GET" or not is_valid_client_key(key):
            self._refuse(400, b"Invalid WebSocket handshake")
            return
        self._connect_sent = True
        self._registry.add(self)
        task = self.protocol.loop.create_task(self._run())
        task.add_done_callback(_log_task_error)

    def _refuse(
        self, status: int, text: bytes, headers: list[tuple[bytes, bytes]] | None = None
    ) -> None:
        self.request.keep_alive = False  # the bytes after an upgrade request are not HTTP
        self.status = status
        items = [(b"Content-Type", b"text/plain; charset=utf-8"), *(headers or [])]
        head, _ = encode_head(self.request, status, items, len(text))
        self.protocol.write(head + text)
        self.finish()

    def _scope(self) -> dict[str, Any]:
        scope = connection_scope(self, "websocket", "2.4", self.lifespan_state)
        scope["scheme"] = "wss" if self.request.scheme == "https" else "ws"
        scope["subprotocols"] = [
            item.strip()
            for name, value in self.request.headers
            if name == b"sec-websocket-protocol"
            for item in value.decode("latin-1").split(",")
            if item.strip()
        ]
        scope["extensions"][_DENIAL_EXTENSION] = {}
        return scope

    async def _run(self) -> None:
        failed = False
        try:
            await self.app(self._scope(), self.receive, self.send)
        except ClientDisconnected:
            pass  # the application sent after the client left: nothing more to do
        except asyncio.CancelledError:
            self._end_after_app(True)
            raise
        except Exception as exc:
            failed = True
            logger.error("ASGI WebSocket application raised", exc_info=exc)
        self._end_after_app(failed)

    def _end_after_app(self, failed: bool) -> None:
        """The application returned (or raised): finish what it left open."""
        state = self._state
        if state is _State.CONNECTING:
            # Returning (or failing) without accepting refuses the upgrade.
            if not self.disconnected:
                self._refuse(500 if failed else 403, b"Internal Server Error" if failed else b"")
        elif state is _State.DENYING:
            self.request.keep_alive = False
            self.protocol.close()
            self.finish()
        elif state is _State.OPEN:
            self._send_close(CLOSE_INTERNAL_ERROR if failed else CLOSE_NORMAL, "")
        self._registry.discard(self)

    # --- ASGI callables -------------------------------------------------------------------

    async def receive(self) -> Message:
        """``websocket.connect`` first, then the client's messages, then
        ``websocket.disconnect`` (repeatedly)."""
        while True:
            if self._inbound:
                message, size = self._inbound.popleft()
                self._inbound_size -= size
                if self._reading_paused and self._inbound_size <= self.max_message_size:
                    self._reading_paused = False
                    self.protocol.resume_reading()
                return message
            if self._disconnect is not None:
                return self._disconnect
            await self.wait_woken()

    async def send(self, message: Message) -> None:
        """``websocket.accept`` / ``send`` / ``close``, or a denial response."""
        kind = message["type"]
        state = self._state
        if kind == "websocket.accept":
            if state is not _State.CONNECTING:
                raise RuntimeError("ASGI: 'websocket.accept' after the handshake ended")
            self._accept(message)
        elif kind == "websocket.send":
            if state in (_State.CONNECTING, _State.DENYING):
                raise RuntimeError("ASGI: 'websocket.send' before 'websocket.accept'")
            if state is not _State.OPEN or self.disconnected:
                raise ClientDisconnected("the WebSocket is closed")
            text = message.get("text")
            if text is not None:
                frame = encode_frame(OP_TEXT, str(text).encode("utf-8"))
            else:
                frame = encode_frame(OP_BINARY, bytes(message.get("bytes") or b""))
            assert self._channel is not None
            self._channel.write(frame)
            await self.protocol.drain()
        elif kind == "websocket.close":
            if state is _State.CONNECTING:
                if not self.disconnected:
                    self._refuse(403, b"")
                self._state = _State.CLOSED
                self._set_disconnect(int(message.get("code") or CLOSE_NORMAL), "")
            elif state is _State.OPEN:
                self._send_close(
                    int(message.get("code") or CLOSE_NORMAL), str(message.get("reason") or "")
                )
            elif state is _State.DENYING:
                raise RuntimeError("ASGI: 'websocket.close' during a denial response")
        elif kind == "websocket.http.response.start":
            if state is not _State.CONNECTING:
                raise RuntimeError("ASGI: denial response after the handshake ended")
            self._deny_start(message)
        elif kind == "websocket.http.response.body":
            if state is not _State.DENYING:
                raise RuntimeError("ASGI: denial body before 'websocket.http.response.start'")
            self._deny_body(message)
        else:
            raise RuntimeError(f"ASGI: unexpected message type {kind!r}")

    # --- handshake ------------------------------------------------------------------------

    def _accept(self, message: Message) -> None:
        if self.disconnected:
            raise ClientDisconnected("the client left before the WebSocket was accepted")
        key = dict(self.request.headers)[b"sec-websocket-key"].strip().decode("latin-1")
        headers: list[tuple[bytes, bytes]] = [
            (b"Upgrade", b"websocket"),
            (b"Connection", b"Upgrade"),
            (b"Sec-WebSocket-Accept", accept_key(key).encode("ascii")),
        ]
        subprotocol = message.get("subprotocol")
        if subprotocol:
            headers.append((b"Sec-WebSocket-Protocol", str(subprotocol).encode("latin-1")))
        reserved = (b"upgrade", b"connection", b"sec-websocket-accept", b"sec-websocket-protocol")
        for name, value in message.get("headers", ()):
            if bytes(name).lower() not in reserved:
                headers.append((bytes(name), bytes(value)))
        try:
            head, _ = encode_head(self.request, 101, headers, None)
        except InvalidResponseHeader as exc:
            log_invalid_header(self.request, exc)
            self._state = _State.CLOSED
            self._set_disconnect(CLOSE_ABNORMAL, "")
            self.status = 500
            self.request.keep_alive = False
            self.protocol.write(text_response(self.request, 500, b"Internal Server Error"))
            self.finish()
            raise ClientDisconnected("invalid accept headers; answered 500") from None
        self.status = 101
        self._state = _State.OPEN
        self._channel = self.protocol.switch_to_raw(self, head)
        self.finish()

    def _deny_start(self, message: Message) -> None:
        self._state = _State.DENYING
        self.status = int(message["status"])
        headers = [(bytes(n).lower(), bytes(v)) for n, v in message.get("headers", ())]
        self.request.keep_alive = False
        try:
            head, self._response_mode = encode_head(self.request, self.status, headers, None)
        except InvalidResponseHeader as exc:
            log_invalid_header(self.request, exc)
            self._state = _State.CLOSED
            self._refuse(500, b"Internal Server Error")
            return
        self.protocol.write(head)

    def _deny_body(self, message: Message) -> None:
        body = bytes(message.get("body", b""))
        mode = self._response_mode
        if body and mode is not BodyMode.NONE:
            self.protocol.write(chunk(body) if mode is BodyMode.CHUNKED else body)
        if not message.get("more_body", False):
            if mode is BodyMode.CHUNKED:
                self.protocol.write(LAST_CHUNK)
            self._state = _State.CLOSED
            self._set_disconnect(CLOSE_NORMAL, "")
            self.finish()

    # --- closing --------------------------------------------------------------------------

    def _send_close(self, code: int, reason: str) -> None:
        """Send our Close frame and wait (bounded) for the client's."""
        self._state = _State.CLOSING
        channel = self._channel
        if channel is not None and not channel.is_closing():
            channel.write(encode_close(code, reason))
        self._close_timer = self.protocol.loop.call_later(CLOSE_TIMEOUT, self._close_timed_out)

    def _close_timed_out(self) -> None:
        self._close_timer = None
        if self._channel is not None:
            self._channel.abort()

    def going_away(self) -> None:
        """The server is stopping: close an open WebSocket with 1001, refuse a pending one."""
        if self._state is _State.OPEN:
            self._send_close(CLOSE_GOING_AWAY, "server stopping")
            self._set_disconnect(CLOSE_GOING_AWAY, "server stopping")

    def _set_disconnect(self, code: int, reason: str) -> None:
        if self._disconnect is None:
            self._disconnect = {"type": "websocket.disconnect", "code": code, "reason": reason}
        self.wake()

    # --- socket events before the upgrade -------------------------------------------------

    def on_disconnect(self) -> None:
        """The client left before the handshake was answered."""
        super().on_disconnect()
        self._set_disconnect(CLOSE_ABNORMAL, "")
        if not self.done:
            self.finish()

    # --- socket events after the upgrade (RawStreamHandler) -------------------------------

    def _on_text(self, payload: bytes) -> None:
        self._queue_message({"type": "websocket.receive", "text": payload.decode("utf-8")}, payload)

    def _on_binary(self, payload: bytes) -> None:
        self._queue_message({"type": "websocket.receive", "bytes": payload}, payload)

    def _write_control(self, frame: bytes) -> None:
        if self._channel is not None:
            self._channel.write(frame)

    def _queue_message(self, message: Message, payload: bytes) -> None:
        self._inbound.append((message, len(payload)))
        self._inbound_size += len(payload)
        if self._inbound_size > self.max_message_size and not self._reading_paused:
            # The application reads slower than the client writes: stop reading the socket.
            self._reading_paused = True
            self.protocol.pause_reading()
        self.wake()

    def _close_received(self, code: int, reason: str) -> None:
        channel = self._channel
        if self._state is _State.OPEN and channel is not None:
            # Client-initiated close: echo the code, then close the TCP connection.
            channel.write(encode_close(CLOSE_NORMAL if code == CLOSE_NO_STATUS else code))
        self._state = _State.CLOSED
        self._cancel_timer()
        if channel is not None:
            channel.close()
        self._set_disconnect(code, reason)

    def _fail(self, error: WebSocketProtocolError) -> None:
        self._state = _State.CLOSED
        self._cancel_timer()
        channel = self._channel
        if channel is not None and not channel.is_closing():
            channel.write(encode_close(error.code, error.reason))
            channel.close()
        self._set_disconnect(error.code, error.reason)

    def _cancel_timer(self) -> None:
        if self._close_timer is not None:
            self._close_timer.cancel()
            self._close_timer = None

    def eof_received(self) -> None:
        """The client half-closed: the WebSocket is over."""
        self.connection_lost(None)

    def connection_lost(self, exc: BaseException | None) -> None:
        """The socket is gone."""
        self.disconnected = True
        self._state = _State.CLOSED
        self._cancel_timer()
        self._registry.discard(self)
        self._set_disconnect(CLOSE_ABNORMAL, "")

    def pause_writing(self) -> None:
        """``send()`` waits in ``HttpProtocol.drain()``; nothing to do here."""

    def resume_writing(self) -> None:
        """See :meth:`pause_writing`."""


def _log_task_error(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("ASGI WebSocket task failed", exc_info=task.exception())
