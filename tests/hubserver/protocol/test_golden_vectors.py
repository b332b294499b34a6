"""Named golden vectors run against both codecs (docs/spec/hub-protocol.md
§3.3 and docs/spec/messagepack.md §4)."""

from __future__ import annotations

import pytest

from hubserver.protocol.json_protocol import JsonHubProtocol
from hubserver.protocol.messagepack_protocol import MessagePackHubProtocol
from tests.support.golden import Codec, load_vectors, vector

CODECS = {"json": JsonHubProtocol(), "messagepack": MessagePackHubProtocol()}
CODEC_NAMES: tuple[Codec, ...] = ("json", "messagepack")

WRITE_CASES = [
    pytest.param(v, id=f"{v.codec}:{v.name}")
    for codec in CODEC_NAMES
    for v in load_vectors(codec, "write")
]
PARSE_CASES = [
    pytest.param(v, id=f"{v.codec}:{v.name}")
    for codec in CODEC_NAMES
    for v in load_vectors(codec, "parse")
]


@pytest.mark.parametrize("v", WRITE_CASES)
def test_write_produces_the_golden_bytes(v):
    assert CODECS[v.codec].write(v.message) == v.wire


@pytest.mark.parametrize("v", PARSE_CASES)
def test_parse_of_the_golden_bytes_gives_the_message_and_consumes_everything(v):
    messages, consumed = CODECS[v.codec].parse(v.wire)
    assert messages == [v.message]
    assert consumed == len(v.wire)


def test_every_message_type_has_a_two_way_vector_in_both_codecs():
    for codec in CODEC_NAMES:
        kinds = {type(v.message).__name__ for v in load_vectors(codec) if v.direction == "both"}
        assert kinds == {
            "InvocationMessage",
            "StreamInvocationMessage",
            "StreamItemMessage",
            "CompletionMessage",
            "CancelInvocationMessage",
            "PingMessage",
            "CloseMessage",
            "AckMessage",
            "SequenceMessage",
        }, codec


def test_vectors_with_the_same_name_describe_the_same_message_in_both_codecs():
    json_vectors = {v.name: v.message for v in load_vectors("json")}
    msgpack_vectors = {v.name: v.message for v in load_vectors("messagepack")}
    shared = json_vectors.keys() & msgpack_vectors.keys()
    assert len(shared) > 30
    for name in shared:
        assert json_vectors[name] == msgpack_vectors[name], name


def test_all_golden_records_concatenated_parse_in_order():
    for codec in CODEC_NAMES:
        protocol = CODECS[codec]
        vectors = load_vectors(codec, "parse")
        data = b"".join(v.wire for v in vectors)
        messages, consumed = protocol.parse(data)
        assert messages == [v.message for v in vectors]
        assert consumed == len(data)


def test_ping_is_exactly_three_bytes_in_messagepack():
    assert vector("ping", "messagepack").wire == bytes.fromhex("029106")


def test_messagepack_invocation_is_written_with_six_elements():
    # signalrcore reads index 5 unconditionally (docs/spec/messagepack.md §4).
    wire = vector("invocation_non_blocking", "messagepack").wire
    assert wire[1] == 0x96


def test_long_messagepack_payload_uses_a_two_byte_length_prefix():
    wire = vector("invocation_long_payload", "messagepack").wire
    assert wire[0] & 0x80 and not wire[1] & 0x80
    assert (wire[0] & 0x7F) | (wire[1] << 7) == len(wire) - 2
