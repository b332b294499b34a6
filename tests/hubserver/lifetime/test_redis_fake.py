"""RedisLifetimeManager on the in-memory fake bus: both conformance suites, plus faults.

The manager under test is the real one (listener loop, reconnect, canary); only the Redis
client is replaced by ``tests.support.fake_pubsub``.
"""

import asyncio
import uuid

import pytest

from hubserver.lifetime.redis import RedisLifetimeManager, RedisPublisher
from hubserver.types import ConnectionId, GroupName
from tests.hubserver.lifetime.spec import (
    FakeSink,
    LifetimeManagerSpec,
    ScaleoutSpec,
    eventually,
)
from tests.support.fake_pubsub import FakeBus


def make_manager(bus, *, write_only=False, ack_timeout=30.0, **kwargs):
    kwargs.setdefault("canary_interval", 0)
    kwargs.setdefault("backoff_base", 0.005)
    kwargs.setdefault("backoff_max", 0.02)
    cls = RedisPublisher if write_only else RedisLifetimeManager
    return cls(
        channel_prefix="Test",
        hub_name="Hub",
        client_factory=bus.client,
        ack_timeout=ack_timeout,
        **kwargs,
    )


class _FakeBackplane:
    async def create_backplane(self):
        return FakeBus()

    async def create_manager(self, backplane, *, write_only=False, ack_timeout=30.0):
        return make_manager(backplane, write_only=write_only, ack_timeout=ack_timeout)


class TestRedisOnFakeBusSingleServer(_FakeBackplane, LifetimeManagerSpec):
    pass


class TestRedisOnFakeBusScaleout(_FakeBackplane, ScaleoutSpec):
    pass


@pytest.fixture
async def bus_and_managers():
    bus = FakeBus()
    managers = []

    async def new(**kwargs):
        m = make_manager(bus, **kwargs)
        managers.append(m)
        await m.start()
        return m

    yield bus, new
    for m in managers:
        await m.stop()


async def test_channels_follow_the_dotnet_naming(bus_and_managers) -> None:
    bus, new = bus_and_managers
    m = await new(server_name="web01_0123456789abcdef0123456789abcdef")
    await m.on_connected(FakeSink("c1", "u1"))
    await m.add_to_group(ConnectionId("c1"), GroupName("org:1"))
    assert set(m.subscribed_channels()) == {
        "TestHub:all",
        "TestHub:internal:groups",
        "TestHub:internal:ack:web01_0123456789abcdef0123456789abcdef",
        "TestHub:internal:return:web01_0123456789abcdef0123456789abcdef",
        "TestHub:internal:canary:web01_0123456789abcdef0123456789abcdef",
        "TestHub:connection:c1",
        "TestHub:user:u1",
        "TestHub:group:org:1",
    }
    assert bus.subscribers("TestHub:group:org:1") == 1


async def test_group_channel_is_unsubscribed_after_the_last_local_member_leaves(
    bus_and_managers,
) -> None:
    bus, new = bus_and_managers
    m = await new()
    a, b = FakeSink("a", "u"), FakeSink("b", "u")
    await m.on_connected(a)
    await m.on_connected(b)
    await m.add_to_group(ConnectionId("a"), GroupName("g"))
    await m.add_to_group(ConnectionId("b"), GroupName("g"))
    await m.remove_from_group(ConnectionId("a"), GroupName("g"))
    assert bus.subscribers("TestHub:group:g") == 1
    await m.on_disconnected(b)
    assert bus.subscribers("TestHub:group:g") == 0
    assert bus.subscribers("TestHub:connection:b") == 0
    assert bus.subscribers("TestHub:user:u") == 1  # a is still connected
    await m.on_disconnected(a)
    assert bus.subscribers("TestHub:user:u") == 0


async def test_a_broadcast_is_published_once_with_every_protocol(bus_and_managers) -> None:
    bus, new = bus_and_managers
    m = await new()
    before = len(bus.published)
    await m.send_all("Hi", [1])
    published = bus.published[before:]
    assert [channel for channel, _ in published] == ["TestHub:all"]
    from hubserver.lifetime.redis_wire import read_invocation

    envelope = read_invocation(published[0][1])
    assert set(envelope.payloads) == {"json", "messagepack"}
    assert envelope.payloads["json"] == b'{"type":1,"target":"Hi","arguments":[1]}\x1e'
    assert envelope.origin == m.server_name


