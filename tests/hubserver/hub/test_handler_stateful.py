"""Stateful reconnect at the hub layer (docs/spec/stateful-reconnect.md §5): Acks, buffering while
the
transport is paused, Sequence + replay on resume, and dropping duplicate replays."""

from __future__ import annotations

from hubserver.protocol.messages import (
    AckMessage,
    InvocationMessage,
    MessageType,
    PingMessage,
    SequenceMessage,
)
from tests.hubserver.hub.conftest import SampleHub
from tests.support.hub_client import HubTestClient, settle


async def stateful(connect, version: int = 2) -> HubTestClient:
    client: HubTestClient = await connect(version=version, stateful_reconnect=True)
    return client


def types_sent(client: HubTestClient) -> list[int]:
    client.read()
    return [int(m.type) for m in client.received]


async def test_non_stateful_clients_never_get_ack_or_sequence(connect, clock, handler):
    plain = await connect()
    # version < 2 disables it (docs/spec/stateful-reconnect.md §5.1)
    downgraded = await stateful(connect, version=1)
    for client in (plain, downgraded):
        assert not client.app.stateful
        await client.invoke("Echo", "x")
        client.app.transport_paused()
        client.app.transport_resumed()
    clock.advance(2)
    handler.tick()
    for client in (plain, downgraded):
        assert not {8, 9} & set(types_sent(client))


async def test_ack_is_sent_on_the_tick_after_trackable_messages_arrived(connect, clock, handler):
    client = await stateful(connect)
    assert client.app.stateful
    handler.tick()
    assert MessageType.ACK not in types_sent(client)
    await client.invoke("Echo", "a")
    await client.invoke("Echo", "b")
    client.send_message(PingMessage())  # not trackable: not counted
    clock.advance(1)
    handler.tick()
    assert client.ctx.sent[-1][0] == b'{"type":8,"sequenceId":2}\x1e'
    clock.advance(1)
    handler.tick()
    assert types_sent(client).count(MessageType.ACK) == 1  # nothing new, no new Ack


async def test_paused_transport_buffers_and_resume_sends_sequence_then_replay(connect, handler):
    client = await stateful(connect)
    await client.invoke("Echo", "acked")  # server trackable #1
    client.send_message(AckMessage(1))
    await client.invoke("Echo", "unacked")  # #2
    client.app.transport_paused()
    await handler.hub_context.clients.all.send("Live", 1)  # #3, buffered
    await settle()
    sent_before = len(client.ctx.sent)
    await handler.hub_context.clients.all.send("Live", 2)  # #4
    assert len(client.ctx.sent) == sent_before  # nothing written while paused
    client.app.transport_resumed()
    new = [p for p, _ in client.ctx.sent[sent_before:]]
    assert new[0] == b'{"type":9,"sequenceId":2}\x1e'
    assert new[1] == b'{"type":3,"invocationId":"1","result":"unacked"}\x1e'
    assert new[2:] == [
        b'{"type":1,"target":"Live","arguments":[1]}\x1e',
        b'{"type":1,"target":"Live","arguments":[2]}\x1e',
    ]


async def test_duplicate_invocations_replayed_by_the_client_are_dropped(connect):
    client = await stateful(connect)
    first = InvocationMessage("Record", ["once"], invocation_id="r")
    client.send_message(first)
    await client.wait_completion("r")
    client.app.transport_paused()
    client.app.transport_resumed()
    # Client: Sequence {oldest unacked = 1}, then replays message 1 and sends a new one.
    client.send_message(SequenceMessage(1))
    client.send_message(first)
    client.send_message(InvocationMessage("Record", ["new"], invocation_id="n"))
    await client.wait_completion("n")
    assert SampleHub.log == ["start once", "end once", "start new", "end new"]


async def test_messages_before_the_clients_sequence_are_ignored_after_resume(connect):
    client = await stateful(connect)
    client.app.transport_paused()
    client.app.transport_resumed()
    client.send_message(InvocationMessage("Record", ["early"], invocation_id="e"))
    await settle(10)
    assert SampleHub.log == []


async def test_sequence_ahead_of_what_was_received_is_fatal(connect):
    client = await stateful(connect)
    client.send_message(SequenceMessage(5))
    await settle()
    assert client.last_close().error == "Connection closed with an error."
    assert client.ctx.closed


async def test_acks_release_the_replay_buffer(connect):
    client = await stateful(connect)
    for i in range(3):
        await client.invoke("Echo", str(i))
    outbox = client.app.outbox
    assert outbox is not None
    buffer = outbox.buffer
    assert buffer.buffered_count == 3
    client.send_message(AckMessage(3))
    assert buffer.buffered_count == 0
