"""hubserver: a SignalR-compatible real-time hub engine.

The public surface (pinned by ``tests/test_exports.py``)::

    from hubserver import Hub, HubServer, map_hub

    class ChatHub(Hub):
        async def send_message(self, text: str) -> None:
            await self.clients.all.send("ReceiveMessage", self.context.user_id, text)

    chat = map_hub("/hubs/chat", ChatHub)
    server = HubServer([chat.endpoint], asgi_app=None, port=8080)
"""

from typing import TYPE_CHECKING as _TYPE_CHECKING

from hubserver.app import MappedHub, map_hub
from hubserver.connections.context import ConnectionContext, HttpRequestInfo, Principal
from hubserver.connections.endpoint import AuthHook, ConnectionEndpoint
from hubserver.errors import (
    AuthenticationFailed,
    BackplaneError,
    HandshakeError,
    HubError,
    HubServerError,
    MessageTooLargeError,
    ProtocolError,
    TransportError,
)
from hubserver.hub import (
    ClientProxy,
    DefaultHubActivator,
    GroupManager,
    Hub,
    HubActivator,
    HubCallerClients,
    HubCallerContext,
    HubClients,
    HubConnection,
    HubConnectionHandler,
    HubContext,
    HubFilter,
    HubInvocationContext,
    HubLifetimeContext,
    HubStats,
    SingleClientProxy,
)
from hubserver.lifetime.base import ConnectionSink, HubLifetimeManager
from hubserver.lifetime.memory import InMemoryLifetimeManager

if _TYPE_CHECKING:
    from hubserver.lifetime.redis import RedisLifetimeManager, RedisPublisher
from hubserver.options import ConnectionOptions, HubOptions
from hubserver.protocol.base import HubProtocol, TransferFormat
from hubserver.protocol.json_protocol import JsonHubProtocol
from hubserver.protocol.messagepack_protocol import MessagePackHubProtocol
from hubserver.protocol.registry import ALL_PROTOCOLS, get_protocol
from hubserver.protocol.serialized import SerializedMessage
from hubserver.server import HubServer
from hubserver.transports.base import TransportType
from hubserver.types import ConnectionId, GroupName, UserId

__all__ = [
    "ALL_PROTOCOLS",
    "AuthHook",
    "AuthenticationFailed",
    "BackplaneError",
    "ClientProxy",
    "ConnectionContext",
    "ConnectionEndpoint",
    "ConnectionId",
    "ConnectionOptions",
    "ConnectionSink",
    "DefaultHubActivator",
    "GroupManager",
    "GroupName",
    "HandshakeError",
    "HttpRequestInfo",
    "Hub",
    "HubActivator",
    "HubCallerClients",
    "HubCallerContext",
    "HubClients",
    "HubConnection",
    "HubConnectionHandler",
    "HubContext",
    "HubError",
    "HubFilter",
    "HubInvocationContext",
    "HubLifetimeContext",
    "HubLifetimeManager",
    "HubOptions",
    "HubProtocol",
    "HubServer",
    "HubServerError",
    "HubStats",
    "InMemoryLifetimeManager",
    "JsonHubProtocol",
    "MappedHub",
    "MessagePackHubProtocol",
    "MessageTooLargeError",
    "Principal",
    "ProtocolError",
    "RedisLifetimeManager",
    "RedisPublisher",
    "SerializedMessage",
    "SingleClientProxy",
    "TransferFormat",
    "TransportError",
    "TransportType",
    "UserId",
    "get_protocol",
    "map_hub",
]


_LAZY_EXPORTS = ("RedisLifetimeManager", "RedisPublisher")
"""Exported names resolved by :func:`__getattr__` on first access."""


def __getattr__(name: str) -> object:
    # The Redis backplane is imported on first use: a single-process server never loads the
    # redis client (~20 MB of RSS per process).
    if name in _LAZY_EXPORTS:
        from hubserver.lifetime import redis as _redis

        return getattr(_redis, name)
    raise AttributeError(f"module 'hubserver' has no attribute {name!r}")
