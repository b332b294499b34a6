"""Connection registry and the per-connection context (cf. HttpConnectionManager/-Context).

Connections are indexed by their secret token (docs/spec/negotiate.md §1.3). A connection is
*inactive* while no transport request holds it: after negotiate, between long polls, and
during a stateful-reconnect window. One sweeper per manager (i.e. per endpoint) disposes
connections that stayed inactive for ``disconnect_timeout`` (docs/spec/transports.md §2.4,
docs/spec/stateful-reconnect.md §5.3); time comes from an
injected clock so tests never sleep.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import enum
import logging
import secrets
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from hubserver.connections.context import ConnectionContext, HttpRequestInfo, Principal
from hubserver.errors import TransportError
from hubserver.options import ConnectionOptions
from hubserver.protocol.base import HubProtocol
from hubserver.protocol.serialized import SerializedMessage
from hubserver.transports.base import (
    ConnectionApplication,
    ConnectionLostError,
    ServerTransport,
    TransportType,
)
from hubserver.types import ConnectionId, ConnectionToken

logger = logging.getLogger("hubserver.connections")

Clock = Callable[[], float]


def new_connection_id() -> str:
    """22-char base64url (no padding) of 16 random bytes, as .NET (docs/spec/negotiate.md §1.3).

    URL-safe matters: the JS client appends ``id=<token>`` without URL-encoding.
    """
    return base64.urlsafe_b64encode(secrets.token_bytes(16)).rstrip(b"=").decode("ascii")


_RESUMABLE_SEPARATOR = "."
"""Between the connection id and the secret in a resumable connection's token."""


def new_resumable_token(connection_id: str) -> str:
    """``<connectionId>.<secret>`` for a connection that may resume on another server
    (docs/spec/stateful-reconnect.md §5.4): any server can tell which connection the token
    claims; only the owner, who knows the whole token, can confirm the secret part."""
    return connection_id + _RESUMABLE_SEPARATOR + new_connection_id()


def claimed_connection_id(token: str) -> str | None:
    """The connection id a resumable token claims, or None when ``token`` is not one."""
    connection_id, sep, secret = token.partition(_RESUMABLE_SEPARATOR)
    if not sep or len(connection_id) != 22 or len(secret) != 22:
        return None
    return connection_id


class ConnectionStatus(enum.IntEnum):
    """Lifecycle of an :class:`HttpConnectionContext`."""

    INACTIVE = 0
    """No transport request holds it (negotiated, between polls, reconnect window)."""
    ACTIVE = 1
    """A WebSocket/SSE stream or a parked poll holds it."""
    DISPOSED = 2


