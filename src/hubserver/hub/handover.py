"""Moves stateful hub connections between servers: owner side and claiming side.

The lifetime manager runs the exchange on the bus (:mod:`hubserver.lifetime.resume`); this
module is the hub layer's part of it (docs/spec/stateful-reconnect.md §5.4):

* as the owner's :class:`~hubserver.lifetime.resume.ResumeSource` it checks a claim's token,
  drops a socket the client evidently left, and detaches the connection when the marker is
  read, returning its state (:func:`write_state`);
* as the endpoint's resume hook it claims an unknown token's connection from its owner,
  registers it under the same token, restores its outbox and swaps it in for the claim's
  placeholder, so the WebSocket that asked resumes it: Sequence, then the replay.

What moves: the hub protocol and the outbox (numbering both ways and the unacknowledged
messages, at most ``HubOptions.max_outgoing_buffer`` bytes: a connection over it was already
dropped as a slow consumer). What does not: ``Context.items`` (hub code rebuilds them from the
principal and the request, which the new request carries again), invocations running on the
owner (the client sees them fail when its connection ends), and the disconnect hooks of the
owner, which never run (the connection did not end; they run on the server where it does).
"""

from __future__ import annotations

import logging
import time
import zlib
from typing import Any

import msgpack

from hubserver.connections.context import HttpRequestInfo, Principal
from hubserver.connections.manager import (
    ConnectionManager,
    ConnectionStatus,
    HttpConnectionContext,
)
from hubserver.errors import AuthenticationFailed
from hubserver.hub.connection import HubConnection
from hubserver.hub.handler import HubConnectionHandler
from hubserver.lifetime.resume import ResumeOffer, ResumeRefused
from hubserver.protocol.message_buffer import BufferSnapshot
from hubserver.types import ConnectionId

__all__ = ["DEFAULT_RESUME_TIMEOUT", "HandoverService", "read_state", "write_state"]

logger = logging.getLogger("hubserver.hub.handover")

DEFAULT_RESUME_TIMEOUT = 5.0
"""Seconds a claiming server waits for the owner's state before answering 404."""

EVENT_HANDED_OVER = "hub.handover.out"
EVENT_RESUMED = "hub.handover.in"
EVENT_REFUSED = "hub.handover.refused"


_STATE_LIMIT = 64 * 1024 * 1024
"""Largest decompressed state accepted (far above any outgoing buffer limit)."""


def write_state(protocol: str, snapshot: BufferSnapshot) -> bytes:
    """Encode what a resumed connection needs (MessagePack, zlib-compressed).

    Compressed because a rolling restart sends every parked connection's state at once:
    hundreds of states of a few hundred KB each would exceed Redis's output buffer limit of a
    pub/sub subscriber (32 MB by default), and Redis would drop the claimer's subscription.
    Hub messages are repetitive text or MessagePack and shrink several times over.
    """
    packed: bytes = msgpack.packb(
        {
            "p": protocol,
            "t": snapshot.total_sent,
            "m": [[sequence_id, payload] for sequence_id, payload in snapshot.pending],
            "n": snapshot.next_receiving_id,
            "l": snapshot.latest_received,
        },
        use_bin_type=True,
    )
    return zlib.compress(packed, 1)


def read_state(data: bytes) -> tuple[str, BufferSnapshot]:
    """Decode :func:`write_state`'s bytes.

    Raises:
        ValueError: malformed state.
    """
    try:
        inflater = zlib.decompressobj()
        packed = inflater.decompress(data, _STATE_LIMIT)
        if inflater.unconsumed_tail:
            raise ValueError("handover state too large")
        raw: Any = msgpack.unpackb(packed, raw=False)
        pending = [(int(seq), bytes(payload)) for seq, payload in raw["m"]]
        snapshot = BufferSnapshot(int(raw["t"]), pending, int(raw["n"]), int(raw["l"]))
        return str(raw["p"]), snapshot
    except (TypeError, KeyError, msgpack.ExtraData, zlib.error) as exc:
        raise ValueError(f"malformed handover state: {exc}") from None


