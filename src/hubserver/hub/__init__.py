"""Layer 4b: hub semantics over one connection (handshake, dispatch, clients, groups)."""

from hubserver.hub.connection import HubConnection
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
    "GroupManager",
    "Hub",
    "HubCallerClients",
    "HubCallerContext",
    "HubClients",
    "HubConnection",
    "HubConnectionHandler",
    "HubContext",
    "HubStats",
    "SingleClientProxy",
]