class HttpConnectionContext:
    """One logical SignalR connection; implements ``connections.context.ConnectionContext``.

    Created by :class:`ConnectionManager`; the endpoint attaches transports to it. The
    application (hub layer) talks to it through the ``ConnectionContext`` protocol and
    receives data and lifecycle callbacks (``transports.base.ConnectionApplication``).
    """

    __slots__ = (
        "_application",
        "_closing",
        "_early",
        "_items",
        "_manager",
        "_paused",
        "_request",
        "_transport",
        "_transport_type",
        "connection_id",
        "connection_token",
        "last_seen",
        "negotiate_version",
        "principal",
        "stateful_negotiated",
        "status",
        "tenant",
    )

    def __init__(
        self,
        manager: ConnectionManager,
        connection_id: ConnectionId,
        connection_token: ConnectionToken,
        request: HttpRequestInfo,
        principal: Principal | None,
        negotiate_version: int,
        stateful_negotiated: bool,
    ) -> None:
        self._manager = manager
        self.connection_id = connection_id
        self.connection_token = connection_token
        self._request = request.without_credentials()
        self.principal = principal
        self.negotiate_version = negotiate_version
        self.stateful_negotiated = stateful_negotiated
        self._items: dict[str, Any] | None = None
        self._early: bytearray | None = None
        self._application: ConnectionApplication | None = None
        self._transport: ServerTransport | None = None
        self._transport_type = TransportType.NONE
        self._closing = False
        self._paused = False
        self.status = ConnectionStatus.INACTIVE
        self.last_seen = manager.clock()
        self.tenant: str | None = None
        """Tenant counted for ``max_tenant_connections`` (None = not counted)."""

    # --- ConnectionContext ----------------------------------------------------------------

    @property
    def transport(self) -> TransportType:
        """Transport in use (NONE until the first transport request)."""
        return self._transport_type

    @property
    def request(self) -> HttpRequestInfo:
        """The request that started the transport (the negotiate request before that), without
        its credentials (``HttpRequestInfo.without_credentials``)."""
        return self._request

    @property
    def items(self) -> dict[str, Any]:
        """Free-form per-connection state (created on first use to keep idle memory low)."""
        items = self._items
        if items is None:
            items = self._items = {}
        return items

    @property
    def has_inherent_keepalive(self) -> bool:
        """Long polling: no pings, no client timeout."""
        return self._transport_type is TransportType.LONG_POLLING

    @property
    def stateful_reconnect(self) -> bool:
        """Negotiated ``useStatefulReconnect`` and on WebSockets
        (docs/spec/stateful-reconnect.md §5.1)."""
        return self.stateful_negotiated and self._transport_type is TransportType.WEB_SOCKETS

    @property
    def application(self) -> ConnectionApplication | None:
        """The attached layer above, if any."""
        return self._application

    @property
    def current_transport(self) -> ServerTransport | None:
        """The transport shell currently attached (None while paused or not started)."""
        return self._transport

    @property
    def closing(self) -> bool:
        """True once :meth:`close` or :meth:`abort` was called or the connection was disposed."""
        return self._closing

    def set_application(self, app: ConnectionApplication) -> None:
        """Attach the layer above."""
        self._application = app

    def send(self, payload: bytes, binary: bool) -> None:
        """Queue one transport message (dropped while no transport is attached)."""
        transport = self._transport
        if transport is not None:
            transport.send(payload, binary)

    def send_serialized(self, message: SerializedMessage, protocol: HubProtocol) -> int:
        """Queue a broadcast message; its framing is cached on ``message``."""
        transport = self._transport
        if transport is not None:
            return transport.send_serialized(message, protocol)
        return 0

    def broadcast_sender(self) -> Callable[[SerializedMessage, HubProtocol], int] | None:
        """The attached transport's ``send_serialized`` (see ConnectionContext)."""
        transport = self._transport
        return transport.send_serialized if transport is not None else None

    def buffered_bytes(self) -> int:
        """Unsent bytes of the current transport."""
        transport = self._transport
        return transport.buffered_bytes() if transport is not None else 0

    def close(self) -> None:
        """Flush and end the transport gracefully, then dispose.

        WebSocket: Close 1000 after the queued frames; SSE: the stream ends; long polling:
        queued bytes go to the next poll and the poll after that gets 204, so disposal waits
        for that poll (or for the disconnect timeout).
        """
        if self._closing:
            return
        self._closing = True
        transport = self._transport
        if transport is None:
            self._dispose(None)
            return
        transport.close()
        if transport.kind is not TransportType.LONG_POLLING:
            self._transport = None
            self._dispose(None)

    def abort(self) -> None:
        """End now without flushing and dispose."""
        if self.status is ConnectionStatus.DISPOSED:
            return
        self._closing = True
        transport = self._transport
        self._transport = None
        if transport is not None:
            transport.abort()
        self._dispose(None)

    def park(self) -> bool:
        """Graceful server stop of a stateful connection (docs/spec/stateful-reconnect.md §5.5):
        drop the socket without a Close message, so the client reconnects with the same token
        (to another server), and keep the connection paused, buffering, until it is handed
        over or the disconnect timeout ends it. False when it has nothing to park."""
        transport = self._transport
        if (
            transport is None
            or self._closing
            or not self.stateful_reconnect
            or self.status is ConnectionStatus.DISPOSED
        ):
            return False
        self._transport = None
        self._paused = True
        self._set_inactive()
        app = self._application
        if app is not None:
            app.transport_paused()
        transport.abort()
        return True

    def pause_for_handover(self) -> None:
        """Another server claims this connection while its socket still looks alive here: the
        client's new socket went there, so this one is dead (as an upgrade with the same token
        would displace it, docs/spec/stateful-reconnect.md §5.3)."""
        if self._transport is not None:
            self.park()

    def hand_over(self) -> None:
        """The connection now lives on another server: forget it here without telling the
        application (no disconnect hooks run; docs/spec/stateful-reconnect.md §5.4)."""
        if self.status is ConnectionStatus.DISPOSED:
            return
        self.status = ConnectionStatus.DISPOSED
        self._closing = True
        transport = self._transport
        self._transport = None
        if transport is not None:
            transport.abort()
        self._manager._remove(self)

    # --- transport side -------------------------------------------------------------------

    def attach_transport(self, transport: ServerTransport, request: HttpRequestInfo) -> bool:
        """Make ``transport`` current. Returns True when this starts the connection (the
        endpoint then creates the application); on a stateful re-attach the application
        gets ``transport_resumed()``.
        """
        first = self._transport_type is TransportType.NONE
        old = self._transport
        self._transport = transport
        self._transport_type = transport.kind
        self._request = request.without_credentials()
        self.status = ConnectionStatus.ACTIVE
        self._manager._mark_active(self)
        if first:
            return True
        app = self._application
        if old is not None and old is not transport and old.kind is TransportType.WEB_SOCKETS:
            # A reconnecting client whose old socket we still think is alive
            # (docs/spec/stateful-reconnect.md §5.3: the new
            # upgrade cancels the old socket). Keep the application's state machine simple:
            # it sees a pause followed by a resume.
            old.abort()
            if app is not None and not self._paused:
                app.transport_paused()
            self._paused = True
        if self._paused:
            self._paused = False
            if app is not None:
                app.transport_resumed()
        return False

    def transport_data(self, data: bytes) -> None:
        """Bytes from the client go straight to the application (kept until it exists)."""
        if self.status is ConnectionStatus.DISPOSED:
            return
        app = self._application
        if app is not None:
            app.data_received(data)
        elif self._early is None:
            self._early = bytearray(data)
        else:
            self._early += data

    def early_data_size(self) -> int:
        """Bytes received before the application started."""
        return len(self._early) if self._early is not None else 0

    def deliver_early_data(self) -> None:
        """Hand bytes POSTed before the transport started to the new application."""
        early = self._early
        app = self._application
        if early is not None and app is not None:
            self._early = None
            app.data_received(bytes(early))

    def transport_closed(
        self, transport: object, graceful: bool, exc: BaseException | None
    ) -> None:
        """A transport ended on the client's side (or finished its graceful close)."""
        if transport is not self._transport or self.status is ConnectionStatus.DISPOSED:
            return  # a displaced transport, or already disposed
        self._transport = None
        if (
            self.stateful_reconnect
            and not graceful
            and isinstance(exc, ConnectionLostError)
            and not self._closing
        ):
            # docs/spec/stateful-reconnect.md §5.3: an ungraceful WebSocket loss keeps a stateful
            # connection alive for the
            # disconnect timeout; the application buffers outgoing messages meanwhile.
            self._paused = True
            self._set_inactive()
            app = self._application
            if app is not None:
                app.transport_paused()
            return
        self._dispose(exc)

    def poll_active(self, active: bool) -> None:
        """Long polling: a poll is parked (active) or none is (the disconnect timer runs)."""
        if self.status is ConnectionStatus.DISPOSED:
            return
        if active:
            self.status = ConnectionStatus.ACTIVE
            self._manager._mark_active(self)
        else:
            self._set_inactive()

    def _set_inactive(self) -> None:
        self.status = ConnectionStatus.INACTIVE
        self.last_seen = self._manager.clock()
        self._manager._mark_inactive(self)

    def _expire(self) -> None:
        # Disconnect timeout elapsed while inactive (sweeper).
        exc: BaseException | None = None
        if self._paused:
            exc = TransportError("The stateful reconnect window expired.")
        transport = self._transport
        self._transport = None
        if transport is not None:
            transport.abort()
        self._closing = True
        self._dispose(exc)

    def _dispose(self, exc: BaseException | None) -> None:
        if self.status is ConnectionStatus.DISPOSED:
            return
        self.status = ConnectionStatus.DISPOSED
        self._closing = True
        self._manager._remove(self)
        app = self._application
        if app is not None:
            # Deferred one tick: dispose is often triggered from inside the application's
            # own call (close/abort), and re-entering it there invites ordering bugs.
            self._manager.loop.call_soon(_notify_lost, app, exc)


