"""The hub protocols this server speaks, by handshake name (docs/spec/handshake.md §3.2,
docs/spec/messagepack.md §4).

One shared instance per protocol: codecs are stateless, and :class:`SerializedMessage` caches
bytes by protocol *name*, so every connection of a process must agree on the instances.
"""

from __future__ import annotations

from hubserver.protocol.base import HubProtocol
from hubserver.protocol.json_protocol import JsonHubProtocol
from hubserver.protocol.messagepack_protocol import MessagePackHubProtocol

__all__ = ["ALL_PROTOCOLS", "JSON", "MESSAGEPACK", "get_protocol"]

JSON: HubProtocol = JsonHubProtocol()
"""The shared ``json`` codec."""

MESSAGEPACK: HubProtocol = MessagePackHubProtocol()
"""The shared ``messagepack`` codec."""

ALL_PROTOCOLS: dict[str, HubProtocol] = {JSON.name: JSON, MESSAGEPACK.name: MESSAGEPACK}
"""Every supported protocol by name. Treat as read-only."""


def get_protocol(name: str) -> HubProtocol | None:
    """The protocol called ``name`` in a handshake, or None when unsupported.

    Names match case-insensitively, as in .NET's DefaultHubProtocolResolver
    (``StringComparer.OrdinalIgnoreCase``).
    """
    protocol = ALL_PROTOCOLS.get(name)
    if protocol is None:
        protocol = ALL_PROTOCOLS.get(name.lower())
    return protocol
