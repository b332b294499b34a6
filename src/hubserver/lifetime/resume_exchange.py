"""The cross-server resume exchange of a pub/sub lifetime manager, owner and claimer sides.

Cross-server resume (docs/spec/stateful-reconnect.md §5.4; the exchange is described in
:mod:`hubserver.lifetime.resume`) needs every server to see a connection's messages in the bus's
one order, which local-first delivery breaks for our own broadcasts. A connection involved in
a resume is therefore *stream-only*: our own broadcasts skip it at publish time and reach it
when their echo comes back. The owner switches a live connection to stream-only with a
``FENCE`` it publishes to itself: echoes of broadcasts published before the fence were already
delivered locally, those after it were not. A resumed connection stays stream-only on its new
server (its own broadcasts reach it one bus round trip later, and not while the bus is down).

:class:`ResumeExchange` is composed by :class:`~hubserver.lifetime.pubsub.PubSubLifetimeManager`
and reaches it only through a :class:`ResumeHost`; the manager's send paths read
:attr:`ResumeExchange.stream_only` to apply the rule above.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import partial

from hubserver.connections.manager import claimed_connection_id
from hubserver.errors import BackplaneError
from hubserver.lifetime import resume
from hubserver.lifetime.base import ConnectionSink
from hubserver.lifetime.delivery import deliver_one
from hubserver.lifetime.index import Departure, LocalIndex
from hubserver.lifetime.redis_wire import RedisChannels
from hubserver.lifetime.resume import (
    Claim,
    Op,
    PendingSink,
    ResumeMessage,
    ResumeOffer,
    ResumeRefused,
    ResumeSource,
)
from hubserver.types import ConnectionId, UserId

__all__ = ["EVENT_PUBLISH_FAILED", "ResumeExchange", "ResumeHost"]

# The manager's logger: one place for operators to filter backplane events.
logger = logging.getLogger("hubserver.lifetime.pubsub")

# Stable log event name: operators alert on it (docs/deploy.md "Logs").
EVENT_PUBLISH_FAILED = "backplane.publish_failed"

Handler = Callable[[bytes], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class ResumeHost:
    """What the exchange uses of its lifetime manager."""

    server_name: str
    """This process's name on the bus."""
    channels: RedisChannels
    """The manager's channel-name builder."""
    index: LocalIndex
    """The manager's local index: read here; changed through the callables below, except by
    :meth:`ResumeExchange.adopt`, which swaps a placeholder for its connection in place."""
    publish: Callable[[str, bytes], Awaitable[int]]
    """Publish on a channel, counted in the manager's stats; raises ``BackplaneError``."""
    publish_best_effort: Callable[[str, bytes], Awaitable[None]]
    """Publish; a failure is counted and logged only."""
    subscribe: Callable[[str, Handler], Awaitable[None]]
    """Route a channel's messages to a handler (subscribing it on the bus)."""
    unsubscribe: Callable[[str], Awaitable[None]]
    """Stop routing a channel."""
    spawn: Callable[[Awaitable[None]], asyncio.Task[None]]
    """Run a coroutine as a background task the manager cancels when it stops."""
    add_local: Callable[[ConnectionSink], Awaitable[None]]
    """Index a sink and subscribe its ``connection:`` (and first ``user:``) channel."""
    join_local: Callable[[ConnectionSink, str], Awaitable[None]]
    """Add an indexed sink to a group (subscribing the group's channel when first)."""
    release: Callable[[ConnectionId, UserId | None, Departure | None], Awaitable[None]]
    """Unsubscribe the channels a departure (from ``index.remove``) left without a listener."""


