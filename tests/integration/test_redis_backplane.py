"""The Redis backplane on a real redis-server (docs/spec/backplane.md §6.8).

* Both conformance suites run on the shared server at 127.0.0.1:6379, each test under a random
  channel prefix so parallel runs and other helpers never see each other's messages.
* Fault tests start their OWN redis-server on a free loopback port (the shared one is never
  stopped): stop/restart mid-test, CLIENT KILL of the subscription connection, and a deaf
  subscription caught by the canary.
"""

from __future__ import annotations

import asyncio
import shutil
import uuid

import pytest
from redis.asyncio import Redis

from hubserver.hub.handler import HubConnectionHandler
from hubserver.hub.hub import Hub, HubContext
from hubserver.lifetime.redis import (
    STATE_CONNECTED,
    STATE_CONNECTING,
    RedisLifetimeManager,
    RedisPublisher,
)
from hubserver.options import HubOptions
from hubserver.protocol.messages import CompletionMessage, InvocationMessage
from hubserver.types import ConnectionId, GroupName
from tests.hubserver.lifetime.spec import FakeSink, LifetimeManagerSpec, ScaleoutSpec, eventually
from tests.support.hub_client import HubTestClient
from tests.support.platform_procs import RedisServer

pytestmark = pytest.mark.integration

SHARED_URL = "redis://127.0.0.1:6379/0"


def _manager(url: str, prefix: str, *, write_only=False, **kwargs) -> RedisLifetimeManager:
    kwargs.setdefault("canary_interval", 0)
    kwargs.setdefault("backoff_base", 0.02)
    kwargs.setdefault("backoff_max", 0.2)
    kwargs.setdefault("connect_timeout", 2.0)
    cls = RedisPublisher if write_only else RedisLifetimeManager
    return cls(url, channel_prefix=prefix, hub_name="Hub", **kwargs)


class _SharedRedis:
    async def create_backplane(self):
        return f"it-{uuid.uuid4().hex}-"

    async def create_manager(self, backplane, *, write_only=False, ack_timeout=30.0):
        return _manager(SHARED_URL, backplane, write_only=write_only, ack_timeout=ack_timeout)


class TestRedisSingleServerOnRealRedis(_SharedRedis, LifetimeManagerSpec):
    pass


class TestRedisScaleoutOnRealRedis(_SharedRedis, ScaleoutSpec):
    pass


# --- our own redis-server ------------------------------------------------------------------


@pytest.fixture
def own_redis():
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    server = RedisServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def managers():
    created = []

    async def new(url, prefix, **kwargs):
        m = _manager(url, prefix, **kwargs)
        created.append(m)
        await m.start()
        return m

    yield new
    for m in created:
        await m.stop()


async def test_stopping_and_restarting_redis_keeps_local_delivery_and_resumes(
    own_redis, managers
) -> None:
    m1 = await managers(own_redis.url, "fault-")
    m2 = await managers(own_redis.url, "fault-")
    a, b = FakeSink("a", "ann"), FakeSink("b", "bob")
    await m1.on_connected(a)
    await m2.on_connected(b)
    await m1.add_to_group(ConnectionId("a"), GroupName("org:1"))
    await m1.add_to_group(ConnectionId("b"), GroupName("org:1"))  # remote add, acked by m2
    await m1.send_groups([GroupName("org:1")], "Before", [])
    await eventually(lambda: b.received() == [("Before", [])])
    assert m1.is_healthy() and m2.is_healthy()

    own_redis.stop()
    # Local clients keep receiving; nothing crashes; health turns False and failures count.
    await m1.send_all("AllWhileDown", [])
    await m1.send_groups([GroupName("org:1")], "GroupWhileDown", [])
    await m1.send_users(["ann"], "UserWhileDown", [])
    assert a.received() == [
        ("Before", []),
        ("AllWhileDown", []),
        ("GroupWhileDown", []),
        ("UserWhileDown", []),
    ]
    assert not m1.is_healthy()
    assert m1.stats()["publish_failures"] == 3
    await eventually(lambda: m2.stats()["state"] == STATE_CONNECTING, within=5)
    assert not m2.is_healthy()
    # Joining while down works locally; the channel is subscribed when Redis is back.
    c = FakeSink("c")
    await m2.on_connected(c)
    await m2.add_to_group(ConnectionId("c"), GroupName("org:2"))

    own_redis.start()  # same port
    await eventually(
        lambda: m1.stats()["state"] == STATE_CONNECTED and m2.stats()["state"] == STATE_CONNECTED,
        within=10,
    )
    assert m1.stats()["reconnects"] >= 1 and m2.stats()["reconnects"] >= 1
    await m1.send_groups([GroupName("org:1")], "After", [])
    await m1.send_groups([GroupName("org:2")], "Org2After", [])
    await eventually(
        lambda: ("After", []) in b.received() and c.received() == [("Org2After", [])], within=5
    )
    assert ("AllWhileDown", []) not in b.received()  # documented: no buffering while down
    assert m1.is_healthy() and m2.is_healthy()


