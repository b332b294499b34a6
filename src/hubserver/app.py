"""Composition: a hub class + a lifetime manager + a connection endpoint (``MapHub<THub>``).

:func:`map_hub` wires the hub layer (:class:`HubConnectionHandler`) under the connection
layer (:class:`ConnectionEndpoint`). Serve the result with
:class:`hubserver.server.HubServer` (``HubServer([mapped.endpoint], asgi_app)``) and send from
anywhere through ``mapped.hub_context``.
"""

from __future__ import annotations

from dataclasses import dataclass

from hubserver.connections.endpoint import AuthHook, ConnectionEndpoint
from hubserver.hub.handler import HubConnectionHandler
from hubserver.hub.hub import Hub, HubContext
from hubserver.lifetime.base import HubLifetimeManager
from hubserver.lifetime.memory import InMemoryLifetimeManager
from hubserver.options import ConnectionOptions, HubOptions

__all__ = ["MappedHub", "map_hub"]


@dataclass(frozen=True, slots=True)
class MappedHub:
    """A hub mounted at a path.

    Attributes:
        endpoint: The connection endpoint to hand to ``HubServer``.
        handler: Creates and tracks the hub connections.
        lifetime: The lifetime manager (backplane) the connections are registered with.
        hub_context: Send to clients from outside the hub.
    """

    endpoint: ConnectionEndpoint
    handler: HubConnectionHandler
    lifetime: HubLifetimeManager
    hub_context: HubContext

    async def start(self) -> None:
        """Start the lifetime manager's background work (backplane subscriptions)."""
        await self.lifetime.start()

    async def stop(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Close every connection with ``allowReconnect: true``, wait (bounded) for their
        disconnect hooks, then stop the endpoint and the lifetime manager."""
        await self.handler.shutdown(timeout)
        await self.endpoint.stop()
        await self.lifetime.stop()


def map_hub(
    path: str,
    hub_cls: type[Hub],
    *,
    lifetime: HubLifetimeManager | None = None,
    hub_options: HubOptions | None = None,
    connection_options: ConnectionOptions | None = None,
    authenticate: AuthHook | None = None,
) -> MappedHub:
    """Mount ``hub_cls`` at ``path``.

    Args:
        path: Base URL path, e.g. ``/hubs/analytics``; requests match it ignoring case,
            as ASP.NET routing does.
        hub_cls: The :class:`Hub` subclass.
        lifetime: Backplane; an :class:`InMemoryLifetimeManager` by default.
        hub_options: Hub-layer options.
        connection_options: Transport/negotiate options.
        authenticate: Called on negotiate and on every transport request; returns the
            principal or raises :class:`~hubserver.errors.AuthenticationFailed`.

    Returns:
        The :class:`MappedHub` (endpoint, handler, lifetime, hub context).
    """
    manager = lifetime if lifetime is not None else InMemoryLifetimeManager()
    handler = HubConnectionHandler(hub_cls, manager, hub_options or HubOptions())
    endpoint = ConnectionEndpoint(
        path, handler.create_application, connection_options or ConnectionOptions(), authenticate
    )
    return MappedHub(
        endpoint=endpoint, handler=handler, lifetime=manager, hub_context=handler.hub_context
    )