async def test_local_sends_to_local_connections_never_touch_the_bus(bus_and_managers) -> None:
    bus, new = bus_and_managers
    m = await new()
    a = FakeSink("a", responder=lambda t, args: 42)
    await m.on_connected(a)
    before = len(bus.published)
    await m.send_connections([ConnectionId("a")], "Direct", [])
    await m.add_to_group(ConnectionId("a"), GroupName("g"))
    await m.remove_from_group(ConnectionId("a"), GroupName("g"))
    assert await m.invoke_connection(ConnectionId("a"), "Ask", [], 1.0) == 42
    assert bus.published[before:] == []
    assert a.received() == [("Direct", [])]


async def test_when_redis_is_down_local_delivery_continues_and_health_is_false(
    bus_and_managers,
) -> None:
    bus, new = bus_and_managers
    m1, m2 = await new(), await new()
    a, b = FakeSink("a"), FakeSink("b")
    await m1.on_connected(a)
    await m2.on_connected(b)
    await m1.add_to_group(ConnectionId("a"), GroupName("g"))
    assert m1.is_healthy()

    bus.stop()
    await m1.send_all("WhileDown", [])
    await m1.send_groups([GroupName("g")], "GroupWhileDown", [])
    assert a.received() == [("WhileDown", []), ("GroupWhileDown", [])]
    assert not m1.is_healthy()
    stats = m1.stats()
    assert stats["publish_failures"] == 2
    await eventually(lambda: m2.stats()["state"] == 1)  # connecting
    assert not m2.is_healthy()
    # New local connections and group joins work while Redis is down.
    c = FakeSink("c")
    await m1.on_connected(c)
    await m1.add_to_group(ConnectionId("c"), GroupName("g2"))

    bus.start()
    await eventually(lambda: m1.stats()["state"] == 2 and m2.stats()["state"] == 2)
    assert m1.stats()["reconnects"] >= 1 and m2.stats()["reconnects"] >= 1
    # Every channel was subscribed again, including the ones added while down.
    assert bus.subscribers("TestHub:group:g2") == 1
    await m2.send_groups([GroupName("g2")], "AfterRestart", [])
    await m2.send_all("AllAfterRestart", [])
    await eventually(
        lambda: ("AllAfterRestart", []) in b.received() and ("AllAfterRestart", []) in c.received()
    )
    assert c.received() == [("AfterRestart", []), ("AllAfterRestart", [])]
    assert m1.is_healthy()  # subscription back, publish failure forgotten
    await m1.send_all("Ok", [])
    assert m1.is_healthy()


async def test_remote_group_add_fails_fast_while_redis_is_down(bus_and_managers) -> None:
    bus, new = bus_and_managers
    m = await new()
    bus.stop()
    from hubserver.errors import BackplaneError

    with pytest.raises(BackplaneError, match="PUBLISH failed"):
        await m.add_to_group(ConnectionId("remote"), GroupName("g"))


async def test_the_canary_detects_a_deaf_subscription_and_repairs_it(bus_and_managers) -> None:
    bus, new = bus_and_managers
    m1, m2 = await new(canary_timeout=0.05), await new()
    a = FakeSink("a")
    await m1.on_connected(a)
    assert await m1.check_canary() is True
    assert m1.stats()["canary_failures"] == 0

    bus.deafen()  # connected, subscribed on the "server", receiving nothing
    await m2.send_all("Lost", [])
    await asyncio.sleep(0.02)
    assert a.received() == []

    assert await m1.check_canary() is True  # failed once, repaired, probe passes
    stats = m1.stats()
    assert stats["canary_failures"] == 1 and stats["canary_repairs"] == 1
    assert m1.is_healthy()
    await m2.send_all("Found", [])
    await eventually(lambda: a.received() == [("Found", [])])


async def test_the_periodic_canary_runs_by_itself(bus_and_managers) -> None:
    bus, new = bus_and_managers
    m = await new(canary_interval=0.01, canary_timeout=0.05)
    bus.deafen()
    await eventually(lambda: m.stats()["canary_repairs"] >= 1, within=2.0)
    await eventually(m.is_healthy)


async def test_reconnect_backoff_is_exponential_bounded_and_jittered() -> None:
    m = RedisLifetimeManager(backoff_base=0.1, backoff_max=1.0, jitter=lambda: 1.0, protocols={})
    assert [round(m.bus._backoff(i), 3) for i in range(6)] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    m.bus._jitter = lambda: 0.0
    assert m.bus._backoff(100) == 0.5


async def test_a_server_name_is_unique_per_manager() -> None:
    a = RedisLifetimeManager(protocols={})
    b = RedisLifetimeManager(protocols={})
    assert a.server_name != b.server_name
    host, _, suffix = a.server_name.rpartition("_")
    assert host and len(suffix) == 32 and int(suffix, 16) >= 0
    assert uuid.UUID(hex=suffix)
