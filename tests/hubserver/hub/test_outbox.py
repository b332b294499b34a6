"""Outbox: what a stateful connection writes now, holds, or replays
(docs/spec/stateful-reconnect.md §5.2, §5.3)."""

from __future__ import annotations

from hubserver.hub.outbox import STARTUP_HOLD_SECONDS, Outbox


def test_writes_are_held_until_released_then_go_out_directly() -> None:
    outbox = Outbox(1000, now=10.0)
    assert outbox.holding
    assert not outbox.record(b"a", trackable=True)
    assert not outbox.record(b"ping", trackable=False)
    assert outbox.release() == [b"a", b"ping"]
    assert not outbox.holding
    assert outbox.release() == []
    assert outbox.record(b"b", trackable=True)
    assert outbox.buffer.buffered_count == 2  # trackable ones are kept for replay


def test_the_startup_hold_expires_after_a_second_of_client_silence() -> None:
    outbox = Outbox(1000, now=10.0)
    assert not outbox.hold_expired(10.0 + STARTUP_HOLD_SECONDS - 0.01)
    assert outbox.hold_expired(10.0 + STARTUP_HOLD_SECONDS)
    outbox.release()
    assert not outbox.hold_expired(100.0)


def test_paused_writes_wait_and_resume_replays_everything_unacked() -> None:
    outbox = Outbox(1000, now=0.0)
    outbox.release()
    assert outbox.record(b"1", trackable=True)
    outbox.buffer.on_ack(1)
    assert outbox.record(b"2", trackable=True)
    outbox.pause()
    assert outbox.paused
    assert not outbox.record(b"3", trackable=True)
    assert not outbox.record(b"ping", trackable=False)
    sequence_id, replay = outbox.resume()
    assert not outbox.paused
    assert (sequence_id, replay) == (2, [b"2", b"3"])
    assert outbox.record(b"4", trackable=True)


def test_a_pause_during_the_startup_hold_releases_nothing_and_resume_replays_it() -> None:
    outbox = Outbox(1000, now=0.0)
    assert not outbox.record(b"1", trackable=True)
    outbox.pause()
    assert outbox.release() == []
    sequence_id, replay = outbox.resume()
    assert (sequence_id, replay) == (1, [b"1"])
    assert not outbox.holding


def test_a_restored_outbox_continues_the_numbering_of_the_one_it_was_taken_from() -> None:
    # docs/spec/stateful-reconnect.md §5.4: the resuming server continues both counts.
    from hubserver.protocol.messages import InvocationMessage

    source = Outbox(1000, now=0.0)
    source.release()
    for data in (b"1", b"2", b"3"):
        source.record(data, trackable=True)
    source.buffer.on_ack(1)
    for _ in range(4):
        source.buffer.on_received_trackable()
    source.pause()
    source.record(b"4", trackable=True)

    restored = Outbox.restore(1000, source.buffer.snapshot())
    assert restored.paused and not restored.holding
    assert not restored.record(b"5", trackable=True)  # paused until the transport attaches
    assert restored.resume() == (2, [b"2", b"3", b"4", b"5"])
    assert restored.buffer.total_sent == 5
    assert restored.buffer.buffered_bytes == 4
    # Receiving side: 4 processed; the client's replay of 3..4 are duplicates, 5 is new.
    restored.buffer.on_sequence(3)
    message = InvocationMessage("m", ())
    assert [restored.buffer.should_process(message) for _ in range(3)] == [False, False, True]
    assert restored.buffer.ack_to_send() == 5
