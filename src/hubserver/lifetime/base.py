"""The lifetime-manager interface: how the hub reaches connections (cf. HubLifetimeManager.cs).

Lifetime managers route messages to connections. They never import the hub layer: they see a
connection only as a :class:`ConnectionSink` (``HubConnection`` satisfies it structurally).
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from hubserver.lifetime.resume import Claim, ResumeRefused, ResumeSource
from hubserver.protocol.serialized import SerializedMessage
from hubserver.types import ConnectionId, GroupName, UserId


class ConnectionSink(Protocol):
    """What a lifetime manager needs from a connection."""

    @property
    def connection_id(self) -> ConnectionId:
        """Public connection id."""
        ...

    @property
    def user_id(self) -> UserId | None:
        """User id of the authenticated principal (``Clients.user`` targeting), if any."""
        ...

    def write_serialized(self, message: SerializedMessage) -> None:
        """Queue a serialized message for this connection. Never blocks, never raises:
        a connection that cannot keep up applies its slow-consumer policy itself."""
        ...

    async def invoke_client(self, target: str, args: Sequence[Any], timeout: float) -> Any:  # noqa: ASYNC109
        """Client result: send an Invocation with an id and await the client's Completion.

        Raises:
            HubError: the client answered with an error, or did not answer within ``timeout``.
        """
        ...


class HubLifetimeManager(abc.ABC):
    """Tracks connections, groups and users, and delivers messages to them.

    Every ``send_*`` builds the Invocation once and wraps it in a :class:`SerializedMessage`
    so each protocol serializes it once. Sends to connections that do not exist are no-ops,
    as in ASP.NET Core. Group names are case-sensitive strings.
    """

    async def start(self) -> None:  # noqa: B027  # pragma: no cover - trivial default
        """Start background work (backplane subscriptions). Default: nothing."""

    async def stop(self) -> None:  # noqa: B027  # pragma: no cover - trivial default
        """Stop background work and release resources. Default: nothing."""

    @abc.abstractmethod
    async def on_connected(self, connection: ConnectionSink) -> None:
        """A connection finished its handshake and can receive messages."""

    @abc.abstractmethod
    async def on_disconnected(self, connection: ConnectionSink) -> None:
        """A connection ended: forget it and remove it from all groups."""

    @abc.abstractmethod
    async def send_all(
        self, method: str, args: Sequence[Any], exclude: Iterable[ConnectionId] = ()
    ) -> None:
        """Send to every connection (``Clients.All`` / ``AllExcept``)."""

    @abc.abstractmethod
    async def send_connections(
        self, connection_ids: Iterable[ConnectionId], method: str, args: Sequence[Any]
    ) -> None:
        """Send to the given connections (``Clients.Client(s)``)."""

    @abc.abstractmethod
    async def send_groups(
        self,
        groups: Iterable[GroupName],
        method: str,
        args: Sequence[Any],
        exclude: Iterable[ConnectionId] = (),
    ) -> None:
        """Send to the members of the groups; a connection in several groups gets it once per
        group it is targeted through, as ASP.NET Core does (``Groups`` sends per group)."""

    @abc.abstractmethod
    async def send_users(
        self, user_ids: Iterable[UserId], method: str, args: Sequence[Any]
    ) -> None:
        """Send to every connection of the users (``Clients.User(s)``)."""

    @abc.abstractmethod
    async def add_to_group(self, connection_id: ConnectionId, group: GroupName) -> None:
        """Add a connection (local or, for backplanes, remote) to a group."""

    @abc.abstractmethod
    async def remove_from_group(self, connection_id: ConnectionId, group: GroupName) -> None:
        """Remove a connection from a group."""

    @abc.abstractmethod
    async def invoke_connection(
        self,
        connection_id: ConnectionId,
        method: str,
        args: Sequence[Any],
        timeout: float,  # noqa: ASYNC109
    ) -> Any:
        """Client result from one connection (local or remote).

        Raises:
            HubError: ``Connection '<id>' does not exist.``, the client's error, or a timeout.
        """

    # --- cross-server resume (docs/spec/stateful-reconnect.md §5.4) ------------------------

    @property
    def supports_resume(self) -> bool:
        """True when a stateful connection can resume on another server of this backplane.
        Default: False (one process: nowhere else to resume)."""
        return False

    def set_resume_source(self, source: ResumeSource) -> None:  # noqa: B027
        """Register the hub layer that offers and hands over this server's connections when
        another server claims them. Default: nothing (no claims can arrive)."""

    async def claim(self, token: str, user_id: str | None, timeout: float) -> Claim:  # noqa: ASYNC109
        """Take over the connection ``token`` claims from the server that owns it.

        On success the connection is registered here with a placeholder that keeps what
        arrives for it until :meth:`adopt` replaces it.

        Raises:
            ResumeRefused: 404 (nowhere, or not in time), 403 (another user's connection).
        """
        raise ResumeRefused(404, "no other server to resume from")

    def adopt(self, connection_id: ConnectionId, connection: ConnectionSink) -> None:
        """Replace a claimed connection's placeholder by the resumed ``connection`` and write
        to it, in order, what the placeholder kept.

        Raises:
            KeyError: no claim of ``connection_id`` completed here.
        """
        raise KeyError(connection_id)

    def abandon(self, connection_id: ConnectionId) -> None:  # noqa: B027
        """Forget a completed claim whose connection could not be built here."""

    def local_connection_count(self) -> int:
        """Connections hosted by this process (for metrics and limits)."""
        return 0

    def is_healthy(self) -> bool:
        """False while the backplane cannot deliver (``/readyz``)."""
        return True

    def stats(self) -> dict[str, int | float]:
        """Counters and gauges for ``/metrics``; a manager reports only what it tracks.

        Keys a backplane may report: ``publishes``, ``publish_failures``,
        ``messages_received``, ``echoes_skipped``, ``canary_failures``, ``bad_payloads``,
        ``local_connections``, ``local_groups``, ``subscriptions``, ``healthy`` (0/1), and from
        its bus ``reconnects``, ``connection_failures``, ``canary_repairs``,
        ``publish_batches``, ``state`` (0 stopped, 1 connecting, 2 connected).
        Default: nothing (a single process has no backplane to report on).
        """
        return {}
