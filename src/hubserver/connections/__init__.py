"""Layer 3: SignalR connection semantics below hubs (the Http.Connections equivalent)."""
