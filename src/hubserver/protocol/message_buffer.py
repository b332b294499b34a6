"""Stateful-reconnect bookkeeping for one connection (docs/spec/stateful-reconnect.md §5; cf.
MessageBuffer.cs).

Sans-I/O: no clock, no socket. The hub connection reports what it sends and receives and asks
what to replay or acknowledge; it owns the 1 s Ack timer and the decision to block or close
when the replay buffer is full.

Numbering (§5.2): only Invocation, StreamItem, Completion, StreamInvocation and
CancelInvocation are *trackable*. Each side numbers its outgoing trackable messages 1, 2, 3...
for the whole logical connection (ids are implicit, never on the wire) and counts incoming ones
the same way. A sender keeps every trackable message until the peer acknowledges it.

Reconnect (§5.3): the server writes ``Sequence {first unacked id, or total sent + 1}`` and
replays the unacked messages; until the client's own ``Sequence`` arrives every other incoming
message is dropped; afterwards trackable messages with an id already processed are duplicates
from the client's replay and are dropped as well.
"""

from __future__ import annotations

from collections import deque
from typing import NamedTuple

from hubserver.errors import ProtocolError
from hubserver.protocol.messages import (
    TRACKABLE_TYPES,
    HubMessage,
    SequenceMessage,
)

__all__ = ["DEFAULT_BUFFER_SIZE", "SEQUENCE_AHEAD_ERROR", "BufferSnapshot", "MessageBuffer"]

DEFAULT_BUFFER_SIZE = 100_000
"""Bytes of unacknowledged messages (.NET ``StatefulReconnectBufferSize``, JS ``bufferSize``)."""

SEQUENCE_AHEAD_ERROR = "Sequence ID greater than amount of messages we've received."
"""Fatal: the peer claims to resume after messages we never got (JS/.NET text)."""


class BufferSnapshot(NamedTuple):
    """What :meth:`MessageBuffer.snapshot` exports for a resume in another process."""

    total_sent: int
    """Trackable messages sent so far."""
    pending: list[tuple[int, bytes]]
    """Unacknowledged messages: (sequence id, framed bytes), oldest first."""
    next_receiving_id: int
    """Id the next incoming trackable message gets."""
    latest_received: int
    """Highest incoming trackable id processed."""


