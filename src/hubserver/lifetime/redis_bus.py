"""The Redis :class:`~hubserver.lifetime.bus.Bus` on ``redis.asyncio``: connections, listener,
reconnect.

This module owns the two Redis connections (a pooled one for PUBLISH, one for SUBSCRIBE), the
listener task, the publish batching, and the reconnect loop with bounded exponential backoff and
jitter. It knows nothing about hubs: routing is in :mod:`hubserver.lifetime.pubsub`. Both
connections come from :func:`hubserver.lifetime.redis_url.redis_client`, so with a Sentinel URL
every reconnect asks the sentinels for the current master (docs/scaleout.md "Redis high
availability").

Fault behaviour (docs/adr/0003-redis-backplane.md, docs/spec/backplane.md §6.6): while Redis is
down, publishes fail fast, :meth:`RedisBus.is_ready` is False and the listener keeps
reconnecting, then subscribes every wanted channel again; :meth:`RedisBus.repair` rebuilds a
subscription the canary found deaf.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from redis import exceptions as redis_exceptions
from redis.asyncio import Redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from hubserver.errors import BackplaneError
from hubserver.lifetime.bus import OnReady, Receive
from hubserver.lifetime.redis_url import parse_redis_url, redis_client

__all__ = [
    "STATE_CONNECTED",
    "STATE_CONNECTING",
    "STATE_STOPPED",
    "PubSubConnection",
    "RedisBus",
    "RedisClient",
]

logger = logging.getLogger("hubserver.lifetime.redis")

EVENT_CONNECTED = "backplane.connected"
EVENT_DISCONNECTED = "backplane.disconnected"
EVENT_REPAIRED = "backplane.repaired"

_MAX_BATCH = 512
"""Most PUBLISHes per pipeline round trip (bounds one write's size and the reply parse)."""

STATE_STOPPED = 0
STATE_CONNECTING = 1
STATE_CONNECTED = 2

# Everything a dead or unreachable Redis can raise through redis-py, plus socket errors.
_REDIS_ERRORS: tuple[type[BaseException], ...] = (
    redis_exceptions.RedisError,
    OSError,
    TimeoutError,
)

_LISTENER_ERRORS: tuple[type[BaseException], ...] = (*_REDIS_ERRORS, BackplaneError)


class PubSubConnection(Protocol):
    """The subset of ``redis.asyncio.client.PubSub`` the bus uses."""

    async def subscribe(self, *channels: str) -> Any:
        """Send SUBSCRIBE (replies arrive through :meth:`get_message`)."""
        ...

    def unsubscribe(self, *channels: str) -> Awaitable[Any]:
        """Send UNSUBSCRIBE for the given (non-empty) channels."""
        ...

    def ping(self) -> Awaitable[Any]:
        """Send PING; in subscribed mode the reply is a ``pong`` message."""
        ...

    async def get_message(
        self,
        ignore_subscribe_messages: bool = False,
        timeout: float | None = 0.0,  # noqa: ASYNC109 - redis-py's signature
    ) -> dict[str, Any] | None:
        """Next message (``type``, ``channel``, ``data``) or None after ``timeout``."""
        ...

    async def aclose(self) -> None:
        """Close the connection."""
        ...


class RedisClient(Protocol):
    """The subset of ``redis.asyncio.Redis`` the bus uses (the tests' fake Redis implements it)."""

    async def publish(self, channel: str, data: bytes) -> int:
        """PUBLISH; returns the number of subscribers that received it."""
        ...

    async def publish_many(self, messages: Sequence[tuple[str, bytes]]) -> list[int]:
        """PUBLISH several messages in one round trip (in order); receiver count of each."""
        ...

    def pubsub(self) -> PubSubConnection:
        """A new, unconnected subscription connection."""
        ...

    async def aclose(self) -> None:
        """Close every connection."""
        ...


class _RedisAdapter:
    """Adapts ``redis.asyncio.Redis`` to :class:`RedisClient` (typed, errors unchanged)."""

    __slots__ = ("_redis", "_subscriber")

    def __init__(self, url: str, connect_timeout: float, socket_timeout: float) -> None:
        # One immediate retry, no backoff: a pooled connection that died with a Redis restart is
        # replaced at once, and a Redis that is down fails fast instead of stalling senders.
        self._redis: Redis = redis_client(
            url,
            decode_responses=False,
            socket_connect_timeout=connect_timeout,
            socket_timeout=socket_timeout,
            retry=Retry(NoBackoff(), 1),
        )
        # Subscriptions get their own pool: a PubSub returns its connection to the pool it came
        # from when closed, and after a Redis restart that dead socket was then handed to the
        # next PUBLISH, losing the first message after reconnect while /readyz said ready.
        # No retries inside redis-py here: its default (10 attempts, up to ~4 s) would either
        # hide a lost subscription behind a silent reconnect, so readiness stayed true through
        # an outage, or stretch every reconnect attempt of the listener, which owns
        # reconnecting (with its own backoff) and resubscribes every channel itself.
        # With Sentinel, each client asks the sentinels for the master whenever it opens a
        # connection, so the reconnect after a failover reaches the promoted replica.
        self._subscriber: Redis = redis_client(
            url,
            decode_responses=False,
            socket_connect_timeout=connect_timeout,
            retry=Retry(NoBackoff(), 0),
        )

    async def publish(self, channel: str, data: bytes) -> int:
        return int(await self._redis.publish(channel, data))

    async def publish_many(self, messages: Sequence[tuple[str, bytes]]) -> list[int]:
        # Non-transactional pipeline: one write, one read, PUBLISHes executed in order.
        pipe = self._redis.pipeline(transaction=False)
        for channel, data in messages:
            pipe.publish(channel, data)
        return [int(n) for n in await pipe.execute()]

    def pubsub(self) -> PubSubConnection:
        pubsub: PubSubConnection = self._subscriber.pubsub()
        return pubsub

    async def aclose(self) -> None:
        try:
            await self._redis.aclose()
        finally:
            await self._subscriber.aclose()


class RedisBus:
    """Redis pub/sub as a :class:`~hubserver.lifetime.bus.Bus` with
    :class:`~hubserver.lifetime.bus.BusHealth`.

    Args:
        redis_url: Any URL :func:`~hubserver.lifetime.redis_url.parse_redis_url` accepts
            (``redis://``, ``rediss://``, ``unix://``, ``redis+sentinel://``).
        backoff_base: First reconnect delay (s); doubles per failed attempt.
        backoff_max: Upper bound of the reconnect delay (s).
        connect_timeout: Socket connect timeout, and how long :meth:`start` waits for Redis.
        socket_timeout: Timeout of PUBLISH round trips (s).
        client_factory: Builds the client (tests pass a fake Redis); default real Redis.
        jitter: Returns a float in [0, 1); the delay is ``d * (0.5 + jitter() / 2)``.
        server_name: The owning server's name, for log lines only.
    """

    def __init__(
        self,
        redis_url: str = "redis://127.0.0.1:6379/0",
        *,
        backoff_base: float = 0.1,
        backoff_max: float = 5.0,
        connect_timeout: float = 2.0,
        socket_timeout: float = 5.0,
        client_factory: Callable[[], RedisClient] | None = None,
        jitter: Callable[[], float] = random.random,
        server_name: str = "",
    ) -> None:
        if client_factory is None:
            parse_redis_url(redis_url)  # a bad URL fails here, not on the first reconnect
        self.redis_url = redis_url
        self.server_name = server_name
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.connect_timeout = connect_timeout
        self._client_factory: Callable[[], RedisClient] = client_factory or (
            lambda: _RedisAdapter(redis_url, connect_timeout, socket_timeout)
        )
        self._jitter = jitter
        self._receive: Receive | None = None
        self._on_ready_cb: OnReady | None = None
        self._client: RedisClient | None = None
        self._pubsub: PubSubConnection | None = None
        self._desired: set[str] = set()
        self._outbox: list[tuple[str, bytes, asyncio.Future[int]]] = []
        self._writer: asyncio.Task[None] | None = None
        self._batches = 0
        self._sent: set[str] = set()  # what the current subscription connection was sent
        self._command_lock = asyncio.Lock()
        self._ready = asyncio.Event()
        self._listener: asyncio.Task[None] | None = None
        self._state = STATE_STOPPED
        self._ever_connected = False
        self._attempt = 0
        self._reconnects = 0
        self._connection_failures = 0
        self._repairs = 0

    # --- lifecycle -----------------------------------------------------------------------

    async def start(self, receive: Receive, on_ready: OnReady) -> None:
        """Connect (waiting up to ``connect_timeout``) and start the listener (idempotent).

        Never fails because Redis is down: :meth:`is_ready` stays False and the listener keeps
        reconnecting.
        """
        if self._client is not None:
            return
        self._receive = receive
        self._on_ready_cb = on_ready
        self._client = self._client_factory()
        self._state = STATE_CONNECTING
        self._listener = asyncio.create_task(self._listen_forever())
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.connect_timeout):
                await self._ready.wait()

    async def stop(self) -> None:
        """Stop the listener, fail publishes in flight, close the Redis connections."""
        self._state = STATE_STOPPED
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await writer
        for _, _, future in self._outbox:
            if not future.done():
                future.set_exception(BackplaneError("The backplane was stopped."))
        self._outbox.clear()
        await self._stop_listener()
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(*_REDIS_ERRORS):
                await client.aclose()

    async def _stop_listener(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            # Timeouts use asyncio.timeout(), never wait_for(): on Python 3.11 wait_for() can
            # swallow a cancellation that races with its inner future completing, which would
            # leave the listener running forever. Re-cancel defensively (bounded).
            for _ in range(10):
                listener.cancel()
                done, _pending = await asyncio.wait({listener}, timeout=1.0)
                if done:
                    break
            with contextlib.suppress(asyncio.CancelledError, Exception):
                if listener.done():
                    listener.result()
        await self._close_pubsub()

    async def _close_pubsub(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        self._ready.clear()
        if pubsub is not None:
            with contextlib.suppress(*_REDIS_ERRORS, RuntimeError):
                await pubsub.aclose()

    # --- Bus -----------------------------------------------------------------------------

    async def publish(self, channel: str, data: bytes) -> int:
        """PUBLISH through the batching outbox; the receiver count Redis reported.

        Raises:
            BackplaneError: not started, or Redis failed the round trip.
        """
        # Publishes go through one outbox drained by one writer task: everything published
        # while a round trip is in flight leaves in the next pipeline (one write + one read
        # for the whole batch), and call order is publish order, so a broadcast followed by a
        # group command reaches Redis in that order, as with sequential awaits.
        if self._client is None:
            raise BackplaneError("The Redis backplane is not started.")
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._outbox.append((channel, data, future))
        writer = self._writer
        if writer is None or writer.done():
            self._writer = asyncio.create_task(self._drain_outbox())
        return await future

    async def _drain_outbox(self) -> None:
        outbox = self._outbox
        while outbox:
            batch = outbox[:_MAX_BATCH]
            del outbox[:_MAX_BATCH]
            client = self._client
            try:
                if client is None:
                    raise BackplaneError("The Redis backplane is not started.")
                if len(batch) == 1:
                    counts = [await client.publish(batch[0][0], batch[0][1])]
                else:
                    counts = await client.publish_many([(c, d) for c, d, _ in batch])
            except asyncio.CancelledError:
                # stop() cancelled us mid-round-trip: nobody may wait forever on this batch.
                for _, _, future in batch:
                    if not future.done():
                        future.set_exception(BackplaneError("The backplane was stopped."))
                raise
            except _LISTENER_ERRORS as exc:
                error = (
                    exc
                    if isinstance(exc, BackplaneError)
                    else BackplaneError(f"Redis PUBLISH failed: {exc}")
                )
                for _, _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
            self._batches += 1
            for (_, _, future), count in zip(batch, counts, strict=True):
                if not future.done():
                    future.set_result(count)

    async def subscribe(self, channel: str) -> None:
        """Want ``channel``; sent to Redis now when connected, else on (re)connect."""
        self._desired.add(channel)
        await self._apply(channel)

    async def unsubscribe(self, channel: str) -> None:
        """Stop wanting ``channel``."""
        self._desired.discard(channel)
        await self._apply(channel)

    async def _apply(self, channel: str) -> None:
        # While (re)connecting, only the desired set changes: _sync() sends the difference
        # before the connection is declared ready, so a hub handshake never waits on a Redis
        # that is down or black-holed. When connected, the lock keeps SUBSCRIBE/UNSUBSCRIBE in
        # call order.
        if self._state != STATE_CONNECTED:
            return
        async with self._command_lock:
            pubsub = self._pubsub
            if pubsub is None or self._state != STATE_CONNECTED:
                return
            wanted = channel in self._desired
            if wanted == (channel in self._sent):
                return
            try:
                if wanted:
                    self._sent.add(channel)
                    await pubsub.subscribe(channel)
                else:
                    self._sent.discard(channel)
                    await pubsub.unsubscribe(channel)
            except _REDIS_ERRORS:
                pass  # the listener sees the broken connection and resubscribes everything

    # --- BusHealth -----------------------------------------------------------------------

    def is_ready(self) -> bool:
        """True while the subscription connection is up and subscribed."""
        return self._state == STATE_CONNECTED

    def stats(self) -> dict[str, int | float]:
        """``reconnects``, ``connection_failures``, ``canary_repairs``, ``publish_batches``,
        ``state``."""
        return {
            "reconnects": self._reconnects,
            "connection_failures": self._connection_failures,
            "canary_repairs": self._repairs,
            "publish_batches": self._batches,
            "state": self._state,
        }

    async def repair(self) -> None:
        """Canary said deaf: drop the subscription connection and subscribe everything again."""
        self._repairs += 1
        logger.warning("%s server=%s", EVENT_REPAIRED, self.server_name)
        self._state = STATE_CONNECTING
        await self._stop_listener()
        if self._client is None:
            return
        self._listener = asyncio.create_task(self._listen_forever())
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.connect_timeout):
                await self._ready.wait()

    async def wait_ready(self, within: float) -> bool:
        """Wait up to ``within`` seconds until the subscription connection is up."""
        try:
            async with asyncio.timeout(within):
                await self._ready.wait()
        except TimeoutError:
            return False
        return self._state == STATE_CONNECTED

    # --- listener ------------------------------------------------------------------------

    def _backoff(self, attempt: int) -> float:
        # Bounded exponential backoff with "equal jitter": spreads reconnect storms of many
        # servers after a Redis restart, never waits more than backoff_max.
        delay = min(self.backoff_max, self.backoff_base * float(1 << min(attempt, 30)))
        return delay * (0.5 + self._jitter() / 2)

    async def _connect(self) -> PubSubConnection:
        client = self._client
        if client is None:
            raise BackplaneError("The Redis backplane is not started.")
        pubsub = client.pubsub()
        async with self._command_lock:
            self._pubsub = pubsub
            self._sent = set()
            await self._sync(pubsub)
            # Redis answers in order: the PONG proves every SUBSCRIBE above is in effect.
            await pubsub.ping()
        return pubsub

    async def _sync(self, pubsub: PubSubConnection) -> None:
        # Bring the server-side subscriptions to self._desired. Loops because the desired set
        # may change while we await; bounded because each round only sends what changed.
        for _ in range(100):
            missing = self._desired - self._sent
            extra = self._sent - self._desired
            if not missing and not extra:
                return
            self._sent |= missing
            self._sent -= extra
            if missing:
                await pubsub.subscribe(*sorted(missing))
            if extra:
                await pubsub.unsubscribe(*sorted(extra))

    async def _listen_forever(self) -> None:
        self._attempt = 0
        while True:
            try:
                pubsub = await self._connect()
                await self._read(pubsub)
            except asyncio.CancelledError:
                raise
            except _LISTENER_ERRORS as exc:
                if self._state == STATE_CONNECTED:
                    logger.warning("%s error=%s", EVENT_DISCONNECTED, exc)
                self._connection_failures += 1
            except Exception:
                # A listener that dies silently leaves a server deaf while it reports healthy:
                # log anything unexpected and reconnect.
                logger.exception("%s unexpected listener error", EVENT_DISCONNECTED)
                self._connection_failures += 1
            if self._state != STATE_STOPPED:
                self._state = STATE_CONNECTING
            await self._close_pubsub()
            delay = self._backoff(self._attempt)
            self._attempt += 1
            await asyncio.sleep(delay)

    async def _read(self, pubsub: PubSubConnection) -> None:
        receive = self._receive
        assert receive is not None  # set by start() before the listener exists
        while True:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            if message is None:
                continue
            kind = message.get("type")
            if kind == "message":
                channel = message["channel"]
                if isinstance(channel, bytes):
                    channel = channel.decode("utf-8", "surrogateescape")
                data = message["data"]
                if isinstance(data, str):
                    data = data.encode()
                await receive(channel, data)
            elif kind == "pong" and self._state != STATE_CONNECTED:
                async with self._command_lock:
                    await self._sync(pubsub)  # channels added while connecting
                    self._on_ready()  # same critical section: no _apply() slips in between

    def _on_ready(self) -> None:
        if self._ever_connected:
            self._reconnects += 1
        self._ever_connected = True
        self._attempt = 0
        self._state = STATE_CONNECTED
        if self._on_ready_cb is not None:
            self._on_ready_cb()
        self._ready.set()
        logger.info(
            "%s server=%s channels=%d", EVENT_CONNECTED, self.server_name, len(self._desired)
        )
