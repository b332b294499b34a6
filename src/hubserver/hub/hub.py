"""The hub programming model: :class:`Hub`, its caller context, client proxies and groups.

A hub is a class whose public ``async def`` methods clients can invoke (see
``hub.dispatcher`` for the naming and binding rules). A fresh hub instance serves each
invocation, as in ASP.NET Core, so state that must outlive a call belongs in
``self.context.items`` or elsewhere.

:class:`HubContext` offers the same ``clients``/``groups`` surface to code outside a hub
(REST handlers, background tasks).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from hubserver.connections.context import HttpRequestInfo, Principal
from hubserver.lifetime.base import HubLifetimeManager
from hubserver.options import HubOptions
from hubserver.transports.base import TransportType
from hubserver.types import ConnectionId, GroupName, UserId

__all__ = [
    "ClientProxy",
    "GroupManager",
    "Hub",
    "HubCallerClients",
    "HubCallerContext",
    "HubClients",
    "HubContext",
    "SingleClientProxy",
]

DEFAULT_CLIENT_RESULT_TIMEOUT = 30.0


class CallerConnection(Protocol):
    """What a hub's caller context and caller proxy need from the calling connection (a
    :class:`~hubserver.hub.connection.HubConnection`; declared here so this module does not
    depend on it)."""

    @property
    def options(self) -> HubOptions:
        """The hub's options (``client_result_timeout``)."""
        ...

    @property
    def connection_id(self) -> ConnectionId:
        """Public connection id."""
        ...

    @property
    def user_id(self) -> UserId | None:
        """``principal.user_id`` or None."""
        ...

    @property
    def principal(self) -> Principal | None:
        """The authenticated user, if any."""
        ...

    @property
    def items(self) -> dict[str, Any]:
        """Per-connection application state."""
        ...

    @property
    def request(self) -> HttpRequestInfo:
        """The HTTP request that opened the connection."""
        ...

    @property
    def transport(self) -> TransportType:
        """Transport in use."""
        ...

    @property
    def protocol_name(self) -> str:
        """Negotiated hub protocol name."""
        ...

    def send_invocation(self, method: str, args: Sequence[Any]) -> None:
        """Send an Invocation without id to this connection."""
        ...

    async def invoke_client(self, target: str, args: Sequence[Any], timeout: float) -> Any:  # noqa: ASYNC109
        """Client result: invoke ``target`` on the client and await its answer."""
        ...

    def close(self, error: str | None = None, allow_reconnect: bool = False) -> None:
        """Close the connection."""
        ...


class ClientProxy(Protocol):
    """A set of clients that can be sent a method call."""

    async def send(self, method: str, *args: Any) -> None:
        """Invoke ``method`` on every targeted client; no reply is awaited."""
        ...


class SingleClientProxy(ClientProxy, Protocol):
    """One client: can also be asked for a result (client results, .NET 7+)."""

    async def invoke(self, method: str, *args: Any, timeout: float | None = None) -> Any:  # noqa: ASYNC109
        """Invoke ``method`` on the client and return its result.

        Raises:
            HubError: the client answered with an error, did not answer within ``timeout``,
                or disconnected first.
        """
        ...


class _AllProxy:
    __slots__ = ("_exclude", "_lifetime")

    def __init__(self, lifetime: HubLifetimeManager, exclude: Sequence[ConnectionId] = ()) -> None:
        self._lifetime = lifetime
        self._exclude = exclude

    async def send(self, method: str, *args: Any) -> None:
        await self._lifetime.send_all(method, args, self._exclude)


class _ConnectionsProxy:
    __slots__ = ("_ids", "_lifetime")

    def __init__(self, lifetime: HubLifetimeManager, ids: Sequence[ConnectionId]) -> None:
        self._lifetime = lifetime
        self._ids = ids

    async def send(self, method: str, *args: Any) -> None:
        await self._lifetime.send_connections(self._ids, method, args)


class _SingleConnectionProxy:
    __slots__ = ("_id", "_lifetime", "_timeout")

    def __init__(self, lifetime: HubLifetimeManager, cid: ConnectionId, timeout: float) -> None:
        self._lifetime = lifetime
        self._id = cid
        self._timeout = timeout

    async def send(self, method: str, *args: Any) -> None:
        await self._lifetime.send_connections((self._id,), method, args)

    async def invoke(self, method: str, *args: Any, timeout: float | None = None) -> Any:  # noqa: ASYNC109
        return await self._lifetime.invoke_connection(
            self._id, method, args, self._timeout if timeout is None else timeout
        )


