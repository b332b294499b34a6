"""An in-process :class:`~hubserver.lifetime.bus.Bus`, for tests and embedded use.

Several :class:`LoopbackBus` objects attached to one :class:`LoopbackBroker` behave like
several servers on one Redis: each :class:`~hubserver.lifetime.pubsub.PubSubLifetimeManager`
gets its own bus, publishes reach every bus subscribed to the channel (the sender's too), in
publish order, asynchronously. It proves the bus seam (the lifetime conformance suites run on
it) and lets an application run several hubs' managers in one process without Redis. It is not
a deployment backplane: nothing leaves the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from hubserver.errors import BackplaneError
from hubserver.lifetime.bus import OnReady, Receive

__all__ = ["LoopbackBroker", "LoopbackBus"]

logger = logging.getLogger("hubserver.lifetime.loopback")

_QUEUE_LIMIT = 100_000
"""Most undelivered messages per bus; beyond it publishes fail (a stuck receiver is a bug)."""


class LoopbackBroker:
    """The shared "server" a set of :class:`LoopbackBus` objects publish through."""

    __slots__ = ("_buses",)

    def __init__(self) -> None:
        self._buses: list[LoopbackBus] = []

    def bus(self) -> LoopbackBus:
        """A new bus attached to this broker (one per lifetime manager)."""
        bus = LoopbackBus(self)
        self._buses.append(bus)
        return bus

    def publish(self, channel: str, data: bytes) -> int:
        """Queue ``data`` for every started bus subscribed to ``channel``; the receiver count.

        Raises:
            BackplaneError: a receiver's queue is full.
        """
        receivers = 0
        for bus in self._buses:
            if bus.accepts(channel):
                bus.enqueue(channel, data)
                receivers += 1
        return receivers

    def subscribers(self, channel: str) -> int:
        """How many started buses subscribe ``channel`` (for tests and diagnostics)."""
        return sum(1 for bus in self._buses if bus.accepts(channel))


class LoopbackBus:
    """One server's connection to a :class:`LoopbackBroker`.

    Messages are delivered by one task per bus, in arrival order, so the ordering contract of
    :class:`~hubserver.lifetime.bus.Bus` holds. Build it with :meth:`LoopbackBroker.bus`.
    """

    __slots__ = ("_broker", "_channels", "_pump", "_queue", "_receive")

    def __init__(self, broker: LoopbackBroker) -> None:
        self._broker = broker
        self._channels: set[str] = set()
        self._queue: asyncio.Queue[tuple[str, bytes]] | None = None
        self._pump: asyncio.Task[None] | None = None
        self._receive: Receive | None = None

    def accepts(self, channel: str) -> bool:
        """True when started and subscribed to ``channel``."""
        return self._queue is not None and channel in self._channels

    def enqueue(self, channel: str, data: bytes) -> None:
        """Queue one message for delivery (called by the broker).

        Raises:
            BackplaneError: the queue is full.
        """
        queue = self._queue
        if queue is None:
            return
        try:
            queue.put_nowait((channel, data))
        except asyncio.QueueFull:
            raise BackplaneError("A loopback bus receiver is not keeping up.") from None

    async def start(self, receive: Receive, on_ready: OnReady) -> None:
        """Start delivering; ready at once (idempotent)."""
        if self._queue is not None:
            return
        self._receive = receive
        self._queue = asyncio.Queue(_QUEUE_LIMIT)
        self._pump = asyncio.get_running_loop().create_task(self._deliver_forever(self._queue))
        on_ready()

    async def stop(self) -> None:
        """Stop delivering and drop what is queued (idempotent)."""
        self._queue = None
        pump, self._pump = self._pump, None
        if pump is not None:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump

    async def publish(self, channel: str, data: bytes) -> int:
        """Hand ``data`` to the broker; the number of buses that will receive it.

        Raises:
            BackplaneError: this bus is not started, or a receiver's queue is full.
        """
        if self._queue is None:
            raise BackplaneError("The loopback bus is not started.")
        return self._broker.publish(channel, data)

    async def subscribe(self, channel: str) -> None:
        """Receive ``channel`` from now on."""
        self._channels.add(channel)

    async def unsubscribe(self, channel: str) -> None:
        """Stop receiving ``channel``."""
        self._channels.discard(channel)

    async def _deliver_forever(self, queue: asyncio.Queue[tuple[str, bytes]]) -> None:
        receive = self._receive
        assert receive is not None
        while True:
            # Like Redis, a message published while we subscribed is delivered even if we
            # unsubscribed since; the manager drops messages of channels it no longer wants.
            channel, data = await queue.get()
            try:
                await receive(channel, data)
            except Exception:
                # The manager's receive never raises; a bug there must not stop the pump.
                logger.exception("loopback.receive_failed channel=%s", channel)
