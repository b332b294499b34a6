"""RFC 6455 codec at the byte level: masking, fragmentation, control frames, close codes."""

from __future__ import annotations

import os
import struct

import pytest

from hubserver.transports import websocket_frames as wf


def masked(
    opcode: int,
    payload: bytes,
    *,
    fin: bool = True,
    mask: bytes = b"\x01\x02\x03\x04",
    rsv: int = 0,
) -> bytes:
    """A client frame (masked), built independently of the codec under test."""
    first = (0x80 if fin else 0) | rsv | opcode
    n = len(payload)
    if n < 126:
        head = bytes((first, 0x80 | n))
    elif n < 65536:
        head = struct.pack("!BBH", first, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", first, 0x80 | 127, n)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + mask + body


def test_accept_key_matches_rfc_6455_example() -> None:
    # RFC 6455 §1.3 worked example.
    assert wf.accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_client_key_must_be_base64_of_16_bytes() -> None:
    assert wf.is_valid_client_key("dGhlIHNhbXBsZSBub25jZQ==")
    assert not wf.is_valid_client_key("short")
    assert not wf.is_valid_client_key("")
    assert not wf.is_valid_client_key("ünicode")


@pytest.mark.parametrize("n", [0, 1, 3, 4, 5, 125, 126, 127, 65535, 65536, 70001])
def test_unmask_equals_bytewise_xor(n: int) -> None:
    payload = os.urandom(n)
    mask = os.urandom(4)
    expected = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    assert wf.unmask(payload, mask) == expected


@pytest.mark.parametrize(
    ("n", "header"),
    [
        (0, b"\x81\x00"),
        (125, b"\x81\x7d"),
        (126, b"\x81\x7e\x00\x7e"),
        (65535, b"\x81\x7e\xff\xff"),
        (65536, b"\x81\x7f" + (65536).to_bytes(8, "big")),
    ],
)
def test_server_frames_are_unmasked_with_minimal_length_encoding(n: int, header: bytes) -> None:
    frame = wf.encode_frame(wf.OP_TEXT, b"a" * n)
    assert frame == header + b"a" * n


def test_close_frame_carries_code_and_reason() -> None:
    assert wf.encode_close(1000) == b"\x88\x02\x03\xe8"
    assert wf.encode_close(1002, "bad") == b"\x88\x05\x03\xeabad"
    # The reason is truncated so the control frame stays within 125 bytes.
    assert len(wf.encode_close(1000, "x" * 300)) == 2 + 125


def test_text_and_binary_messages_are_unmasked() -> None:
    parser = wf.FrameParser(1 << 20)
    data = masked(wf.OP_TEXT, b"hello") + masked(wf.OP_BINARY, b"\x00\xff")
    assert parser.feed(data) == [(wf.OP_TEXT, b"hello"), (wf.OP_BINARY, b"\x00\xff")]


@pytest.mark.parametrize("n", [125, 126, 65536])
def test_extended_lengths_are_parsed(n: int) -> None:
    payload = os.urandom(n)
    assert wf.FrameParser(1 << 20).feed(masked(wf.OP_BINARY, payload)) == [(wf.OP_BINARY, payload)]


def test_every_byte_split_yields_the_same_events() -> None:
    stream = (
        masked(wf.OP_TEXT, b"one", fin=False)
        + masked(wf.OP_PING, b"p")
        + masked(wf.OP_CONTINUATION, b"two")
        + masked(wf.OP_BINARY, b"x" * 130)
        + masked(wf.OP_CLOSE, b"\x03\xe8bye")
    )
    expected = [
        (wf.OP_PING, b"p"),
        (wf.OP_TEXT, b"onetwo"),
        (wf.OP_BINARY, b"x" * 130),
        (wf.OP_CLOSE, b"\x03\xe8bye"),
    ]
    for cut in range(len(stream) + 1):
        parser = wf.FrameParser(1 << 20)
        events = parser.feed(stream[:cut]) + parser.feed(stream[cut:])
        assert events == expected, cut
    parser = wf.FrameParser(1 << 20)
    events = []
    for i in range(len(stream)):
        events += parser.feed(stream[i : i + 1])
    assert events == expected


def test_fragmented_message_is_reassembled_with_interleaved_control_frames() -> None:
    parser = wf.FrameParser(1 << 20)
    assert parser.feed(masked(wf.OP_BINARY, b"a", fin=False)) == []
    assert parser.feed(masked(wf.OP_PONG, b"")) == [(wf.OP_PONG, b"")]
    assert parser.feed(masked(wf.OP_CONTINUATION, b"b", fin=False)) == []
    assert parser.feed(masked(wf.OP_CONTINUATION, b"c")) == [(wf.OP_BINARY, b"abc")]


def _error(data: bytes, max_size: int = 1 << 20) -> wf.WebSocketProtocolError:
    with pytest.raises(wf.WebSocketProtocolError) as info:
        wf.FrameParser(max_size).feed(data)
    return info.value


def test_unmasked_client_frame_is_a_protocol_error() -> None:
    assert _error(b"\x81\x02hi").code == 1002


def test_reserved_bits_are_a_protocol_error() -> None:
    assert _error(masked(wf.OP_TEXT, b"x", rsv=0x40)).code == 1002


@pytest.mark.parametrize("opcode", [0x3, 0x7, 0xB, 0xF])
def test_unknown_opcodes_are_a_protocol_error(opcode: int) -> None:
    assert _error(masked(opcode, b"")).code == 1002


def test_control_frames_must_be_short_and_unfragmented() -> None:
    assert _error(masked(wf.OP_PING, b"x" * 126)).code == 1002
    assert _error(masked(wf.OP_PING, b"x", fin=False)).code == 1002


def test_continuation_without_start_and_new_message_inside_fragments_fail() -> None:
    assert _error(masked(wf.OP_CONTINUATION, b"x")).code == 1002
    assert _error(masked(wf.OP_TEXT, b"a", fin=False) + masked(wf.OP_TEXT, b"b")).code == 1002


def test_message_over_the_limit_fails_with_1009_before_the_payload_arrives() -> None:
    assert _error(masked(wf.OP_BINARY, b"x" * 11)[:8], max_size=10).code == 1009
    fragments = masked(wf.OP_BINARY, b"x" * 6, fin=False) + masked(wf.OP_CONTINUATION, b"x" * 6)
    assert _error(fragments, max_size=10).code == 1009


def test_invalid_utf8_text_fails_with_1007() -> None:
    assert _error(masked(wf.OP_TEXT, b"\xff\xfe")).code == 1007


def test_64_bit_length_with_high_bit_set_is_a_protocol_error() -> None:
    assert _error(b"\x82\xff" + b"\x80" + b"\x00" * 7 + b"mask").code == 1002


def test_close_payload_parsing() -> None:
    assert wf.parse_close_payload(b"") == (1005, "")
    assert wf.parse_close_payload(b"\x03\xe8ok") == (1000, "ok")
    assert wf.parse_close_payload(b"\x0f\xa0") == (4000, "")
    for bad in (b"\x03", b"\x03\xed", b"\x00\x00", b"\x03\xee"):  # 1 byte, 1005, 0, 1006
        with pytest.raises(wf.WebSocketProtocolError) as info:
            wf.parse_close_payload(bad)
        assert info.value.code == 1002
    with pytest.raises(wf.WebSocketProtocolError) as info:
        wf.parse_close_payload(b"\x03\xe8\xff")
    assert info.value.code == 1007
