"""The Redis backplane, wire-compatible with ASP.NET Core's: the pub/sub manager on a Redis bus.

:class:`RedisLifetimeManager` is :class:`~hubserver.lifetime.pubsub.PubSubLifetimeManager`
over a :class:`~hubserver.lifetime.redis_bus.RedisBus`; :class:`RedisPublisher` is its
write-only form for processes without connections. Channel names and payloads are those of
``Microsoft.AspNetCore.SignalR.StackExchangeRedis`` (docs/spec/backplane.md §6.1-§6.4), so .NET
and Python servers can share one Redis.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from typing import Any

from hubserver.lifetime import redis_wire as wire
from hubserver.lifetime.pubsub import PubSubLifetimeManager
from hubserver.lifetime.redis_bus import (
    STATE_CONNECTED,
    STATE_CONNECTING,
    STATE_STOPPED,
    PubSubConnection,
    RedisBus,
    RedisClient,
)
from hubserver.protocol.base import HubProtocol

__all__ = [
    "STATE_CONNECTED",
    "STATE_CONNECTING",
    "STATE_STOPPED",
    "PubSubConnection",
    "RedisBus",
    "RedisClient",
    "RedisLifetimeManager",
    "RedisPublisher",
]


class RedisLifetimeManager(PubSubLifetimeManager):
    """Hub lifetime manager scaled out over Redis pub/sub, wire-compatible with ASP.NET Core.

    Args:
        redis_url: ``redis://``, ``rediss://`` (TLS), ``unix://`` or ``redis+sentinel://``
            (docs/scaleout.md; :mod:`hubserver.lifetime.redis_url`), from ``--redis-url`` /
            ``AIUSAGE_REDIS_URL``.
        channel_prefix: Prepended to the hub name with no separator, as StackExchange.Redis'
            ``ChannelPrefix`` (docs/spec/backplane.md §6.1).
        hub_name: The hub's "full name" in channel names; use the .NET hub's
            ``typeof(THub).FullName`` to share channels with a .NET server.
        protocols: Protocol name -> codec; default ``ALL_PROTOCOLS``.
        write_only: Publisher mode (see :class:`RedisPublisher`).
        server_name: Default ``<hostname>_<32 hex>``.
        ack_timeout: Remote group add/remove ack wait (s).
        client_result_timeout: Hosting-side wait for a client's answer (s).
        canary_interval: Seconds between canary probes; 0 disables the periodic probe.
        canary_timeout: Seconds a probe may take to come back.
        backoff_base: First reconnect delay (s); doubles per failed attempt.
        backoff_max: Upper bound of the reconnect delay (s).
        connect_timeout: Socket connect timeout, and how long :meth:`start` waits for Redis.
        socket_timeout: Timeout of PUBLISH round trips (s).
        client_factory: Builds the client (tests pass a fake Redis); default real Redis.
        jitter: Returns a float in [0, 1); the delay is ``d * (0.5 + jitter() / 2)``.
    """

    bus: RedisBus

    def __init__(
        self,
        redis_url: str = "redis://127.0.0.1:6379/0",
        *,
        channel_prefix: str = "AIUsagePlatform",
        hub_name: str = "AnalyticsHub",
        protocols: Mapping[str, HubProtocol] | None = None,
        write_only: bool = False,
        server_name: str | None = None,
        ack_timeout: float = 30.0,
        client_result_timeout: float = 30.0,
        canary_interval: float = 5.0,
        canary_timeout: float = 2.0,
        backoff_base: float = 0.1,
        backoff_max: float = 5.0,
        connect_timeout: float = 2.0,
        socket_timeout: float = 5.0,
        client_factory: Callable[[], RedisClient] | None = None,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        name = server_name or wire.make_server_name()
        bus = RedisBus(
            redis_url,
            backoff_base=backoff_base,
            backoff_max=backoff_max,
            connect_timeout=connect_timeout,
            socket_timeout=socket_timeout,
            client_factory=client_factory,
            jitter=jitter,
            server_name=name,
        )
        super().__init__(
            bus,
            channels=wire.RedisChannels(channel_prefix + hub_name),
            protocols=protocols,
            server_name=name,
            write_only=write_only,
            ack_timeout=ack_timeout,
            client_result_timeout=client_result_timeout,
            canary_interval=canary_interval,
            canary_timeout=canary_timeout,
        )
        self.redis_url = redis_url

    async def wait_ready(self, within: float) -> bool:
        """Wait up to ``within`` seconds until the subscription connection is up."""
        return await self.bus.wait_ready(within)


class RedisPublisher(RedisLifetimeManager):
    """Write-only Redis backplane: a HubContext without connections (``aiusage worker``).

    Publishes broadcasts, remote group commands (waiting for acks) and client-result
    invocations; subscribes only to its own ack, return and canary channels.
    """

    def __init__(self, redis_url: str = "redis://127.0.0.1:6379/0", **kwargs: Any) -> None:
        kwargs["write_only"] = True
        super().__init__(redis_url, **kwargs)
