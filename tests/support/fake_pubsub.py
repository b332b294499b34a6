"""An in-memory pub/sub bus for the Redis lifetime manager (cf. TestConnectionMultiplexer.cs).

It implements the small client surface ``hubserver.lifetime.redis`` uses (``RedisClient`` /
``PubSubConnection``): ``publish`` returns the receiver count like Redis, subscription
connections deliver in publish order, and faults can be injected:

* :meth:`FakeBus.stop` / :meth:`FakeBus.start`: Redis down/up. While down, every call raises
  ``redis.exceptions.ConnectionError`` and live subscription connections are dropped.
* :meth:`FakeBus.deafen`: subscription connections stay "connected" but silently receive
  nothing (the failure mode the canary exists for).
"""

from __future__ import annotations

import asyncio
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError

_DROPPED = object()


class FakePubSub:
    """One subscription connection."""

    def __init__(self, bus: FakeBus) -> None:
        self._bus = bus
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self.channels: set[str] = set()
        self.connected = False
        self.deaf = False
        self.closed = False

    def _check(self) -> None:
        if self.closed:
            raise RuntimeError("pubsub closed")
        if self._bus.down:
            raise RedisConnectionError("fake bus is down")
        if not self.connected:
            self.connected = True
            self._bus._pubsubs.add(self)

    async def subscribe(self, *channels: str) -> None:
        self._check()
        self._bus.commands.append(("SUBSCRIBE", *channels))
        self.channels.update(channels)

    async def unsubscribe(self, *channels: str) -> None:
        self._check()
        self._bus.commands.append(("UNSUBSCRIBE", *channels))
        self.channels.difference_update(channels)

    async def ping(self) -> None:
        self._check()
        self._queue.put_nowait({"type": "pong", "channel": None, "data": b""})

    async def get_message(
        self, ignore_subscribe_messages: bool = False, timeout: float | None = 0.0
    ) -> dict[str, Any] | None:
        self._check()
        try:
            async with asyncio.timeout(timeout):
                item = await self._queue.get()
        except TimeoutError:
            return None
        if item is _DROPPED:
            self.connected = False
            raise RedisConnectionError("connection dropped by the fake bus")
        return item

    async def aclose(self) -> None:
        self.closed = True
        self._bus._pubsubs.discard(self)

    def _deliver(self, channel: str, data: bytes) -> None:
        if not self.deaf:
            self._queue.put_nowait({"type": "message", "channel": channel.encode(), "data": data})

    def _drop(self) -> None:
        self._bus._pubsubs.discard(self)
        self._queue.put_nowait(_DROPPED)


class FakeRedisClient:
    """The publishing side; ``pubsub()`` makes subscription connections on the same bus."""

    def __init__(self, bus: FakeBus) -> None:
        self._bus = bus

    async def publish(self, channel: str, data: bytes) -> int:
        if self._bus.down:
            raise RedisConnectionError("fake bus is down")
        return self._bus.publish(channel, data)

    async def publish_many(self, messages: list[tuple[str, bytes]]) -> list[int]:
        if self._bus.down:
            raise RedisConnectionError("fake bus is down")
        return [self._bus.publish(channel, data) for channel, data in messages]

    def pubsub(self) -> FakePubSub:
        return FakePubSub(self._bus)

    async def aclose(self) -> None:
        return None


class FakeBus:
    """The shared "Redis server"."""

    def __init__(self) -> None:
        self.down = False
        self._pubsubs: set[FakePubSub] = set()
        self.published: list[tuple[str, bytes]] = []
        self.commands: list[tuple[str, ...]] = []

    def client(self) -> FakeRedisClient:
        """A client factory for ``RedisLifetimeManager(client_factory=bus.client)``."""
        return FakeRedisClient(self)

    def publish(self, channel: str, data: bytes) -> int:
        self.published.append((channel, data))
        receivers = 0
        for pubsub in list(self._pubsubs):
            if channel in pubsub.channels:
                receivers += 1  # Redis counts a deaf-but-registered subscriber too
                pubsub._deliver(channel, data)
        return receivers

    def subscribers(self, channel: str) -> int:
        return sum(1 for p in self._pubsubs if channel in p.channels)

    def stop(self) -> None:
        """Redis goes away: calls fail and live subscription connections are dropped."""
        self.down = True
        for pubsub in list(self._pubsubs):
            pubsub._drop()

    def start(self) -> None:
        """Redis is back."""
        self.down = False

    def deafen(self) -> None:
        """Every live subscription connection stops receiving, silently."""
        for pubsub in self._pubsubs:
            pubsub.deaf = True
