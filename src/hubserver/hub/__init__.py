"""Layer 4b: hub semantics over one connection (handshake, dispatch, clients, groups)."""

from hubserver.hub.activator import DefaultHubActivator, HubActivator
from hubserver.hub.connection import HubConnection
from hubserver.hub.filters import HubFilter, HubInvocationContext, HubLifetimeContext
from hubserver.hub.handler import HubConnectionHandler, HubStats
from hubserver.hub.hub import (
    ClientProxy,
    GroupManager,
    Hub,
    HubCallerClients,
    HubCallerContext,
    HubClients,
    HubContext,
    SingleClientProxy,
)

__all__ = [
    "ClientProxy",
    "DefaultHubActivator",
    "GroupManager",
    "Hub",
    "HubActivator",
    "HubCallerClients",
    "HubCallerContext",
    "HubClients",
    "HubConnection",
    "HubConnectionHandler",
    "HubContext",
    "HubFilter",
    "HubInvocationContext",
    "HubLifetimeContext",
    "HubStats",
    "SingleClientProxy",
]
