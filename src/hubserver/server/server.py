"""HubServer: our HTTP/1.1 + WebSocket server (docs/adr/0001-own-http-websocket-server.md).

Hub endpoints are served natively; every other path goes to an optional ASGI application.
Graceful stop: stop accepting, ask every hub connection to close (``endpoint.shutdown()``),
wait up to ``grace`` seconds for them to drain, then abort the rest and run the ASGI lifespan
shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import socket
import ssl
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from hubserver.connections.endpoint import ConnectionEndpoint
from hubserver.server.asgi import AsgiCycle
from hubserver.server.asgi_websocket import AsgiWebSocketCycle, is_websocket_upgrade
from hubserver.server.exchange import EndpointExchange
from hubserver.server.http import Cycle, HttpProtocol, Request, ResponseHook
from hubserver.server.lifespan import Lifespan
from hubserver.server.proxy import TrustedProxies
from hubserver.server.response import text_response
from hubserver.server.runner import serve_until_stopped
from hubserver.types import ASGIApp

if TYPE_CHECKING:
    from collections.abc import Callable

logger = logging.getLogger("hubserver.server")


class _NotFoundCycle(Cycle):
    """Requests for unknown paths when no ASGI app is mounted (and refused upgrades)."""

    __slots__ = ()

    def on_body_complete(self) -> None:
        if self.protocol.active is self:
            self.start()

    def start(self) -> None:
        if not self.request.body_complete or self.done:
            return
        self.status = 404
        self.request.keep_alive = self.request.keep_alive and not self.request.upgrade
        self.protocol.write(text_response(self.request, 404, b"Not Found"))
        self.finish()


class ServerState:
    """What every :class:`HttpProtocol` of one server shares."""

    __slots__ = (
        "access_log",
        "asgi_app",
        "body_timeout",
        "connections",
        "keep_alive_timeout",
        "lifespan_state",
        "loop",
        "proxies",
        "response_hook",
        "routes",
        "scheme",
        "stopping",
        "websocket_max_message_size",
        "websockets",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        endpoints: Sequence[ConnectionEndpoint],
        asgi_app: ASGIApp | None,
        proxies: TrustedProxies,
        access_log: bool,
        keep_alive_timeout: float,
        body_timeout: float = 30.0,
        *,
        response_hook: ResponseHook | None = None,
        scheme: str = "http",
        websocket_max_message_size: int = 1024 * 1024,
    ) -> None:
        self.loop = loop
        # Keyed by the lower-cased path: hub paths match case-insensitively, as ASP.NET
        # routing does (``/HUBS/Chat/negotiate`` is ``/hubs/chat/negotiate``).
        self.routes: dict[str, tuple[ConnectionEndpoint, bool]] = {}
        for ep in endpoints:
            for path in (ep.path, ep.path + "/"):
                self.routes[path.lower()] = (ep, False)
            for path in (ep.negotiate_path, ep.negotiate_path + "/"):
                self.routes[path.lower()] = (ep, True)
        self.asgi_app = asgi_app
        self.proxies = proxies
        self.access_log = access_log
        self.keep_alive_timeout = keep_alive_timeout
        self.body_timeout = body_timeout
        self.connections: set[HttpProtocol] = set()
        self.lifespan_state: dict[str, Any] | None = None
        self.stopping = False
        self.response_hook = response_hook
        self.scheme = scheme
        self.websocket_max_message_size = websocket_max_message_size
        self.websockets: set[AsgiWebSocketCycle] = set()
        """Open WebSockets of the ASGI application (closed with 1001 at stop)."""

    def make_cycle(self, protocol: HttpProtocol, request: Request) -> Cycle:
        """Route a request: hub endpoint, ASGI fallback, or 404."""
        route = self.routes.get(request.path.lower())
        if route is not None:
            return EndpointExchange(protocol, request, route[0], route[1])
        app = self.asgi_app
        if app is None:
            return _NotFoundCycle(protocol, request)
        if is_websocket_upgrade(request):
            return AsgiWebSocketCycle(
                protocol,
                request,
                app,
                self.lifespan_state,
                self.websocket_max_message_size,
                self.websockets,
            )
        if request.upgrade:
            # Another protocol (h2c...): answered as plain HTTP, which RFC 9110 §7.8 allows;
            # the bytes after it are the other protocol's, so the connection closes after.
            request.keep_alive = False
        return AsgiCycle(protocol, request, app, self.lifespan_state)


class HubServer:
    """Serves hub endpoints natively and everything else through ``asgi_app``.

    Args:
        endpoints: Hub endpoints (``ConnectionEndpoint``), matched by path ignoring case.
        asgi_app: ASGI 3 application for every other path (HTTP only, with lifespan).
        host: Address to bind (loopback by default).
        port: Port; 0 picks a free one (see :attr:`port`).
        reuse_port: Set ``SO_REUSEPORT`` so several processes can share the port.
        trusted_proxies: Addresses/networks whose ``X-Forwarded-*`` headers are honoured.
        access_log: Emit one ``hubserver.access`` line per request (tokens redacted).
        keep_alive_timeout: Seconds an idle keep-alive HTTP connection stays open (and the
            longest a request head may take to arrive).
        body_timeout: Seconds a request body may take to arrive once its head is in (hub
            endpoints: once the request is authenticated); then 408 and close. 0 = no limit.
        backlog: Listen backlog.
        ssl_context: Serve HTTPS (and ``wss://``) with this server-side context
            (:func:`hubserver.server.tls.load_tls_context`); None = plain HTTP.
        tls_handshake_timeout: Seconds a client may take to complete the TLS handshake.
        response_hook: Called before every hub endpoint response head is written (negotiate,
            long polling, Server-Sent Events, the WebSocket 101, errors); may append headers
            (:data:`hubserver.server.http.ResponseHook`).
        websocket_max_message_size: Largest message accepted from a client of the ASGI
            application's WebSockets (bigger -> close 1009); hub endpoints have their own
            (``ConnectionOptions.websocket_max_message_size``).
    """

    def __init__(
        self,
        endpoints: Sequence[ConnectionEndpoint],
        asgi_app: ASGIApp | None = None,
        host: str = "127.0.0.1",
        port: int = 8080,
        *,
        reuse_port: bool = False,
        trusted_proxies: Sequence[str] = (),
        access_log: bool = True,
        keep_alive_timeout: float = 5.0,
        body_timeout: float = 30.0,
        backlog: int = 2048,
        ssl_context: ssl.SSLContext | None = None,
        tls_handshake_timeout: float = 10.0,
        response_hook: ResponseHook | None = None,
        websocket_max_message_size: int = 1024 * 1024,
    ) -> None:
        self.endpoints = list(endpoints)
        self.asgi_app = asgi_app
        self.host = host
        self._port = port
        self.reuse_port = reuse_port
        self.proxies = TrustedProxies(trusted_proxies)
        self.access_log = access_log
        self.keep_alive_timeout = keep_alive_timeout
        self.body_timeout = body_timeout
        self.backlog = backlog
        self.ssl_context = ssl_context
        self.tls_handshake_timeout = tls_handshake_timeout
        self.response_hook = response_hook
        self.websocket_max_message_size = websocket_max_message_size
        self._server: asyncio.Server | None = None
        self._state: ServerState | None = None
        self._lifespan: Lifespan | None = None
        self._stop_event: asyncio.Event | None = None

    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        """Listening sockets (empty before :meth:`start`)."""
        if self._server is None:
            return ()
        return tuple(self._server.sockets)

    @property
    def port(self) -> int:
        """The bound port (the real one when constructed with ``port=0``)."""
        for sock in self.sockets:
            return int(sock.getsockname()[1])
        return self._port

    @property
    def scheme(self) -> str:
        """``https`` when serving TLS, else ``http``."""
        return "https" if self.ssl_context is not None else "http"

    @property
    def url(self) -> str:
        """Base URL of the listening socket (``https://`` with TLS)."""
        host = self.host if ":" not in self.host else f"[{self.host}]"
        return f"{self.scheme}://{host}:{self.port}"

    async def start(self) -> None:
        """Run the ASGI lifespan startup, then start listening."""
        loop = asyncio.get_running_loop()
        state = ServerState(
            loop,
            self.endpoints,
            self.asgi_app,
            self.proxies,
            self.access_log,
            self.keep_alive_timeout,
            self.body_timeout,
            response_hook=self.response_hook,
            scheme=self.scheme,
            websocket_max_message_size=self.websocket_max_message_size,
        )
        if self.asgi_app is not None:
            self._lifespan = Lifespan(self.asgi_app)
            await self._lifespan.startup()
            state.lifespan_state = self._lifespan.state
        self._state = state
        factory: Callable[[], HttpProtocol] = lambda: HttpProtocol(state)  # noqa: E731
        self._server = await loop.create_server(
            factory,
            self.host,
            self._port,
            reuse_port=self.reuse_port or None,
            backlog=self.backlog,
            ssl=self.ssl_context,
            ssl_handshake_timeout=self.tls_handshake_timeout if self.ssl_context else None,
        )
        logger.info("hubserver listening on %s://%s:%d", self.scheme, self.host, self.port)

    async def stop(self, grace: float = 10.0) -> None:
        """Graceful stop (see module docstring); idempotent."""
        state = self._state
        server = self._server
        if state is None or server is None or state.stopping:
            return
        state.stopping = True
        server.close()
        for proto in list(state.connections):
            if proto.is_idle():
                proto.close()
        for websocket in list(state.websockets):
            websocket.going_away()
        for ep in self.endpoints:
            await ep.shutdown()
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            busy = sum(ep.connection_count() for ep in self.endpoints)
            busy += sum(1 for p in state.connections if not p.is_idle())
            if busy == 0:
                break
            await asyncio.sleep(0.02)
        for ep in self.endpoints:
            ep.abort_all()
            await ep.stop()
        for proto in list(state.connections):
            proto.abort()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 1.0)
        if self._lifespan is not None:
            await self._lifespan.shutdown()
        if self._stop_event is not None:
            self._stop_event.set()
        logger.info("hubserver stopped")

    async def serve(self, install_signal_handlers: bool = True, grace: float = 10.0) -> None:
        """Start, run until SIGINT/SIGTERM (or :meth:`request_stop`), then stop gracefully
        (:func:`hubserver.server.runner.serve_until_stopped`)."""
        self._stop_event = asyncio.Event()
        await serve_until_stopped(
            self.start,
            functools.partial(self.stop, grace),
            stop_event=self._stop_event,
            install_signal_handlers=install_signal_handlers,
        )

    def request_stop(self) -> None:
        """Make :meth:`serve` return (after a graceful stop)."""
        if self._stop_event is not None:
            self._stop_event.set()
