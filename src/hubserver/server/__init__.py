"""The HTTP/1.1 + WebSocket server shell (uvloop + httptools) with an ASGI fallback."""

from hubserver.server.server import HubServer, run

__all__ = ["HubServer", "run"]
