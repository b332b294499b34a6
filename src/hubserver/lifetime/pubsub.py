"""A lifetime manager that scales out over any :class:`~hubserver.lifetime.bus.Bus`.

:class:`PubSubLifetimeManager` routes over the shared local index, delivers to local sinks and
speaks ASP.NET Core's Redis backplane protocol (docs/spec/backplane.md §6.1-§6.4) on the bus it
is given: channel names and payloads from :mod:`hubserver.lifetime.redis_wire`, acks and remote
client results from :mod:`hubserver.lifetime.remote`, the canary from
:mod:`hubserver.lifetime.canary`. Shape after python-socketio's ``pubsub_manager.py`` and .NET's
``RedisHubLifetimeManager``.

Delivery rule (docs/adr/0003-redis-backplane.md, docs/spec/backplane.md §6.5): a broadcast is
written to the *local* sinks first and then published once, tagged with our server name. When
our own message comes back on a channel we subscribe to, the tag tells us to skip it. .NET
instead delivers its own messages only when the bus echoes them; we do not, so local clients
keep receiving while the bus is down.

Cross-server resume (docs/spec/stateful-reconnect.md §5.4; the exchange is described in
:mod:`hubserver.lifetime.resume`) needs every server to see a connection's messages in the bus's
one order, which local-first delivery breaks for our own broadcasts. A connection involved in
a resume is therefore *stream-only*: our own broadcasts skip it at publish time and reach it
when their echo comes back. The owner switches a live connection to stream-only with a
``FENCE`` it publishes to itself: echoes of broadcasts published before the fence were already
delivered locally, those after it were not. A resumed connection stays stream-only on its new
server (its own broadcasts reach it one bus round trip later, and not while the bus is down).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from functools import partial
from typing import Any

from hubserver.connections.manager import claimed_connection_id
from hubserver.errors import BackplaneError, HubError
from hubserver.lifetime import redis_wire as wire
from hubserver.lifetime import resume
from hubserver.lifetime.base import ConnectionSink, HubLifetimeManager
from hubserver.lifetime.bus import Bus, BusHealth
from hubserver.lifetime.canary import Canary
from hubserver.lifetime.delivery import deliver_except, deliver_one
from hubserver.lifetime.index import Departure, LocalIndex, Members
from hubserver.lifetime.remote import (
    EVENT_HANDLER_FAILED,
    PendingAcks,
    PendingResults,
    answer_invocation,
)
from hubserver.lifetime.resume import (
    Claim,
    Op,
    PendingSink,
    ResumeMessage,
    ResumeOffer,
    ResumeRefused,
    ResumeSource,
)
from hubserver.protocol import texts
from hubserver.protocol.base import HubProtocol
from hubserver.protocol.messages import InvocationMessage
from hubserver.protocol.serialized import SerializedMessage
from hubserver.types import ConnectionId, GroupName, UserId

__all__ = ["PubSubLifetimeManager"]

logger = logging.getLogger("hubserver.lifetime.pubsub")

# Stable log event names: operators alert on them (docs/deploy.md "Logs").
EVENT_PUBLISH_FAILED = "backplane.publish_failed"
EVENT_BAD_PAYLOAD = "backplane.bad_payload"
EVENT_CANARY_FAILED = "backplane.canary_failed"

_Handler = Callable[[bytes], Awaitable[None]]


def _default_protocols() -> Mapping[str, HubProtocol]:
    # Imported lazily: the protocol registry pulls in every codec, and tests may inject others.
    from hubserver.protocol.registry import ALL_PROTOCOLS

    return ALL_PROTOCOLS


class PubSubLifetimeManager(HubLifetimeManager):
    """A :class:`HubLifetimeManager` that scales out over a publish/subscribe bus.

    Routing, echo suppression, remote group commands with acks, client results across servers
    and the canary live here; the bus only moves bytes (see :mod:`hubserver.lifetime.bus` for
    its contract).

    Args:
        bus: The transport, shared by nobody else in this process.
        channels: Channel-name builder (``channel_prefix + hub_full_name``).
        protocols: Protocol name -> codec; every broadcast carries one serialization per entry.
            Defaults to ``hubserver.protocol.registry.ALL_PROTOCOLS``.
        server_name: This process's name on the bus; default ``<hostname>_<32 hex>``.
        write_only: A publisher without connections (workers): subscribes only to its own
            ack/return/canary channels; ``on_connected`` raises.
        ack_timeout: Seconds to wait for the ack of a remote group add/remove (.NET: 30 s).
        client_result_timeout: Seconds a hosting server waits for its client's answer to a
            client-result invocation that arrived from another server.
        canary_interval: Seconds between canary probes; 0 disables the periodic probe.
        canary_timeout: Seconds to wait for our own canary to come back.
    """

    def __init__(
        self,
        bus: Bus,
        *,
        channels: wire.RedisChannels,
        protocols: Mapping[str, HubProtocol] | None = None,
        server_name: str | None = None,
        write_only: bool = False,
        ack_timeout: float = 30.0,
        client_result_timeout: float = 30.0,
        canary_interval: float = 0.0,
        canary_timeout: float = 2.0,
    ) -> None:
        self.bus = bus
        self._health: BusHealth | None = bus if isinstance(bus, BusHealth) else None
        self.channels = channels
        self.protocols: Mapping[str, HubProtocol] = (
            protocols if protocols is not None else _default_protocols()
        )
        self.server_name = server_name or wire.make_server_name()
        self.write_only = write_only
        self.ack_timeout = ack_timeout
        self.client_result_timeout = client_result_timeout
        self.canary_interval = canary_interval

        self._index = LocalIndex()
        self._handlers: dict[str, _Handler] = {}
        self._acks = PendingAcks()
        self._results = PendingResults()
        self._canary = Canary(canary_timeout)
        self._tasks: set[asyncio.Task[None]] = set()
        self._running = False
        self._canary_ok = True
        self._last_publish_ok = True

        self._resume_source: ResumeSource | None = None
        # Connection id -> True while its owner's FENCE has not come back (see module doc).
        self._stream_only: dict[ConnectionId, bool] = {}
        # Owner side: connection id -> (claiming server, nonce, token) of the claim in progress.
        self._handing: dict[ConnectionId, tuple[str, str, str]] = {}
        # Claiming side: connection id -> the claim in progress or completed, not yet adopted.
        self._claims: dict[ConnectionId, _ClaimState] = {}
        self._handovers_out = 0
        # Our reply channel is subscribed with the first claim (see _reply_channel_ready).
        self._replies_ready: asyncio.Event | None = None
        self._handovers_in = 0
        self._handover_sends: set[asyncio.Task[None]] = set()

        self._publishes = 0
        self._publish_failures = 0
        self._messages_received = 0
        self._echoes_skipped = 0
        self._canary_failures = 0
        self._bad_payloads = 0

    @property
    def canary_timeout(self) -> float:
        """Seconds a canary probe may take to come back."""
        return self._canary.timeout

    # --- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Subscribe the fixed channels, start the bus, then the periodic canary (idempotent).

        The fixed channels (docs/spec/backplane.md §6.4): ``all`` and group management (not for
        write-only publishers), our own ack, return and canary channels always. They are
        subscribed before the bus starts, so the bus reports ready only once they are in effect.
        """
        if self._running:
            return
        self._running = True
        if not self.write_only:
            await self._subscribe_channel(self.channels.all, self._on_all)
            await self._subscribe_channel(self.channels.group_management, self._on_group_command)
        await self._subscribe_channel(self.channels.ack(self.server_name), self._on_ack)
        await self._subscribe_channel(
            self.channels.return_results(self.server_name), self._on_return
        )
        await self._subscribe_channel(self.channels.canary(self.server_name), self._on_canary)
        await self.bus.start(self._receive, self._bus_ready)
        if self.canary_interval > 0:
            self._spawn(self._canary_loop(self.canary_interval))

    async def stop(self) -> None:
        """Let handovers in flight finish (bounded), cancel background tasks, fail everything
        still waiting, stop the bus."""
        self._running = False
        handing = list(self._handover_sends)
        if handing:
            # The connections left this server when the marker was read; their state must
            # still reach the claimer, or they are lost (a rolling restart stops right after).
            await asyncio.wait(handing, timeout=_HANDOVER_FLUSH)
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        error = BackplaneError("The backplane was stopped.")
        self._acks.fail_all(error)
        self._canary.fail_all(error)
        self._results.fail_all(error)
        await self.bus.stop()

    # --- health and metrics --------------------------------------------------------------

    def _bus_ready(self) -> None:
        # The bus (re)connected with every channel subscribed: a publish failure from before
        # the outage no longer says anything about delivery.
        self._last_publish_ok = True

    def _bus_is_ready(self) -> bool:
        return self._health is None or self._health.is_ready()

    def is_healthy(self) -> bool:
        """False while the bus is down, our last publish failed, or the canary is failing."""
        return self._bus_is_ready() and self._canary_ok and self._last_publish_ok

    def local_connection_count(self) -> int:
        """Connections hosted by this process."""
        return len(self._index.connections)

    def stats(self) -> dict[str, int | float]:
        """Counters for ``/metrics``.

        Keys: ``publishes``, ``publish_failures``, ``messages_received``, ``echoes_skipped``,
        ``canary_failures``, ``bad_payloads``, ``local_connections``, ``local_groups``,
        ``subscriptions``, ``healthy`` (0/1) plus the bus's (``reconnects``, ``state``...).
        """
        data: dict[str, int | float] = {
            "publishes": self._publishes,
            "publish_failures": self._publish_failures,
            "messages_received": self._messages_received,
            "echoes_skipped": self._echoes_skipped,
            "canary_failures": self._canary_failures,
            "bad_payloads": self._bad_payloads,
            "local_connections": len(self._index.connections),
            "local_groups": len(self._index.groups),
            "subscriptions": len(self._handlers),
            "healthy": int(self.is_healthy()),
            "handovers_out": self._handovers_out,
            "handovers_in": self._handovers_in,
        }
        if self._health is not None:
            data.update(self._health.stats())
        return data

    # --- subscriptions -------------------------------------------------------------------

    async def _subscribe_channel(self, channel: str, handler: _Handler) -> None:
        self._handlers[channel] = handler
        await self.bus.subscribe(channel)

    async def _unsubscribe_channel(self, channel: str) -> None:
        if self._handlers.pop(channel, None) is not None:
            await self.bus.unsubscribe(channel)

    def subscribed_channels(self) -> list[str]:
        """Channels this manager currently wants to receive (for diagnostics and tests)."""
        return list(self._handlers)

    async def _receive(self, channel: str, data: bytes) -> None:
        # Entry point for the bus: one message arrived on ``channel``.
        self._messages_received += 1
        handler = self._handlers.get(channel)
        if handler is None:  # arrived just after an unsubscribe
            return
        try:
            await handler(data)
        except BackplaneError as exc:
            self._bad_payloads += 1
            logger.warning("%s channel=%s error=%s", EVENT_BAD_PAYLOAD, channel, exc)
        except Exception:
            logger.exception("%s channel=%s", EVENT_HANDLER_FAILED, channel)

    # --- publishing ----------------------------------------------------------------------

    async def _publish(self, channel: str, data: bytes) -> int:
        try:
            receivers = await self.bus.publish(channel, data)
        except BackplaneError:
            self._publish_failures += 1
            self._last_publish_ok = False
            raise
        self._publishes += 1
        self._last_publish_ok = True
        return receivers

    async def _publish_best_effort(self, channel: str, data: bytes) -> None:
        # Broadcasts: local sinks already have the message; a failed publish only loses the
        # remote part. It is counted and logged, and is_healthy() turns False
        # (docs/spec/backplane.md §6.6).
        try:
            await self._publish(channel, data)
        except BackplaneError as exc:
            logger.warning("%s channel=%s error=%s", EVENT_PUBLISH_FAILED, channel, exc)

    async def _publish_invocation(
        self, channel: str, message: SerializedMessage, excluded: Sequence[str]
    ) -> None:
        # One publish carries every protocol's bytes (docs/spec/backplane.md §6.2), so
        # receivers never serialize again.
        data = wire.write_invocation(
            message.serialize_all(self.protocols), excluded, origin=self.server_name
        )
        await self._publish_best_effort(channel, data)

    # --- HubLifetimeManager ----------------------------------------------------------------

    async def on_connected(self, connection: ConnectionSink) -> None:
        """Index the connection and subscribe its ``connection:`` (and ``user:``) channel."""
        if self.write_only:
            raise BackplaneError("A write-only backplane publisher cannot host connections.")
        cid = connection.connection_id
        first_of_user = self._index.add(connection)
        await self._subscribe_channel(
            self.channels.connection(cid), partial(self._on_connection_message, cid)
        )
        uid = connection.user_id
        if first_of_user and uid is not None:
            await self._subscribe_channel(
                self.channels.user(uid), partial(self._on_user_message, uid)
            )
        if getattr(connection, "resumable", False):
            await self._subscribe_channel(
                resume.resume_channel(self.channels, cid), partial(self._on_resume, cid)
            )

    async def on_disconnected(self, connection: ConnectionSink) -> None:
        """Forget the connection, leave its groups, unsubscribe channels nobody needs.

        The server only cleans up locally; it publishes nothing (docs/spec/backplane.md §6.3).
        """
        cid = connection.connection_id
        if self._index.connections.get(cid) is not connection:
            return  # handed over, or replaced by a resumed connection
        self._stream_only.pop(cid, None)
        self._handing.pop(cid, None)
        await self._leave_index(cid, connection.user_id)

    async def _leave_index(self, cid: ConnectionId, uid: UserId | None) -> None:
        await self._unsubscribe_departure(cid, uid, self._index.remove(cid))

    async def _unsubscribe_departure(
        self, cid: ConnectionId, uid: UserId | None, departure: Departure | None
    ) -> None:
        if departure is None:
            return
        await self._unsubscribe_channel(resume.resume_channel(self.channels, cid))
        await self._unsubscribe_channel(self.channels.connection(cid))
        for group in departure.emptied_groups:
            await self._unsubscribe_channel(self.channels.group(group))
        if departure.last_of_user and uid is not None:
            await self._unsubscribe_channel(self.channels.user(uid))

    async def send_all(
        self, method: str, args: Sequence[Any], exclude: Iterable[ConnectionId] = ()
    ) -> None:
        """Send to every connection on every server (``Clients.All`` / ``AllExcept``)."""
        excluded = list(exclude)
        message = SerializedMessage(InvocationMessage(method, list(args)))
        deliver_except(self._index.connections, message, self._local_excluded(excluded))
        await self._publish_invocation(self.channels.all, message, excluded)

    async def send_connections(
        self, connection_ids: Iterable[ConnectionId], method: str, args: Sequence[Any]
    ) -> None:
        """Send to connections wherever they are; local ones never touch the bus
        (docs/spec/backplane.md §6.3)."""
        message = SerializedMessage(InvocationMessage(method, list(args)))
        connections = self._index.connections
        for cid in connection_ids:
            sink = connections.get(cid)
            if sink is not None and cid not in self._stream_only:
                deliver_one(sink, message)
            else:
                await self._publish_invocation(self.channels.connection(cid), message, ())

    async def send_groups(
        self,
        groups: Iterable[GroupName],
        method: str,
        args: Sequence[Any],
        exclude: Iterable[ConnectionId] = (),
    ) -> None:
        """Send to the groups' members on every server (one publish per group, as .NET)."""
        excluded = list(exclude)
        message = SerializedMessage(InvocationMessage(method, list(args)))
        index_groups = self._index.groups
        local_excluded = self._local_excluded(excluded)
        for group in groups:
            deliver_except(index_groups.get(group), message, local_excluded)
            await self._publish_invocation(self.channels.group(group), message, excluded)

    async def send_users(
        self, user_ids: Iterable[UserId], method: str, args: Sequence[Any]
    ) -> None:
        """Send to every connection of the users on every server."""
        message = SerializedMessage(InvocationMessage(method, list(args)))
        users = self._index.users
        for uid in user_ids:
            deliver_except(users.get(uid), message, self._local_excluded(()))
            await self._publish_invocation(self.channels.user(uid), message, ())

    async def add_to_group(self, connection_id: ConnectionId, group: GroupName) -> None:
        """Add a connection to a group; remote connections via a group command + ack.

        Raises:
            BackplaneError: the command could not be published, or no server acknowledged
                it within ``ack_timeout`` (e.g. the connection exists nowhere).
        """
        sink = self._index.connections.get(connection_id)
        if sink is not None:
            await self._join_local(sink, group)
            return
        await self._send_group_command(wire.GroupAction.ADD, connection_id, group)

    async def remove_from_group(self, connection_id: ConnectionId, group: GroupName) -> None:
        """Remove a connection from a group (remote: group command + ack).

        Raises:
            BackplaneError: as :meth:`add_to_group`.
        """
        if connection_id in self._index.connections:
            await self._leave_local(connection_id, group)
            return
        await self._send_group_command(wire.GroupAction.REMOVE, connection_id, group)

    async def invoke_connection(
        self,
        connection_id: ConnectionId,
        method: str,
        args: Sequence[Any],
        timeout: float,  # noqa: ASYNC109 - signature of HubLifetimeManager
    ) -> Any:
        """Client result from a local or remote connection (docs/spec/backplane.md §6.3).

        Raises:
            HubError: ``Connection '<id>' does not exist.``, the client's error, or a timeout.
            BackplaneError: the invocation could not be published.
        """
        sink = self._index.connections.get(connection_id)
        if sink is not None:
            return await sink.invoke_client(method, args, timeout)
        invocation_id = secrets.token_urlsafe(16)  # 22 chars, unique across servers
        message = SerializedMessage(InvocationMessage(method, list(args), invocation_id))
        data = wire.write_invocation(
            message.serialize_all(self.protocols),
            (),
            invocation_id=invocation_id,
            return_channel=self.channels.return_results(self.server_name),
        )
        future = self._results.open(invocation_id)
        try:
            receivers = await self._publish(self.channels.connection(connection_id), data)
            if receivers < 1:
                # Nobody subscribes connection:<id>: the connection exists nowhere.
                raise HubError(texts.connection_not_found(connection_id))
            try:
                async with asyncio.timeout(timeout):
                    completion = await future
            except TimeoutError:
                raise HubError(
                    f"Timed out waiting for a result from connection '{connection_id}'."
                ) from None
        finally:
            self._results.close(invocation_id)
        if completion.error is not None:
            raise HubError(completion.error)
        return completion.result

    # --- groups (local + remote) ---------------------------------------------------------

    async def _join_local(self, sink: ConnectionSink, group: str) -> None:
        if self._index.join(sink, group):
            # First local member: subscribe group:<g> (servers with a local member listen).
            await self._subscribe_channel(
                self.channels.group(group), partial(self._on_group_message, group)
            )

    async def _leave_local(self, connection_id: ConnectionId, group: str) -> None:
        if self._index.leave(connection_id, group):
            await self._unsubscribe_channel(self.channels.group(group))

    async def _send_group_command(
        self, action: wire.GroupAction, connection_id: ConnectionId, group: str
    ) -> None:
        command_id = self._acks.next_id()
        future = self._acks.open(command_id)
        try:
            data = wire.write_group_command(
                command_id, self.server_name, action, group, connection_id
            )
            await self._publish(self.channels.group_management, data)
            try:
                async with asyncio.timeout(self.ack_timeout):
                    await future
            except TimeoutError:
                raise BackplaneError(
                    f"No server acknowledged group {action.name.lower()} of connection "
                    f"'{connection_id}' within {self.ack_timeout:g} s."
                ) from None
        finally:
            self._acks.close(command_id)

    # --- incoming messages ---------------------------------------------------------------

    def _local_excluded(self, excluded: Sequence[str]) -> Sequence[str] | set[str]:
        # Stream-only connections get our own broadcasts from the echo (module docstring).
        stream_only = self._stream_only
        if not stream_only:
            return excluded
        return stream_only.keys() | set(excluded)

    def _decode_invocation(self, data: bytes) -> tuple[wire.RedisInvocation, bool] | None:
        # (invocation, ours); None for an echo nobody here needs.
        invocation = wire.read_invocation(data)
        if invocation.origin == self.server_name:
            if not self._stream_only:
                # Our own broadcast echoed back: its local part was delivered before
                # publishing.
                self._echoes_skipped += 1
                return None
            return invocation, True
        return invocation, False

    def _receivers(self, members: Members | None, ours: bool) -> Members | None:
        # Our own echo reaches only the stream-only members whose fence came back.
        if not ours or not members:
            return members
        return {
            cid: members[cid]
            for cid, fencing in self._stream_only.items()
            if not fencing and cid in members
        }

    def _deliver_echo(self, members: Members | None, data: bytes) -> None:
        decoded = self._decode_invocation(data)
        if decoded is not None:
            invocation, ours = decoded
            deliver_except(
                self._receivers(members, ours),
                SerializedMessage(None, invocation.payloads),
                invocation.excluded_ids,
            )

    async def _on_all(self, data: bytes) -> None:
        self._deliver_echo(self._index.connections, data)

    async def _on_group_message(self, group: str, data: bytes) -> None:
        self._deliver_echo(self._index.groups.get(group), data)

    async def _on_user_message(self, user_id: str, data: bytes) -> None:
        self._deliver_echo(self._index.users.get(user_id), data)

    async def _on_connection_message(self, connection_id: ConnectionId, data: bytes) -> None:
        decoded = self._decode_invocation(data)
        if decoded is None:
            return
        invocation, ours = decoded
        sink = self._index.connections.get(connection_id)
        if ours and self._stream_only.get(connection_id) is not False:
            sink = None  # delivered locally at publish time
        if invocation.invocation_id is not None and invocation.return_channel is not None:
            self._spawn(self._serve_client_result(sink, invocation))
            return
        if sink is not None and connection_id not in invocation.excluded_ids:
            deliver_one(sink, SerializedMessage(None, invocation.payloads))

    async def _on_group_command(self, data: bytes) -> None:
        command = wire.read_group_command(data)
        sink = self._index.connections.get(ConnectionId(command.connection_id))
        if sink is None:
            # Never ack commands for connections we don't host (docs/spec/backplane.md §6.4).
            return
        if command.action is wire.GroupAction.ADD:
            await self._join_local(sink, command.group)
        else:
            await self._leave_local(sink.connection_id, command.group)
        await self._publish_best_effort(
            self.channels.ack(command.server_name), wire.write_ack(command.id)
        )

    async def _on_ack(self, data: bytes) -> None:
        self._acks.on_ack(data)

    async def _on_return(self, data: bytes) -> None:
        self._results.on_completion(data, self.protocols)

    async def _serve_client_result(
        self, sink: ConnectionSink | None, invocation: wire.RedisInvocation
    ) -> None:
        # We host the target: answer on the sender's return channel.
        assert invocation.return_channel is not None
        reply, bad = await answer_invocation(
            sink, invocation, self.protocols, self.client_result_timeout
        )
        self._bad_payloads += bad
        if reply is not None:
            await self._publish_best_effort(invocation.return_channel, reply)

    # --- cross-server resume (docs/spec/stateful-reconnect.md §5.4) ------------------------

    @property
    def supports_resume(self) -> bool:
        """True: a stateful connection can resume on any server of this bus."""
        return not self.write_only

    def set_resume_source(self, source: ResumeSource) -> None:
        """Register the hub layer that offers and hands over our connections."""
        self._resume_source = source

    def _resume_publish(self, channel: str, message: ResumeMessage) -> Awaitable[int]:
        return self._publish(channel, resume.write_message(message))

    async def _on_resume(self, connection_id: ConnectionId, data: bytes) -> None:
        # The resume channel of a connection we own or claim: PREPARE, FENCE, MARKER. What
        # must happen at the message's place in the stream happens here, synchronously; the
        # answers are published by tasks, so a burst of claims (a rolling restart) does not
        # wait for one Redis round trip per claim in the receive loop.
        message = resume.read_message(data)
        op = message.op
        if op == Op.PREPARE:
            self._spawn(self._on_prepare(connection_id, message))
        elif op == Op.FENCE:
            if message.server == self.server_name and connection_id in self._stream_only:
                self._stream_only[connection_id] = False
        elif op == Op.MARKER:
            claim = self._claims.get(connection_id)
            if (
                claim is not None
                and message.server == self.server_name
                and message.nonce == claim.nonce
            ):
                # Our own marker: from here on the owner no longer delivers, we keep.
                claim.pending.keeping = True
            elif self._handing.get(connection_id, ("", "", ""))[:2] == (
                message.server,
                message.nonce,
            ):
                self._hand_over(connection_id)

    async def _on_prepare(self, connection_id: ConnectionId, message: ResumeMessage) -> None:
        if message.server == self.server_name:
            return
        source = self._resume_source
        sink = self._index.connections.get(connection_id)
        offer: ResumeOffer | None = None
        if source is not None and sink is not None and connection_id not in self._claims:
            offer = source.offer(connection_id, message.token)
        reply = resume.reply_channel(self.channels, message.server)
        if offer is None:
            await self._resume_publish_best_effort(
                reply,
                ResumeMessage(Op.REFUSE, connection_id, self.server_name, message.nonce),
            )
            return
        self._handing[connection_id] = (message.server, message.nonce, message.token)
        if connection_id not in self._stream_only:
            # From now on our own broadcasts reach it through the bus; the fence tells which
            # echoes it already got locally. The switch and the fence's place in our publish
            # order must be one step: no await between them (the publish is queued at once).
            self._stream_only[connection_id] = True
            try:
                await self._resume_publish(
                    resume.resume_channel(self.channels, connection_id),
                    ResumeMessage(Op.FENCE, connection_id, self.server_name, message.nonce),
                )
            except BackplaneError as exc:
                # No offer without a fence: the claimer times out and the client starts over.
                logger.warning("%s fence error=%s", EVENT_PUBLISH_FAILED, exc)
                self._stream_only.pop(connection_id, None)
                self._handing.pop(connection_id, None)
                return
        groups = tuple(self._index.memberships.get(connection_id, ()))
        await self._resume_publish_best_effort(
            reply,
            ResumeMessage(
                Op.OFFER,
                connection_id,
                self.server_name,
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
        source = self._resume_source
        sink = self._index.connections.get(connection_id)
        state = source.hand_over(connection_id, token) if source is not None else None
        groups = tuple(self._index.memberships.get(connection_id, ()))
        self._stream_only.pop(connection_id, None)
        reply = resume.reply_channel(self.channels, server)
        if state is None or sink is None:
            refuse = ResumeMessage(Op.REFUSE, connection_id, self.server_name, nonce)
            self._spawn(self._resume_publish_best_effort(reply, refuse))
            return
        self._handovers_out += 1
        departure = self._index.remove(connection_id)
        message = ResumeMessage(
            Op.STATE, connection_id, self.server_name, nonce, groups=groups, state=state
        )
        task = self._spawn(self._send_state(reply, message, sink.user_id, departure))
        self._handover_sends.add(task)
        task.add_done_callback(self._handover_sends.discard)

    async def _send_state(
        self, reply: str, message: ResumeMessage, uid: UserId | None, departure: Departure | None
    ) -> None:
        await self._resume_publish_best_effort(reply, message)
        await self._unsubscribe_departure(ConnectionId(message.connection_id), uid, departure)

    async def _resume_publish_best_effort(self, channel: str, message: ResumeMessage) -> None:
        # An answer that cannot be published makes the claimer time out (404): logged only.
        try:
            await self._resume_publish(channel, message)
        except BackplaneError as exc:
            logger.warning("%s channel=%s error=%s", EVENT_PUBLISH_FAILED, channel, exc)

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
        channel = resume.reply_channel(self.channels, self.server_name)
        if ready is None:
            ready = self._replies_ready = asyncio.Event()
            await self._subscribe_channel(channel, self._on_resume_reply)
        probe = resume.write_message(ResumeMessage(Op.SYNC, "", self.server_name, ""))
        await self._probe_until(ready, channel, probe)

    async def _probe_until(self, done: asyncio.Event, channel: str, probe: bytes) -> None:
        while not done.is_set():
            await self._publish(channel, probe)
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
        if cid_text is None or self.write_only:
            raise ResumeRefused(404, "not a resumable token")
        cid = ConnectionId(cid_text)
        if cid in self._claims or cid in self._index.connections:
            raise ResumeRefused(404, "already claimed here")
        claim = _ClaimState(resume.new_nonce(), PendingSink(cid, None))
        self._claims[cid] = claim
        indexed = False
        try:
            async with asyncio.timeout(timeout):
                await self._reply_channel_ready()
                # Not subscribed to the resume channel yet: receivers are other servers only.
                receivers = await self._resume_publish(
                    resume.resume_channel(self.channels, cid),
                    ResumeMessage(Op.PREPARE, cid, self.server_name, claim.nonce, token=token),
                )
                if receivers == 0:
                    raise ResumeRefused(404, "no server owns the connection")
                offer = await claim.offer
                if offer.user_id != user_id:
                    raise ResumeRefused(403, "the connection belongs to another user")
                pending = claim.pending
                pending.user_id = UserId(offer.user_id) if offer.user_id is not None else None
                self._stream_only[cid] = False
                indexed = True
                await self._index_pending(pending, offer.groups)
                await self._sync(claim, cid)
                await self._resume_publish(
                    resume.resume_channel(self.channels, cid),
                    ResumeMessage(Op.MARKER, cid, self.server_name, claim.nonce),
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
                await self._join_local(claim.pending, group)
        claim.done = True
        self._handovers_in += 1
        return Claim(cid, offer, state.state)

    async def _index_pending(self, pending: PendingSink, groups: Sequence[str]) -> None:
        cid = pending.connection_id
        first_of_user = self._index.add(pending)
        await self._subscribe_channel(
            self.channels.connection(cid), partial(self._on_connection_message, cid)
        )
        uid = pending.user_id
        if first_of_user and uid is not None:
            await self._subscribe_channel(
                self.channels.user(uid), partial(self._on_user_message, uid)
            )
        for group in groups:
            await self._join_local(pending, group)
        await self._subscribe_channel(
            resume.resume_channel(self.channels, cid), partial(self._on_resume, cid)
        )

    async def _sync(self, claim: _ClaimState, cid: ConnectionId) -> None:
        # Probe a channel subscribed after all the others until the probe comes back: then
        # every subscription above is in effect and the marker splits all of them.
        channel = resume.sync_channel(self.channels, cid, claim.nonce)
        await self._subscribe_channel(channel, partial(self._on_sync, claim))
        probe = resume.write_message(ResumeMessage(Op.SYNC, cid, self.server_name, claim.nonce))
        try:
            await self._probe_until(claim.synced, channel, probe)
        finally:
            await self._unsubscribe_channel(channel)

    async def _drop_claim(self, cid: ConnectionId, indexed: bool) -> None:
        claim = self._claims.pop(cid, None)
        if claim is None or not indexed:
            return
        if self._index.connections.get(cid) is claim.pending:
            self._stream_only.pop(cid, None)
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
            self._stream_only.pop(cid, None)
            self._spawn(self._leave_index(cid, pending.user_id))

    def abandon(self, connection_id: ConnectionId) -> None:
        """Forget a completed claim whose connection could not be built here."""
        claim = self._claims.get(connection_id)
        if claim is not None:
            self.abandon_pending(claim.pending)

    # --- canary --------------------------------------------------------------------------

    async def _on_canary(self, data: bytes) -> None:
        self._canary.on_message(data)

    async def _probe(self) -> bool:
        return await self._canary.probe(
            partial(self._publish, self.channels.canary(self.server_name))
        )

    async def check_canary(self) -> bool:
        """Publish a probe to our own canary channel and expect it back.

        A subscription that is connected but receives nothing is repaired when the bus can be
        (:class:`~hubserver.lifetime.bus.BusHealth`): the bus tears the subscription connection
        down and subscribes every channel again, then a second probe decides the health.
        Skipped (returns False) while the bus is reconnecting anyway.

        Returns:
            True when the subscription delivers (possibly after a repair).
        """
        if not self._bus_is_ready():
            return False
        if await self._probe():
            self._canary_ok = True
            return True
        if not self._bus_is_ready() or not self._last_publish_ok:
            return False  # the bus is down: its reconnect loop owns this case
        self._canary_failures += 1
        self._canary_ok = False
        logger.warning("%s server=%s", EVENT_CANARY_FAILED, self.server_name)
        if self._health is not None:
            await self._health.repair()
        self._canary_ok = await self._probe()
        return self._canary_ok

    async def _canary_loop(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self.check_canary()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("%s canary", EVENT_HANDLER_FAILED)

    # --- tasks ---------------------------------------------------------------------------

    def _spawn(self, coro: Awaitable[None]) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task


_SYNC_RETRY = 0.01
"""Seconds between subscription probes of a claim (a subscription takes one Redis round trip)."""

_HANDOVER_FLUSH = 5.0
"""Most seconds :meth:`PubSubLifetimeManager.stop` waits for states still being sent."""


class _ClaimState:
    """One claim in progress on the claiming server (see
    :meth:`PubSubLifetimeManager.claim`)."""

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
