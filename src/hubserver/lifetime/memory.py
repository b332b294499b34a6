"""Single-process lifetime manager (cf. ASP.NET Core's DefaultHubLifetimeManager.cs).

Routes over the :class:`~hubserver.lifetime.index.LocalIndex` alone. Every fan-out builds the
Invocation once and hands the *same* :class:`SerializedMessage` to every sink, so a broadcast to
N connections costs one serialization per protocol in use (docs/spec/backplane.md §6.7).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from hubserver.errors import HubError
from hubserver.lifetime.base import ConnectionSink, HubLifetimeManager
from hubserver.lifetime.delivery import deliver, deliver_except, deliver_one
from hubserver.lifetime.index import LocalIndex
from hubserver.protocol import texts
from hubserver.protocol.messages import InvocationMessage
from hubserver.protocol.serialized import SerializedMessage
from hubserver.types import ConnectionId, GroupName, UserId

__all__ = ["InMemoryLifetimeManager"]


class InMemoryLifetimeManager(HubLifetimeManager):
    """Routes messages to the connections of this process only.

    Sends to unknown connections, empty groups or users without connections are no-ops. A sink
    that raises does not stop delivery to the others (sinks must not raise, but one bug must not
    silence a whole group).
    """

    __slots__ = ("_index",)

    def __init__(self) -> None:
        self._index = LocalIndex()

    # -- lifecycle ---------------------------------------------------------------------------

    async def on_connected(self, connection: ConnectionSink) -> None:
        """Register a connection (and its user) for routing."""
        self._index.add(connection)

    async def on_disconnected(self, connection: ConnectionSink) -> None:
        """Forget a connection and remove it from every group it joined."""
        self._index.remove(connection.connection_id)

    # -- groups ------------------------------------------------------------------------------

    async def add_to_group(self, connection_id: ConnectionId, group: GroupName) -> None:
        """Add a local connection to ``group``; unknown connections are ignored (as .NET)."""
        sink = self._index.connections.get(connection_id)
        if sink is not None:
            self._index.join(sink, group)

    async def remove_from_group(self, connection_id: ConnectionId, group: GroupName) -> None:
        """Remove a connection from ``group`` (no-op when it is not a member)."""
        self._index.leave(connection_id, group)

    # -- sends -------------------------------------------------------------------------------

    async def send_all(
        self, method: str, args: Sequence[Any], exclude: Iterable[ConnectionId] = ()
    ) -> None:
        """Send to every connection except ``exclude``."""
        deliver_except(self._index.connections, _invocation(method, args), _as_set(exclude))

    async def send_connections(
        self, connection_ids: Iterable[ConnectionId], method: str, args: Sequence[Any]
    ) -> None:
        """Send to the given connections; unknown ids are skipped."""
        message: SerializedMessage | None = None
        connections = self._index.connections
        for cid in connection_ids:
            sink = connections.get(cid)
            if sink is None:
                continue
            if message is None:
                message = _invocation(method, args)
            deliver_one(sink, message)

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
        index_groups = self._index.groups
        for group in groups:
            members = index_groups.get(group)
            if not members:
                continue
            if message is None:
                message = _invocation(method, args)
            deliver_except(members, message, excluded)

    async def send_users(
        self, user_ids: Iterable[UserId], method: str, args: Sequence[Any]
    ) -> None:
        """Send to every connection of each user."""
        message: SerializedMessage | None = None
        users = self._index.users
        for user in user_ids:
            conns = users.get(user)
            if not conns:
                continue
            if message is None:
                message = _invocation(method, args)
            deliver(list(conns.values()), message)

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
        sink = self._index.connections.get(connection_id)
        if sink is None:
            raise HubError(texts.connection_not_found(connection_id))
        return await sink.invoke_client(method, args, timeout)

    # -- introspection -----------------------------------------------------------------------

    def local_connection_count(self) -> int:
        """Number of connections registered in this process."""
        return len(self._index.connections)

    def group_members(self, group: GroupName) -> frozenset[ConnectionId]:
        """Connection ids currently in ``group`` (for tests and diagnostics)."""
        return frozenset(self._index.groups.get(group, ()))


def _invocation(method: str, args: Sequence[Any]) -> SerializedMessage:
    # Ordinary server->client calls never carry an invocationId: with one, the client would
    # treat the call as a client-result request and answer it (docs/spec/hub-protocol.md §3.4).
    return SerializedMessage(InvocationMessage(target=method, arguments=tuple(args)))


def _as_set(ids: Iterable[ConnectionId]) -> frozenset[ConnectionId] | set[ConnectionId]:
    if isinstance(ids, set | frozenset):
        return ids
    return frozenset(ids)
