"""Stateful-reconnect bookkeeping (docs/spec/stateful-reconnect.md §5.2 numbering, §5.3 drop/replay;
MessageBuffer.cs)."""

from __future__ import annotations

import pytest

from hubserver.errors import ProtocolError
from hubserver.protocol.message_buffer import SEQUENCE_AHEAD_ERROR, MessageBuffer
from hubserver.protocol.messages import (
    PING,
    AckMessage,
    CloseMessage,
    CompletionMessage,
    InvocationMessage,
    SequenceMessage,
    StreamItemMessage,
)


def test_only_trackable_messages_are_numbered_and_buffered():
    buffer = MessageBuffer(1000)
    buffer.on_sent(True, b"a" * 10)
    buffer.on_sent(False, b"ping")
    buffer.on_sent(True, b"b" * 5)
    assert buffer.total_sent == 2
    assert buffer.buffered_bytes == 15
    assert buffer.buffered_count == 2


def test_ack_drops_messages_up_to_and_including_the_id():
    buffer = MessageBuffer(1000)
    for i in range(1, 6):
        buffer.on_sent(True, bytes([i]) * i)
    buffer.on_ack(3)
    assert buffer.buffered_count == 2
    assert buffer.buffered_bytes == 4 + 5
    buffer.on_ack(2)  # stale ack: nothing to do
    assert buffer.buffered_count == 2
    buffer.on_ack(100)  # ack beyond what was sent only empties the buffer
    assert (buffer.buffered_count, buffer.buffered_bytes) == (0, 0)


def test_full_is_reported_when_unacked_bytes_reach_the_limit_and_cleared_by_ack():
    buffer = MessageBuffer(100)
    assert buffer.on_sent(True, b"x" * 60) is False
    assert buffer.on_sent(True, b"x" * 40) is True
    assert buffer.full
    assert buffer.on_sent(False, b"ping") is True  # still full, non-trackable not counted
    buffer.on_ack(1)
    assert not buffer.full


def test_replay_starts_with_the_oldest_unacked_id():
    buffer = MessageBuffer()
    for data in (b"1", b"2", b"3"):
        buffer.on_sent(True, data)
    buffer.on_ack(1)
    assert buffer.replay() == (2, [b"2", b"3"])


def test_replay_with_nothing_pending_announces_total_sent_plus_one():
    buffer = MessageBuffer()
    assert buffer.replay() == (1, [])
    buffer = MessageBuffer()
    buffer.on_sent(True, b"1")
    buffer.on_ack(1)
    assert buffer.replay() == (2, [])


def test_messages_sent_after_replay_continue_the_numbering():
    buffer = MessageBuffer()
    buffer.on_sent(True, b"1")
    buffer.replay()
    buffer.on_sent(True, b"2")
    assert buffer.replay() == (1, [b"1", b"2"])


def test_received_trackable_messages_are_counted_and_acked_once():
    buffer = MessageBuffer()
    assert buffer.ack_to_send() is None
    assert buffer.on_received_trackable()
    assert buffer.on_received_trackable()
    assert buffer.ack_to_send() == 2
    assert buffer.ack_to_send() is None
    buffer.on_received_trackable()
    assert buffer.ack_to_send() == 3


def test_sequence_rewinds_and_duplicates_from_the_peer_replay_are_dropped():
    buffer = MessageBuffer()
    for _ in range(5):
        assert buffer.on_received_trackable()
    # The client acked up to 3 of ours and replays from 4 of its own.
    buffer.on_sequence(4)
    assert buffer.on_received_trackable() is False  # its 4: duplicate
    assert buffer.on_received_trackable() is False  # its 5: duplicate
    assert buffer.on_received_trackable() is True  # its 6: new
    assert buffer.latest_received == 6


def test_sequence_equal_to_next_expected_id_is_accepted():
    buffer = MessageBuffer()
    buffer.on_received_trackable()
    buffer.on_sequence(2)
    assert buffer.on_received_trackable()


def test_sequence_ahead_of_what_was_received_is_fatal():
    buffer = MessageBuffer()
    buffer.on_received_trackable()
    with pytest.raises(ProtocolError) as info:
        buffer.on_sequence(3)
    assert (
        str(info.value)
        == SEQUENCE_AHEAD_ERROR
        == "Sequence ID greater than amount of messages we've received."
    )


def test_should_process_drops_everything_but_sequence_while_waiting_after_replay():
    buffer = MessageBuffer()
    invocation = InvocationMessage("T", [], "1")
    assert buffer.should_process(invocation)
    buffer.replay()
    assert buffer.waiting_for_sequence
    for message in (PING, invocation, AckMessage(1), CloseMessage()):
        assert buffer.should_process(message) is False
    assert buffer.should_process(SequenceMessage(1)) is True
    assert not buffer.waiting_for_sequence
    assert buffer.should_process(invocation) is False  # replayed id 1: duplicate
    assert buffer.should_process(StreamItemMessage("s", 1)) is True  # id 2
    assert buffer.should_process(PING) is True  # not trackable, never numbered
    assert buffer.should_process(CompletionMessage.empty("s")) is True  # id 3
    assert buffer.latest_received == 3


def test_should_process_raises_for_a_sequence_ahead():
    buffer = MessageBuffer()
    with pytest.raises(ProtocolError):
        buffer.should_process(SequenceMessage(2))


def test_buffer_size_must_be_positive():
    with pytest.raises(ValueError):
        MessageBuffer(0)
