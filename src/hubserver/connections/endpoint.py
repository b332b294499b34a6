"""A hub endpoint: negotiate plus the transport requests at ``{path}`` (HttpConnectionDispatcher).

The server shell parses HTTP and hands each request for ``{path}`` or ``{path}/negotiate``
to :meth:`ConnectionEndpoint.handle` with an :class:`~hubserver.transports.base.HttpExchange`
to answer through. Every status code and text below follows docs/spec/negotiate.md §1 and
docs/spec/transports.md §2.
The server calls :meth:`ConnectionEndpoint.admit` (CORS, method, authentication) from the
request head, before reading any body, and :meth:`ConnectionEndpoint.serve` once the body is in.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from hubserver.connections.context import ConnectionContext, HttpRequestInfo, Principal
from hubserver.connections.cors import CorsPolicy
from hubserver.connections.manager import (
    Clock,
    ConnectionManager,
    ConnectionStatus,
    HttpConnectionContext,
    claimed_connection_id,
)
from hubserver.errors import AuthenticationFailed
from hubserver.options import ConnectionOptions
from hubserver.protocol import negotiate as neg
from hubserver.transports.base import ConnectionApplication, HttpExchange, TransportType
from hubserver.transports.long_polling import LongPollingTransport, respond_first_poll
from hubserver.transports.sse import ServerSentEventsTransport
from hubserver.transports.websocket import WebSocketTransport
from hubserver.transports.websocket_frames import accept_key, is_valid_client_key

logger = logging.getLogger("hubserver.connections")

AuthHook = Callable[[HttpRequestInfo], Awaitable[Principal | None]]
"""Authentication hook: request -> principal (None = anonymous); raise
:class:`~hubserver.errors.AuthenticationFailed` to refuse with its status."""

ApplicationFactory = Callable[[ConnectionContext], ConnectionApplication]

ResumeHook = Callable[
    [str, Principal | None, HttpRequestInfo], Awaitable[HttpConnectionContext | None]
]
"""Cross-server resume (docs/spec/stateful-reconnect.md §5.4): a WebSocket for a resumable token
unknown here -> the connection taken over from its owner and registered here, paused, or None
(404); raise :class:`~hubserver.errors.AuthenticationFailed` to refuse with its status."""

_JSON = "application/json"
_TEXT = "text/plain"


def _text(message: str) -> bytes:
    return message.encode("utf-8")


def is_websocket_request(request: HttpRequestInfo) -> bool:
    """``GET`` with ``Upgrade: websocket`` (docs/spec/transports.md §2.1)."""
    return request.headers.get("upgrade", "").lower() == "websocket"


class ConnectionEndpoint:
    """Serves ``POST {path}/negotiate`` and ``GET/POST/DELETE/OPTIONS {path}``.

    Args:
        path: Base path, e.g. ``/hubs/analytics`` (a trailing ``/`` is ignored).
        application_factory: Creates the layer above for a connection when its transport
            starts (the hub layer's ``HubConnectionHandler.create_application``).
        options: Connection-layer options.
        authenticate: Called on negotiate and on every transport request.
        clock: Monotonic clock for the disconnect sweep (injected in tests).
        sweep_interval: Seconds between sweeps.
    """

    def __init__(
        self,
        path: str,
        application_factory: ApplicationFactory,
        options: ConnectionOptions | None = None,
        authenticate: AuthHook | None = None,
        *,
        clock: Clock = time.monotonic,
        sweep_interval: float = 1.0,
    ) -> None:
        self.path = "/" + path.strip("/")
        self.negotiate_path = self.path.rstrip("/") + "/negotiate"
        self.application_factory = application_factory
        self.options = options if options is not None else ConnectionOptions()
        self.authenticate = authenticate
        self.cors = CorsPolicy(self.options.allowed_origins)
        self.manager = ConnectionManager(self.options, clock, sweep_interval)
        self._shutting_down = False
        self.resume: ResumeHook | None = None
        """Set by the hub layer when connections can resume here from another server."""
        self._resuming: set[asyncio.Task[None]] = set()

    # --- public API -----------------------------------------------------------------------

    def connection_count(self) -> int:
        """Live connections (negotiated ones included)."""
        return len(self.manager)

    def connections(self) -> list[HttpConnectionContext]:
        """Snapshot of the live connections."""
        return list(self.manager)

    async def shutdown(self) -> None:
        """Ask every live connection to close (graceful server stop).

        Applications with a ``server_shutdown()`` method (the hub layer: Close with
        ``allowReconnect: true``) are asked through it; the rest are closed directly.
        New connections are refused from now on (503).
        """
        self._shutting_down = True
        for ctx in self.manager:
            app = ctx.application
            hook = getattr(app, "server_shutdown", None) if app is not None else None
            try:
                if callable(hook):
                    hook()
                else:
                    ctx.close()
            except Exception:
                logger.exception("server_shutdown failed for %s", ctx.connection_id)
                ctx.abort()

    def abort_all(self) -> None:
        """Drop every remaining connection (after the shutdown grace period)."""
        for ctx in self.manager:
            ctx.abort()

    async def stop(self) -> None:
        """Stop the sweeper task (end of a server stop; the endpoint may be served again)."""
        await self.manager.stop()
        self._shutting_down = False

    # --- request handling -----------------------------------------------------------------

    async def handle(
        self,
        request: HttpRequestInfo,
        body: bytes,
        exchange: HttpExchange,
        *,
        negotiate: bool,
    ) -> None:
        """Answer one request for this endpoint through ``exchange`` (:meth:`admit` then
        :meth:`serve`, for callers that already hold the whole body)."""
        ok, principal = await self.admit(request, exchange, negotiate=negotiate)
        if ok:
            self.serve(request, body, exchange, negotiate=negotiate, principal=principal)

    async def admit(
        self, request: HttpRequestInfo, exchange: HttpExchange, *, negotiate: bool
    ) -> tuple[bool, Principal | None]:
        """Everything that needs only the request head: CORS, preflight, method, and the
        authentication hook. The server runs it before reading any request body, so an
        anonymous client cannot hold a request open by trickling one.

        Returns:
            ``(True, principal)`` when the request may proceed to :meth:`serve`;
            ``(False, None)`` when it was answered here (403, 204, 405, 401...).
        """
        origin = request.headers.get("origin")
        if origin is not None and not self.cors.is_same_origin(origin, request):
            if not self.cors.is_allowed(origin, request):
                exchange.respond(403, _text("Origin not allowed"))
                return False, None
            for name, value in self.cors.response_headers(origin):
                exchange.add_header(name, value)
        method = request.method
        if method == "OPTIONS":
            exchange.respond(204, b"", None, self.cors.preflight_headers(request))
            return False, None
        if negotiate and method != "POST":
            # docs/spec/negotiate.md §1.5: non-POST requests to /negotiate -> 405.
            exchange.respond(405, _text("Method Not Allowed"), _TEXT, [("Allow", "POST")])
            return False, None
        if not negotiate and method not in ("GET", "POST", "DELETE"):
            exchange.respond(
                405, _text("Method Not Allowed"), _TEXT, [("Allow", "GET, POST, DELETE, OPTIONS")]
            )
            return False, None
        return await self._authenticate(request, exchange)

    def serve(
        self,
        request: HttpRequestInfo,
        body: bytes,
        exchange: HttpExchange,
        *,
        negotiate: bool,
        principal: Principal | None,
    ) -> None:
        """Answer a request :meth:`admit` let through, now that its body is complete."""
        if negotiate:
            self._negotiate(request, principal, exchange)
        else:
            self._transport_request(request, body, principal, exchange)

    async def _authenticate(
        self, request: HttpRequestInfo, exchange: HttpExchange
    ) -> tuple[bool, Principal | None]:
        hook = self.authenticate
        if hook is None:
            return True, None
        try:
            principal = await hook(request)
        except AuthenticationFailed as exc:
            headers = [("WWW-Authenticate", "Bearer")] if exc.status == 401 else []
            exchange.respond(exc.status, _text(exc.message), _TEXT, headers)
            return False, None
        return True, principal

    def _refuse_capacity(self, principal: Principal | None, exchange: HttpExchange) -> bool:
        manager = self.manager
        if self._shutting_down or manager.at_capacity():
            exchange.respond(503, _text("Server is not accepting new connections."))
            return True
        if manager.tenant_at_capacity(principal):
            # The tenant's own negotiated-but-unused connections count too: a tenant that
            # negotiates without ever connecting fills only its own share.
            options = self.options
            text = options.tenant_limit_text.format(limit=options.max_tenant_connections)
            exchange.respond(503, _text(text))
            return True
        return False

    def _negotiate(
        self, request: HttpRequestInfo, principal: Principal | None, exchange: HttpExchange
    ) -> None:
        try:
            version = neg.select_version(neg.query_get(request.query, "negotiateVersion"))
        except neg.NegotiateVersionError as exc:
            # docs/spec/negotiate.md §1.5: version errors are HTTP 200 with {"error": ...}.
            exchange.respond(200, neg.write_error(str(exc)), _JSON)
            return
        if self._refuse_capacity(principal, exchange):
            return
        stateful = self.options.allow_stateful_reconnects and neg.wants_stateful_reconnect(
            request.query
        )
        ctx = self.manager.create(request, principal, version, stateful)
        response = neg.NegotiateResponse(
            version=version,
            connection_id=ctx.connection_id,
            connection_token=ctx.connection_token,
            available_transports=self._available_transports(),
            use_stateful_reconnect=stateful,
        )
        exchange.respond(200, response.to_bytes(), _JSON)

    def _available_transports(self) -> list[neg.AvailableTransport]:
        # docs/spec/negotiate.md §1.3: client preference order WS, SSE, LP; SSE only carries Text
        # (docs/spec/transports.md §2.3).
        enabled = self.options.transports
        out = []
        if enabled & TransportType.WEB_SOCKETS:
            out.append(neg.AvailableTransport("WebSockets", ("Text", "Binary")))
        if enabled & TransportType.SERVER_SENT_EVENTS:
            out.append(neg.AvailableTransport("ServerSentEvents", ("Text",)))
        if enabled & TransportType.LONG_POLLING:
            out.append(neg.AvailableTransport("LongPolling", ("Text", "Binary")))
        return out

    def _transport_request(
        self,
        request: HttpRequestInfo,
        body: bytes,
        principal: Principal | None,
        exchange: HttpExchange,
    ) -> None:
        if exchange.closed:
            # The client left while the hook ran: attaching a stream or parking a poll on a
            # dead socket would pin the connection as active forever. (No awaits follow, so
            # the check cannot go stale.)
            return
        method = request.method
        kind = TransportType.NONE
        if method == "GET":
            if is_websocket_request(request):
                kind = TransportType.WEB_SOCKETS
            elif "text/event-stream" in request.headers.get("accept", ""):
                kind = TransportType.SERVER_SENT_EVENTS
            else:
                kind = TransportType.LONG_POLLING
        if method == "GET" and not self.options.transports & kind:
            exchange.respond(
                404, _text(f"{kind.wire_name} transport not supported by this end point type")
            )
            return
        token = neg.query_get(request.query, "id")
        if method == "GET" and kind is TransportType.WEB_SOCKETS:
            self._websocket(request, token, principal, exchange)
            return
        ctx = self._lookup(token, principal, exchange)
        if ctx is None:
            return
        if method == "POST":
            self._post(ctx, body, exchange)
        elif method == "DELETE":
            self._delete(ctx, exchange)
        elif kind is TransportType.SERVER_SENT_EVENTS:
            self._sse(ctx, request, exchange)
        else:
            self._long_poll(ctx, request, exchange)

    def _lookup(
        self,
        token: str | None,
        principal: Principal | None,
        exchange: HttpExchange,
    ) -> HttpConnectionContext | None:
        if not token:
            exchange.respond(400, _text("Connection ID required"))
            return None
        ctx = self.manager.get(token)
        if ctx is None or ctx.status is ConnectionStatus.DISPOSED:
            exchange.respond(404, _text("No Connection with that ID"))
            return None
        if not self._same_user(ctx, principal):
            exchange.respond(403, _text("Forbidden"))
            return None
        return ctx

    @staticmethod
    def _same_user(ctx: HttpConnectionContext, principal: Principal | None) -> bool:
        # A token must only be usable by the user it was issued to (.NET compares the
        # NameIdentifier of the connection's user with the request's).
        old = ctx.principal.user_id if ctx.principal is not None else None
        new = principal.user_id if principal is not None else None
        if old != new:
            return False
        if principal is not None:
            ctx.principal = principal  # a refreshed token extends the expiry
        return True

    def _check_transport(
        self, ctx: HttpConnectionContext, kind: TransportType, exchange: HttpExchange
    ) -> bool:
        if ctx.transport is not TransportType.NONE and ctx.transport is not kind:
            exchange.respond(400, _text("Cannot change transports mid-connection"))
            return False
        return True

    def _start_application(self, ctx: HttpConnectionContext) -> None:
        app = self.application_factory(ctx)
        if ctx.application is None:
            ctx.set_application(app)
        ctx.deliver_early_data()

    # --- WebSockets (docs/spec/transports.md §2.2) ------------------------------------------------

    def _websocket(
        self,
        request: HttpRequestInfo,
        token: str | None,
        principal: Principal | None,
        exchange: HttpExchange,
    ) -> None:
        headers = request.headers
        key = headers.get("sec-websocket-key", "")
        if headers.get("sec-websocket-version", "").strip() != "13":
            # RFC 6455 §4.4: tell the client which version we speak.
            exchange.respond(
                426,
                _text("Unsupported WebSocket version"),
                _TEXT,
                [("Sec-WebSocket-Version", "13")],
            )
            return
        if not is_valid_client_key(key.strip()):
            exchange.respond(400, _text("Invalid Sec-WebSocket-Key"))
            return
        if token is None:
            # skipNegotiation (docs/spec/transports.md §2.6): a WebSocket without id is a brand-new
            # connection.
            if self._refuse_capacity(principal, exchange):
                return
            ctx: HttpConnectionContext | None = self.manager.create(request, principal, 0)
        else:
            if (
                self.resume is not None
                and self.manager.get(token) is None
                and claimed_connection_id(token) is not None
                and not self._shutting_down
            ):
                task = asyncio.get_running_loop().create_task(
                    self._resume_websocket(self.resume, request, token, principal, exchange)
                )
                self._resuming.add(task)
                task.add_done_callback(self._resuming.discard)
                return
            ctx = self._lookup(token, principal, exchange)
            if ctx is None:
                return
        assert ctx is not None
        self._accept_websocket(ctx, request, exchange)

    async def _resume_websocket(
        self,
        hook: ResumeHook,
        request: HttpRequestInfo,
        token: str,
        principal: Principal | None,
        exchange: HttpExchange,
    ) -> None:
        try:
            ctx = await hook(token, principal, request)
        except AuthenticationFailed as exc:
            exchange.respond(exc.status, _text(exc.message), _TEXT)
            return
        if ctx is None:
            exchange.respond(404, _text("No Connection with that ID"))
            return
        if exchange.closed:
            return  # the client left; the resumed connection expires like any paused one
        self._accept_websocket(ctx, request, exchange)

    def _accept_websocket(
        self, ctx: HttpConnectionContext, request: HttpRequestInfo, exchange: HttpExchange
    ) -> None:
        key = request.headers.get("sec-websocket-key", "")
        if not self._check_transport(ctx, TransportType.WEB_SOCKETS, exchange):
            return
        current = ctx.current_transport
        if ctx.closing or (current is not None and not ctx.stateful_reconnect):
            # docs/spec/transports.md §2.1: a second live socket for a connection that does not
            # expect reconnects.
            exchange.respond(409, b"")
            return
        transport = WebSocketTransport(
            ctx,
            max_message_size=self.options.websocket_max_message_size,
            close_timeout=self.options.websocket_close_timeout,
        )
        channel = exchange.upgrade(
            [
                ("Upgrade", "websocket"),
                ("Connection", "Upgrade"),
                ("Sec-WebSocket-Accept", accept_key(key.strip())),
            ],
            transport,
        )
        transport.attach(channel)
        if ctx.attach_transport(transport, request):
            self._start_application(ctx)

    # --- Server-Sent Events (docs/spec/transports.md §2.3) ----------------------------------------

    def _sse(
        self, ctx: HttpConnectionContext, request: HttpRequestInfo, exchange: HttpExchange
    ) -> None:
        if not self._check_transport(ctx, TransportType.SERVER_SENT_EVENTS, exchange):
            return
        if ctx.current_transport is not None or ctx.closing:
            exchange.respond(409, b"")
            return
        transport = ServerSentEventsTransport(exchange, ctx)
        transport.start()
        if ctx.attach_transport(transport, request):
            self._start_application(ctx)

    # --- Long polling (docs/spec/transports.md §2.4) ----------------------------------------------

    def _long_poll(
        self, ctx: HttpConnectionContext, request: HttpRequestInfo, exchange: HttpExchange
    ) -> None:
        if not self._check_transport(ctx, TransportType.LONG_POLLING, exchange):
            return
        transport = ctx.current_transport
        if transport is None:
            # First poll: start the application and return 200 empty at once.
            lp = LongPollingTransport(ctx, self.options.long_poll_timeout)
            ctx.attach_transport(lp, request)
            self._start_application(ctx)
            respond_first_poll(exchange)
            ctx.poll_active(False)
            return
        assert isinstance(transport, LongPollingTransport)
        transport.poll(exchange)

    # --- POST send and DELETE (docs/spec/transports.md §2.4, §2.5) --------------------------------

    def _post(self, ctx: HttpConnectionContext, body: bytes, exchange: HttpExchange) -> None:
        if ctx.transport is TransportType.WEB_SOCKETS:
            exchange.respond(405, _text("POST requests are not allowed for WebSocket connections."))
            return
        if len(body) + ctx.early_data_size() > self.options.application_max_buffer_size:
            exchange.respond(413, _text("Payload Too Large"))
            return
        if body:
            # Before the first poll/stream there is no application yet: the context keeps
            # the bytes for it (signalrcore's long polling POSTs its handshake first; .NET
            # buffers in the connection's pipe the same way).
            ctx.transport_data(body)
        exchange.respond(200, b"")

    def _delete(self, ctx: HttpConnectionContext, exchange: HttpExchange) -> None:
        if ctx.transport is not TransportType.LONG_POLLING:
            exchange.respond(
                400, _text("Cannot terminate this connection using the DELETE endpoint.")
            )
            return
        exchange.respond(202, b"")
        # Disposes the connection; a pending poll is answered with 204.
        ctx.abort()