class _GroupsProxy:
    __slots__ = ("_exclude", "_groups", "_lifetime")

    def __init__(
        self,
        lifetime: HubLifetimeManager,
        groups: Sequence[GroupName],
        exclude: Sequence[ConnectionId] = (),
    ) -> None:
        self._lifetime = lifetime
        self._groups = groups
        self._exclude = exclude

    async def send(self, method: str, *args: Any) -> None:
        await self._lifetime.send_groups(self._groups, method, args, self._exclude)


class _UsersProxy:
    __slots__ = ("_lifetime", "_users")

    def __init__(self, lifetime: HubLifetimeManager, users: Sequence[UserId]) -> None:
        self._lifetime = lifetime
        self._users = users

    async def send(self, method: str, *args: Any) -> None:
        await self._lifetime.send_users(self._users, method, args)


class _CallerProxy:
    """The calling connection: writes straight to it, bypassing the lifetime manager
    (a one-to-one send needs no routing and no serialization cache)."""

    __slots__ = ("_connection",)

    def __init__(self, connection: CallerConnection) -> None:
        self._connection = connection

    async def send(self, method: str, *args: Any) -> None:
        self._connection.send_invocation(method, args)

    async def invoke(self, method: str, *args: Any, timeout: float | None = None) -> Any:  # noqa: ASYNC109
        conn = self._connection
        return await conn.invoke_client(
            method, args, conn.options.client_result_timeout if timeout is None else timeout
        )


class HubClients:
    """Targets for sending from anywhere (``IHubClients``).

    Args:
        lifetime: The hub's lifetime manager.
        client_result_timeout: Default timeout of :meth:`SingleClientProxy.invoke`.
    """

    __slots__ = ("_all", "_lifetime", "_timeout")

    def __init__(
        self,
        lifetime: HubLifetimeManager,
        client_result_timeout: float = DEFAULT_CLIENT_RESULT_TIMEOUT,
    ) -> None:
        self._lifetime = lifetime
        self._timeout = client_result_timeout
        self._all = _AllProxy(lifetime)

    @property
    def all(self) -> ClientProxy:
        """Every connection."""
        return self._all

    def all_except(self, connection_ids: Iterable[str]) -> ClientProxy:
        """Every connection except the given ones."""
        return _AllProxy(self._lifetime, _ids(connection_ids))

    def client(self, connection_id: str) -> SingleClientProxy:
        """One connection (which may live on another server with a backplane)."""
        return _SingleConnectionProxy(self._lifetime, ConnectionId(connection_id), self._timeout)

    def clients(self, connection_ids: Iterable[str]) -> ClientProxy:
        """Several connections."""
        return _ConnectionsProxy(self._lifetime, _ids(connection_ids))

    def group(self, group: str) -> ClientProxy:
        """Every member of a group."""
        return _GroupsProxy(self._lifetime, (GroupName(group),))

    def groups(self, groups: Iterable[str]) -> ClientProxy:
        """Every member of each group."""
        return _GroupsProxy(self._lifetime, tuple(GroupName(g) for g in groups))

    def group_except(self, group: str, connection_ids: Iterable[str]) -> ClientProxy:
        """Members of a group except the given connections."""
        return _GroupsProxy(self._lifetime, (GroupName(group),), _ids(connection_ids))

    def user(self, user_id: str) -> ClientProxy:
        """Every connection of a user."""
        return _UsersProxy(self._lifetime, (UserId(user_id),))

    def users(self, user_ids: Iterable[str]) -> ClientProxy:
        """Every connection of each user."""
        return _UsersProxy(self._lifetime, tuple(UserId(u) for u in user_ids))


