"""Parse-time limits of both hub protocols: lone surrogates and nesting depth are refused as
invalid data, so nothing the server accepted fails later when written to recipients."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest

from hubserver.errors import ProtocolError
from hubserver.protocol._limits import MAX_DEPTH, SURROGATE_TEXT, depth_text, find_invalid
from hubserver.protocol.framing import write_varint
from hubserver.protocol.json_protocol import JsonHubProtocol
from hubserver.protocol.messagepack_protocol import MessagePackHubProtocol
from hubserver.protocol.messages import InvocationMessage

JSON = JsonHubProtocol()
MSGPACK = MessagePackHubProtocol()

LONE = "\\ud800"  # as a JSON escape
SURROGATE_ERROR = f"Error reading JSON. {SURROGATE_TEXT}"


def nested(levels: int) -> Any:
    value: list[Any] = []
    for _ in range(levels - 1):
        value = [value]
    return value


def json_record(text: str) -> bytes:
    return text.encode("utf-8") + b"\x1e"


def msgpack_frame(array: list[Any]) -> bytes:
    body = msgpack.packb(array, use_bin_type=True)
    return write_varint(len(body)) + body


@pytest.mark.parametrize(
    "text",
    [
        '{"type":1,"invocationId":"%s","target":"Echo","arguments":[]}'.replace("%s", LONE),
        '{"type":1,"target":"Ec%sho","arguments":[]}'.replace("%s", LONE),
        '{"type":1,"target":"Echo","arguments":["a%s"]}'.replace("%s", LONE),
        '{"type":1,"target":"Echo","arguments":[{"k%s":1}]}'.replace("%s", LONE),
        '{"type":1,"target":"Echo","arguments":[{"deep":[["\\udfff"]]}]}',
        '{"type":1,"target":"Echo","arguments":[],"headers":{"h":"%s"}}'.replace("%s", LONE),
        '{"type":3,"invocationId":"1","result":"%s"}'.replace("%s", LONE),
        '{"type":2,"invocationId":"1","item":"%s\\ud800"}'.replace("%s", LONE),
    ],
)
def test_json_refuses_a_lone_surrogate_anywhere(text: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        JSON.parse(json_record(text))
    assert str(caught.value) == SURROGATE_ERROR


def test_json_keeps_surrogate_pairs_and_non_ascii_text() -> None:
    pair = '{"type":1,"target":"Echo","arguments":["\\ud83d\\ude00","é€"]}'
    lone = '{"type":1,"target":"Echo","arguments":["\\ud83d"]}'
    messages, _ = JSON.parse(json_record(pair))
    assert isinstance(messages[0], InvocationMessage)
    assert messages[0].arguments == ["\U0001f600", "é€"]
    with pytest.raises(ProtocolError):
        JSON.parse(json_record(lone))


def test_json_depth_limit_counts_the_message_itself() -> None:
    # Envelope (1) + arguments (2) + n nested lists.
    ok = {"type": 1, "target": "Echo", "arguments": [nested(MAX_DEPTH - 2)]}
    too_deep = {"type": 1, "target": "Echo", "arguments": [nested(MAX_DEPTH - 1)]}
    messages, _ = JSON.parse(JSON.write(InvocationMessage("Echo", ok["arguments"])))
    assert messages[0].arguments == ok["arguments"]  # type: ignore[attr-defined]
    with pytest.raises(ProtocolError) as caught:
        JSON.parse(JSON.write(InvocationMessage("Echo", too_deep["arguments"])))
    assert str(caught.value) == f"Error reading JSON. {depth_text()}"


def test_json_depth_limit_applies_to_objects_and_mixed_nesting() -> None:
    deep = "".join('{"a":[' for _ in range(40)) + "1" + "".join("]}" for _ in range(40))
    text = '{"type":1,"target":"Echo","arguments":[%s]}'.replace("%s", deep)
    with pytest.raises(ProtocolError, match="maximum nesting depth of 64"):
        JSON.parse(json_record(text))


def test_json_refusal_leaves_the_other_records_of_the_batch_unparsed() -> None:
    good = '{"type":6}'
    bad = '{"type":1,"invocationId":"%s","target":"Echo","arguments":[]}'.replace("%s", LONE)
    with pytest.raises(ProtocolError):
        JSON.parse(json_record(good) + json_record(bad) + json_record(good))


def test_msgpack_refuses_nesting_beyond_the_limit() -> None:
    ok = msgpack_frame([1, {}, "1", "Echo", [nested(MAX_DEPTH - 2)], []])
    too_deep = msgpack_frame([1, {}, "1", "Echo", [nested(MAX_DEPTH - 1)], []])
    messages, consumed = MSGPACK.parse(ok)
    assert consumed == len(ok)
    assert messages[0].arguments == [nested(MAX_DEPTH - 2)]  # type: ignore[attr-defined]
    with pytest.raises(ProtocolError) as caught:
        MSGPACK.parse(too_deep)
    assert str(caught.value) == f"Error reading MessagePack. {depth_text()}"


def test_msgpack_refuses_deep_maps_below_the_unpackers_own_stack_limit() -> None:
    # 600 levels: the C unpacker accepts it (its stack is 1024) but the packer cannot write
    # it back (recursion limit 511), so before the limit it failed at every recipient.
    # Built by hand: the packer itself refuses to write it.
    value = b"\x81\xa1k" * 600 + b"\x01"
    body = b"\x96\x01\x80\xc0\xa4Echo\x91" + value + b"\x90"
    frame = write_varint(len(body)) + body
    with pytest.raises(ProtocolError, match="maximum nesting depth"):
        MSGPACK.parse(frame)


def test_find_invalid_walks_without_recursion() -> None:
    assert find_invalid(nested(100_000), strings=True) == depth_text()
    assert find_invalid({"a": ["b", {"c": "\udc00"}]}, strings=True) == SURROGATE_TEXT
    assert find_invalid({"a": ["b", {"c": "\udc00"}]}, strings=False) is None
    assert find_invalid(nested(3), strings=True, max_depth=3) is None
    assert find_invalid(nested(4), strings=True, max_depth=3) == depth_text(3)
