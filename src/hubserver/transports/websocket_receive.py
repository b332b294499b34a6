"""The receive loop of a server WebSocket: client frames to data, Ping and Close handlers.

Shared by the hub transport (:class:`~hubserver.transports.websocket.WebSocketTransport`) and
the ASGI ``websocket`` scope (:class:`~hubserver.server.asgi_websocket.AsgiWebSocketCycle`):
both feed the socket's bytes to a :class:`~hubserver.transports.websocket_frames.FrameParser`
and act on what it returns the same way (RFC 6455 §5.5); they differ only in where a message,
a Pong and the end of the connection go.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from hubserver.transports.websocket_frames import (
    OP_BINARY,
    OP_CLOSE,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    FrameParser,
    WebSocketProtocolError,
    encode_frame,
    parse_close_payload,
)

__all__ = ["FrameReceiver"]


class FrameReceiver:
    """Mixin providing ``data_received`` for a server WebSocket shell.

    The class sets :attr:`_OPEN` and :attr:`_CLOSED` to its own states and keeps ``_state``
    and ``_parser``. Data frames go to ``_on_text`` / ``_on_binary`` (methods, or callables
    stored in slots: the hub transport stores its owner's entry point there, so a message
    costs no extra call), only while open. Pings are answered through ``_write_control``
    while open; a Close frame ends the loop in ``_close_received``; a protocol violation in
    ``_fail``. After the state became closed, bytes are ignored.
    """

    __slots__ = ()

    _OPEN: ClassVar[object]
    _CLOSED: ClassVar[object]
    _state: object
    _parser: FrameParser
    _on_text: Callable[[bytes], None]
    _on_binary: Callable[[bytes], None]

    def data_received(self, data: bytes) -> None:
        """Parse client frames and dispatch them."""
        if self._state is self._CLOSED:
            return
        try:
            events = self._parser.feed(data)
        except WebSocketProtocolError as exc:
            self._fail(exc)
            return
        for opcode, payload in events:
            # RFC 6455 §5.5.1: after sending Close, further data frames may be dropped.
            if opcode == OP_TEXT:
                if self._state is self._OPEN:
                    self._on_text(payload)
            elif opcode == OP_BINARY:
                if self._state is self._OPEN:
                    self._on_binary(payload)
            elif opcode == OP_PING:
                # RFC 6455 §5.5.2: answer with a Pong carrying the same payload.
                if self._state is self._OPEN:
                    self._write_control(encode_frame(OP_PONG, payload))
            elif opcode == OP_CLOSE:
                try:
                    code, reason = parse_close_payload(payload)
                except WebSocketProtocolError as exc:
                    self._fail(exc)
                    return
                self._close_received(code, reason)
                return
            # OP_PONG: unsolicited pongs are ignored (RFC 6455 §5.5.3).

    def _write_control(self, frame: bytes) -> None:
        """Write a control frame (a Pong) to the client."""
        raise NotImplementedError

    def _close_received(self, code: int, reason: str) -> None:
        """The client's Close frame arrived (an echo of ours, or its own close)."""
        raise NotImplementedError

    def _fail(self, error: WebSocketProtocolError) -> None:
        """RFC 6455 §7.1.7 "Fail the WebSocket Connection" with ``error``'s close code."""
        raise NotImplementedError
