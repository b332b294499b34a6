"""Streams (docs/spec/hub-protocol.md §3.4): server-to-client streams, cancel, upload streams and
client results."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from hubserver.hub.hub import Hub
from hubserver.protocol.messages import (
    CancelInvocationMessage,
    CompletionMessage,
    InvocationMessage,
    StreamInvocationMessage,
    StreamItemMessage,
)
from tests.hubserver.hub.conftest import SampleHub
from tests.support.hub_client import HubTestClient, settle, wait_until


async def test_async_generator_streams_items_then_a_completion_without_result(client):
    items, completion = await client.stream("Counter", 3)
    assert items == [0, 1, 2]
    assert [p for p, _ in client.ctx.sent[1:]] == [
        b'{"type":2,"invocationId":"0","item":0}\x1e',
        b'{"type":2,"invocationId":"0","item":1}\x1e',
        b'{"type":2,"invocationId":"0","item":2}\x1e',
        b'{"type":3,"invocationId":"0"}\x1e',
    ]
    assert completion.error is None and not completion.has_result


async def test_cancel_invocation_stops_the_stream_and_still_completes(client):
    iid = client.start_stream("Endless")
    await client.wait_for(lambda m: isinstance(m, StreamItemMessage) and m.item == 2)
    client.cancel(iid)
    completion = await client.wait_completion(iid)
    assert completion.error is None and not completion.has_result
    assert "endless closed" in SampleHub.log
    count = len(client.received)
    await settle(20)
    assert len(client.read()) == 0 and len(client.received) == count


async def test_cancel_with_an_unknown_id_is_ignored(client):
    client.cancel("nope")
    assert (await client.invoke("Echo", "x")).result == "x"


async def test_stream_error_after_items_sends_the_streaming_error_text(client):
    items, completion = await client.stream("BrokenStream")
    assert items == [1]
    assert completion.error == "An error occurred on the server while streaming results."


async def test_streams_run_in_the_background_while_invocations_continue(client):
    iid = client.start_stream("Endless")
    assert (await client.invoke("Echo", "during")).result == "during"
    client.cancel(iid)
    await client.wait_completion(iid)


async def test_upload_stream_items_reach_the_method(client):
    client.send_message(InvocationMessage("UploadSum", [], invocation_id="1", stream_ids=["7"]))
    for i in range(5):
        client.send_message(StreamItemMessage(invocation_id="7", item=i))
    client.send_message(CompletionMessage.empty("7"))
    assert (await client.wait_completion("1")).result == 10


async def test_upload_stream_ids_are_removed_from_arguments(client):
    client.send_message(
        InvocationMessage("UploadCollect", ["p-"], invocation_id="1", stream_ids=["s"])
    )
    client.send_message(StreamItemMessage(invocation_id="s", item="a"))
    client.send_message(StreamItemMessage(invocation_id="s", item="b"))
    client.send_message(CompletionMessage.empty("s"))
    assert (await client.wait_completion("1")).result == ["p-a", "p-b"]


async def test_upload_stream_count_mismatch_text(client):
    completion = await client.invoke("UploadSum", stream_ids=[])
    assert completion.error == (
        "An unexpected error occurred invoking 'UploadSum' on the server. "
        "HubException: Client sent 0 stream(s), Hub method expects 1."
    )
    completion = await client.invoke("Echo", "x", stream_ids=["a", "b"])
    assert completion.error == (
        "An unexpected error occurred invoking 'Echo' on the server. "
        "HubException: Client sent 2 stream(s), Hub method expects 0."
    )


async def test_client_error_on_upload_surfaces_as_hub_error_in_the_method(client):
    client.send_message(InvocationMessage("UploadError", [], invocation_id="1", stream_ids=["e"]))
    client.send_message(StreamItemMessage(invocation_id="e", item=1))
    client.send_message(CompletionMessage.with_error("e", "client broke"))
    assert (await client.wait_completion("1")).result == "caught: client broke"


async def test_non_blocking_upload_like_pysignalr_gets_nothing_back(client):
    client.send("UploadSum", stream_ids=["u"])
    client.send_message(StreamItemMessage(invocation_id="u", item=1))
    client.send_message(CompletionMessage.empty("u"))
    await settle(30)
    assert client.ctx.sent[1:] == []
    assert not client.app.invocations.active_ids


async def test_upload_runs_in_background_so_later_invocations_are_not_blocked(client):
    client.send_message(InvocationMessage("UploadSum", [], invocation_id="1", stream_ids=["7"]))
    assert (await client.invoke("Echo", "free")).result == "free"
    client.send_message(CompletionMessage.empty("7"))
    assert (await client.wait_completion("1")).result == 0


async def test_items_for_unknown_stream_ids_are_ignored(client):
    client.send_message(StreamItemMessage(invocation_id="ghost", item=1))
    client.send_message(CompletionMessage.empty("ghost"))
    assert (await client.invoke("Echo", "x")).result == "x"


async def test_streaming_method_with_upload_stream(client):
    iid = "9"
    from hubserver.protocol.messages import StreamInvocationMessage

    client.send_message(
        StreamInvocationMessage(
            invocation_id=iid, target="UploadEcho", arguments=[], stream_ids=["in"]
        )
    )
    client.send_message(StreamItemMessage(invocation_id="in", item=1))
    client.send_message(StreamItemMessage(invocation_id="in", item=2))
    client.send_message(CompletionMessage.empty("in"))
    await client.wait_completion(iid)
    assert [m.item for m in client.received if isinstance(m, StreamItemMessage)] == [10, 20]


class GatedUploadHub(Hub):
    gate: asyncio.Event
    seen: list[int] = []  # noqa: RUF012

    async def consume(self, items: AsyncIterator[int]) -> int:
        await GatedUploadHub.gate.wait()
        async for item in items:
            GatedUploadHub.seen.append(item)
        return len(GatedUploadHub.seen)

    async def echo(self, x: str) -> str:
        return x


async def test_upload_buffer_is_bounded_and_input_waits_for_the_consumer(make_handler):
    GatedUploadHub.gate = asyncio.Event()
    GatedUploadHub.seen = []
    handler = make_handler(GatedUploadHub, stream_buffer_capacity=2)
    client = HubTestClient(handler)
    await client.connect()
    client.send_message(InvocationMessage("Consume", [], invocation_id="1", stream_ids=["s"]))
    payload = b"".join(
        client.protocol.write(StreamItemMessage(invocation_id="s", item=i)) for i in range(6)
    )
    client.send_raw(payload + client.protocol.write(CompletionMessage.empty("s")))
    client.send_message(InvocationMessage("Echo", ["after"], invocation_id="2"))
    await settle(20)
    upload = client.app.invocations.take_upload("s")
    assert len(upload._items) == 2  # bounded by stream_buffer_capacity
    assert client.app._inbound.paused
    assert client.read() == []  # the Echo behind the items waits too
    GatedUploadHub.gate.set()
    assert (await client.wait_completion("1")).result == 6
    assert GatedUploadHub.seen == [0, 1, 2, 3, 4, 5]
    assert (await client.wait_completion("2")).result == "after"


async def test_client_result_round_trip(client):
    client.send_message(InvocationMessage("AskCaller", ["q?"], invocation_id="1"))
    request = await client.wait_for(lambda m: isinstance(m, InvocationMessage))
    assert request.target == "Ask" and list(request.arguments) == ["q?"]
    assert request.invocation_id  # server-chosen id
    client.send_message(CompletionMessage.with_result(request.invocation_id, 42))
    assert (await client.wait_completion("1")).result == 42


async def test_client_result_error_becomes_a_hub_error(client):
    client.send_message(InvocationMessage("AskCaller", ["q?"], invocation_id="1"))
    request = await client.wait_for(lambda m: isinstance(m, InvocationMessage))
    client.send_message(
        CompletionMessage.with_error(request.invocation_id, "Client didn't provide a result.")
    )
    assert (await client.wait_completion("1")).error == (
        "An unexpected error occurred invoking 'AskCaller' on the server. "
        "HubException: Client didn't provide a result."
    )


async def test_client_result_times_out(make_handler):
    client = HubTestClient(make_handler(client_result_timeout=0.02))
    await client.connect()
    client.send_message(InvocationMessage("AskCaller", ["q?"], invocation_id="1"))
    completion = await client.wait_completion("1")
    assert completion.error == (
        "An unexpected error occurred invoking 'AskCaller' on the server. HubException: "
        "Timed out after 0.02s waiting for the client's result of 'Ask'."
    )
    assert client.app.invocations.pending_results == 0


async def test_client_result_fails_when_the_connection_dies_first(connect):
    asker = await connect()
    target = await connect()
    asker.send_message(
        InvocationMessage("AskClient", [target.connection_id, "q"], invocation_id="1")
    )
    await target.wait_for(lambda m: isinstance(m, InvocationMessage))
    target.ctx.drop()
    completion = await asker.wait_completion("1")
    assert completion.error == (
        "An unexpected error occurred invoking 'AskClient' on the server. "
        "HubException: Connection disconnected."
    )


async def test_client_result_from_another_connection_through_the_lifetime(connect):
    asker = await connect()
    target = await connect()
    asker.send_message(
        InvocationMessage("AskClient", [target.connection_id, "q"], invocation_id="1")
    )
    request = await target.wait_for(lambda m: isinstance(m, InvocationMessage))
    target.send_message(CompletionMessage.with_result(request.invocation_id, {"a": 1}))
    assert (await asker.wait_completion("1")).result == {"a": 1}


async def test_client_result_to_a_missing_connection(client):
    completion = await client.invoke("AskClient", "missing", "q")
    assert completion.error == (
        "An unexpected error occurred invoking 'AskClient' on the server. "
        "HubException: Connection 'missing' does not exist."
    )


async def test_completions_with_unknown_ids_are_ignored(client):
    client.send_message(CompletionMessage.with_result("s999", 1))
    assert (await client.invoke("Echo", "ok")).result == "ok"


async def test_ordinary_server_to_client_calls_carry_no_invocation_id(client):
    await client.invoke("ToCaller", "m")
    invocation = client.invocations()[0]
    assert invocation.invocation_id is None
    assert client.ctx.sent[1][0] == b'{"type":1,"target":"Receive","arguments":["m"]}\x1e'


async def test_streams_are_cancelled_when_the_connection_drops(client):
    client.start_stream("Endless")
    await client.wait_for(lambda m: isinstance(m, StreamItemMessage))
    client.ctx.drop()
    await wait_until(lambda: "endless closed" in SampleHub.log)


async def test_a_stream_cancelled_before_its_first_step_still_runs_the_method_and_completes(client):
    # StreamInvocation and CancelInvocation in one read: the cancel reaches the stream's task
    # before that task has run. The method must still be called and see the cancellation
    # (its cleanup runs), like a .NET method whose token is cancelled straight away.
    iid = client.next_id()
    client.send_raw(
        client.protocol.write(
            StreamInvocationMessage(invocation_id=iid, target="Endless", arguments=[])
        )
        + client.protocol.write(CancelInvocationMessage(invocation_id=iid))
    )
    completion = await client.wait_completion(iid)
    assert completion.error is None and not completion.has_result
    await wait_until(lambda: "endless closed" in SampleHub.log)