class ResumeExchange:
    """Both sides of cross-server resume for one lifetime manager.

    Args:
        host: The manager, as the exchange uses it.
    """

    def __init__(self, host: ResumeHost) -> None:
        self._host = host
        self._channels = host.channels
        self._index = host.index
        self._source: ResumeSource | None = None
        self.stream_only: dict[ConnectionId, bool] = {}
        """Connection id -> True while its owner's FENCE has not come back (module doc). The
        manager's send paths read it; only the exchange changes it."""
        # Owner side: connection id -> (claiming server, nonce, token) of the claim in progress.
        self._handing: dict[ConnectionId, tuple[str, str, str]] = {}
        # Claiming side: connection id -> the claim in progress or completed, not yet adopted.
        self._claims: dict[ConnectionId, _ClaimState] = {}
        self._handovers_out = 0
        self._handovers_in = 0
        # Our reply channel is subscribed with the first claim (see _reply_channel_ready).
        self._replies_ready: asyncio.Event | None = None
        self._handover_sends: set[asyncio.Task[None]] = set()

    def set_source(self, source: ResumeSource) -> None:
        """Register the hub layer that offers and hands over our connections."""
        self._source = source

    def stats(self) -> dict[str, int]:
        """``handovers_out`` and ``handovers_in``: connections handed to and taken from other
        servers."""
        return {"handovers_out": self._handovers_out, "handovers_in": self._handovers_in}

    async def flush(self) -> None:
        """Wait (bounded) for states still being sent to their claimers."""
        handing = list(self._handover_sends)
        if handing:
            # The connections left this server when the marker was read; their state must
            # still reach the claimer, or they are lost (a rolling restart stops right after).
            await asyncio.wait(handing, timeout=_HANDOVER_FLUSH)

    # --- the owner's side ------------------------------------------------------------------

    async def watch(self, connection_id: ConnectionId) -> None:
        """Listen for claims of a resumable connection indexed here."""
        await self._host.subscribe(
            resume.resume_channel(self._channels, connection_id),
            partial(self._on_resume, connection_id),
        )

    async def unwatch(self, connection_id: ConnectionId) -> None:
        """Stop listening for claims of a connection that left the index."""
        await self._host.unsubscribe(resume.resume_channel(self._channels, connection_id))

    def forget(self, connection_id: ConnectionId) -> None:
        """The connection disconnected here: no fence or handover of it is pending."""
        self.stream_only.pop(connection_id, None)
        self._handing.pop(connection_id, None)

    def _publish(self, channel: str, message: ResumeMessage) -> Awaitable[int]:
        return self._host.publish(channel, resume.write_message(message))

    def _publish_best_effort(self, channel: str, message: ResumeMessage) -> Awaitable[None]:
        # An answer that cannot be published makes the claimer time out (404): logged only.
        return self._host.publish_best_effort(channel, resume.write_message(message))

    async def _on_resume(self, connection_id: ConnectionId, data: bytes) -> None:
        # The resume channel of a connection we own or claim: PREPARE, FENCE, MARKER. What
        # must happen at the message's place in the stream happens here, synchronously; the
        # answers are published by tasks, so a burst of claims (a rolling restart) does not
        # wait for one Redis round trip per claim in the receive loop.
        message = resume.read_message(data)
        op = message.op
        server_name = self._host.server_name
        if op == Op.PREPARE:
            self._host.spawn(self._on_prepare(connection_id, message))
        elif op == Op.FENCE:
            if message.server == server_name and connection_id in self.stream_only:
                self.stream_only[connection_id] = False
        elif op == Op.MARKER:
            claim = self._claims.get(connection_id)
            if claim is not None and message.server == server_name and message.nonce == claim.nonce:
                # Our own marker: from here on the owner no longer delivers, we keep.
                claim.pending.keeping = True
            elif self._handing.get(connection_id, ("", "", ""))[:2] == (
                message.server,
                message.nonce,
            ):
                self._hand_over(connection_id)

    async def _on_prepare(self, connection_id: ConnectionId, message: ResumeMessage) -> None:
        server_name = self._host.server_name
        if message.server == server_name:
            return
        source = self._source
        sink = self._index.connections.get(connection_id)
        offer: ResumeOffer | None = None
        if source is not None and sink is not None and connection_id not in self._claims:
            offer = source.offer(connection_id, message.token)
        reply = resume.reply_channel(self._channels, message.server)
        if offer is None:
            await self._publish_best_effort(
                reply, ResumeMessage(Op.REFUSE, connection_id, server_name, message.nonce)
            )
            return
        self._handing[connection_id] = (message.server, message.nonce, message.token)
        if connection_id not in self.stream_only:
            # From now on our own broadcasts reach it through the bus; the fence tells which
            # echoes it already got locally. The switch and the fence's place in our publish
            # order must be one step: no await between them (the publish is queued at once).
            self.stream_only[connection_id] = True
            try:
                await self._publish(
                    resume.resume_channel(self._channels, connection_id),
                    ResumeMessage(Op.FENCE, connection_id, server_name, message.nonce),
                )
            except BackplaneError as exc:
                # No offer without a fence: the claimer times out and the client starts over.
                logger.warning("%s fence error=%s", EVENT_PUBLISH_FAILED, exc)
                self.stream_only.pop(connection_id, None)
                self._handing.pop(connection_id, None)
                return
        groups = tuple(self._index.memberships.get(connection_id, ()))
        await self._publish_best_effort(
            reply,
            ResumeMessage(
                Op.OFFER,
                connection_id,
                server_name,
                message.nonce,
                user_id=offer.user_id,
                protocol=offer.protocol,
                groups=groups,
            ),
        )

    def _hand_over(self, connection_id: ConnectionId) -> None:
        # The claiming server's marker: everything we delivered before it is in the state,
        # everything after it is theirs. Nothing may reach the connection here any more, so
        # it leaves the index now; the state is published by a task.
        server, nonce, token = self._handing.pop(connection_id)
        source = self._source
        sink = self._index.connections.get(connection_id)
        state = source.hand_over(connection_id, token) if source is not None else None
        groups = tuple(self._index.memberships.get(connection_id, ()))
        self.stream_only.pop(connection_id, None)
        reply = resume.reply_channel(self._channels, server)
        server_name = self._host.server_name
        if state is None or sink is None:
            refuse = ResumeMessage(Op.REFUSE, connection_id, server_name, nonce)
            self._host.spawn(self._publish_best_effort(reply, refuse))
            return
        self._handovers_out += 1
        departure = self._index.remove(connection_id)
        message = ResumeMessage(
            Op.STATE, connection_id, server_name, nonce, groups=groups, state=state
        )
        task = self._host.spawn(self._send_state(reply, message, sink.user_id, departure))
        self._handover_sends.add(task)
        task.add_done_callback(self._handover_sends.discard)

    async def _send_state(
        self, reply: str, message: ResumeMessage, uid: UserId | None, departure: Departure | None
    ) -> None:
        await self._publish_best_effort(reply, message)
        await self._host.release(ConnectionId(message.connection_id), uid, departure)

    # --- the claiming side -----------------------------------------------------------------

    async def _on_resume_reply(self, data: bytes) -> None:
        message = resume.read_message(data)
        if message.op == Op.SYNC:
            if self._replies_ready is not None:
                self._replies_ready.set()
            return
        claim = self._claims.get(ConnectionId(message.connection_id))
        if claim is None or claim.nonce != message.nonce:
            return
        if message.op == Op.OFFER:
            claim.resolve_offer(ResumeOffer(message.user_id, message.protocol, message.groups))
        elif message.op == Op.STATE:
            claim.resolve_state(message)
        elif message.op == Op.REFUSE:
            claim.fail(ResumeRefused(404, "the owner refused the claim"))

    async def _on_sync(self, claim: _ClaimState, data: bytes) -> None:
        claim.synced.set()

    async def _reply_channel_ready(self) -> None:
        # Servers that never claim do not subscribe a reply channel; the first claim does and
        # waits until its own probe comes back on it, so the owner's offer cannot be missed.
        ready = self._replies_ready
        channel = resume.reply_channel(self._channels, self._host.server_name)
        if ready is None:
            ready = self._replies_ready = asyncio.Event()
            await self._host.subscribe(channel, self._on_resume_reply)
        probe = resume.write_message(ResumeMessage(Op.SYNC, "", self._host.server_name, ""))
        await self._probe_until(ready, channel, probe)

    async def _probe_until(self, done: asyncio.Event, channel: str, probe: bytes) -> None:
        while not done.is_set():
            await self._host.publish(channel, probe)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_SYNC_RETRY):
                    await done.wait()

    async def claim(self, token: str, user_id: str | None, timeout: float) -> Claim:  # noqa: ASYNC109
        """Take over the connection ``token`` claims (the exchange in
        :mod:`hubserver.lifetime.resume`).

        Raises:
            ResumeRefused: 404 (unknown, refused, the marker not reached within ``timeout``
                or the state not received within ``timeout`` after it), 403 (user).
        """
        cid_text = claimed_connection_id(token)
        if cid_text is None:
            raise ResumeRefused(404, "not a resumable token")
        cid = ConnectionId(cid_text)
        if cid in self._claims or cid in self._index.connections:
            raise ResumeRefused(404, "already claimed here")
        server_name = self._host.server_name
        claim = _ClaimState(resume.new_nonce(), PendingSink(cid, None))
        self._claims[cid] = claim
        indexed = False
        try:
            async with asyncio.timeout(timeout):
                await self._reply_channel_ready()
                # Not subscribed to the resume channel yet: receivers are other servers only.
                receivers = await self._publish(
                    resume.resume_channel(self._channels, cid),
                    ResumeMessage(Op.PREPARE, cid, server_name, claim.nonce, token=token),
                )
                if receivers == 0:
                    raise ResumeRefused(404, "no server owns the connection")
                offer = await claim.offer
                if offer.user_id != user_id:
                    raise ResumeRefused(403, "the connection belongs to another user")
                pending = claim.pending
                pending.user_id = UserId(offer.user_id) if offer.user_id is not None else None
                self.stream_only[cid] = False
                indexed = True
                await self._index_pending(pending, offer.groups)
                await self._sync(claim, cid)
                await self._publish(
                    resume.resume_channel(self._channels, cid),
                    ResumeMessage(Op.MARKER, cid, server_name, claim.nonce),
                )
            # The owner lets go of the connection when it reads the marker: from here on,
            # giving up would lose it, so the state gets a timeout of its own.
            async with asyncio.timeout(timeout):
                state = await claim.state
        except TimeoutError:
            await self._drop_claim(cid, indexed)
            raise ResumeRefused(404, "the owner did not hand the connection over in time") from None
        except BackplaneError as exc:
            await self._drop_claim(cid, indexed)
            raise ResumeRefused(404, f"the backplane failed: {exc}") from None
        except BaseException:
            await self._drop_claim(cid, indexed)
            raise
        for group in state.groups:
            # Joined on the owner after its offer (rare): from now on, not from the marker.
            if group not in self._index.memberships.get(cid, {}):
                await self._host.join_local(claim.pending, group)
        claim.done = True
        self._handovers_in += 1
        return Claim(cid, offer, state.state)

    async def _index_pending(self, pending: PendingSink, groups: Sequence[str]) -> None:
        await self._host.add_local(pending)
        for group in groups:
            await self._host.join_local(pending, group)
        await self.watch(pending.connection_id)

    async def _sync(self, claim: _ClaimState, cid: ConnectionId) -> None:
        # Probe a channel subscribed after all the others until the probe comes back: then
        # every subscription above is in effect and the marker splits all of them.
        channel = resume.sync_channel(self._channels, cid, claim.nonce)
        await self._host.subscribe(channel, partial(self._on_sync, claim))
        probe = resume.write_message(
            ResumeMessage(Op.SYNC, cid, self._host.server_name, claim.nonce)
        )
        try:
            await self._probe_until(claim.synced, channel, probe)
        finally:
            await self._host.unsubscribe(channel)

    async def _leave_index(self, cid: ConnectionId, uid: UserId | None) -> None:
        await self._host.release(cid, uid, self._index.remove(cid))

    async def _drop_claim(self, cid: ConnectionId, indexed: bool) -> None:
        claim = self._claims.pop(cid, None)
        if claim is None or not indexed:
            return
        if self._index.connections.get(cid) is claim.pending:
            self.stream_only.pop(cid, None)
            await self._leave_index(cid, claim.pending.user_id)

    def adopt(self, connection_id: ConnectionId, connection: ConnectionSink) -> None:
        """Put the resumed ``connection`` where the claim's placeholder was (connections,
        groups, user) and write it what the placeholder kept, in order, synchronously, so
        nothing read from the bus meanwhile can overtake it.

        Raises:
            KeyError: no completed claim of ``connection_id``.
            BackplaneError: more arrived meanwhile than the placeholder keeps (the client
                must start over).
        """
        claim = self._claims.get(connection_id)
        if claim is None or not claim.done:
            raise KeyError(connection_id)
        del self._claims[connection_id]
        pending = claim.pending
        index = self._index
        if index.connections.get(connection_id) is not pending:
            raise KeyError(connection_id)
        if pending.overflow:
            self.abandon_pending(pending)
            raise BackplaneError("Too many messages arrived during the resume.")
        index.connections[connection_id] = connection
        for group in index.memberships.get(connection_id, ()):
            index.groups[group][connection_id] = connection
        uid = pending.user_id
        if uid is not None:
            index.users[uid][connection_id] = connection
        kept, pending.kept = pending.kept, []
        for message in kept:
            deliver_one(connection, message)

    def abandon_pending(self, pending: PendingSink) -> None:
        """Drop a placeholder that will never become a connection (and its subscriptions)."""
        cid = pending.connection_id
        self._claims.pop(cid, None)
        if self._index.connections.get(cid) is pending:
            self.stream_only.pop(cid, None)
            self._host.spawn(self._leave_index(cid, pending.user_id))

    def abandon(self, connection_id: ConnectionId) -> None:
        """Forget a completed claim whose connection could not be built here."""
        claim = self._claims.get(connection_id)
        if claim is not None:
            self.abandon_pending(claim.pending)