class HandoverService:
    """The hub layer's side of cross-server resume for one hub.

    Args:
        handler: Creates the resumed connections.
        connections: The endpoint's connection registry (tokens).
        timeout: Seconds a claim may take before the reconnecting client gets 404.
    """

    def __init__(
        self,
        handler: HubConnectionHandler,
        connections: ConnectionManager,
        timeout: float = DEFAULT_RESUME_TIMEOUT,
    ) -> None:
        self.handler = handler
        self.connections = connections
        self.timeout = timeout
        handler.lifetime.set_resume_source(self)

    # -- owner side (ResumeSource) -------------------------------------------------------------

    def _local(self, connection_id: ConnectionId, token: str) -> HubConnection | None:
        ctx = self.connections.get(token)
        if (
            ctx is None
            or ctx.connection_id != connection_id
            or ctx.status is ConnectionStatus.DISPOSED
            or ctx.closing
        ):
            return None
        app = ctx.application
        if not isinstance(app, HubConnection) or not app.resumable or not app.is_connected:
            return None
        return app

    def offer(self, connection_id: ConnectionId, token: str) -> ResumeOffer | None:
        """The connection's user and protocol when ``token`` is its whole token; its socket
        here, if still attached, is dropped (the client is reconnecting elsewhere)."""
        connection = self._local(connection_id, token)
        if connection is None:
            return None
        ctx = self.connections.get(token)
        assert ctx is not None
        ctx.pause_for_handover()
        return ResumeOffer(connection.user_id, connection.protocol_name)

    def hand_over(self, connection_id: ConnectionId, token: str) -> bytes | None:
        """Detach the connection (no hooks) and return its state."""
        connection = self._local(connection_id, token)
        ctx = self.connections.get(token)
        if connection is None or ctx is None:
            return None
        moved = connection.hand_over()
        if moved is None:
            return None
        ctx.hand_over()
        logger.info("%s connection_id=%s", EVENT_HANDED_OVER, connection_id)
        return write_state(*moved)

    # -- claiming side (the endpoint's resume hook) --------------------------------------------

    async def resume(
        self, token: str, principal: Principal | None, request: HttpRequestInfo
    ) -> HttpConnectionContext | None:
        """Claim the connection ``token`` names from the server that owns it and register it
        here, paused, for the WebSocket that asked; None (404) when it cannot be resumed.

        Raises:
            AuthenticationFailed: 403, the connection belongs to another user.
        """
        lifetime = self.handler.lifetime
        if not lifetime.supports_resume:
            return None
        user_id = principal.user_id if principal is not None else None
        started = time.monotonic()
        try:
            claim = await lifetime.claim(token, user_id, self.timeout)
        except ResumeRefused as exc:
            logger.info("%s status=%d reason=%s", EVENT_REFUSED, exc.status, exc.reason)
            if exc.status == 403:
                raise AuthenticationFailed(403, "Forbidden") from None
            return None
        cid = claim.connection_id
        try:
            protocol, snapshot = read_state(claim.state)
        except ValueError:
            logger.warning("%s connection_id=%s malformed state", EVENT_REFUSED, cid)
            lifetime.abandon(cid)
            return None
        if self.connections.get(token) is not None:
            lifetime.abandon(cid)
            return None
        ctx = self.connections.adopt(token, request, principal)
        connection = self.handler.create_application(ctx)
        ctx.set_application(connection)
        if not connection.restore(protocol, snapshot):
            lifetime.abandon(cid)
            ctx.abort()
            return None
        try:
            lifetime.adopt(cid, connection)
        except Exception:
            logger.warning("%s connection_id=%s adopt failed", EVENT_REFUSED, cid, exc_info=True)
            ctx.abort()
            return None
        logger.info(
            "%s connection_id=%s claim_ms=%.0f",
            EVENT_RESUMED,
            cid,
            1000 * (time.monotonic() - started),
        )
        return ctx
