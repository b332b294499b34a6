"""Invocations (docs/spec/hub-protocol.md §3.4): results, void, non-blocking, naming, binding,
order."""

from __future__ import annotations

import datetime as dt

from hubserver.protocol.messages import InvocationMessage
from tests.hubserver.hub.conftest import SampleHub
from tests.support.hub_client import HubTestClient, settle


def frames_after_handshake(client: HubTestClient) -> list[bytes]:
    return [payload for payload, _ in client.ctx.sent[1:]]


async def test_blocking_invoke_gets_exactly_one_completion_with_the_result(client):
    completion = await client.invoke("Echo", "hi")
    await settle()
    assert frames_after_handshake(client) == [b'{"type":3,"invocationId":"0","result":"hi"}\x1e']
    assert completion.error is None


async def test_void_method_answers_result_null(client):
    await client.invoke("Nothing")
    assert frames_after_handshake(client) == [b'{"type":3,"invocationId":"0","result":null}\x1e']


async def test_void_method_over_messagepack_answers_kind_3_nil(connect):
    client = await connect("messagepack")
    await client.invoke("Nothing")
    # [3, {}, "0", 3, nil] (docs/spec/hub-protocol.md §3.4: .NET writes a nil result for void).
    assert client.ctx.sent[1] == (bytes.fromhex("07 95 03 80 a1 30 03 c0"), True)


async def test_non_blocking_send_gets_nothing_back_not_even_errors(client):
    client.send("Nothing")
    client.send("NoSuchMethod", 1)
    client.send("Fail")
    client.send("Add", "not", "ints")
    await settle(30)
    assert frames_after_handshake(client) == []
    assert "nothing" in SampleHub.log  # the valid one did run


async def test_lookup_is_case_insensitive_and_snake_case_is_also_pascal_case(client):
    for name in ("Echo", "echo", "ECHO"):
        assert (await client.invoke(name, "x")).result == "x"
    assert (await client.invoke("WhoAmI")).error is None
    assert (await client.invoke("who_am_i")).error is not None  # not a name of the method
    assert (await client.invoke("whoami")).error is None


async def test_pascal_case_alias_of_a_snake_case_method(client):
    await client.invoke("JoinGroup", "g")
    await client.invoke("join_group", "h")
    groups = client.handler.lifetime
    assert client.connection_id in groups.group_members("g")
    assert client.connection_id in groups.group_members("h")


async def test_private_sync_and_hook_methods_are_not_invocable(client):
    for name in (
        "_private",
        "sync_method",
        "SyncMethod",
        "on_connected",
        "OnConnected",
        "on_disconnected",
    ):
        completion = await client.invoke(name)
        assert completion.error == (
            f"Failed to invoke '{name}' due to an error on the server. "
            "HubException: Method does not exist."
        )


async def test_arguments_are_converted_from_type_hints(client):
    assert (await client.invoke("Add", 2, 3)).result == 5
    assert (await client.invoke("Add", 2.0, 3)).result == 5
    assert (await client.invoke("Total", [1, 2, 3])).result == 6
    assert (await client.invoke("Distance", {"x": 3, "y": 4})).result == 5.0
    assert (await client.invoke("Distance", {"x": 3, "y": 4, "labelText": "a"})).result == -1.0
    assert (await client.invoke("Describe", {"name": "n", "count": 2})).result == "n:2"
    assert (await client.invoke("Year", "2024-05-01T10:00:00Z")).result == 2024
    assert (await client.invoke("Optional")).result == [None, "d"]
    assert (await client.invoke("Optional", None)).result == [None, "d"]
    assert (await client.invoke("Optional", 4, "z")).result == [4, "z"]


async def test_messagepack_timestamps_bind_to_datetime(connect):
    client = await connect("messagepack")
    when = dt.datetime(2023, 2, 3, tzinfo=dt.UTC)
    assert (await client.invoke("Year", when)).result == 2023


async def test_invocations_of_one_connection_run_one_at_a_time_in_order(client):
    client.send_raw(
        client.protocol.write(InvocationMessage("Record", ["a", 20], invocation_id="a"))
        + client.protocol.write(InvocationMessage("Record", ["b", 0], invocation_id="b"))
        + client.protocol.write(InvocationMessage("Record", ["c", 5], invocation_id="c"))
    )
    await client.wait_completion("c")
    log = SampleHub.log
    assert log == ["start a", "end a", "start b", "end b", "start c", "end c"]
    completions = [m.invocation_id for m in client.received if m.type == 3]
    assert completions == ["a", "b", "c"]


async def test_invocations_of_different_connections_interleave(connect):
    a = await connect()
    b = await connect()
    a.send_message(InvocationMessage("Record", ["a", 50], invocation_id="1"))
    b.send_message(InvocationMessage("Record", ["b", 0], invocation_id="1"))
    await b.wait_completion("1")
    log = SampleHub.log
    assert "end b" in log and "end a" not in log  # b was not queued behind a
    await a.wait_completion("1")
    assert "end a" in log


async def test_caller_context_and_items_survive_across_invocations(client):
    await client.invoke("Remember", "k", "v")
    me = (await client.invoke("WhoAmI")).result
    assert me == {
        "connectionId": client.connection_id,
        "userId": None,
        "protocol": "json",
        "items": {"k": "v"},
    }


async def test_headers_and_null_fields_from_real_clients_are_tolerated(client):
    client.send_raw(
        b'{"type":1,"invocationId":"9","target":"Echo","arguments":["h"],'
        b'"headers":{"Authorization":"x"},"streamIds":null}\x1e'
    )
    assert (await client.wait_completion("9")).result == "h"


async def test_unserializable_result_is_an_error_completion_not_a_close(make_handler):
    from hubserver.hub.hub import Hub

    class OddHub(Hub):
        async def odd(self) -> object:
            return object()

    client = HubTestClient(make_handler(OddHub))
    await client.connect()
    completion = await client.invoke("Odd")
    assert completion.error == "An unexpected error occurred invoking 'Odd' on the server."
    assert not client.ctx.closed


async def test_parallel_invocations_when_the_limit_is_raised(make_handler):
    client = HubTestClient(make_handler(maximum_parallel_invocations_per_client=2))
    await client.connect()
    client.send_raw(
        client.protocol.write(InvocationMessage("Record", ["slow", 30], invocation_id="a"))
        + client.protocol.write(InvocationMessage("Record", ["fast", 0], invocation_id="b"))
    )
    await client.wait_completion("a")
    log = SampleHub.log
    assert log.index("end fast") < log.index("end slow")
