"""The per-hub factory and host of :class:`HubConnection` objects (cf. HubConnectionHandler.cs).

The handler owns what all connections of a hub share: the method table (dispatcher), the
lifetime manager, options, the clock, the single keep-alive/timeout ticker, the background
tasks and the counters exported as metrics. Connections see it as their
:class:`~hubserver.hub.host.ConnectionHost`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import asdict
from typing import Any, TypeVar

from hubserver.connections.context import ConnectionContext
from hubserver.hub import _log
from hubserver.hub.activator import HubActivator
from hubserver.hub.connection import HubConnection
from hubserver.hub.dispatcher import HubDispatcher
from hubserver.hub.filters import AnyHubFilter
from hubserver.hub.hub import GroupManager, Hub, HubContext
from hubserver.hub.stats import HubStats
from hubserver.hub.ticker import Ticker
from hubserver.lifetime.base import HubLifetimeManager
from hubserver.options import HubOptions

__all__ = ["HubConnectionHandler", "HubStats"]

H = TypeVar("H", bound=Hub)


class HubConnectionHandler:
    """Creates and tracks the hub connections of one hub.

    Args:
        hub_cls: The :class:`Hub` subclass serving invocations.
        lifetime: Where connections are registered and broadcasts routed.
        options: Hub options (timeouts, limits, protocols).
        clock: Monotonic clock in seconds (injected in tests).
        wall_clock: Unix time, for ``Principal.expires_at``.
        tick_interval: Period of the shared keep-alive/timeout ticker.
        auto_tick: Run the ticker as a background task; tests pass False and call
            :meth:`tick` after advancing a fake clock.
        filters: Hub filters (:mod:`hubserver.hub.filters`), first = outermost.
        activator: Creates and releases hub instances (:mod:`hubserver.hub.activator`);
            ``hub_cls()`` when None.
    """

    def __init__(
        self,
        hub_cls: type[H],
        lifetime: HubLifetimeManager,
        options: HubOptions | None = None,
        clock: Callable[[], float] = time.monotonic,
        *,
        wall_clock: Callable[[], float] = time.time,
        tick_interval: float = 1.0,
        auto_tick: bool = True,
        filters: Sequence[AnyHubFilter] = (),
        activator: HubActivator[H] | None = None,
    ) -> None:
        self.hub_cls: type[Hub] = hub_cls
        self.activator: HubActivator[Any] | None = activator
        """The activator the hub was mapped with (None: ``hub_cls()``)."""
        self.lifetime = lifetime
        self.options = options if options is not None else HubOptions()
        self.clock = clock
        self.wall_clock = wall_clock
        self.dispatcher = HubDispatcher(
            hub_cls, self.options.detailed_errors, filters=filters, activator=activator
        )
        self.group_manager = GroupManager(lifetime)
        self.hub_context = HubContext(lifetime, self.options.client_result_timeout)
        self.stats = HubStats()
        # Insertion-ordered set of every live connection, handshake pending or not.
        self._connections: dict[HubConnection, None] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._ticker = Ticker(self.tick, lambda: bool(self._connections), tick_interval, auto_tick)

    def create_application(self, ctx: ConnectionContext) -> HubConnection:
        """The :class:`~hubserver.transports.base.ConnectionApplication` for a new connection.

        The caller attaches it (``ctx.set_application``); the handshake timer starts now.
        """
        connection = HubConnection(self, ctx, self.clock())
        self._connections[connection] = None
        self._ticker.ensure_running()
        return connection

    def local_connections(self) -> list[HubConnection]:
        """Connections of this process that completed the handshake and are not closing."""
        return [c for c in self._connections if c.is_connected]

    def connection_count(self) -> int:
        """Live connections including those still in the handshake."""
        return len(self._connections)

    def tick(self) -> None:
        """One timer pass over every connection (handshake timeout, keep-alive Ping, client
        timeout, token expiry, stateful Acks). Called every second by the ticker."""
        now = self.clock()
        wall = self.wall_clock()
        for connection in list(self._connections):
            try:
                connection.tick(now, wall)
            except Exception:
                _log.logger.exception(
                    "%s connection_id=%s", _log.TICK_FAILED, connection.connection_id
                )

    async def shutdown(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Close every connection with ``allowReconnect: true`` and wait (bounded) for
        their disconnect hooks."""
        for connection in list(self._connections):
            connection.server_shutdown()
        await self.drain(timeout)
        await self._ticker.stop()

    async def drain(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Wait up to ``timeout`` seconds for background tasks (disconnect hooks, streams)."""
        deadline = time.monotonic() + timeout
        while self._tasks:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            await asyncio.wait(tuple(self._tasks), timeout=remaining)

    def stats_snapshot(self) -> dict[str, int]:
        """Counters plus the current connection count, for ``/metrics``."""
        data = asdict(self.stats)
        data["connections_current"] = len(self._connections)
        return data

    # -- ConnectionHost ------------------------------------------------------------------------

    def spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run a connection's task; :meth:`drain` waits for it."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            _log.logger.error(_log.TASK_FAILED, exc_info=task.exception())

    def forget(self, connection: HubConnection) -> None:
        """Drop a connection that closed and ran its disconnect hooks."""
        self._connections.pop(connection, None)