def _notify_lost(app: ConnectionApplication, exc: BaseException | None) -> None:
    try:
        app.connection_lost(exc)
    except Exception:
        logger.exception("connection_lost raised")


class ConnectionManager:
    """Token registry plus the disconnect sweep for one endpoint.

    Args:
        options: ``disconnect_timeout``, ``max_connections``, ``tenant_of`` and
            ``max_tenant_connections`` are used here.
        clock: Monotonic seconds (injected in tests).
        sweep_interval: Seconds between sweeps of the sweeper task.
    """

    def __init__(
        self,
        options: ConnectionOptions,
        clock: Clock = time.monotonic,
        sweep_interval: float = 1.0,
    ) -> None:
        self.options = options
        self.clock = clock
        self.sweep_interval = sweep_interval
        self._connections: dict[str, HttpConnectionContext] = {}
        # Insertion-ordered set of inactive connections: the sweep only looks at these.
        self._inactive: dict[HttpConnectionContext, None] = {}
        self._sweeper: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # Live connections per tenant (ConnectionOptions.tenant_of), negotiated ones included.
        self._tenants: dict[str, int] = {}

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The event loop the connections live on."""
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    def __len__(self) -> int:
        return len(self._connections)

    def __iter__(self) -> Iterator[HttpConnectionContext]:
        return iter(list(self._connections.values()))

    def at_capacity(self) -> bool:
        """True when ``max_connections`` live connections exist."""
        limit = self.options.max_connections
        return limit is not None and len(self._connections) >= limit

    def tenant_of(self, principal: Principal | None) -> str | None:
        """The tenant ``principal`` is counted under (None = not counted)."""
        key = self.options.tenant_of
        if key is None or principal is None:
            return None
        return key(principal)

    def tenant_count(self, tenant: str) -> int:
        """Live connections of ``tenant`` (negotiated ones included)."""
        return self._tenants.get(tenant, 0)

    def tenant_at_capacity(self, principal: Principal | None) -> bool:
        """True when one more connection of ``principal``'s tenant would exceed
        ``max_tenant_connections``."""
        limit = self.options.max_tenant_connections
        if limit is None:
            return False
        tenant = self.tenant_of(principal)
        return tenant is not None and self._tenants.get(tenant, 0) >= limit

    def create(
        self,
        request: HttpRequestInfo,
        principal: Principal | None,
        negotiate_version: int,
        stateful_negotiated: bool = False,
    ) -> HttpConnectionContext:
        """Register a new connection (inactive until a transport starts).

        In negotiate version 0 the token *is* the connection id (docs/spec/negotiate.md §1.3).
        """
        connection_id = new_connection_id()
        if negotiate_version == 0:
            token = connection_id
        elif stateful_negotiated:
            token = new_resumable_token(connection_id)
        else:
            token = new_connection_id()
        ctx = HttpConnectionContext(
            self,
            ConnectionId(connection_id),
            ConnectionToken(token),
            request,
            principal,
            negotiate_version,
            stateful_negotiated,
        )
        return self._register(ctx, principal)

    def adopt(
        self, token: str, request: HttpRequestInfo, principal: Principal | None
    ) -> HttpConnectionContext:
        """Register a stateful WebSocket connection resumed from another server
        (docs/spec/stateful-reconnect.md §5.4): same id and token, paused, so the transport that
        attaches next resumes it instead of starting an application.

        Raises:
            ValueError: ``token`` is not a resumable token.
        """
        connection_id = claimed_connection_id(token)
        if connection_id is None:
            raise ValueError("not a resumable connection token")
        ctx = HttpConnectionContext(
            self,
            ConnectionId(connection_id),
            ConnectionToken(token),
            request,
            principal,
            1,
            True,
        )
        ctx._transport_type = TransportType.WEB_SOCKETS
        ctx._paused = True
        return self._register(ctx, principal)

    def _register(
        self, ctx: HttpConnectionContext, principal: Principal | None
    ) -> HttpConnectionContext:
        token = ctx.connection_token
        tenant = self.tenant_of(principal)
        if tenant is not None:
            ctx.tenant = tenant
            self._tenants[tenant] = self._tenants.get(tenant, 0) + 1
        self._connections[token] = ctx
        self._inactive[ctx] = None
        self._ensure_sweeper()
        return ctx

    def get(self, token: str) -> HttpConnectionContext | None:
        """The live connection with ``token``, or None."""
        return self._connections.get(token)

    def sweep(self, now: float | None = None) -> int:
        """Dispose connections inactive for ``disconnect_timeout``; returns how many."""
        if now is None:
            now = self.clock()
        deadline = now - self.options.disconnect_timeout
        expired = []
        for ctx in self._inactive:
            if ctx.last_seen > deadline:
                break  # ordered by last_seen: the rest are younger
            expired.append(ctx)
        for ctx in expired:
            ctx._expire()
        return len(expired)

    def _ensure_sweeper(self) -> None:
        if self._sweeper is None or self._sweeper.done():
            self._sweeper = self.loop.create_task(self._sweep_forever())

    async def _sweep_forever(self) -> None:
        while self._connections:
            await asyncio.sleep(self.sweep_interval)
            try:
                self.sweep()
            except Exception:
                logger.exception("disconnect sweep failed")
        # No connections left: the task ends; the next create() starts a new one.

    async def stop(self) -> None:
        """Cancel the sweeper task."""
        task = self._sweeper
        self._sweeper = None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _mark_active(self, ctx: HttpConnectionContext) -> None:
        self._inactive.pop(ctx, None)

    def _mark_inactive(self, ctx: HttpConnectionContext) -> None:
        # Re-insert so the dict stays ordered by last_seen.
        self._inactive.pop(ctx, None)
        self._inactive[ctx] = None

    def _remove(self, ctx: HttpConnectionContext) -> None:
        self._inactive.pop(ctx, None)
        if self._connections.get(ctx.connection_token) is ctx:
            del self._connections[ctx.connection_token]
            tenant = ctx.tenant
            if tenant is not None:
                left = self._tenants[tenant] - 1
                if left:
                    self._tenants[tenant] = left
                else:
                    del self._tenants[tenant]


if TYPE_CHECKING:
    # Static proof that the context satisfies the shared contract.
    def _conforms(ctx: HttpConnectionContext) -> ConnectionContext:
        return ctx
