"""What a hub connection needs from the handler that created it: services, hooks and tasks.

Protocols only, so the dependencies run one way: the handler
(:class:`~hubserver.hub.handler.HubConnectionHandler`) implements them, and the connection
(:mod:`hubserver.hub.connection`) and its inbound side (:mod:`hubserver.hub.inbound`) use them
without importing the handler. They are generic in the connection type the handler's hooks
take, which the inbound side does not need to know.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, Protocol, TypeVar

from hubserver.hub.hub import GroupManager
from hubserver.hub.stats import HubStats
from hubserver.lifetime.base import HubLifetimeManager
from hubserver.options import HubOptions
from hubserver.protocol.messages import InvocationMessage, StreamInvocationMessage

__all__ = ["ConnectionHost", "Invoker"]

ConnT = TypeVar("ConnT", contravariant=True)


class Invoker(Protocol[ConnT]):
    """Runs the hub's code for a connection (the handler's dispatcher)."""

    async def on_connected(self, connection: ConnT) -> None:
        """Run ``Hub.on_connected``; an exception closes the connection with an error."""
        ...

    async def on_disconnected(self, connection: ConnT, exception: BaseException | None) -> None:
        """Run ``Hub.on_disconnected``; never raises."""
        ...

    async def dispatch(
        self, connection: ConnT, message: InvocationMessage | StreamInvocationMessage
    ) -> None:
        """Handle one Invocation/StreamInvocation, in arrival order."""
        ...


class ConnectionHost(Protocol[ConnT]):
    """What a connection needs from the handler that created it: the shared services, a
    clock, counters, and a place to run and forget its tasks."""

    @property
    def options(self) -> HubOptions:
        """Options shared by the hub's connections."""
        ...

    @property
    def lifetime(self) -> HubLifetimeManager:
        """Where the connection is registered for broadcasts."""
        ...

    @property
    def group_manager(self) -> GroupManager:
        """The hub's group manager (``Hub.groups``)."""
        ...

    @property
    def dispatcher(self) -> Invoker[ConnT]:
        """Runs hub methods and hooks."""
        ...

    @property
    def stats(self) -> HubStats:
        """Counters the connection increments."""
        ...

    @property
    def clock(self) -> Callable[[], float]:
        """Monotonic clock in seconds."""
        ...

    def spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run ``coro`` as a task the host tracks (and waits for on shutdown)."""
        ...

    def forget(self, connection: ConnT) -> None:
        """The connection is closed and its hooks ran: drop it."""
        ...
