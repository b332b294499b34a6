"""Layer 2: move opaque bytes between sockets and a connection; never parse hub messages."""