class HubCallerClients(HubClients):
    """Targets available inside a hub method (``IHubCallerClients``)."""

    __slots__ = ("_caller", "_connection_id", "_others")

    def __init__(self, lifetime: HubLifetimeManager, connection: CallerConnection) -> None:
        super().__init__(lifetime, connection.options.client_result_timeout)
        self._connection_id = connection.connection_id
        self._caller = _CallerProxy(connection)
        self._others = _AllProxy(lifetime, (connection.connection_id,))

    @property
    def caller(self) -> SingleClientProxy:
        """The connection that invoked the current method."""
        return self._caller

    @property
    def others(self) -> ClientProxy:
        """Every connection except the caller."""
        return self._others

    def others_in_group(self, group: str) -> ClientProxy:
        """Members of a group except the caller."""
        return _GroupsProxy(self._lifetime, (GroupName(group),), (self._connection_id,))


class GroupManager:
    """Adds and removes connections to/from groups (``IGroupManager``)."""

    __slots__ = ("_lifetime",)

    def __init__(self, lifetime: HubLifetimeManager) -> None:
        self._lifetime = lifetime

    async def add(self, connection_id: str, group: str) -> None:
        """Add a connection to a group (created on first member)."""
        await self._lifetime.add_to_group(ConnectionId(connection_id), GroupName(group))

    async def remove(self, connection_id: str, group: str) -> None:
        """Remove a connection from a group."""
        await self._lifetime.remove_from_group(ConnectionId(connection_id), GroupName(group))


class HubCallerContext:
    """What a hub method knows about its caller (``HubCallerContext``).

    Attributes:
        connection_id: Public id of the calling connection.
        principal: Authenticated user, if the endpoint has an authentication hook.
        user_id: ``principal.user_id`` or None.
        items: Per-connection dictionary that survives across invocations.
        request: The HTTP request that opened the connection.
        transport: The transport in use.
        protocol: Hub protocol name (``"json"`` / ``"messagepack"``).
    """

    __slots__ = ("_connection", "connection_id", "items", "protocol", "transport", "user_id")

    def __init__(self, connection: CallerConnection) -> None:
        self._connection = connection
        self.connection_id: ConnectionId = connection.connection_id
        self.user_id: UserId | None = connection.user_id
        self.items: dict[str, Any] = connection.items
        self.transport: TransportType = connection.transport
        self.protocol: str = connection.protocol_name

    @property
    def principal(self) -> Principal | None:
        """The current principal (the connection layer swaps in refreshed tokens)."""
        return self._connection.principal

    @property
    def request(self) -> HttpRequestInfo:
        """The latest HTTP request of the connection (a reconnect replaces it)."""
        return self._connection.request

    def abort(self) -> None:
        """Close the connection: the client gets ``{"type":7}`` (no reconnect) and the
        transport ends (docs/spec/hub-protocol.md §3.7, ``Context.Abort()``)."""
        self._connection.close()


class Hub:
    """Base class of hubs.

    Subclass it and define ``async def`` methods; each becomes invocable by clients. A method
    that is an async generator is a server-to-client stream; a parameter annotated
    ``AsyncIterator[T]`` receives a client-to-server upload stream.

    Attributes:
        context: The caller's :class:`HubCallerContext`.
        clients: :class:`HubCallerClients` (``all``, ``caller``, ``others``, ``group`` ...).
        groups: :class:`GroupManager`.
    """

    context: HubCallerContext
    clients: HubCallerClients
    groups: GroupManager

    async def on_connected(self) -> None:
        """Called once the connection completed its handshake. Raising closes it with an
        error Close message (no ``allowReconnect``)."""

    async def on_disconnected(self, exception: BaseException | None) -> None:
        """Called once when the connection ends; ``exception`` is None for a clean close."""


class HubContext:
    """Send to clients from outside a hub (``IHubContext<THub>``).

    Args:
        lifetime: The lifetime manager the hub's connections are registered with.
        client_result_timeout: Default timeout for ``clients.client(id).invoke``.
    """

    __slots__ = ("clients", "groups", "lifetime")

    def __init__(
        self,
        lifetime: HubLifetimeManager,
        client_result_timeout: float = DEFAULT_CLIENT_RESULT_TIMEOUT,
    ) -> None:
        self.lifetime = lifetime
        self.clients = HubClients(lifetime, client_result_timeout)
        self.groups = GroupManager(lifetime)


def _ids(connection_ids: Iterable[str]) -> tuple[ConnectionId, ...]:
    if isinstance(connection_ids, str):
        # A bare string is a common slip; treat it as one id rather than its characters.
        return (ConnectionId(connection_ids),)
    return tuple(ConnectionId(c) for c in connection_ids)