class MessageBuffer:
    """Replay buffer, sequence counters and duplicate filter of one stateful connection.

    Args:
        buffer_size: Bytes of unacknowledged outgoing messages after which :attr:`full`
            turns true; the caller then stops writing (or closes) until an Ack frees space.
    """

    __slots__ = (
        "_buffer",
        "_buffer_size",
        "_buffered_bytes",
        "_last_ack_sent",
        "_latest_received",
        "_next_receiving_id",
        "_total_sent",
        "_waiting_for_sequence",
    )

    def __init__(self, buffer_size: int = DEFAULT_BUFFER_SIZE) -> None:
        if buffer_size <= 0:
            raise ValueError("buffer_size must be positive")
        self._buffer_size = buffer_size
        self._buffer: deque[tuple[int, bytes]] = deque()
        self._buffered_bytes = 0
        self._total_sent = 0
        # Receiving side: id the next incoming trackable message will get, and the highest id
        # already processed (everything at or below it is a duplicate).
        self._next_receiving_id = 1
        self._latest_received = 0
        self._last_ack_sent = 0
        self._waiting_for_sequence = False

    @classmethod
    def restore(cls, buffer_size: int, snapshot: BufferSnapshot) -> MessageBuffer:
        """A buffer continuing the numbering of another process's (cross-server resume,
        docs/spec/stateful-reconnect.md §5.4): counters and unacknowledged messages as
        :meth:`snapshot` returned them there."""
        buffer = cls(buffer_size)
        buffer._total_sent = snapshot.total_sent
        for sequence_id, data in snapshot.pending:
            buffer._buffer.append((sequence_id, data))
            buffer._buffered_bytes += len(data)
        buffer._next_receiving_id = snapshot.next_receiving_id
        buffer._latest_received = snapshot.latest_received
        buffer._last_ack_sent = snapshot.latest_received
        return buffer

    def snapshot(self) -> BufferSnapshot:
        """Counters and unacknowledged messages, for :meth:`restore` in another process."""
        return BufferSnapshot(
            self._total_sent,
            list(self._buffer),
            self._next_receiving_id,
            self._latest_received,
        )

    # --- sending -------------------------------------------------------------------------

    @property
    def buffered_bytes(self) -> int:
        """Bytes of sent but unacknowledged trackable messages."""
        return self._buffered_bytes

    @property
    def buffered_count(self) -> int:
        """Number of sent but unacknowledged trackable messages."""
        return len(self._buffer)

    @property
    def total_sent(self) -> int:
        """Trackable messages sent so far (the id of the last one)."""
        return self._total_sent

    @property
    def full(self) -> bool:
        """True while unacknowledged bytes are at or over ``buffer_size`` (apply backpressure)."""
        return self._buffered_bytes >= self._buffer_size

    def on_sent(self, trackable: bool, data: bytes) -> bool:
        """Record one outgoing message (call for every message, in write order).

        Args:
            trackable: Whether its type is in ``TRACKABLE_TYPES``; others are not numbered.
            data: The exact framed bytes written (what a reconnect replays).

        Returns:
            :attr:`full` after recording it.
        """
        if trackable:
            self._total_sent += 1
            self._buffer.append((self._total_sent, data))
            self._buffered_bytes += len(data)
        return self._buffered_bytes >= self._buffer_size

    def on_ack(self, sequence_id: int) -> None:
        """The peer processed every trackable message up to ``sequence_id``: drop them.

        Acks for ids never sent only empty the buffer (they cannot un-send anything).
        """
        buffer = self._buffer
        while buffer and buffer[0][0] <= sequence_id:
            _, data = buffer.popleft()
            self._buffered_bytes -= len(data)

    def replay(self) -> tuple[int, list[bytes]]:
        """What to write on a new transport after an ungraceful drop
        (docs/spec/stateful-reconnect.md §5.3).

        Returns:
            (id for the ``Sequence`` message to write first, the unacknowledged messages to
            write after it in order). The id is the oldest unacknowledged message's, or
            ``total_sent + 1`` when nothing is pending.

        From now on incoming messages are dropped until the peer's ``Sequence`` arrives.
        """
        self._waiting_for_sequence = True
        first = self._buffer[0][0] if self._buffer else self._total_sent + 1
        return first, [data for _, data in self._buffer]

    # --- receiving -----------------------------------------------------------------------

    @property
    def waiting_for_sequence(self) -> bool:
        """True between :meth:`replay` and the peer's ``Sequence`` message."""
        return self._waiting_for_sequence

    @property
    def latest_received(self) -> int:
        """Highest incoming trackable id processed."""
        return self._latest_received

    def on_received_trackable(self) -> bool:
        """Number one incoming trackable message.

        Returns:
            False when it is a duplicate (already processed before a reconnect): drop it.
        """
        current = self._next_receiving_id
        self._next_receiving_id = current + 1
        if current <= self._latest_received:
            return False
        self._latest_received = current
        return True

    def on_sequence(self, sequence_id: int) -> None:
        """The peer resumes sending at ``sequence_id`` (its replay follows).

        Raises:
            ProtocolError: ``sequence_id`` is beyond what was received (fatal; close).
        """
        if sequence_id > self._next_receiving_id:
            raise ProtocolError(SEQUENCE_AHEAD_ERROR)
        self._next_receiving_id = sequence_id
        self._waiting_for_sequence = False

    def should_process(self, message: HubMessage) -> bool:
        """Filter one incoming message (cf. ``MessageBuffer.ShouldProcessMessage``).

        Handles ``Sequence`` itself (see :meth:`on_sequence`) and numbers trackable messages;
        the caller still handles ``Ack`` (:meth:`on_ack`), Ping and Close.

        Returns:
            False when the message must be ignored: anything but ``Sequence`` while waiting
            for it, or a duplicate trackable message.

        Raises:
            ProtocolError: a ``Sequence`` ahead of what was received.
        """
        if type(message) is SequenceMessage:
            self.on_sequence(message.sequence_id)
            return True
        if self._waiting_for_sequence:
            return False
        if message.type in TRACKABLE_TYPES:
            return self.on_received_trackable()
        return True

    def ack_to_send(self) -> int | None:
        """Id to acknowledge now, or None when nothing new arrived since the last Ack.

        Call on the Ack timer (~1 s, as .NET and JS do); the result is remembered as sent.
        """
        latest = self._latest_received
        if latest > self._last_ack_sent:
            self._last_ack_sent = latest
            return latest
        return None
