"""PubSubLifetimeManager behaviour that the conformance suites do not pin, on the fake bus:
interop with .NET-shaped payloads, echo suppression, acks, malformed input, write-only mode."""

import asyncio

import pytest

from hubserver.errors import BackplaneError, HubError
from hubserver.lifetime import redis_wire as wire
from hubserver.protocol.messages import CompletionMessage, InvocationMessage
from hubserver.protocol.registry import JSON, MESSAGEPACK
from hubserver.types import ConnectionId, GroupName
from tests.hubserver.lifetime.spec import FakeSink, eventually
from tests.hubserver.lifetime.test_redis_fake import make_manager
from tests.support.fake_pubsub import FakeBus

P = "TestHub"


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


def dotnet_envelope(target, args, excluded=()):
    """What a .NET server publishes: 2 items, no origin, json + messagepack bytes."""
    message = InvocationMessage(target, list(args))
    return wire.write_invocation(
        {"json": JSON.write(message), "messagepack": MESSAGEPACK.write(message)}, excluded
    )


async def test_a_dotnet_broadcast_is_delivered_to_local_connections(bus_and_managers) -> None:
    bus, new = bus_and_managers
    m = await new()
    a, b, j = FakeSink("a"), FakeSink("b", protocol=MESSAGEPACK), FakeSink("j")
    for s in (a, b, j):
        await m.on_connected(s)
    await m.add_to_group(ConnectionId("a"), GroupName("g"))
    bus.publish(f"{P}:all", dotnet_envelope("FromDotnet", [1], excluded=["j"]))
    bus.publish(f"{P}:group:g", dotnet_envelope("GroupFromDotnet", []))
    bus.publish(f"{P}:connection:b", dotnet_envelope("Direct", []))
    await eventually(lambda: len(a.received()) == 2 and len(b.received()) == 2)
    assert a.received() == [("FromDotnet", [1]), ("GroupFromDotnet", [])]
    assert b.received() == [("FromDotnet", [1]), ("Direct", [])]
    assert j.received() == []


async def test_our_own_echo_is_skipped_and_counted(bus_and_managers) -> None:
    _bus, new = bus_and_managers
    m = await new()
    a = FakeSink("a")
    await m.on_connected(a)
    await m.send_all("Once", [])
    await eventually(lambda: m.stats()["echoes_skipped"] == 1)
    assert a.received() == [("Once", [])]


async def test_a_dotnet_group_command_for_our_connection_is_acked(bus_and_managers) -> None:
    bus, new = bus_and_managers
    m = await new()
    await m.on_connected(FakeSink("c"))
    ack_channel = f"{P}:internal:ack:dotnet_1"
    bus.publish(
        f"{P}:internal:groups",
        wire.write_group_command(41, "dotnet_1", wire.GroupAction.ADD, "g", "c"),
    )
    bus.publish(
        f"{P}:internal:groups",
        wire.write_group_command(42, "dotnet_1", wire.GroupAction.ADD, "g", "elsewhere"),
    )
    await eventually(lambda: any(ch == ack_channel for ch, _ in bus.published))
    await asyncio.sleep(0.01)
    acks = [wire.read_ack(d) for ch, d in bus.published if ch == ack_channel]
    assert acks == [41]  # never an ack for a connection we don't host
    assert bus.subscribers(f"{P}:group:g") == 1


async def test_malformed_payloads_are_counted_and_do_not_stop_the_listener(
    bus_and_managers,
) -> None:
    bus, new = bus_and_managers
    m = await new()
    a = FakeSink("a")
    await m.on_connected(a)
    bus.publish(f"{P}:all", b"\xc1garbage")
    bus.publish(f"{P}:internal:groups", b"\x91\x01")
    bus.publish(f"{P}:all", dotnet_envelope("StillAlive", []))
    await eventually(lambda: a.received() == [("StillAlive", [])])
    assert m.stats()["bad_payloads"] == 2


async def test_a_remote_client_result_for_a_vanished_connection_reports_disconnection(
    bus_and_managers,
) -> None:
    bus, new = bus_and_managers
    m = await new()
    # A subscriber exists on connection:gone (so PUBLISH counts 1) but m hosts nobody there.
    await m._subscribe_channel(
        f"{P}:connection:gone", lambda data: m._on_connection_message(ConnectionId("gone"), data)
    )
    caller = await new()
    with pytest.raises(HubError, match="Connection disconnected."):
        await caller.invoke_connection(ConnectionId("gone"), "Ask", [], 2.0)


async def test_a_remote_client_result_times_out_when_nobody_answers(bus_and_managers) -> None:
    bus, new = bus_and_managers
    caller = await new()
    bus.deafen()  # the host never sees the invocation
    host = await new()
    slow = FakeSink("slow")
    await host.on_connected(slow)
    host_pubsubs = [p for p in bus._pubsubs if f"{P}:connection:slow" in p.channels]
    for p in host_pubsubs:
        p.deaf = True
    with pytest.raises(HubError, match="Timed out"):
        await caller.invoke_connection(ConnectionId("slow"), "Ask", [], 0.1)


async def test_completions_from_dotnet_resolve_pending_client_results(bus_and_managers) -> None:
    bus, new = bus_and_managers
    caller = await new()
    # Fake a .NET host: answer whatever invocation lands on connection:x with the client's
    # framed Completion, exactly as RedisHubLifetimeManager forwards it.
    host_pubsub = bus.client().pubsub()
    await host_pubsub.subscribe(f"{P}:connection:x")
    task = asyncio.create_task(caller.invoke_connection(ConnectionId("x"), "Ask", [], 2.0))
    msg = None
    async with asyncio.timeout(2):
        while msg is None or msg["type"] != "message":
            msg = await host_pubsub.get_message(timeout=1.0)
    envelope = wire.read_invocation(msg["data"])
    parsed, _ = MESSAGEPACK.parse(envelope.payloads["messagepack"])
    assert parsed[0].invocation_id == envelope.invocation_id
    completion = MESSAGEPACK.write(CompletionMessage.with_result(envelope.invocation_id, "yes"))
    bus.publish(envelope.return_channel, wire.write_completion("messagepack", completion))
    assert await task == "yes"


async def test_a_write_only_publisher_subscribes_only_its_own_channels(bus_and_managers) -> None:
    _bus, new = bus_and_managers
    publisher = await new(write_only=True)
    name = publisher.server_name
    assert set(publisher.subscribed_channels()) == {
        f"{P}:internal:ack:{name}",
        f"{P}:internal:return:{name}",
        f"{P}:internal:canary:{name}",
    }
    with pytest.raises(BackplaneError, match="write-only"):
        await publisher.on_connected(FakeSink("a"))


async def test_stop_fails_pending_group_commands(bus_and_managers) -> None:
    _bus, new = bus_and_managers
    m = await new()
    task = asyncio.create_task(m.add_to_group(ConnectionId("nobody"), GroupName("g")))
    await asyncio.sleep(0.01)
    await m.stop()
    with pytest.raises(BackplaneError, match="stopped"):
        await task
