"""Composition: a hub class + a lifetime manager + a connection endpoint (``MapHub<THub>``).

:func:`map_hub` wires the hub layer (:class:`HubConnectionHandler`) under the connection
layer (:class:`ConnectionEndpoint`). Serve the result with
:class:`hubserver.server.HubServer` (``HubServer([mapped.endpoint], asgi_app)``) and send from
anywhere through ``mapped.hub_context``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from hubserver.connections.endpoint import AuthHook, ConnectionEndpoint
from hubserver.hub.activator import HubActivator
from hubserver.hub.filters import AnyHubFilter
from hubserver.hub.handler import HubConnectionHandler
from hubserver.hub.handover import DEFAULT_RESUME_TIMEOUT, HandoverService
from hubserver.hub.hub import Hub, HubContext
from hubserver.lifetime.base import HubLifetimeManager
from hubserver.lifetime.memory import InMemoryLifetimeManager
from hubserver.options import ConnectionOptions, HubOptions

__all__ = ["MappedHub", "map_hub"]

H = TypeVar("H", bound=Hub)


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
    hub_cls: type[H],
    *,
    lifetime: HubLifetimeManager | None = None,
    hub_options: HubOptions | None = None,
    connection_options: ConnectionOptions | None = None,
    authenticate: AuthHook | None = None,
    filters: Sequence[AnyHubFilter] = (),
    activator: HubActivator[H] | None = None,
    resume_timeout: float = DEFAULT_RESUME_TIMEOUT,
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
        filters: Hub filters wrapping every invocation, connect and disconnect
            (:mod:`hubserver.hub.filters`; docs/spec/hub-protocol.md §3.9), first = outermost.
            Filters meant for every hub of an application go first in each hub's list
            (ASP.NET runs global filters before per-hub ones):
            ``filters=[*app_filters, *chat_filters]``.
        activator: Creates (and releases) the hub instance of each call, e.g. to pass the
            application's services to ``__init__`` (:mod:`hubserver.hub.activator`);
            ``hub_cls()`` when None.
        resume_timeout: Seconds a stateful reconnect for a connection of another server may
            take to be handed over here before the client gets 404.

    Returns:
        The :class:`MappedHub` (endpoint, handler, lifetime, hub context).
    """
    manager = lifetime if lifetime is not None else InMemoryLifetimeManager()
    handler = HubConnectionHandler(
        hub_cls, manager, hub_options or HubOptions(), filters=filters, activator=activator
    )
    endpoint = ConnectionEndpoint(
        path, handler.create_application, connection_options or ConnectionOptions(), authenticate
    )
    if manager.supports_resume:
        # Stateful connections resume on any server of the backplane
        # (docs/spec/stateful-reconnect.md §5.4).
        endpoint.resume = HandoverService(handler, endpoint.manager, resume_timeout).resume
    return MappedHub(
        endpoint=endpoint, handler=handler, lifetime=manager, hub_context=handler.hub_context
    )
