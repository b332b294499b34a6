"""The connection as the hub layer sees it.

:class:`ConnectionContext` is a Protocol so the hub layer and its in-memory test client can use
any implementation; the real one lives in ``connections.manager`` (``HttpConnectionContext``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from hubserver.protocol.base import HubProtocol
from hubserver.protocol.serialized import SerializedMessage
from hubserver.transports.base import ConnectionApplication, TransportType
from hubserver.types import ConnectionId, ConnectionToken


@dataclass(frozen=True, slots=True)
class HttpRequestInfo:
    """The HTTP request that created or (re)attached the connection.

    Header names are lower-case; ``query`` keeps the first value of each parameter.
    Never log ``query['access_token']`` or the ``authorization`` header.
    """

    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    client: tuple[str, int] | None = None
    scheme: str = "http"

    def without_credentials(self) -> HttpRequestInfo:
        """A copy without ``access_token`` and ``authorization`` (self when it has neither).

        The connection keeps the request that started its transport for as long as it lives
        (``ConnectionContext.request``); the credentials were needed only to authenticate it.
        Dropping them keeps a bearer token out of every later use of the request (logging a
        request must not leak it) and out of memory (~1 KB per connection).
        """
        if "access_token" not in self.query and "authorization" not in self.headers:
            return self
        return HttpRequestInfo(
            self.method,
            self.path,
            {k: v for k, v in self.query.items() if k != "access_token"},
            {k: v for k, v in self.headers.items() if k != "authorization"},
            self.client,
            self.scheme,
        )


@dataclass(slots=True)
class Principal:
    """An authenticated user, as returned by the endpoint's authentication hook.

    Attributes:
        user_id: Used for ``Clients.user(...)`` targeting (JWT ``sub``).
        claims: All claims, for the application's own authorization.
        expires_at: Unix time after which the connection is closed with
            ``allowReconnect: true`` (CloseOnAuthenticationExpiration), or None.
    """

    user_id: str
    claims: Mapping[str, Any] = field(default_factory=dict)
    expires_at: float | None = None


class ConnectionContext(Protocol):
    """One logical SignalR connection, whatever its transport."""

    @property
    def connection_id(self) -> ConnectionId:
        """Public id."""
        ...

    @property
    def connection_token(self) -> ConnectionToken:
        """Secret id used by transport requests."""
        ...

    @property
    def transport(self) -> TransportType:
        """Transport in use."""
        ...

    @property
    def request(self) -> HttpRequestInfo:
        """The request that started the connection (without ``access_token``/``authorization``)."""
        ...

    @property
    def principal(self) -> Principal | None:
        """The authenticated user, if the endpoint has an authentication hook."""
        ...

    @property
    def items(self) -> dict[str, Any]:
        """Free-form per-connection state for the application."""
        ...

    @property
    def has_inherent_keepalive(self) -> bool:
        """True for long polling: no pings, no client-timeout (docs/spec/transports.md §2.4)."""
        ...

    @property
    def stateful_reconnect(self) -> bool:
        """Negotiated ``useStatefulReconnect`` and on WebSockets."""
        ...

    def set_application(self, app: ConnectionApplication) -> None:
        """Attach the layer above; it receives data and lifecycle callbacks from now on."""
        ...

    def send(self, payload: bytes, binary: bool) -> None:
        """Queue one transport message holding whole records. Never blocks.

        ``binary`` picks WebSocket Binary frames (MessagePack) vs Text frames (JSON).
        Sends from one event-loop tick may be coalesced into one socket write.
        """
        ...

    def send_serialized(self, message: SerializedMessage, protocol: HubProtocol) -> int:
        """Like ``send`` for a broadcast: the transport caches its framing on ``message``.

        Returns the bytes now buffered for this connection (as :meth:`buffered_bytes`, possibly
        as of the last socket write): the hot path's slow-consumer check costs no extra call.
        """
        ...

    def broadcast_sender(self) -> Callable[[SerializedMessage, HubProtocol], int] | None:
        """The current transport's ``send_serialized``, for a caller that will not outlive
        the transport (no stateful reconnect): the broadcast hot path skips this object.
        None when no transport is attached."""
        ...

    def buffered_bytes(self) -> int:
        """Bytes queued but not yet accepted by the socket (slow-consumer detection)."""
        ...

    def close(self) -> None:
        """Flush what is queued, then end the transport gracefully (WS close 1000, SSE end,
        LP 204 on the next poll) and dispose the connection."""
        ...

    def abort(self) -> None:
        """End immediately without flushing (slow consumer, protocol violation)."""
        ...
