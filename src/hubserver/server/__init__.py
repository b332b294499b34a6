"""The HTTP/1.1 + WebSocket server shell (uvloop + httptools) with an ASGI fallback."""

from hubserver.server.http import ResponseHook
from hubserver.server.runner import run, serve_until_stopped
from hubserver.server.server import HubServer
from hubserver.server.tls import TlsConfigError, load_tls_context

__all__ = [
    "HubServer",
    "ResponseHook",
    "TlsConfigError",
    "load_tls_context",
    "run",
    "serve_until_stopped",
]
