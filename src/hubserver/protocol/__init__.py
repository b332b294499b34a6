"""Layer 1, sans-I/O: SignalR hub-protocol messages and codecs (bytes in, messages out)."""
