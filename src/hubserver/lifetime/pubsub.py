"""Template for pub/sub backplanes: routing here, bytes in the subclass.

:class:`PubSubLifetimeManager` keeps the local connection/group/user index, delivers to local
:class:`ConnectionSink` objects, and speaks the ASP.NET Core Redis backplane protocol
(signalr-protocol.md §6) over three abstract primitives a backend implements: ``_publish``,
``_subscribe`` and ``_unsubscribe`` (plus ``_repair`` and ``_backend_ready`` for health).
Shape after python-socketio's ``pubsub_manager.py`` and .NET's ``RedisHubLifetimeManager``.

Delivery rule (docs/adr/0003-redis-backplane.md): a broadcast is written to the *local* sinks
first and then published once, tagged with our server name. When our own message comes back on
a channel we subscribe to, the tag tells us to skip it. .NET instead delivers its own messages
only when Redis echoes them; we do not, so local clients keep receiving while Redis is down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from functools import partial
from typing import Any

from hubserver.errors import BackplaneError, HubError, ProtocolError
from hubserver.lifetime import redis_wire as wire
from hubserver.lifetime.base import ConnectionSink, HubLifetimeManager
from hubserver.protocol.base import HubProtocol
from hubserver.protocol.messages import CompletionMessage, InvocationMessage
from hubserver.protocol.serialized import SerializedMessage
from hubserver.types import ConnectionId, GroupName, UserId

__all__ = ["PubSubLifetimeManager"]

logger = logging.getLogger("hubserver.lifetime.pubsub")

# Stable log event names (architecture.md convention 9).
EVENT_PUBLISH_FAILED = "backplane.publish_failed"
EVENT_BAD_PAYLOAD = "backplane.bad_payload"
EVENT_SINK_FAILED = "backplane.sink_write_failed"
EVENT_CANARY_FAILED = "backplane.canary_failed"
EVENT_HANDLER_FAILED = "backplane.handler_failed"

_Handler = Callable[[bytes], Awaitable[None]]

_INT32_MAX = 2**31 - 1


def _default_protocols() -> Mapping[str, HubProtocol]:
    # Imported lazily: the protocol registry pulls in every codec, and tests may inject others.
    from hubserver.protocol.registry import ALL_PROTOCOLS

    return ALL_PROTOCOLS


class PubSubLifetimeManager(HubLifetimeManager):
    """A :class:`HubLifetimeManager` that scales out over a pub/sub bus.

    Subclasses implement the I/O primitives; everything else (routing, echo suppression,
    remote group commands with acks, client results across servers, the canary) lives here.

    Args:
        channels: Channel-name builder (``channel_prefix + hub_full_name``).
        protocols: Protocol name -> codec; every broadcast carries one serialization per entry.
            Defaults to ``hubserver.protocol.registry.ALL_PROTOCOLS``.
        server_name: This process's name on the bus; default ``<hostname>_<32 hex>``.
        write_only: A publisher without connections (workers): subscribes only to its own
            ack/return/canary channels; ``on_connected`` raises.
        ack_timeout: Seconds to wait for the ack of a remote group add/remove (.NET: 30 s).
        client_result_timeout: Seconds a hosting server waits for its client's answer to a
            client-result invocation that arrived from another server.
        canary_timeout: Seconds to wait for our own canary to come back.
    """

    def __init__(
        self,
        *,
        channels: wire.RedisChannels,
        protocols: Mapping[str, HubProtocol] | None = None,
        server_name: str | None = None,
        write_only: bool = False,
        ack_timeout: float = 30.0,
        client_result_timeout: float = 30.0,
        canary_timeout: float = 2.0,
    ) -> None:
        self.channels = channels
        self.protocols: Mapping[str, HubProtocol] = (
            protocols if protocols is not None else _default_protocols()
        )
        self.server_name = server_name or wire.make_server_name()
        self.write_only = write_only
        self.ack_timeout = ack_timeout
        self.client_result_timeout = client_result_timeout
        self.canary_timeout = canary_timeout

        self._connections: dict[ConnectionId, ConnectionSink] = {}
        self._groups: dict[str, dict[ConnectionId, ConnectionSink]] = {}
        self._connection_groups: dict[ConnectionId, set[str]] = {}
        self._users: dict[str, dict[ConnectionId, ConnectionSink]] = {}
        self._handlers: dict[str, _Handler] = {}

        self._ack_id = 0
        self._pending_acks: dict[int, asyncio.Future[None]] = {}
        self._pending_results: dict[str, asyncio.Future[CompletionMessage]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._canary_seq = 0
        self._canary_waiters: dict[int, asyncio.Future[None]] = {}
        self._canary_ok = True
        self._last_publish_ok = True

        self._publishes = 0
        self._publish_failures = 0
        self._messages_received = 0
        self._echoes_skipped = 0
        self._canary_failures = 0
        self._bad_payloads = 0

    # --- backend primitives --------------------------------------------------------------

    async def _publish(self, channel: str, data: bytes) -> int:  # pragma: no cover - abstract
        """PUBLISH ``data`` and return the number of receivers.

        Raises:
            BackplaneError: the bus is unreachable.
        """
        raise NotImplementedError

    async def _subscribe(self, channel: str) -> None:  # pragma: no cover - abstract
        """Start receiving ``channel`` (idempotent). Must not raise when the bus is down:
        the backend remembers the channel and subscribes it again on reconnect."""
        raise NotImplementedError

    async def _unsubscribe(self, channel: str) -> None:  # pragma: no cover - abstract
        """Stop receiving ``channel`` (idempotent, never raises)."""
        raise NotImplementedError

    async def _repair(self) -> None:  # pragma: no cover - abstract
        """Tear down the subscription connection and subscribe every channel again."""
        raise NotImplementedError

    def _backend_ready(self) -> bool:  # pragma: no cover - abstract
        """True while the subscription connection is up and subscribed."""
        raise NotImplementedError

    def _backend_recovered(self) -> None:
        """The backend (re)connected and resubscribed: forget the last publish failure."""
        self._last_publish_ok = True

    def _backend_stats(self) -> dict[str, int | float]:
        """Backend-specific counters merged into :meth:`stats`."""
        return {}

    # --- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Subscribe the fixed channels (call after the backend can accept subscriptions).

        §6.4 item 2: ``all`` and group management at startup (not for write-only publishers),
        our own ack and return channels always.
        """
        if not self.write_only:
            await self._subscribe_channel(self.channels.all, self._on_all)
            await self._subscribe_channel(self.channels.group_management, self._on_group_command)
        await self._subscribe_channel(self.channels.ack(self.server_name), self._on_ack)
        await self._subscribe_channel(
            self.channels.return_results(self.server_name), self._on_return
        )
        await self._subscribe_channel(self.channels.canary(self.server_name), self._on_canary)

    async def stop(self) -> None:
        """Cancel background tasks and fail everything still waiting on the bus."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        error = BackplaneError("The backplane was stopped.")
        for waiters in (self._pending_acks, self._canary_waiters):
            for fut in waiters.values():
                if not fut.done():
                    fut.set_exception(error)
        for result in self._pending_results.values():
            if not result.done():
                result.set_exception(error)

    # --- health and metrics --------------------------------------------------------------

    def is_healthy(self) -> bool:
        """False while the bus is down, our last publish failed, or the canary is failing."""
        return self._backend_ready() and self._canary_ok and self._last_publish_ok

    def local_connection_count(self) -> int:
        """Connections hosted by this process."""
        return len(self._connections)

    def stats(self) -> dict[str, int | float]:
        """Counters for ``/metrics``.

        Keys: ``publishes``, ``publish_failures``, ``messages_received``, ``echoes_skipped``,
        ``canary_failures``, ``bad_payloads``, ``local_connections``, ``local_groups``,
        ``subscriptions``, ``healthy`` (0/1) plus the backend's (``reconnects``, ``state``...).
        """
        data: dict[str, int | float] = {
            "publishes": self._publishes,
            "publish_failures": self._publish_failures,
            "messages_received": self._messages_received,
            "echoes_skipped": self._echoes_skipped,
            "canary_failures": self._canary_failures,
            "bad_payloads": self._bad_payloads,
            "local_connections": len(self._connections),
            "local_groups": len(self._groups),
            "subscriptions": len(self._handlers),
            "healthy": int(self.is_healthy()),
        }
        data.update(self._backend_stats())
        return data

    # --- subscriptions -------------------------------------------------------------------

    async def _subscribe_channel(self, channel: str, handler: _Handler) -> None:
        self._handlers[channel] = handler
        await self._subscribe(channel)

    async def _unsubscribe_channel(self, channel: str) -> None:
        if self._handlers.pop(channel, None) is not None:
            await self._unsubscribe(channel)

    def subscribed_channels(self) -> list[str]:
        """Channels this manager currently wants to receive (for diagnostics and tests)."""
        return list(self._handlers)

    async def _receive(self, channel: str, data: bytes) -> None:
        """Entry point for the backend: one message arrived on ``channel``."""
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

    async def _publish_counted(self, channel: str, data: bytes) -> int:
        try:
            receivers = await self._publish(channel, data)
        except BackplaneError:
            self._publish_failures += 1
            self._last_publish_ok = False
            raise
        self._publishes += 1
        self._last_publish_ok = True
        return receivers

    async def _publish_best_effort(self, channel: str, data: bytes) -> None:
        # Broadcasts: local sinks already have the message; a failed publish only loses the
        # remote part. It is counted and logged, and is_healthy() turns False (anchors §3 #1).
        try:
            await self._publish_counted(channel, data)
        except BackplaneError as exc:
            logger.warning("%s channel=%s error=%s", EVENT_PUBLISH_FAILED, channel, exc)

    async def _publish_invocation(
        self, channel: str, message: SerializedMessage, excluded: Sequence[str]
    ) -> None:
        # Convention 3: one publish carries every protocol's bytes (§6.2), so receivers never
        # serialize again.
        data = wire.write_invocation(
            message.serialize_all(self.protocols), excluded, origin=self.server_name
        )
        await self._publish_best_effort(channel, data)

    # --- local delivery ------------------------------------------------------------------

    @staticmethod
    def _write(sink: ConnectionSink, message: SerializedMessage) -> None:
        # One failing connection must not stop the fan-out (ScaleoutHubLifetimeManagerTests).
        try:
            sink.write_serialized(message)
        except Exception:
            logger.exception("%s connection=%s", EVENT_SINK_FAILED, sink.connection_id)

    def _write_many(
        self,
        sinks: Mapping[ConnectionId, ConnectionSink] | None,
        message: SerializedMessage,
        excluded: Sequence[str],
    ) -> None:
        if not sinks:
            return
        write = self._write
        if excluded:
            skip = frozenset(excluded)
            for cid, sink in list(sinks.items()):
                if cid not in skip:
                    write(sink, message)
        else:
            # list(): a sink may synchronously trigger bookkeeping on failure.
            for sink in list(sinks.values()):
                write(sink, message)

    # --- HubLifetimeManager ----------------------------------------------------------------

    async def on_connected(self, connection: ConnectionSink) -> None:
        """Index the connection and subscribe its ``connection:`` (and ``user:``) channel."""
        if self.write_only:
            raise BackplaneError("A write-only backplane publisher cannot host connections.")
        cid = connection.connection_id
        self._connections[cid] = connection
        await self._subscribe_channel(
            self.channels.connection(cid), partial(self._on_connection_message, cid)
        )
        uid = connection.user_id
        if uid is not None:
            users = self._users.get(uid)
            if users is None:
                users = self._users[uid] = {}
                users[cid] = connection
                await self._subscribe_channel(
                    self.channels.user(uid), partial(self._on_user_message, uid)
                )
            else:
                users[cid] = connection

    async def on_disconnected(self, connection: ConnectionSink) -> None:
        """Forget the connection, leave its groups, unsubscribe channels nobody needs.

        §6.3: the server only cleans up locally; it publishes nothing.
        """
        cid = connection.connection_id
        if self._connections.pop(cid, None) is None:
            return
        await self._unsubscribe_channel(self.channels.connection(cid))
        for group in list(self._connection_groups.pop(cid, ())):
            await self._remove_local(cid, group)
        uid = connection.user_id
        if uid is not None:
            users = self._users.get(uid)
            if users is not None:
                users.pop(cid, None)
                if not users:
                    del self._users[uid]
                    await self._unsubscribe_channel(self.channels.user(uid))

    async def send_all(
        self, method: str, args: Sequence[Any], exclude: Iterable[ConnectionId] = ()
    ) -> None:
        """Send to every connection on every server (``Clients.All`` / ``AllExcept``)."""
        excluded = list(exclude)
        message = SerializedMessage(InvocationMessage(method, list(args)))
        self._write_many(self._connections, message, excluded)
        await self._publish_invocation(self.channels.all, message, excluded)

    async def send_connections(
        self, connection_ids: Iterable[ConnectionId], method: str, args: Sequence[Any]
    ) -> None:
        """Send to connections wherever they are; local ones never touch the bus (§6.3)."""
        message = SerializedMessage(InvocationMessage(method, list(args)))
        for cid in connection_ids:
            sink = self._connections.get(cid)
            if sink is not None:
                self._write(sink, message)
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
        for group in groups:
            self._write_many(self._groups.get(group), message, excluded)
            await self._publish_invocation(self.channels.group(group), message, excluded)

    async def send_users(
        self, user_ids: Iterable[UserId], method: str, args: Sequence[Any]
    ) -> None:
        """Send to every connection of the users on every server."""
        message = SerializedMessage(InvocationMessage(method, list(args)))
        for uid in user_ids:
            self._write_many(self._users.get(uid), message, ())
            await self._publish_invocation(self.channels.user(uid), message, ())

    async def add_to_group(self, connection_id: ConnectionId, group: GroupName) -> None:
        """Add a connection to a group; remote connections via a group command + ack.

        Raises:
            BackplaneError: the command could not be published, or no server acknowledged
                it within ``ack_timeout`` (e.g. the connection exists nowhere).
        """
        sink = self._connections.get(connection_id)
        if sink is not None:
            await self._add_local(sink, group)
            return
        await self._send_group_command(wire.GroupAction.ADD, connection_id, group)

    async def remove_from_group(self, connection_id: ConnectionId, group: GroupName) -> None:
        """Remove a connection from a group (remote: group command + ack).

        Raises:
            BackplaneError: as :meth:`add_to_group`.
        """
        if connection_id in self._connections:
            await self._remove_local(connection_id, group)
            return
        await self._send_group_command(wire.GroupAction.REMOVE, connection_id, group)

    async def invoke_connection(
        self,
        connection_id: ConnectionId,
        method: str,
        args: Sequence[Any],
        timeout: float,  # noqa: ASYNC109 - signature of HubLifetimeManager
    ) -> Any:
        """Client result from a local or remote connection (§6.3 "Client results").

        Raises:
            HubError: ``Connection '<id>' does not exist.``, the client's error, or a timeout.
            BackplaneError: the invocation could not be published.
        """
        sink = self._connections.get(connection_id)
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
        future: asyncio.Future[CompletionMessage] = asyncio.get_running_loop().create_future()
        self._pending_results[invocation_id] = future
        try:
            receivers = await self._publish_counted(self.channels.connection(connection_id), data)
            if receivers < 1:
                # Nobody subscribes connection:<id>: the connection exists nowhere (§6.3).
                raise HubError(f"Connection '{connection_id}' does not exist.")
            try:
                async with asyncio.timeout(timeout):
                    completion = await future
            except TimeoutError:
                raise HubError(
                    f"Timed out waiting for a result from connection '{connection_id}'."
                ) from None
        finally:
            self._pending_results.pop(invocation_id, None)
        if completion.error is not None:
            raise HubError(completion.error)
        return completion.result

    # --- groups (local + remote) ---------------------------------------------------------

    async def _add_local(self, sink: ConnectionSink, group: str) -> None:
        cid = sink.connection_id
        members = self._groups.get(group)
        if members is not None and cid in members:
            return  # idempotent
        self._connection_groups.setdefault(cid, set()).add(group)
        if members is None:
            # First local member: subscribe group:<g> (§6.1 "servers with ≥1 local member").
            self._groups[group] = {cid: sink}
            await self._subscribe_channel(
                self.channels.group(group), partial(self._on_group_message, group)
            )
        else:
            members[cid] = sink

    async def _remove_local(self, connection_id: ConnectionId, group: str) -> None:
        members = self._groups.get(group)
        if members is None or connection_id not in members:
            return  # idempotent
        del members[connection_id]
        groups = self._connection_groups.get(connection_id)
        if groups is not None:
            groups.discard(group)
        if not members:
            del self._groups[group]
            await self._unsubscribe_channel(self.channels.group(group))

    def _next_ack_id(self) -> int:
        # .NET: int32 counter per server; wrap before overflowing the wire type.
        self._ack_id = self._ack_id + 1 if self._ack_id < _INT32_MAX else 1
        return self._ack_id

    async def _send_group_command(
        self, action: wire.GroupAction, connection_id: ConnectionId, group: str
    ) -> None:
        command_id = self._next_ack_id()
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending_acks[command_id] = future
        try:
            data = wire.write_group_command(
                command_id, self.server_name, action, group, connection_id
            )
            await self._publish_counted(self.channels.group_management, data)
            try:
                async with asyncio.timeout(self.ack_timeout):
                    await future
            except TimeoutError:
                raise BackplaneError(
                    f"No server acknowledged group {action.name.lower()} of connection "
                    f"'{connection_id}' within {self.ack_timeout:g} s."
                ) from None
        finally:
            self._pending_acks.pop(command_id, None)

    # --- incoming messages ---------------------------------------------------------------

    def _decode_invocation(self, data: bytes) -> wire.RedisInvocation | None:
        invocation = wire.read_invocation(data)
        if invocation.origin == self.server_name:
            # Our own broadcast echoed back: its local part was delivered before publishing.
            self._echoes_skipped += 1
            return None
        return invocation

    async def _on_all(self, data: bytes) -> None:
        invocation = self._decode_invocation(data)
        if invocation is not None:
            self._write_many(
                self._connections,
                SerializedMessage(None, invocation.payloads),
                invocation.excluded_ids,
            )

    async def _on_group_message(self, group: str, data: bytes) -> None:
        invocation = self._decode_invocation(data)
        if invocation is not None:
            self._write_many(
                self._groups.get(group),
                SerializedMessage(None, invocation.payloads),
                invocation.excluded_ids,
            )

    async def _on_user_message(self, user_id: str, data: bytes) -> None:
        invocation = self._decode_invocation(data)
        if invocation is not None:
            self._write_many(
                self._users.get(user_id),
                SerializedMessage(None, invocation.payloads),
                invocation.excluded_ids,
            )

    async def _on_connection_message(self, connection_id: ConnectionId, data: bytes) -> None:
        invocation = self._decode_invocation(data)
        if invocation is None:
            return
        sink = self._connections.get(connection_id)
        if invocation.invocation_id is not None and invocation.return_channel is not None:
            self._spawn(self._serve_client_result(sink, invocation))
            return
        if sink is not None and connection_id not in invocation.excluded_ids:
            self._write(sink, SerializedMessage(None, invocation.payloads))

    async def _on_group_command(self, data: bytes) -> None:
        command = wire.read_group_command(data)
        sink = self._connections.get(ConnectionId(command.connection_id))
        if sink is None:
            return  # §6.4 item 5: never ack commands for connections we don't host
        if command.action is wire.GroupAction.ADD:
            await self._add_local(sink, command.group)
        else:
            await self._remove_local(sink.connection_id, command.group)
        await self._publish_best_effort(
            self.channels.ack(command.server_name), wire.write_ack(command.id)
        )

    async def _on_ack(self, data: bytes) -> None:
        future = self._pending_acks.get(wire.read_ack(data))
        if future is not None and not future.done():
            future.set_result(None)

    async def _on_return(self, data: bytes) -> None:
        completion = wire.read_completion(data)
        protocol = self.protocols.get(completion.protocol)
        if protocol is None:
            raise BackplaneError(f"Completion in unknown protocol '{completion.protocol}'.")
        try:
            messages, _ = protocol.parse(completion.payload)
        except ProtocolError as exc:
            raise BackplaneError(f"Invalid completion payload: {exc}") from exc
        for message in messages:
            if isinstance(message, CompletionMessage):
                future = self._pending_results.get(message.invocation_id)
                if future is not None and not future.done():
                    future.set_result(message)

    async def _serve_client_result(
        self, sink: ConnectionSink | None, invocation: wire.RedisInvocation
    ) -> None:
        # We host the target: run the invocation through the sink (which owns the local
        # invocation id and timeout) and publish the answer, in one protocol, to the sender's
        # return channel. .NET forwards the client's own Completion bytes; the result is the same.
        assert invocation.invocation_id is not None and invocation.return_channel is not None
        protocol, parsed = self._parse_any(invocation.payloads)
        if protocol is None:
            return
        invocation_id = invocation.invocation_id
        completion: CompletionMessage
        if sink is None or parsed is None:
            completion = CompletionMessage.with_error(invocation_id, "Connection disconnected.")
        else:
            try:
                result = await sink.invoke_client(
                    parsed.target, list(parsed.arguments), self.client_result_timeout
                )
                completion = CompletionMessage.with_result(invocation_id, result)
            except HubError as exc:
                completion = CompletionMessage.with_error(invocation_id, str(exc))
            except Exception:
                logger.exception("%s client result", EVENT_HANDLER_FAILED)
                completion = CompletionMessage.with_error(invocation_id, "Invocation failed.")
        await self._publish_best_effort(
            invocation.return_channel,
            wire.write_completion(protocol.name, protocol.write(completion)),
        )

    def _parse_any(
        self, payloads: Mapping[str, bytes]
    ) -> tuple[HubProtocol | None, InvocationMessage | None]:
        for name, data in payloads.items():
            protocol = self.protocols.get(name)
            if protocol is None:
                continue
            try:
                messages, _ = protocol.parse(data)
            except ProtocolError:
                self._bad_payloads += 1
                continue
            for message in messages:
                if isinstance(message, InvocationMessage):
                    return protocol, message
            return protocol, None
        return None, None

    # --- canary --------------------------------------------------------------------------

    async def _on_canary(self, data: bytes) -> None:
        future = self._canary_waiters.get(wire.read_canary(data))
        if future is not None and not future.done():
            future.set_result(None)

    async def _probe(self) -> bool:
        self._canary_seq += 1
        seq = self._canary_seq
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._canary_waiters[seq] = future
        try:
            try:
                receivers = await self._publish_counted(
                    self.channels.canary(self.server_name), wire.write_canary(seq)
                )
            except BackplaneError:
                return False
            if receivers < 1:
                return False  # Redis no longer has us subscribed: deaf, no need to wait
            try:
                async with asyncio.timeout(self.canary_timeout):
                    await future
            except TimeoutError:
                return False
            return True
        finally:
            self._canary_waiters.pop(seq, None)

    async def check_canary(self) -> bool:
        """Publish a probe to our own canary channel and expect it back.

        A subscription that is connected but receives nothing (anchors.md §3 #12, #15) is
        repaired: the backend tears the subscription connection down and subscribes every
        channel again, then a second probe decides the health. Skipped (returns False) while
        the backend is reconnecting anyway.

        Returns:
            True when the subscription delivers (possibly after a repair).
        """
        if not self._backend_ready():
            return False
        if await self._probe():
            self._canary_ok = True
            return True
        if not self._backend_ready() or not self._last_publish_ok:
            return False  # the bus is down: the reconnect loop owns this case
        self._canary_failures += 1
        self._canary_ok = False
        logger.warning("%s server=%s", EVENT_CANARY_FAILED, self.server_name)
        await self._repair()
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
