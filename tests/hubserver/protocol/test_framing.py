"""Record framing fed at every possible byte split (docs/spec/hub-protocol.md §3.1,
docs/spec/messagepack.md §4 framing)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hubserver.errors import MessageTooLargeError, ProtocolError
from hubserver.protocol.framing import (
    BinaryFramer,
    TextFramer,
    read_varint,
    split_binary_frames,
    split_text_records,
    write_varint,
)
from hubserver.protocol.json_protocol import JsonHubProtocol
from hubserver.protocol.messagepack_protocol import MessagePackHubProtocol
from tests.support.golden import Codec, load_vectors

CODECS = {"json": JsonHubProtocol(), "messagepack": MessagePackHubProtocol()}
CODEC_NAMES: tuple[Codec, ...] = ("json", "messagepack")


@pytest.mark.parametrize(
    ("n", "encoded"),
    [
        (0, "00"),
        (53, "35"),
        (127, "7f"),
        (128, "8001"),
        (5248, "8029"),
        (16383, "ff7f"),
        (16384, "808001"),
        (0x7FFFFFFF, "ffffffff07"),
    ],
)
def test_varint_examples_from_the_spec(n, encoded):
    assert write_varint(n).hex() == encoded
    assert read_varint(bytes.fromhex(encoded)) == (n, len(encoded) // 2)


def test_varint_rejects_out_of_range_lengths():
    with pytest.raises(ValueError):
        write_varint(0x80000000)
    with pytest.raises(ValueError):
        write_varint(-1)
    with pytest.raises(ProtocolError, match="Messages over 2GB in size are not supported."):
        read_varint(bytes.fromhex("ffffffff08"))


def test_incomplete_varint_reads_as_none():
    assert read_varint(b"\x80\x80") is None
    assert read_varint(b"") is None


@given(st.integers(min_value=0, max_value=0x7FFFFFFF))
def test_varint_round_trips(n):
    data = write_varint(n)
    assert 1 <= len(data) <= 5
    assert read_varint(data + b"\x00") == (n, len(data))


@pytest.mark.parametrize("codec", CODEC_NAMES)
def test_parse_at_every_byte_split_returns_exactly_the_complete_messages(codec):
    protocol = CODECS[codec]
    vectors = load_vectors(codec, "parse")
    wires = [v.wire for v in vectors]
    expected = [v.message for v in vectors]
    data = b"".join(wires)
    boundaries = [0]
    for wire in wires:
        boundaries.append(boundaries[-1] + len(wire))
    for split in range(len(data) + 1):
        first, consumed = protocol.parse(data[:split])
        complete = max(i for i, b in enumerate(boundaries) if b <= split)
        assert consumed == boundaries[complete], split
        assert first == expected[:complete], split
        rest, consumed_rest = protocol.parse(data[consumed:])
        assert first + rest == expected
        assert consumed + consumed_rest == len(data)


@pytest.mark.parametrize("codec", CODEC_NAMES)
def test_framer_fed_byte_by_byte_yields_every_record(codec):
    vectors = load_vectors(codec, "parse")
    data = b"".join(v.wire for v in vectors)
    framer = TextFramer() if codec == "json" else BinaryFramer()
    records = []
    for i in range(len(data)):
        records += framer.feed(data[i : i + 1])
    assert framer.pending == 0
    protocol = CODECS[codec]
    reframed = b"".join(r + b"\x1e" if codec == "json" else BinaryFramer.frame(r) for r in records)
    assert protocol.parse(reframed)[0] == [v.message for v in vectors]


@pytest.mark.parametrize("codec", CODEC_NAMES)
def test_framer_fed_two_chunks_at_every_split_yields_every_record(codec):
    vectors = load_vectors(codec, "parse")
    data = b"".join(v.wire for v in vectors)
    expected_count = len(vectors)
    for split in range(len(data) + 1):
        framer = TextFramer() if codec == "json" else BinaryFramer()
        records = framer.feed(data[:split]) + framer.feed(data[split:])
        assert len(records) == expected_count, split
        assert framer.pending == 0


def test_split_text_records_strips_separators():
    assert split_text_records(b"a\x1eb\x1ec") == ([b"a", b"b"], 4)
    assert split_text_records(memoryview(b"\x1e")) == ([b""], 1)


def test_split_binary_frames_reports_spans():
    assert split_binary_frames(b"\x01a\x00\x02bc\x03d") == ([(1, 2), (3, 3), (4, 6)], 6)


def test_text_framer_rejects_a_record_over_the_limit_even_before_its_separator():
    framer = TextFramer(max_message_size=8)
    assert framer.feed(b"12345678\x1e") == [b"12345678"]
    with pytest.raises(MessageTooLargeError, match="The maximum message size of 8B was exceeded."):
        framer.feed(b"123456789")


def test_binary_framer_rejects_a_large_frame_as_soon_as_the_prefix_arrives():
    framer = BinaryFramer(max_message_size=100)
    with pytest.raises(MessageTooLargeError):
        framer.feed(write_varint(101))


def test_binary_framer_keeps_a_partial_prefix():
    framer = BinaryFramer()
    body = b"x" * 200
    data = BinaryFramer.frame(body)
    assert framer.feed(data[:1]) == []
    assert framer.pending == 1
    assert framer.feed(data[1:]) == [body]


@given(st.lists(st.binary(max_size=300), max_size=6), st.data())
def test_binary_framer_reassembles_any_chunking(bodies, data):
    stream = b"".join(BinaryFramer.frame(b) for b in bodies)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=5)))
    framer = BinaryFramer()
    out = []
    previous = 0
    for cut in [*cuts, len(stream)]:
        out += framer.feed(stream[previous:cut])
        previous = cut
    assert out == bodies


@given(
    st.lists(st.binary(max_size=50).map(lambda b: b.replace(b"\x1e", b"")), max_size=6), st.data()
)
def test_text_framer_reassembles_any_chunking(records, data):
    stream = b"".join(r + b"\x1e" for r in records)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=5)))
    framer = TextFramer()
    out = []
    previous = 0
    for cut in [*cuts, len(stream)]:
        out += framer.feed(stream[previous:cut])
        previous = cut
    assert out == records
