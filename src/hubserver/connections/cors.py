"""CORS for hub endpoints (docs/spec/transports.md §2.7).

Browsers send credentials by default (``withCredentials: true``), so an allowed origin is
echoed (never ``*``) together with ``Access-Control-Allow-Credentials: true``. Same-origin
requests are always allowed; a request from any other origin not in the allow-list is refused
with 403, WebSocket upgrades included (cross-site WebSocket hijacking).
"""

from __future__ import annotations

from collections.abc import Sequence

from hubserver.connections.context import HttpRequestInfo

ALLOWED_METHODS = "GET, POST, DELETE, OPTIONS"
DEFAULT_ALLOWED_HEADERS: tuple[str, ...] = (
    "authorization",
    "content-type",
    "x-requested-with",
    "x-signalr-user-agent",
    "x-organization-id",
)
_DEFAULT_PORTS = {"http": "80", "https": "443", "ws": "80", "wss": "443"}


def _normalize_origin(origin: str) -> str:
    """``scheme://host[:port]`` lower-cased, default port dropped."""
    origin = origin.strip().lower().rstrip("/")
    scheme, sep, rest = origin.partition("://")
    if not sep:
        return origin
    host, colon, port = rest.rpartition(":")
    if colon and port == _DEFAULT_PORTS.get(scheme):
        rest = host
    return f"{scheme}://{rest}"


class CorsPolicy:
    """Origin checks and CORS headers for one endpoint.

    Args:
        allowed_origins: Origins allowed besides the server's own; ``"*"`` allows any.
    """

    __slots__ = ("_any", "_origins")

    def __init__(self, allowed_origins: Sequence[str]) -> None:
        self._any = "*" in allowed_origins
        self._origins = frozenset(_normalize_origin(o) for o in allowed_origins if o != "*")

    def is_same_origin(self, origin: str, request: HttpRequestInfo) -> bool:
        """True when ``origin`` is the server's own origin as the request addressed it."""
        host = request.headers.get("host")
        if not host:
            return False
        return _normalize_origin(origin) == _normalize_origin(f"{request.scheme}://{host}")

    def is_allowed(self, origin: str, request: HttpRequestInfo) -> bool:
        """Whether a request carrying ``Origin: origin`` may proceed."""
        if self.is_same_origin(origin, request):
            return True
        return self._any or _normalize_origin(origin) in self._origins

    @staticmethod
    def response_headers(origin: str) -> list[tuple[str, str]]:
        """Headers for an allowed cross-origin request."""
        return [
            ("Access-Control-Allow-Origin", origin),
            ("Access-Control-Allow-Credentials", "true"),
            ("Vary", "Origin"),
        ]

    @staticmethod
    def preflight_headers(request: HttpRequestInfo) -> list[tuple[str, str]]:
        """Extra headers of a preflight (OPTIONS) answer: methods and allowed headers.

        Headers the browser asks for (``Access-Control-Request-Headers``) are allowed too:
        the JS client forwards arbitrary user ``headers`` (docs/spec/negotiate.md §1.1).
        """
        names = list(DEFAULT_ALLOWED_HEADERS)
        requested = request.headers.get("access-control-request-headers", "")
        for item in requested.split(","):
            name = item.strip().lower()
            if name and name not in names:
                names.append(name)
        return [
            ("Access-Control-Allow-Methods", ALLOWED_METHODS),
            ("Access-Control-Allow-Headers", ", ".join(names)),
            ("Access-Control-Max-Age", "600"),
        ]
