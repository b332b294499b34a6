"""Tunable options with ASP.NET Core SignalR's defaults.

Cf. ``HubOptions`` and ``HttpConnectionDispatcherOptions``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from hubserver.connections.context import Principal
from hubserver.transports.base import TransportType


@dataclass(frozen=True, slots=True)
class HubOptions:
    """Hub-layer options (cf. ``HubOptions``)."""

    keep_alive_interval: float = 15.0
    """Send a Ping when nothing was sent for this long (not over long polling)."""
    client_timeout_interval: float = 30.0
    """Close with an error when nothing was received for this long (after the first Ping)."""
    handshake_timeout: float = 15.0
    maximum_receive_message_size: int | None = 32 * 1024
    """Largest incoming hub message in bytes; bigger -> error Close. None = unlimited."""
    detailed_errors: bool = False
    """Append exception type and text to error messages sent to clients."""
    stream_buffer_capacity: int = 10
    maximum_parallel_invocations_per_client: int = 1
    supported_protocols: tuple[str, ...] = ("json", "messagepack")
    stateful_reconnect_buffer_size: int = 100_000
    client_result_timeout: float = 30.0
    max_outgoing_buffer: int = 4 * 1024 * 1024
    """Slow-consumer policy: a connection whose unsent bytes exceed this is closed with an
    error Close (allowReconnect) instead of delaying anyone else (docs/adr/0002)."""
    max_receive_messages_per_second: float | None = 100.0
    """Inbound budget per connection (token bucket): messages per second a client may send
    on average. A connection over budget gets a Close with an error and no reconnect, so one
    flooding client cannot slow the others. None = unlimited."""
    max_receive_messages_burst: int = 200
    """Messages a client may send at once above the average rate (the bucket's size)."""
    max_receive_bytes_per_second: int | None = 1024 * 1024
    """Inbound bytes per second per connection (bucket size: one second's worth, at least
    one maximum-size message). None = unlimited."""


@dataclass(frozen=True, slots=True)
class ConnectionOptions:
    """Connection-layer options (cf. ``HttpConnectionDispatcherOptions``)."""

    transports: TransportType = TransportType.ALL
    allow_stateful_reconnects: bool = False
    disconnect_timeout: float = 15.0
    """Dispose negotiated/LP/stateful connections idle for this long."""
    long_poll_timeout: float = 90.0
    """A poll with nothing to send returns 200 empty after this long (client waits 100 s)."""
    allowed_origins: tuple[str, ...] = ()
    """CORS: origins allowed with credentials besides the server's own origin; ("*",) = any."""
    max_connections: int | None = None
    """Refuse negotiate/upgrade with 503 beyond this many live connections in this process."""
    tenant_of: Callable[[Principal], str | None] | None = None
    """Which tenant a principal belongs to (e.g. its organization); None for a principal,
    or no function, means not subject to ``max_tenant_connections``."""
    max_tenant_connections: int | None = None
    """Live connections of one tenant in this process, negotiated ones whose transport has
    not started included (they expire after ``disconnect_timeout`` as any other): beyond it
    negotiate/upgrade get 503 ``tenant_limit_text``. Set below ``max_connections`` so one
    tenant cannot take every slot."""
    tenant_limit_text: str = "Tenant connection limit reached ({limit})"
    """Body of the 503 refusing a tenant at its limit; ``{limit}`` is replaced."""
    application_max_buffer_size: int = 64 * 1024
    """Largest POST body accepted from SSE/LP clients in one request."""
    websocket_max_message_size: int = 1024 * 1024
    """Largest incoming WebSocket message (all fragments); bigger -> close 1009. The hub
    layer applies its own, smaller per-record limit (HubOptions.maximum_receive_message_size)."""
    websocket_close_timeout: float = 5.0
    """Seconds to wait for the client's Close frame after ours (.NET CloseTimeout)."""
