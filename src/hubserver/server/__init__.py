"""The HTTP/1.1 + WebSocket server shell (uvloop + httptools) with an ASGI fallback."""

from hubserver.server.runner import run, serve_until_stopped
from hubserver.server.server import HubServer

__all__ = ["HubServer", "run", "serve_until_stopped"]
