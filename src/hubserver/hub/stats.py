"""The counters of one hub handler, exported by ``/metrics`` (docs/metrics.md)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["HubStats"]


@dataclass(slots=True)
class HubStats:
    """Counters of one handler (exported by ``/metrics``)."""

    connections_total: int = 0
    """Connections that completed the handshake and ``on_connected``."""
    slow_consumer_aborts: int = 0
    """Connections aborted because their outgoing buffer exceeded ``max_outgoing_buffer``."""
    inbound_budget_closes: int = 0
    """Connections closed for sending over their inbound message budget (flooding)."""
    messages_received: int = 0
    """Hub messages parsed from clients (pings included)."""
    messages_sent: int = 0
    """Hub messages written to clients (invocations, completions, stream items, broadcasts;
    not keep-alive pings or the handshake response)."""
