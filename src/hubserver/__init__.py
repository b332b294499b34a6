"""hubserver: a SignalR-compatible real-time hub engine."""
