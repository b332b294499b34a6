"""Clients proxies, groups, users and HubContext over the in-memory lifetime manager."""

from __future__ import annotations

from hubserver.connections.context import Principal
from hubserver.errors import HubError
from hubserver.hub.hub import HubContext
from hubserver.lifetime.memory import InMemoryLifetimeManager
from hubserver.protocol.serialized import SerializedMessage
from hubserver.types import ConnectionId, GroupName
from tests.support.hub_client import HubTestClient, settle, wait_until


def received(client: HubTestClient) -> list[list[object]]:
    return [list(m.arguments) for m in client.invocations() if m.target == "Receive"]


async def three(connect):
    return await connect(), await connect(), await connect()


async def test_group_send_reaches_members_only(connect):
    a, b, c = await three(connect)
    await a.invoke("JoinGroup", "g")
    await b.invoke("JoinGroup", "g")
    await c.invoke("ToGroup", "g", "hello")
    assert received(a) == [["hello"]] and received(b) == [["hello"]] and received(c) == []


async def test_group_remove(connect):
    a, b, _ = await three(connect)
    await a.invoke("JoinGroup", "g")
    await b.invoke("JoinGroup", "g")
    await a.invoke("LeaveGroup", "g")
    await a.invoke("ToGroup", "g", "m")
    assert received(a) == [] and received(b) == [["m"]]


async def test_group_names_are_case_sensitive(connect):
    a, b, _ = await three(connect)
    await a.invoke("JoinGroup", "G")
    await b.invoke("ToGroup", "g", "m")
    assert received(a) == []


async def test_groups_send_once_per_targeted_group(connect):
    a, b, c = await three(connect)
    await a.invoke("JoinGroup", "g1")
    await a.invoke("JoinGroup", "g2")
    await b.invoke("JoinGroup", "g2")
    await c.invoke("ToGroups", ["g1", "g2", "none"], "m")
    assert received(a) == [["m"], ["m"]]
    assert received(b) == [["m"]]


async def test_group_except_and_others_in_group(connect):
    a, b, c = await three(connect)
    for x in (a, b, c):
        await x.invoke("JoinGroup", "g")
    await a.invoke("ToGroupExcept", "g", [b.connection_id], "ex")
    assert received(a) == [["ex"]] and received(b) == [] and received(c) == [["ex"]]
    await a.invoke("ToOthersInGroup", "g", "oth")
    assert received(a) == [["ex"]] and received(b) == [["oth"]] and received(c) == [["ex"], ["oth"]]


async def test_all_others_caller_and_all_except(connect):
    a, b, c = await three(connect)
    await a.invoke("ToAll", "all")
    await a.invoke("ToOthers", "others")
    await a.invoke("ToCaller", "me")
    await a.invoke("ToAllExcept", [a.connection_id, c.connection_id], "ex")
    assert received(a) == [["all"], ["me"]]
    assert received(b) == [["all"], ["others"], ["ex"]]
    assert received(c) == [["all"], ["others"]]


async def test_client_and_clients(connect):
    a, b, c = await three(connect)
    await a.invoke("ToClient", b.connection_id, "one")
    await a.invoke("ToClients", [b.connection_id, c.connection_id, "missing"], "many")
    await a.invoke("ToClient", "missing", "nobody")
    assert received(a) == []
    assert received(b) == [["one"], ["many"]]
    assert received(c) == [["many"]]


async def test_user_and_users_reach_every_connection_of_the_user(connect):
    a1 = await connect(principal=Principal("alice"))
    a2 = await connect(principal=Principal("alice"))
    bob = await connect(principal=Principal("bob"))
    anon = await connect()
    await anon.invoke("ToUser", "alice", "hi alice")
    assert received(a1) == received(a2) == [["hi alice"]] and received(bob) == []
    await anon.invoke("ToUsers", ["alice", "bob", "carol"], "hi all")
    assert received(bob) == [["hi all"]] and received(a1)[-1] == ["hi all"]
    me = (await bob.invoke("WhoAmI")).result
    assert me["userId"] == "bob"


async def test_disconnect_leaves_groups_and_users(connect, lifetime):
    a = await connect(principal=Principal("alice"))
    b = await connect()
    await a.invoke("JoinGroup", "g")
    a.ctx.drop()
    await wait_until(lambda: lifetime.local_connection_count() == 1)
    assert lifetime.group_members("g") == frozenset()
    await b.invoke("ToUser", "alice", "x")
    await b.invoke("ToGroup", "g", "x")
    assert not any(m.target == "Receive" for m in a.invocations())


async def test_hub_context_sends_from_outside_a_hub(connect, handler):
    a, b, _ = await three(connect)
    await a.invoke("JoinGroup", "g")
    ctx: HubContext = handler.hub_context
    await ctx.clients.group("g").send("Receive", "from outside")
    await ctx.groups.add(b.connection_id, "g")
    await ctx.clients.groups(["g"]).send("Receive", "again")
    await ctx.clients.group_except("g", [a.connection_id]).send("Receive", "not a")
    await ctx.clients.all_except([a.connection_id]).send("Receive", "all but a")
    await ctx.clients.client(a.connection_id).send("Receive", "direct")
    assert received(a) == [["from outside"], ["again"], ["direct"]]
    assert received(b) == [["again"], ["not a"], ["all but a"]]


async def test_hub_context_client_result(connect, handler):
    a = await connect()
    ctx = handler.hub_context

    async def answer() -> None:
        request = await a.wait_for(lambda m: m.type == 1 and m.invocation_id is not None)
        from hubserver.protocol.messages import CompletionMessage

        a.send_message(CompletionMessage.with_result(request.invocation_id, "yes"))

    import asyncio

    responder = asyncio.ensure_future(answer())
    assert await ctx.clients.client(a.connection_id).invoke("Ask", "?", timeout=1) == "yes"
    await responder
    try:
        await ctx.clients.client("missing").invoke("Ask")
    except HubError as exc:
        assert str(exc) == "Connection 'missing' does not exist."
    else:
        raise AssertionError("expected HubError")


class _Sink:
    def __init__(self, cid: str, fail: bool = False) -> None:
        self.connection_id = ConnectionId(cid)
        self.user_id = None
        self.fail = fail
        self.got: list[SerializedMessage] = []

    def write_serialized(self, message: SerializedMessage) -> None:
        if self.fail:
            raise RuntimeError("broken sink")
        self.got.append(message)

    async def invoke_client(self, target, args, timeout):
        return None


async def test_a_failing_sink_does_not_stop_the_fan_out():
    lifetime = InMemoryLifetimeManager()
    sinks = [_Sink("a"), _Sink("b", fail=True), _Sink("c")]
    for s in sinks:
        await lifetime.on_connected(s)
        await lifetime.add_to_group(s.connection_id, GroupName("g"))
    await lifetime.send_all("m", [1])
    await lifetime.send_groups([GroupName("g")], "m", [2])
    assert len(sinks[0].got) == len(sinks[2].got) == 2
    # One SerializedMessage object per broadcast, shared by every sink.
    assert sinks[0].got[0] is sinks[2].got[0]
    await settle()