async def test_a_killed_subscription_connection_is_reconnected_and_resubscribed(
    own_redis, managers
) -> None:
    m1 = await managers(own_redis.url, "kill-")
    m2 = await managers(own_redis.url, "kill-")
    b = FakeSink("b")
    await m2.on_connected(b)
    await m2.add_to_group(ConnectionId("b"), GroupName("g"))
    admin = Redis.from_url(own_redis.url)
    try:
        killed = await admin.client_kill_filter(_type="pubsub")
        assert killed >= 2
    finally:
        await admin.aclose()
    await eventually(lambda: m2.stats()["reconnects"] >= 1, within=5)
    await m1.send_groups([GroupName("g")], "AfterKill", [])
    await eventually(lambda: b.received() == [("AfterKill", [])], within=5)


async def test_the_canary_repairs_a_deaf_subscription(own_redis, managers) -> None:
    m1 = await managers(own_redis.url, "deaf-", canary_timeout=0.3)
    m2 = await managers(own_redis.url, "deaf-")
    a = FakeSink("a")
    await m1.on_connected(a)
    assert await m1.check_canary()

    # Make m1's subscription deaf behind redis-py's back: the connection stays open, the
    # listener keeps reading, but Redis no longer routes anything to it.
    await m1.bus._pubsub.connection.send_command("UNSUBSCRIBE")
    await asyncio.sleep(0.05)
    await m2.send_all("Lost", [])
    await asyncio.sleep(0.1)
    assert a.received() == [] and m1.stats()["state"] == STATE_CONNECTED

    assert await m1.check_canary()  # one failure, repaired, second probe passes
    stats = m1.stats()
    assert stats["canary_failures"] == 1 and stats["canary_repairs"] == 1
    await m2.send_all("Found", [])
    await eventually(lambda: a.received() == [("Found", [])], within=5)


async def test_the_periodic_canary_repairs_without_being_asked(own_redis, managers) -> None:
    m = await managers(own_redis.url, "deaf2-", canary_interval=0.1, canary_timeout=0.2)
    await m.bus._pubsub.connection.send_command("UNSUBSCRIBE")
    await eventually(lambda: m.stats()["canary_repairs"] >= 1, within=5)
    await eventually(m.is_healthy, within=5)


async def test_a_manager_started_while_redis_is_down_connects_later(managers) -> None:
    server = RedisServer()  # not started yet
    m = await managers(server.url, "late-", connect_timeout=0.3)
    assert not m.is_healthy() and m.stats()["state"] == STATE_CONNECTING
    try:
        server.start()
        assert await m.wait_ready(10)
        assert m.is_healthy()
    finally:
        server.stop()


# --- real hub connections on two servers ---------------------------------------------------


class ChatHub(Hub):
    async def join(self, group: str) -> None:
        await self.groups.add(self.context.connection_id, group)

    async def add_other(self, connection_id: str, group: str) -> None:
        await self.groups.add(connection_id, group)

    async def say(self, group: str, text: str) -> None:
        await self.clients.group(group).send("Said", text)

    async def ask(self, connection_id: str) -> object:
        return await self.clients.client(connection_id).invoke("GetValue", 21, timeout=2.0)


def _said(client: HubTestClient) -> list[list[object]]:
    return [list(m.arguments) for m in client.invocations() if m.target == "Said"]


async def test_hub_connections_on_two_servers_share_groups_and_client_results(managers) -> None:
    prefix = f"it-hub-{uuid.uuid4().hex}-"
    lifetimes = [await managers(SHARED_URL, prefix), await managers(SHARED_URL, prefix)]
    handlers = [HubConnectionHandler(ChatHub, lt, HubOptions()) for lt in lifetimes]
    a = HubTestClient(handlers[0])
    b = HubTestClient(handlers[1], "messagepack")
    await a.connect()
    await b.connect()

    assert (await b.invoke("join", "room")).error is None
    assert (await a.invoke("say", "room", "hello from A")).error is None
    await b.wait_for(lambda m: isinstance(m, InvocationMessage) and m.target == "Said")
    assert _said(b) == [["hello from A"]] and _said(a) == []

    # A hub method on server A adds B's connection to a group: group command + ack.
    assert (await a.invoke("add_other", b.connection_id, "second")).error is None
    publisher = await managers(SHARED_URL, prefix, write_only=True)
    await HubContext(publisher).clients.group("second").send("Said", "from a worker")
    await b.wait_for(
        lambda m: isinstance(m, InvocationMessage) and m.arguments == ["from a worker"]
    )

    # Client result across servers: A's hub method asks B's client, which answers 42.
    iid = a.next_id()
    a.send_message(InvocationMessage("ask", [b.connection_id], invocation_id=iid))
    request = await b.wait_for(
        lambda m: isinstance(m, InvocationMessage) and m.target == "GetValue"
    )
    assert isinstance(request, InvocationMessage) and request.invocation_id is not None
    b.send_message(CompletionMessage.with_result(request.invocation_id, request.arguments[0] * 2))
    completion = await a.wait_completion(iid)
    assert completion.error is None and completion.result == 42
