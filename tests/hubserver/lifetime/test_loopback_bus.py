"""The bus seam: PubSubLifetimeManager over the in-process LoopbackBus passes both conformance
suites, with no Redis and no Redis client fake involved."""

import asyncio

import pytest

from hubserver.errors import BackplaneError
from hubserver.lifetime import redis_wire as wire
from hubserver.lifetime.bus import Bus, BusHealth
from hubserver.lifetime.loopback_bus import LoopbackBroker
from hubserver.lifetime.pubsub import PubSubLifetimeManager
from hubserver.types import ConnectionId, GroupName
from tests.hubserver.lifetime.spec import FakeSink, LifetimeManagerSpec, ScaleoutSpec, eventually

P = "Loop"


def make_manager(broker, *, write_only=False, ack_timeout=30.0, **kwargs):
    return PubSubLifetimeManager(
        broker.bus(),
        channels=wire.RedisChannels(P),
        write_only=write_only,
        ack_timeout=ack_timeout,
        **kwargs,
    )


class _Loopback:
    async def create_backplane(self):
        return LoopbackBroker()

    async def create_manager(self, backplane, *, write_only=False, ack_timeout=30.0):
        return make_manager(backplane, write_only=write_only, ack_timeout=ack_timeout)


class TestPubSubOnLoopbackSingleServer(_Loopback, LifetimeManagerSpec):
    pass


class TestPubSubOnLoopbackScaleout(_Loopback, ScaleoutSpec):
    pass


def test_the_loopback_bus_is_a_bus_without_health() -> None:
    bus: Bus = LoopbackBroker().bus()
    assert not isinstance(bus, BusHealth)


async def test_a_manager_without_bus_health_is_healthy_and_reports_no_bus_counters() -> None:
    broker = LoopbackBroker()
    m = make_manager(broker)
    await m.start()
    try:
        assert m.is_healthy()
        assert await m.check_canary() is True
        assert "state" not in m.stats() and m.stats()["healthy"] == 1
    finally:
        await m.stop()


async def test_a_failed_publish_turns_health_false_and_local_delivery_goes_on() -> None:
    broker = LoopbackBroker()
    m = make_manager(broker)
    a = FakeSink("a")
    await m.start()
    await m.on_connected(a)
    await m.bus.stop()  # the bus goes away under the manager
    await m.send_all("Local", [])
    assert a.received() == [("Local", [])]  # local delivery does not need the bus
    assert not m.is_healthy() and m.stats()["publish_failures"] == 1
    await m.stop()


async def test_group_channels_follow_local_membership() -> None:
    broker = LoopbackBroker()
    m = make_manager(broker)
    await m.start()
    try:
        a, b = FakeSink("a", "u"), FakeSink("b", "u")
        await m.on_connected(a)
        await m.on_connected(b)
        await m.add_to_group(ConnectionId("a"), GroupName("g"))
        await m.add_to_group(ConnectionId("b"), GroupName("g"))
        assert broker.subscribers(f"{P}:group:g") == 1
        await m.on_disconnected(a)
        assert broker.subscribers(f"{P}:group:g") == 1
        assert broker.subscribers(f"{P}:user:u") == 1
        await m.on_disconnected(b)
        assert broker.subscribers(f"{P}:group:g") == 0
        assert broker.subscribers(f"{P}:user:u") == 0
        assert broker.subscribers(f"{P}:connection:b") == 0
    finally:
        await m.stop()


async def test_messages_arrive_in_publish_order_and_include_the_senders_own() -> None:
    broker = LoopbackBroker()
    got: list[tuple[str, bytes]] = []
    bus = broker.bus()

    async def receive(channel: str, data: bytes) -> None:
        got.append((channel, data))

    ready: list[bool] = []
    await bus.subscribe("x")
    await bus.start(receive, lambda: ready.append(True))
    try:
        assert ready == [True]
        for i in range(50):
            assert await bus.publish("x" if i % 2 else "y", bytes([i])) == (1 if i % 2 else 0)
        await eventually(lambda: len(got) == 25)
        assert got == [("x", bytes([i])) for i in range(1, 50, 2)]
    finally:
        await bus.stop()
    with pytest.raises(BackplaneError, match="not started"):
        await bus.publish("x", b"")


async def test_a_receiver_that_raises_does_not_stop_delivery() -> None:
    broker = LoopbackBroker()
    bus = broker.bus()
    got: list[bytes] = []

    async def receive(channel: str, data: bytes) -> None:
        if data == b"boom":
            raise RuntimeError("bug in a receiver")
        got.append(data)

    await bus.subscribe("c")
    await bus.start(receive, lambda: None)
    try:
        await bus.publish("c", b"boom")
        await bus.publish("c", b"after")
        await eventually(lambda: got == [b"after"])
    finally:
        await bus.stop()
        await asyncio.sleep(0)
