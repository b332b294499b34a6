"""What every transport offers the layers above, and what they offer it.

The seam between the connection layer (``hubserver.connections``) and the hub layer
(``hubserver.hub``) is deliberately callback-based, not task-and-queue based: a broadcast to
10,000 WebSocket connections must not cost 10,000 task wake-ups (docs/adr/0001).
"""

from __future__ import annotations

import enum
from typing import Protocol


class TransportType(enum.IntFlag):
    """Bit flags as in the JS client (``HttpTransportType``)."""

    NONE = 0
    WEB_SOCKETS = 1
    SERVER_SENT_EVENTS = 2
    LONG_POLLING = 4
    ALL = 7

    @property
    def wire_name(self) -> str:
        """Name used in negotiate ``availableTransports``."""
        return _WIRE_NAMES[self]


_WIRE_NAMES = {
    TransportType.WEB_SOCKETS: "WebSockets",
    TransportType.SERVER_SENT_EVENTS: "ServerSentEvents",
    TransportType.LONG_POLLING: "LongPolling",
}


class ConnectionApplication(Protocol):
    """The per-connection object of the layer above (the hub layer's ``HubConnection``).

    The connection layer calls these from the event loop; none may block. ``data_received``
    gets raw bytes exactly as the client sent them (any split; the application buffers).
    """

    def data_received(self, data: bytes) -> None:
        """Bytes from the client (WebSocket message payload or HTTP POST body)."""
        ...

    def transport_paused(self) -> None:
        """Stateful reconnect only: the transport dropped ungracefully; the connection lives
        on for the reconnect window and outgoing data must be buffered, not written."""
        ...

    def transport_resumed(self) -> None:
        """Stateful reconnect only: a new transport took over the same connection token."""
        ...

    def connection_lost(self, exc: BaseException | None) -> None:
        """Final: the connection is disposed (client closed, DELETE, timeout, server close)."""
        ...
