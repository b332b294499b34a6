"""SignalR hub messages (docs/spec/hub-protocol.md §3.3).

Plain frozen dataclasses; codecs in ``json_protocol`` / ``messagepack_protocol`` turn them into
bytes and back. ``None`` always means "absent" (JSON writers omit the property).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any


class MessageType(IntEnum):
    """The ``type`` discriminator of every hub message."""

    INVOCATION = 1
    STREAM_ITEM = 2
    COMPLETION = 3
    STREAM_INVOCATION = 4
    CANCEL_INVOCATION = 5
    PING = 6
    CLOSE = 7
    ACK = 8
    SEQUENCE = 9


_NO_HEADERS: dict[str, str] = {}


@dataclass(frozen=True, slots=True)
class InvocationMessage:
    """Type 1: call ``target`` with ``arguments``; blocking when ``invocation_id`` is set."""

    target: str
    arguments: tuple[Any, ...] | list[Any]
    invocation_id: str | None = None
    stream_ids: tuple[str, ...] | list[str] | None = None
    headers: dict[str, str] = field(default_factory=lambda: _NO_HEADERS)
    type = MessageType.INVOCATION


@dataclass(frozen=True, slots=True)
class StreamInvocationMessage:
    """Type 4: start a server-to-client stream."""

    invocation_id: str
    target: str
    arguments: tuple[Any, ...] | list[Any]
    stream_ids: tuple[str, ...] | list[str] | None = None
    headers: dict[str, str] = field(default_factory=lambda: _NO_HEADERS)
    type = MessageType.STREAM_INVOCATION


@dataclass(frozen=True, slots=True)
class StreamItemMessage:
    """Type 2: one item of a stream (``item`` may be ``None`` but is always written)."""

    invocation_id: str
    item: Any
    headers: dict[str, str] = field(default_factory=lambda: _NO_HEADERS)
    type = MessageType.STREAM_ITEM


@dataclass(frozen=True, slots=True)
class CompletionMessage:
    """Type 3: end of an invocation or stream.

    Exactly one of three shapes: ``error`` set; ``has_result`` with ``result`` (possibly
    ``None``, written as ``"result":null``); or neither (void / end of stream).
    """

    invocation_id: str
    error: str | None = None
    result: Any = None
    has_result: bool = False
    headers: dict[str, str] = field(default_factory=lambda: _NO_HEADERS)
    type = MessageType.COMPLETION

    @classmethod
    def with_result(cls, invocation_id: str, result: Any) -> CompletionMessage:
        """A completion carrying a (possibly ``None``) result."""
        return cls(invocation_id=invocation_id, result=result, has_result=True)

    @classmethod
    def with_error(cls, invocation_id: str, error: str) -> CompletionMessage:
        """A completion carrying an error text."""
        return cls(invocation_id=invocation_id, error=error)

    @classmethod
    def empty(cls, invocation_id: str) -> CompletionMessage:
        """A completion without result or error (end of a stream)."""
        return cls(invocation_id=invocation_id)


@dataclass(frozen=True, slots=True)
class CancelInvocationMessage:
    """Type 5: the client cancels a stream it started."""

    invocation_id: str
    headers: dict[str, str] = field(default_factory=lambda: _NO_HEADERS)
    type = MessageType.CANCEL_INVOCATION


@dataclass(frozen=True, slots=True)
class PingMessage:
    """Type 6: keep-alive, no payload."""

    type = MessageType.PING


@dataclass(frozen=True, slots=True)
class CloseMessage:
    """Type 7: the sender is closing the connection."""

    error: str | None = None
    allow_reconnect: bool = False
    type = MessageType.CLOSE


@dataclass(frozen=True, slots=True)
class AckMessage:
    """Type 8 (stateful reconnect): highest trackable message id processed."""

    sequence_id: int
    type = MessageType.ACK


@dataclass(frozen=True, slots=True)
class SequenceMessage:
    """Type 9 (stateful reconnect): id of the next trackable message the sender replays."""

    sequence_id: int
    type = MessageType.SEQUENCE


HubMessage = (
    InvocationMessage
    | StreamInvocationMessage
    | StreamItemMessage
    | CompletionMessage
    | CancelInvocationMessage
    | PingMessage
    | CloseMessage
    | AckMessage
    | SequenceMessage
)

PING = PingMessage()

TRACKABLE_TYPES = frozenset(
    {
        MessageType.INVOCATION,
        MessageType.STREAM_ITEM,
        MessageType.COMPLETION,
        MessageType.STREAM_INVOCATION,
        MessageType.CANCEL_INVOCATION,
    }
)
"""Messages counted and buffered by stateful reconnect (docs/spec/stateful-reconnect.md §5.2)."""
