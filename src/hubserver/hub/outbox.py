"""The send side of stateful reconnect for one connection: replay buffer, pause/resume, hold.

Sans-I/O, like the :class:`~hubserver.protocol.message_buffer.MessageBuffer` it wraps: the
connection reports each write and is told whether to put it on the socket now; on resume it
gets the Sequence id and the bytes to replay (docs/spec/stateful-reconnect.md §5.2, §5.3).
Only connections that negotiated stateful reconnect have one.
"""

from __future__ import annotations

from hubserver.protocol.message_buffer import BufferSnapshot, MessageBuffer

__all__ = ["STARTUP_HOLD_SECONDS", "Outbox"]

STARTUP_HOLD_SECONDS = 1.0
"""How long writes wait for a stateful client's first message before they go out anyway."""


class Outbox:
    """Replay buffer plus the two reasons a write waits: a dropped socket and the startup hold.

    The JS client creates its message buffer in a continuation after the handshake response,
    so a trackable message read together with that response would be processed uncounted:
    writes are held until the client's first message (its Ping), or for
    :data:`STARTUP_HOLD_SECONDS` at most.

    Args:
        buffer_size: Bytes of unacknowledged messages kept for replay.
        now: The connection's clock at the handshake (starts the startup hold).
    """

    __slots__ = ("_hold", "_hold_since", "buffer", "paused")

    def __init__(self, buffer_size: int, now: float) -> None:
        self.buffer = MessageBuffer(buffer_size)
        """Sequence numbers, replay buffer and duplicate filter
        (docs/spec/stateful-reconnect.md §5.2)."""
        self.paused = False
        """True while the socket is gone and a reconnect may resume the connection."""
        self._hold: list[bytes] | None = []
        self._hold_since = now

    @classmethod
    def restore(cls, buffer_size: int, snapshot: BufferSnapshot) -> Outbox:
        """The outbox of a connection resumed from another process
        (docs/spec/stateful-reconnect.md §5.4): paused, no startup hold (the client's buffer
        exists since long), numbering continued from ``snapshot``."""
        outbox = cls(buffer_size, 0.0)
        outbox.buffer = MessageBuffer.restore(buffer_size, snapshot)
        outbox.paused = True
        outbox._hold = None
        return outbox

    def record(self, data: bytes, trackable: bool) -> bool:
        """Keep ``data`` for replay if trackable; True when it should be written now (False:
        paused, or held until :meth:`release`)."""
        self.buffer.on_sent(trackable, data)
        if self.paused:
            return False
        hold = self._hold
        if hold is not None:
            hold.append(data)
            return False
        return True

    @property
    def holding(self) -> bool:
        """True until the startup hold was released."""
        return self._hold is not None

    def hold_expired(self, now: float) -> bool:
        """True when the client stayed silent for the whole startup hold."""
        return self._hold is not None and now - self._hold_since >= STARTUP_HOLD_SECONDS

    def release(self) -> list[bytes]:
        """End the startup hold; the held writes to send now (none while paused: the replay
        on resume includes them)."""
        held = self._hold
        self._hold = None
        if held and not self.paused:
            return held
        return []

    def pause(self) -> None:
        """The socket dropped: keep every write for the replay."""
        self.paused = True

    def resume(self) -> tuple[int, list[bytes]]:
        """A new socket took over: the Sequence id to write first, then the bytes to replay
        (what was held included) (docs/spec/stateful-reconnect.md §5.3)."""
        self.paused = False
        self._hold = None
        return self.buffer.replay()
