"""The message bus a pub/sub backplane runs over: publish, subscribe, unsubscribe.

A new backplane is one class satisfying :class:`Bus` (and, when it has a connection that can
drop, :class:`BusHealth`), handed to :class:`~hubserver.lifetime.pubsub.PubSubLifetimeManager`;
routing, echo suppression, group commands with acks, client results across servers and the
canary stay in the manager. The conformance suites under ``tests/hubserver/lifetime/`` run
against every bus (docs/spec/backplane.md §6.8).

Contract of a bus (what the manager relies on):

* **Order.** Messages published by one bus on any channels reach each subscriber in publish
  order, and a subscriber receives its own publishes on channels it subscribes (the manager
  skips its own echoes).
* **Subscriptions survive outages.** :meth:`Bus.subscribe` and :meth:`Bus.unsubscribe` may be
  called before :meth:`Bus.start` and while the bus is disconnected; they never raise. The bus
  keeps the wanted channel set and (re)subscribes all of it whenever it (re)connects, and calls
  ``on_ready`` once every wanted channel is in effect.
* **Failures are loud.** :meth:`Bus.publish` raises :class:`~hubserver.errors.BackplaneError`
  when the message cannot be handed over, and returns how many subscribers received it
  (0 means "nobody listens there", which client results rely on).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Protocol, runtime_checkable

__all__ = ["Bus", "BusHealth", "OnReady", "Receive"]

Receive = Callable[[str, bytes], Awaitable[None]]
"""Called by the bus for every message: ``(channel, data)``, awaited in arrival order."""

OnReady = Callable[[], None]
"""Called by the bus when it (re)connected and every wanted channel is subscribed."""


class Bus(Protocol):
    """An ordered publish/subscribe transport shared by the servers of one deployment."""

    async def start(self, receive: Receive, on_ready: OnReady) -> None:
        """Connect and start delivering messages of the subscribed channels to ``receive``.

        May return before the bus is connected (the backplane then reports unhealthy until
        ``on_ready`` runs); must not raise because the bus is unreachable.
        """
        ...

    async def stop(self) -> None:
        """Stop delivering, fail publishes in flight, release connections (idempotent)."""
        ...

    async def publish(self, channel: str, data: bytes) -> int:
        """Hand ``data`` to every subscriber of ``channel``; return how many there were.

        Raises:
            BackplaneError: the bus is not started or cannot be reached.
        """
        ...

    async def subscribe(self, channel: str) -> None:
        """Add ``channel`` to the wanted set (idempotent, never raises)."""
        ...

    async def unsubscribe(self, channel: str) -> None:
        """Remove ``channel`` from the wanted set (idempotent, never raises)."""
        ...


@runtime_checkable
class BusHealth(Protocol):
    """Optional: a bus whose connection can drop reports readiness and can be repaired.

    Without it the manager considers the bus always ready and a failed canary cannot be
    repaired, only reported.
    """

    def is_ready(self) -> bool:
        """True while the subscription side is connected and subscribed."""
        ...

    async def repair(self) -> None:
        """Drop the subscription connection and subscribe every wanted channel again.

        Called when the canary found a subscription that is connected but receives nothing.
        """
        ...

    def stats(self) -> Mapping[str, int | float]:
        """Bus-specific counters merged into the manager's ``stats()``."""
        ...
