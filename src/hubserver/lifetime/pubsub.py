"""A lifetime manager that routes hub messages between servers over a publish/subscribe bus.

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

Cross-server resume (docs/spec/stateful-reconnect.md §5.4) is
:class:`~hubserver.lifetime.resume_exchange.ResumeExchange`, composed here; connections it
marks *stream-only* get our own broadcasts from their echo, not at publish time (see there).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from functools import partial
from typing import Any

from hubserver.errors import BackplaneError, HubError
from hubserver.lifetime import redis_wire as wire
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
from hubserver.lifetime.resume import Claim, PendingSink, ResumeRefused, ResumeSource
from hubserver.lifetime.resume_exchange import EVENT_PUBLISH_FAILED, ResumeExchange, ResumeHost
from hubserver.protocol import texts
from hubserver.protocol.base import HubProtocol
from hubserver.protocol.messages import InvocationMessage
from hubserver.protocol.serialized import SerializedMessage
from hubserver.types import ConnectionId, GroupName, UserId

__all__ = ["PubSubLifetimeManager"]

logger = logging.getLogger("hubserver.lifetime.pubsub")

# Stable log event name: operators alert on it (docs/deploy.md "Logs"). The others this
# logger writes are named where they are logged: EVENT_PUBLISH_FAILED, EVENT_CANARY_FAILED.
EVENT_BAD_PAYLOAD = "backplane.bad_payload"

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
        self._last_publish_ok = True

        self._resume = ResumeExchange(
            ResumeHost(
                server_name=self.server_name,
                channels=channels,
                index=self._index,
                publish=self._publish,
                publish_best_effort=self._publish_best_effort,
                subscribe=self._subscribe_channel,
                unsubscribe=self._unsubscribe_channel,
                spawn=self._spawn,
                add_local=self._add_local,
                join_local=self._join_local,
                release=self._unsubscribe_departure,
            )
        )
        # Read by every send path (delivery rule for stream-only connections, module doc).
        self._stream_only = self._resume.stream_only

        self._publishes = 0
        self._publish_failures = 0
        self._messages_received = 0
        self._echoes_skipped = 0
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
            self._spawn(Canary.run(self.canary_interval, self.check_canary))

    async def stop(self) -> None:
        """Let handovers in flight finish (bounded), cancel background tasks, fail everything
        still waiting, stop the bus."""
        self._running = False
        await self._resume.flush()
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
        return self._bus_is_ready() and self._canary.ok and self._last_publish_ok

    def local_connection_count(self) -> int:
        """Connections hosted by this process."""
        return len(self._index.connections)

    def stats(self) -> dict[str, int | float]:
        """Counters for ``/metrics``.

        Keys: ``publishes``, ``publish_failures``, ``messages_received``, ``echoes_skipped``,
        ``canary_failures``, ``bad_payloads``, ``local_connections``, ``local_groups``,
        ``subscriptions``, ``healthy`` (0/1), the resume exchange's (``handovers_out``,
        ``handovers_in``) plus the bus's (``reconnects``, ``state``...).
        """
        data: dict[str, int | float] = {
            "publishes": self._publishes,
            "publish_failures": self._publish_failures,
            "messages_received": self._messages_received,
            "echoes_skipped": self._echoes_skipped,
            "canary_failures": self._canary.failures,
            "bad_payloads": self._bad_payloads,
            "local_connections": len(self._index.connections),
            "local_groups": len(self._index.groups),
            "subscriptions": len(self._handlers),
            "healthy": int(self.is_healthy()),
            **self._resume.stats(),
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
        await self._add_local(connection)
        if getattr(connection, "resumable", False):
            await self._resume.watch(connection.connection_id)

    async def _add_local(self, sink: ConnectionSink) -> None:
        cid = sink.connection_id
        first_of_user = self._index.add(sink)
        await self._subscribe_channel(
            self.channels.connection(cid), partial(self._on_connection_message, cid)
        )
        uid = sink.user_id
        if first_of_user and uid is not None:
            await self._subscribe_channel(
                self.channels.user(uid), partial(self._on_user_message, uid)
            )

    async def on_disconnected(self, connection: ConnectionSink) -> None:
        """Forget the connection, leave its groups, unsubscribe channels nobody needs.

        The server only cleans up locally; it publishes nothing (docs/spec/backplane.md §6.3).
        """
        cid = connection.connection_id
        if self._index.connections.get(cid) is not connection:
            return  # handed over, or replaced by a resumed connection
        self._resume.forget(cid)
        await self._unsubscribe_departure(cid, connection.user_id, self._index.remove(cid))

    async def _unsubscribe_departure(
        self, cid: ConnectionId, uid: UserId | None, departure: Departure | None
    ) -> None:
        if departure is None:
            return
        await self._resume.unwatch(cid)
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

    # --- cross-server resume: delegated to ResumeExchange (module docstring) ---------------

    @property
    def supports_resume(self) -> bool:
        """True: a stateful connection can resume on any server of this bus."""
        return not self.write_only

    def set_resume_source(self, source: ResumeSource) -> None:
        """Register the hub layer that offers and hands over our connections."""
        self._resume.set_source(source)

    async def claim(self, token: str, user_id: str | None, timeout: float) -> Claim:  # noqa: ASYNC109
        """Take over the connection ``token`` claims; see :meth:`.ResumeExchange.claim` (a
        write-only publisher refuses with 404)."""
        if self.write_only:
            raise ResumeRefused(404, "not a resumable token")
        return await self._resume.claim(token, user_id, timeout)

    def adopt(self, connection_id: ConnectionId, connection: ConnectionSink) -> None:
        """Put the resumed ``connection`` where its claim's placeholder was; see
        :meth:`.ResumeExchange.adopt`."""
        self._resume.adopt(connection_id, connection)

    def abandon_pending(self, pending: PendingSink) -> None:
        """Drop a placeholder that will never become a connection (and its subscriptions)."""
        self._resume.abandon_pending(pending)

    def abandon(self, connection_id: ConnectionId) -> None:
        """Forget a completed claim whose connection could not be built here."""
        self._resume.abandon(connection_id)

    # --- canary --------------------------------------------------------------------------

    async def _on_canary(self, data: bytes) -> None:
        self._canary.on_message(data)

    async def check_canary(self) -> bool:
        """Publish a probe to our own canary channel and expect it back.

        A subscription that is connected but receives nothing is repaired when the bus can be
        (:class:`~hubserver.lifetime.bus.BusHealth`): the bus tears the subscription connection
        down and subscribes every channel again, then a second probe decides the health.
        Skipped (returns False) while the bus is reconnecting anyway.

        Returns:
            True when the subscription delivers (possibly after a repair).
        """
        return await self._canary.check(
            partial(self._publish, self.channels.canary(self.server_name)),
            self._health,
            lambda: self._last_publish_ok,
            self.server_name,
        )

    # --- tasks ---------------------------------------------------------------------------

    def _spawn(self, coro: Awaitable[None]) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task