_SYNC_RETRY = 0.01
"""Seconds between subscription probes of a claim (a subscription takes one Redis round trip)."""

_HANDOVER_FLUSH = 5.0
"""Most seconds :meth:`ResumeExchange.flush` waits for states still being sent."""


class _ClaimState:
    """One claim in progress on the claiming server (see :meth:`ResumeExchange.claim`)."""

    __slots__ = ("done", "nonce", "offer", "pending", "state", "synced")

    def __init__(self, nonce: str, pending: PendingSink) -> None:
        loop = asyncio.get_running_loop()
        self.nonce = nonce
        self.pending = pending
        self.offer: asyncio.Future[ResumeOffer] = loop.create_future()
        self.state: asyncio.Future[ResumeMessage] = loop.create_future()
        self.synced = asyncio.Event()
        self.done = False

    def resolve_offer(self, offer: ResumeOffer) -> None:
        if not self.offer.done():
            self.offer.set_result(offer)

    def resolve_state(self, message: ResumeMessage) -> None:
        if not self.state.done():
            self.state.set_result(message)

    def fail(self, exc: BaseException) -> None:
        for future in (self.offer, self.state):
            if not future.done():
                future.set_exception(exc)
                # Retrieved here: a claim that already gave up must not log "never retrieved".
                future.exception()
