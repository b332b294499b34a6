"""The state a connection carries to another server (docs/spec/stateful-reconnect.md §5.4)."""

from __future__ import annotations

import zlib

import pytest

from hubserver.hub.handover import read_state, write_state
from hubserver.protocol.message_buffer import BufferSnapshot


def test_the_state_round_trips_and_is_compressed() -> None:
    frames = [
        (i, b'{"type":1,"target":"SessionStarted","arguments":[%d]}\x1e' % i) for i in range(7, 400)
    ]
    snapshot = BufferSnapshot(
        total_sent=399, pending=frames, next_receiving_id=5, latest_received=4
    )
    data = write_state("json", snapshot)
    assert read_state(data) == ("json", snapshot)
    assert len(data) < sum(len(f) for _, f in frames) / 4


@pytest.mark.parametrize(
    "data",
    [b"", b"not zlib", zlib.compress(b"\x93\x01\x02\x03"), zlib.compress(b"\x81\xa1p\xa4json")],
)
def test_a_malformed_state_is_refused(data: bytes) -> None:
    with pytest.raises(ValueError):
        read_state(data)
