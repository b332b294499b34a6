"""WebSocket transport shell: pumps bytes between the socket and :mod:`websocket_frames`.

No task per connection: reads arrive as ``data_received`` callbacks forwarded by the HTTP
protocol after the upgrade, and writes are queued frames flushed once per event-loop tick by
the :class:`~hubserver.transports.base.WriteCoalescer` (one write per tick).
"""

from __future__ import annotations

import asyncio
import enum

from hubserver.errors import TransportError
from hubserver.protocol.base import HubProtocol, TransferFormat
from hubserver.protocol.serialized import SerializedMessage
from hubserver.transports.base import (
    ByteChannel,
    ConnectionLostError,
    TransportOwner,
    TransportType,
    WriteCoalescer,
)
from hubserver.transports.websocket_frames import (
    CLOSE_NO_STATUS,
    CLOSE_NORMAL,
    OP_BINARY,
    OP_TEXT,
    FrameParser,
    WebSocketProtocolError,
    encode_close,
    encode_frame,
)
from hubserver.transports.websocket_receive import FrameReceiver

_LOST_TEXT = (
    "The remote party closed the WebSocket connection without completing the close handshake."
)


_FRAME_KEYS: dict[str, tuple[str, str]] = {}
"""Cache keys of WebSocket frames on a SerializedMessage, one per protocol name."""


class _State(enum.IntEnum):
    OPEN = 0
    CLOSING = 1  # we sent a Close frame and wait for the peer's
    CLOSED = 2


