"""The bus messages, types and pending sink of a cross-server stateful resume.

A stateful connection owned by server A is claimed by server B when its client reconnects
there with the same token (docs/spec/stateful-reconnect.md §5.4). The exchange runs on the
connection's *resume channel*, which both servers subscribe, plus each server's *reply
channel*:

1. B publishes ``PREPARE {token, server, nonce}`` on the resume channel (nobody listening:
   the connection exists nowhere, answer 404 at once).
2. A checks the whole token, stops delivering its own broadcasts to the connection at publish
   time (it becomes *stream-only*, see :mod:`hubserver.lifetime.resume_exchange`),
   publishes ``FENCE`` on the resume channel and answers ``OFFER {user, protocol, groups}`` (or
   ``REFUSE``) on B's reply channel.
3. B checks the user, registers a :class:`PendingSink` for the connection, subscribes every
   channel the connection needs, makes sure the subscriptions are in effect (a ``SYNC`` probe
   on a channel subscribed last comes back), then publishes ``MARKER`` on the resume channel.
4. Both servers read every channel in the bus's one publish order, so the marker splits every
   channel's stream at the same message for both: A hands over what it delivered before the
   marker (``STATE`` on B's reply channel) and stops; B keeps what it reads after it.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import msgpack

from hubserver.errors import BackplaneError, HubError
from hubserver.lifetime.redis_wire import RedisChannels
from hubserver.protocol.serialized import SerializedMessage
from hubserver.types import ConnectionId, UserId

__all__ = [
    "PENDING_MESSAGE_LIMIT",
    "Claim",
    "Op",
    "PendingSink",
    "ResumeMessage",
    "ResumeOffer",
    "ResumeRefused",
    "ResumeSource",
    "new_nonce",
    "read_message",
    "reply_channel",
    "resume_channel",
    "sync_channel",
    "write_message",
]

PENDING_MESSAGE_LIMIT = 10_000
"""Most messages a pending connection keeps between the marker and the owner's state; beyond
it the resume fails (the owner is not answering, the client starts over)."""


class Op:
    """Message kinds of the resume exchange."""

    PREPARE = "prepare"
    OFFER = "offer"
    REFUSE = "refuse"
    FENCE = "fence"
    SYNC = "sync"
    MARKER = "marker"
    STATE = "state"


def resume_channel(channels: RedisChannels, connection_id: str) -> str:
    """The channel a resumable connection's owner listens on for claims (an ``internal:``
    name: ASP.NET servers on the same Redis never use it)."""
    return f"{channels.prefix}:internal:resume:{connection_id}"


def reply_channel(channels: RedisChannels, server_name: str) -> str:
    """Where a server receives offers and states for the connections it claims."""
    return f"{channels.prefix}:internal:resume-reply:{server_name}"


def sync_channel(channels: RedisChannels, connection_id: str, nonce: str) -> str:
    """Subscribed last by a claiming server: its probe coming back proves every earlier
    subscription is in effect (Redis applies one connection's commands in order)."""
    return f"{channels.prefix}:internal:resume-sync:{connection_id}:{nonce}"


def new_nonce() -> str:
    """Identifies one claim attempt (a retried claim must not take an older one's state)."""
    return secrets.token_urlsafe(12)


@dataclass(frozen=True, slots=True)
class ResumeMessage:
    """One message of the exchange; fields not used by ``op`` stay empty."""

    op: str
    connection_id: str
    server: str
    nonce: str
    token: str = ""
    user_id: str | None = None
    protocol: str = ""
    groups: tuple[str, ...] = ()
    state: bytes = b""


def write_message(message: ResumeMessage) -> bytes:
    """Encode for the bus (MessagePack map with one-letter keys)."""
    data: bytes = msgpack.packb(
        {
            "o": message.op,
            "c": message.connection_id,
            "s": message.server,
            "n": message.nonce,
            "t": message.token,
            "u": message.user_id,
            "p": message.protocol,
            "g": list(message.groups),
            "b": message.state,
        },
        use_bin_type=True,
    )
    return data


def read_message(data: bytes) -> ResumeMessage:
    """Decode :func:`write_message`'s bytes.

    Raises:
        BackplaneError: not a resume message.
    """
    try:
        raw: Any = msgpack.unpackb(data, raw=False)
        user = raw["u"]
        return ResumeMessage(
            op=str(raw["o"]),
            connection_id=str(raw["c"]),
            server=str(raw["s"]),
            nonce=str(raw["n"]),
            token=str(raw["t"]),
            user_id=None if user is None else str(user),
            protocol=str(raw["p"]),
            groups=tuple(str(g) for g in raw["g"]),
            state=bytes(raw["b"]),
        )
    except (ValueError, TypeError, KeyError, msgpack.ExtraData) as exc:
        raise BackplaneError(f"Malformed resume message: {exc}") from None


class ResumeRefused(Exception):
    """A claim failed; answer the reconnecting client with ``status``.

    404: the connection exists nowhere (expired, owner gone, timed out); 403: the reconnecting
    user is not the connection's user.
    """

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ResumeOffer:
    """What the owner tells a claiming server before the marker."""

    user_id: str | None
    """The connection's user (the claiming request's must match)."""
    protocol: str
    """Hub protocol name negotiated at the handshake."""
    groups: Sequence[str] = ()
    """Groups the connection is a member of."""


class ResumeSource(Protocol):
    """The hub layer, as the owner's lifetime manager asks it during a claim."""

    def offer(self, connection_id: ConnectionId, token: str) -> ResumeOffer | None:
        """The connection's offer when ``token`` is its whole token and it is stateful and
        alive here (its socket, if still attached, is dropped); None otherwise."""
        ...

    def hand_over(self, connection_id: ConnectionId, token: str) -> bytes | None:
        """Detach the connection (no disconnect hooks) and return its state, or None when it
        is gone meanwhile. Called when the marker is read: nothing may be written to the
        connection afterwards."""
        ...


@dataclass(frozen=True, slots=True)
class Claim:
    """A successful claim: the owner's offer and the state it handed over."""

    connection_id: ConnectionId
    offer: ResumeOffer
    state: bytes


@dataclass(slots=True)
class PendingSink:
    """Stands for a claimed connection on the claiming server until its state arrived.

    Before the marker it drops what it is given (the owner delivers that part); after it,
    it keeps every message, in order, for the resumed connection.
    """

    connection_id: ConnectionId
    user_id: UserId | None
    keeping: bool = False
    kept: list[SerializedMessage] = field(default_factory=list)
    overflow: bool = False

    def write_serialized(self, message: SerializedMessage) -> None:
        """Keep ``message`` once the marker was read (bounded by
        :data:`PENDING_MESSAGE_LIMIT`)."""
        if not self.keeping:
            return
        if len(self.kept) >= PENDING_MESSAGE_LIMIT:
            self.overflow = True
            return
        self.kept.append(message)

    async def invoke_client(self, target: str, args: Sequence[Any], timeout: float) -> Any:  # noqa: ASYNC109
        """Client results cannot reach a connection that has no socket yet."""
        raise HubError(f"Connection '{self.connection_id}' is being resumed.")
