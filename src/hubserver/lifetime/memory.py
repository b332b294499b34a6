"""Single-process lifetime manager (cf. DefaultHubLifetimeManager.cs).

Connections, groups and users are plain dictionaries. Every fan-out builds the Invocation once
and hands the *same* :class:`SerializedMessage` to every sink, so a broadcast to N connections
costs one serialization per protocol in use (architecture.md convention 3).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

from hubserver.errors import HubError
from hubserver.lifetime.base import ConnectionSink, HubLifetimeManager
from hubserver.protocol.messages import InvocationMessage
from hubserver.protocol.serialized import SerializedMessage
from hubserver.types import ConnectionId, GroupName, UserId

__all__ = ["InMemoryLifetimeManager"]

_log = logging.getLogger("hubserver.lifetime.memory")


class InMemoryLifetimeManager(HubLifetimeManager):
    """Routes messages to the connections of this process only.

    Sends to unknown connections, empty groups or users without connections are no-ops. A sink
    that raises does not stop delivery to the others (sinks must not raise, but one bug must not
    silence a whole group).
    """

    __slots__ = ("_connections", "_groups", "_memberships", "_users")

    def __init__(self) -> None:
        self._connections: dict[ConnectionId, ConnectionSink] = {}
        self._groups: dict[GroupName, set[ConnectionId]] = {}
        # Reverse index so a disconnect leaves its groups in O(groups of the connection).
        self._memberships: dict[ConnectionId, set[GroupName]] = {}
        self._users: dict[UserId, set[ConnectionId]] = {}

    # -- lifecycle ---------------------------------------------------------------------------

    async def on_connected(self, connection: ConnectionSink) -> None:
        """Register a connection (and its user) for routing."""
        cid = connection.connection_id
        self._connections[cid] = connection
        user = connection.user_id
        if user is not None:
            self._users.setdefault(user, set()).add(cid)

    async def on_disconnected(self, connection: ConnectionSink) -> None:
        """Forget a connection and remove it from every group it joined."""
        cid = connection.connection_id
        if self._connections.get(cid) is connection:
            del self._connections[cid]
        for group in self._memberships.pop(cid, ()):
            members = self._groups.get(group)
            if members is not None:
                members.discard(cid)
                if not members:
                    del self._groups[group]
        user = connection.user_id
        if user is not None:
            conns = self._users.get(user)
            if conns is not None:
                conns.discard(cid)
                if not conns:
                    del self._users[user]

    # -- groups ------------------------------------------------------------------------------

    async def add_to_group(self, connection_id: ConnectionId, group: GroupName) -> None:
        """Add a local connection to ``group``; unknown connections are ignored (as .NET)."""
        if connection_id not in self._connections:
            return
        self._groups.setdefault(group, set()).add(connection_id)
        self._memberships.setdefault(connection_id, set()).add(group)

    async def remove_from_group(self, connection_id: ConnectionId, group: GroupName) -> None:
        """Remove a connection from ``group`` (no-op when it is not a member)."""
        members = self._groups.get(group)
        if members is not None:
            members.discard(connection_id)
            if not members:
                del self._groups[group]
        groups = self._memberships.get(connection_id)
        if groups is not None:
            groups.discard(group)
            if not groups:
                del self._memberships[connection_id]

    # -- sends -------------------------------------------------------------------------------

    async def send_all(
        self, method: str, args: Sequence[Any], exclude: Iterable[ConnectionId] = ()
    ) -> None:
        """Send to every connection except ``exclude``."""
        message = _invocation(method, args)
        excluded = _as_set(exclude)
        connections = self._connections
        if excluded:
            _deliver([s for cid, s in connections.items() if cid not in excluded], message)
        else:
            _deliver(list(connections.values()), message)

    async def send_connections(
        self, connection_ids: Iterable[ConnectionId], method: str, args: Sequence[Any]
    ) -> None:
        """Send to the given connections; unknown ids are skipped."""
        message: SerializedMessage | None = None
        for cid in connection_ids:
            sink = self._connections.get(cid)
            if sink is None:
                continue
            if message is None:
                message = _invocation(method, args)
            _write(sink, message)

    async def send_groups(
        self,
        groups: Iterable[GroupName],
        method: str,
        args: Sequence[Any],
        exclude: Iterable[ConnectionId] = (),
    ) -> None:
        """Send to the members of each group (once per group a connection is targeted by)."""
        message: SerializedMessage | None = None
        excluded = _as_set(exclude)
        connections = self._connections
        for group in groups:
            members = self._groups.get(group)
            if not members:
                continue
            if message is None:
                message = _invocation(method, args)
            # A list, not the live set: a sink failing may disconnect synchronously and
            # mutate the set.
            _deliver(
                [
                    sink
                    for cid in members
                    if not (excluded and cid in excluded)
                    and (sink := connections.get(cid)) is not None
                ],
                message,
            )

    async def send_users(
        self, user_ids: Iterable[UserId], method: str, args: Sequence[Any]
    ) -> None:
        """Send to every connection of each user."""
        message: SerializedMessage | None = None
        connections = self._connections
        for user in user_ids:
            conns = self._users.get(user)
            if not conns:
                continue
            if message is None:
                message = _invocation(method, args)
            for cid in tuple(conns):
                sink = connections.get(cid)
                if sink is not None:
                    _write(sink, message)

    async def invoke_connection(
        self,
        connection_id: ConnectionId,
        method: str,
        args: Sequence[Any],
        timeout: float,  # noqa: ASYNC109
    ) -> Any:
        """Client result from a local connection.

        Raises:
            HubError: ``Connection '<id>' does not exist.``, the client's error, or a timeout.
        """
        sink = self._connections.get(connection_id)
        if sink is None:
            raise HubError(f"Connection '{connection_id}' does not exist.")
        return await sink.invoke_client(method, args, timeout)

    # -- introspection -----------------------------------------------------------------------

    def local_connection_count(self) -> int:
        """Number of connections registered in this process."""
        return len(self._connections)

    def group_members(self, group: GroupName) -> frozenset[ConnectionId]:
        """Connection ids currently in ``group`` (for tests and diagnostics)."""
        return frozenset(self._groups.get(group, ()))


def _invocation(method: str, args: Sequence[Any]) -> SerializedMessage:
    # Ordinary server->client calls never carry an invocationId (signalr-protocol.md §3.4:
    # an id would make the client treat it as a client-result request).
    return SerializedMessage(InvocationMessage(target=method, arguments=tuple(args)))


def _as_set(ids: Iterable[ConnectionId]) -> frozenset[ConnectionId] | set[ConnectionId]:
    if isinstance(ids, set | frozenset):
        return ids
    return frozenset(ids)


def _write(sink: ConnectionSink, message: SerializedMessage) -> None:
    _deliver((sink,), message)


def _deliver(sinks: Iterable[ConnectionSink], message: SerializedMessage) -> None:
    # The fan-out loop of every broadcast: one method call per connection and nothing else
    # (a try block costs nothing in 3.11 until something raises).
    for sink in sinks:
        try:
            sink.write_serialized(message)
        except Exception:
            # A misbehaving sink must not stop the fan-out (ScaleoutHubLifetimeManagerTests:
            # "a write failing on one connection doesn't stop the group").
            _log.exception("hub.lifetime.write_failed connection_id=%s", sink.connection_id)