class WebSocketTransport(FrameReceiver):
    """Server side of one WebSocket (RFC 6455) carrying a SignalR connection.

    Args:
        owner: Receives message payloads and the end of the transport.
        max_message_size: Largest incoming message; bigger -> close 1009.
        close_timeout: Seconds to wait for the peer's Close frame before dropping the socket
            (.NET ``CloseTimeout``, docs/spec/transports.md §2.2).
        coalescer: Per-loop write batcher (defaults to the running loop's).
    """

    __slots__ = (
        "_channel",
        "_channel_buffered",
        "_close_timer",
        "_coalescer",
        "_dirty",
        "_generation",
        "_on_binary",
        "_on_text",
        "_owner",
        "_parser",
        "_paused",
        "_pending",
        "_pending_size",
        "_state",
        "close_timeout",
    )

    _OPEN = _State.OPEN
    _CLOSED = _State.CLOSED

    def __init__(
        self,
        owner: TransportOwner,
        *,
        max_message_size: int,
        close_timeout: float = 5.0,
        coalescer: WriteCoalescer | None = None,
    ) -> None:
        self._owner = owner
        # Messages go straight to the owner (FrameReceiver): no call of ours in between.
        self._on_text = self._on_binary = owner.transport_data
        self._channel: ByteChannel | None = None
        self._channel_buffered = 0
        self._parser = FrameParser(max_message_size)
        self._coalescer = coalescer or WriteCoalescer.for_running_loop()
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._dirty = False
        self._generation = -1
        self._paused = False
        self._state = _State.OPEN
        self._close_timer: asyncio.TimerHandle | None = None
        self.close_timeout = close_timeout

    @property
    def kind(self) -> TransportType:
        """Always :attr:`TransportType.WEB_SOCKETS`."""
        return TransportType.WEB_SOCKETS

    def attach(self, channel: ByteChannel) -> None:
        """Start writing to ``channel`` (the socket, after the 101 response)."""
        self._channel = channel
        if self._pending and not self._dirty:
            self._dirty = True
            self._coalescer.mark(self)

    @property
    def is_open(self) -> bool:
        """True until a Close frame was sent or received or the socket was lost."""
        return self._state is _State.OPEN

    # --- writes ---------------------------------------------------------------------------

    def send(self, payload: bytes, binary: bool) -> None:
        """Queue one message as a single Text or Binary frame."""
        if self._state is _State.OPEN:
            self._queue(encode_frame(OP_BINARY if binary else OP_TEXT, payload))

    def send_serialized(self, message: SerializedMessage, protocol: HubProtocol) -> int:
        """Queue a broadcast; the frame is built once per protocol and cached on ``message``.

        This runs once per connection per broadcast, so it is written flat: one cache lookup,
        no closure, ``_queue`` inlined (bench/fanout.py and bench/micro_broadcast.py measure
        it). The first message of a tick goes straight to the socket, as a raw server would
        write it; later ones in the same tick queue behind it and leave in one coalesced
        write at the end of the tick (syscalls, not bytes, are the cost).
        """
        if self._state is not _State.OPEN:
            return self._pending_size
        name = protocol.name
        key = _FRAME_KEYS.get(name)
        if key is None:
            key = _FRAME_KEYS[name] = ("ws", name)
        frame = message.cached_or_none(key)
        if frame is None:
            binary = protocol.transfer_format is TransferFormat.BINARY
            frame = message.store(
                key, encode_frame(OP_BINARY if binary else OP_TEXT, message.get(protocol))
            )
        coalescer = self._coalescer
        channel = self._channel
        if (
            not self._pending
            and not self._paused
            and channel is not None
            and self._generation != coalescer.generation
        ):
            self._generation = coalescer.generation
            coalescer.touch()
            channel.write(frame)
            buffered = self._channel_buffered = channel.get_write_buffer_size()
            return buffered
        self._pending.append(frame)
        size = self._pending_size = self._pending_size + len(frame)
        if not self._dirty and not self._paused:
            self._dirty = True
            self._coalescer.mark(self)
        return size + self._channel_buffered

    def _queue(self, frame: bytes) -> None:
        self._pending.append(frame)
        self._pending_size += len(frame)
        if not self._dirty and not self._paused:
            self._dirty = True
            self._coalescer.mark(self)

    _write_control = _queue

    def flush(self) -> None:
        """Write every queued frame with one socket write (called by the coalescer)."""
        self._dirty = False
        channel = self._channel
        if self._paused or not self._pending or channel is None:
            return
        pending = self._pending
        data = pending[0] if len(pending) == 1 else b"".join(pending)
        pending.clear()
        self._pending_size = 0
        if not channel.is_closing():
            channel.write(data)
            # Remembered for send_serialized's cheap slow-consumer figure.
            self._channel_buffered = channel.get_write_buffer_size()

    def buffered_bytes(self) -> int:
        """Bytes queued here plus bytes the socket has not yet handed to the kernel."""
        channel = self._channel
        return self._pending_size + (channel.get_write_buffer_size() if channel else 0)

    # --- closing --------------------------------------------------------------------------

    def close(self, code: int = CLOSE_NORMAL, reason: str = "") -> None:
        """Flush, send a Close frame and wait (bounded) for the peer's Close frame.

        The owner is not notified: it asked for the close.
        """
        if self._state is not _State.OPEN:
            return
        self._state = _State.CLOSING
        self._pending.append(encode_close(code, reason))
        self._paused = False  # the Close frame must go out even under backpressure
        self.flush()
        loop = asyncio.get_running_loop()
        self._close_timer = loop.call_later(self.close_timeout, self._close_timed_out)

    def abort(self) -> None:
        """Drop the socket now; queued frames are discarded. The owner is not notified."""
        self._state = _State.CLOSED
        self._pending.clear()
        self._pending_size = 0
        self._cancel_timer()
        if self._channel is not None:
            self._channel.abort()

    def _close_timed_out(self) -> None:
        self._close_timer = None
        if self._state is not _State.CLOSED:
            self._state = _State.CLOSED
            if self._channel is not None:
                self._channel.abort()

    def _cancel_timer(self) -> None:
        if self._close_timer is not None:
            self._close_timer.cancel()
            self._close_timer = None

    def _fail(self, error: WebSocketProtocolError) -> None:
        # RFC 6455 §7.1.7 "Fail the WebSocket Connection": send Close with the code, then
        # close the socket without waiting for the answer.
        was_open = self._state is _State.OPEN
        self._state = _State.CLOSED
        self._pending.clear()
        self._pending_size = 0
        self._cancel_timer()
        channel = self._channel
        if channel is not None and not channel.is_closing():
            channel.write(encode_close(error.code, error.reason))
            channel.close()
        if was_open:
            self._owner.transport_closed(
                self, False, TransportError(f"WebSocket protocol error: {error.reason}")
            )

    # --- socket events (RawStreamHandler) -------------------------------------------------

    def _close_received(self, code: int, reason: str) -> None:
        channel = self._channel
        if self._state is _State.OPEN:
            # Client-initiated close (RFC 6455 §5.5.1): echo the code, flush, close the TCP
            # connection (the server closes first, §7.1.1). A graceful end for SignalR.
            self._state = _State.CLOSED
            echo = CLOSE_NORMAL if code == CLOSE_NO_STATUS else code
            self._pending.append(encode_close(echo))
            self._paused = False
            self.flush()
            if channel is not None:
                channel.close()
            self._owner.transport_closed(self, True, None)
        elif self._state is _State.CLOSING:
            # The peer answered our Close: the handshake is complete.
            self._state = _State.CLOSED
            self._cancel_timer()
            if channel is not None:
                channel.close()

    def eof_received(self) -> None:
        """The peer half-closed: treated like a lost socket."""
        self.connection_lost(None)

    def connection_lost(self, exc: BaseException | None) -> None:
        """The socket is gone; tell the owner unless a close was already under way."""
        previous = self._state
        self._state = _State.CLOSED
        self._cancel_timer()
        self._pending.clear()
        self._pending_size = 0
        if previous is _State.OPEN:
            error = ConnectionLostError(_LOST_TEXT)
            if exc is not None:
                error.__cause__ = exc
            self._owner.transport_closed(self, False, error)

    def pause_writing(self) -> None:
        """Socket buffer is full: keep frames here (they coalesce into one later write)."""
        self._paused = True

    def resume_writing(self) -> None:
        """Socket buffer drained: write what accumulated."""
        self._paused = False
        if self._pending:
            self.flush()
