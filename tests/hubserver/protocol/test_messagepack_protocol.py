"""MessagePackHubProtocol: array layouts, leniency, invalid input with .NET's texts and
value encoding (docs/spec/messagepack.md §4; MessagePackHubProtocolWorker.cs)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import uuid
from decimal import Decimal

import msgpack
import pydantic
import pytest

from hubserver.errors import ProtocolError
from hubserver.protocol.base import TransferFormat
from hubserver.protocol.framing import write_varint
from hubserver.protocol.messagepack_protocol import MessagePackHubProtocol
from hubserver.protocol.messages import (
    PING,
    CloseMessage,
    CompletionMessage,
    InvocationMessage,
    StreamItemMessage,
)

mp_protocol = MessagePackHubProtocol()


def frame(obj) -> bytes:
    body = msgpack.packb(obj, use_bin_type=True, datetime=True)
    return write_varint(len(body)) + body


def body_of(data: bytes):
    assert data[0] < 0x80, "test helper expects a one-byte prefix"
    return msgpack.unpackb(data[1:], raw=False, timestamp=3, strict_map_key=False)


INVALID = [
    ("not_an_array", {}, "Reading array length for 'message' failed."),
    ("empty_array", [], "Reading 'messageType' as Int32 failed."),
    ("string_type", ["1"], "Reading 'messageType' as Int32 failed."),
    ("boolean_type", [True], "Reading 'messageType' as Int32 failed."),
    ("unknown_type", [99], "Unknown message type '99'."),
    ("invocation_without_headers", [1], "Reading map length for 'headers' failed."),
    (
        "invocation_array_headers",
        [1, [], None, "T", []],
        "Reading map length for 'headers' failed.",
    ),
    (
        "invocation_numeric_header_value",
        [1, {"a": 1}, None, "T", []],
        "Reading 'headers[0].Value' as String failed.",
    ),
    ("invocation_empty_header_key", [1, {"": "b"}, None, "T", []], "Null or empty key in header."),
    (
        "invocation_empty_header_value",
        [1, {"a": ""}, None, "T", []],
        "Null or empty value in header.",
    ),
    (
        "invocation_numeric_header_key",
        [1, {1: "b"}, None, "T", []],
        "Reading 'headers[0].Key' as String failed.",
    ),
    (
        "invocation_numeric_invocation_id",
        [1, {}, 5, "T", []],
        "Reading 'invocationId' as String failed.",
    ),
    (
        "invocation_nil_target",
        [1, {}, None, None, []],
        "Null or empty target for Invocation message.",
    ),
    (
        "invocation_empty_target",
        [1, {}, None, "", []],
        "Null or empty target for Invocation message.",
    ),
    ("invocation_numeric_target", [1, {}, None, 5, []], "Reading 'target' as String failed."),
    ("invocation_missing_target", [1, {}, None], "Reading 'target' as String failed."),
    (
        "invocation_missing_arguments",
        [1, {}, None, "T"],
        "Reading array length for 'arguments' failed.",
    ),
    (
        "invocation_string_arguments",
        [1, {}, None, "T", "x"],
        "Reading array length for 'arguments' failed.",
    ),
    (
        "invocation_string_stream_ids",
        [1, {}, None, "T", [], "x"],
        "Reading array length for 'streamIds' failed.",
    ),
    (
        "invocation_nil_stream_id",
        [1, {}, None, "T", [], [None]],
        "Null or empty value in streamIds received.",
    ),
    (
        "invocation_numeric_stream_id",
        [1, {}, None, "T", [], [1]],
        "Null or empty value in streamIds received.",
    ),
    ("stream_item_nil_id", [2, {}, None, 1], "Null or empty invocation ID for StreamItem message."),
    ("stream_item_missing_item", [2, {}, "1"], "Reading 'item' failed."),
    ("completion_nil_id", [3, {}, None, 2], "Null or empty invocation ID for Completion message."),
    ("completion_missing_kind", [3, {}, "1"], "Reading 'resultKind' as Int32 failed."),
    ("completion_unknown_kind", [3, {}, "1", 4], "Invalid invocation result kind."),
    ("completion_numeric_error", [3, {}, "1", 1, 5], "Reading 'error' as String failed."),
    ("completion_missing_error", [3, {}, "1", 1], "Reading 'error' as String failed."),
    ("completion_missing_result", [3, {}, "1", 3], "Reading 'result' failed."),
    (
        "stream_invocation_nil_id",
        [4, {}, None, "T", []],
        "Null or empty invocation ID for StreamInvocation message.",
    ),
    (
        "stream_invocation_nil_target",
        [4, {}, "1", None, []],
        "Null or empty target for StreamInvocation message.",
    ),
    ("cancel_nil_id", [5, {}, None], "Null or empty invocation ID for CancelInvocation message."),
    ("close_numeric_error", [7, 5], "Reading 'error' as String failed."),
    ("close_missing_error", [7], "Reading 'error' as String failed."),
    ("close_numeric_allow_reconnect", [7, None, 1], "Reading 'allowReconnect' as Boolean failed."),
    ("ack_missing_sequence_id", [8], "Reading 'sequenceId' as Int64 failed."),
    ("sequence_string_sequence_id", [9, "1"], "Reading 'sequenceId' as Int64 failed."),
]


@pytest.mark.parametrize(("obj", "error"), [pytest.param(o, e, id=n) for n, o, e in INVALID])
def test_invalid_message_raises_protocol_error_with_the_dotnet_text(obj, error):
    with pytest.raises(ProtocolError) as info:
        mp_protocol.parse(frame(obj))
    assert str(info.value) == error


@pytest.mark.parametrize(
    ("data", "error"),
    [
        pytest.param(b"\x02\x91\x06\x00" + b"\x00", "Error reading MessagePack.", id="empty_body"),
        pytest.param(b"\x01\xc1", "Error reading MessagePack.", id="reserved_byte"),
        pytest.param(
            b"\x04\x91\x06\x91\x06", "Error reading MessagePack.", id="two_objects_in_one_frame"
        ),
        pytest.param(b"\x03\x91\xa1\xff", "Error reading MessagePack.", id="invalid_utf8"),
        pytest.param(
            b"\xff\xff\xff\xff\x08",
            "Messages over 2GB in size are not supported.",
            id="prefix_over_2gb",
        ),
        pytest.param(
            b"\x80\x80\x80\x80\x80\x01",
            "Messages over 2GB in size are not supported.",
            id="prefix_six_bytes",
        ),
    ],
)
def test_malformed_frames_raise_protocol_error(data, error):
    with pytest.raises(ProtocolError) as info:
        mp_protocol.parse(data)
    assert str(info.value) == error


def test_protocol_identity_is_messagepack_version_2_binary():
    assert (mp_protocol.name, mp_protocol.version) == ("messagepack", 2)
    assert mp_protocol.transfer_format is TransferFormat.BINARY


def test_incomplete_frame_is_not_consumed():
    ping = b"\x02\x91\x06"
    assert mp_protocol.parse(ping + b"\x05\x94\x02") == ([PING], 3)
    assert mp_protocol.parse(b"\x80") == ([], 0)  # prefix itself incomplete
    assert mp_protocol.parse(b"") == ([], 0)


def test_parse_of_a_bytearray_leaves_it_resizable():
    buffer = bytearray(b"\x02\x91\x06\x02\x91")
    messages, consumed = mp_protocol.parse(buffer)
    del buffer[:consumed]  # would raise BufferError if a view were still exported
    assert messages == [PING]
    assert buffer == b"\x02\x91"


def test_close_with_two_elements_from_the_js_client_is_accepted():
    assert mp_protocol.parse(frame([7, None])) == ([CloseMessage()], 4)


def test_completion_error_kind_with_nil_error_is_void():
    messages, _ = mp_protocol.parse(frame([3, {}, "1", 1, None]))
    assert messages == [CompletionMessage("1")]


def test_empty_string_invocation_id_means_non_blocking():
    messages, _ = mp_protocol.parse(frame([1, {}, "", "T", []]))
    assert messages == [InvocationMessage("T", [])]


def test_write_layouts_match_dotnet():
    assert body_of(mp_protocol.write(InvocationMessage("T", (1,), "", ("s",)))) == [
        1,
        {},
        None,
        "T",
        [1],
        ["s"],
    ]
    assert body_of(mp_protocol.write(CompletionMessage("1", error="e"))) == [3, {}, "1", 1, "e"]
    assert body_of(mp_protocol.write(CloseMessage("", True))) == [7, None, True]


class Color(enum.Enum):
    RED = "red"


@dataclasses.dataclass
class Point:
    x: int
    raw: bytes


class Model(pydantic.BaseModel):
    when: dt.datetime
    guid: uuid.UUID


UTC2000 = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("value", "decoded"),
    [
        pytest.param(UTC2000, UTC2000, id="aware_datetime_as_timestamp"),
        pytest.param(dt.datetime(2000, 1, 1), UTC2000, id="naive_datetime_is_utc"),
        pytest.param(
            dt.datetime(2000, 1, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=1))),
            UTC2000,
            id="offset_datetime",
        ),
        pytest.param(
            dt.datetime(1, 1, 1, tzinfo=dt.UTC),
            dt.datetime(1, 1, 1, tzinfo=dt.UTC),
            id="timestamp96_min",
        ),
        pytest.param(b"\x01\x02", b"\x01\x02", id="bytes_as_bin"),
        pytest.param(memoryview(b"\x01"), b"\x01", id="memoryview_as_bin"),
        pytest.param(uuid.UUID(int=1), "00000000-0000-0000-0000-000000000001", id="uuid_as_string"),
        pytest.param(Color.RED, "red", id="enum_value"),
        pytest.param(Point(1, b"\x00"), {"x": 1, "raw": b"\x00"}, id="dataclass_as_map"),
        pytest.param(
            Model(when=UTC2000, guid=uuid.UUID(int=2)),
            {"when": UTC2000, "guid": "00000000-0000-0000-0000-000000000002"},
            id="pydantic_model",
        ),
        pytest.param(dt.date(2024, 2, 29), "2024-02-29", id="date_as_iso"),
        pytest.param(dt.time(12, 30), "12:30:00", id="time_as_iso"),
        pytest.param(frozenset({1}), [1], id="frozenset_as_array"),
        pytest.param(Decimal("1.5"), 1.5, id="decimal_as_float"),
    ],
)
def test_values_round_trip_with_dotnet_compatible_encodings(value, decoded):
    data = mp_protocol.write(StreamItemMessage("1", value))
    messages, _ = mp_protocol.parse(data)
    assert messages == [StreamItemMessage("1", decoded)]


def test_datetimes_are_written_as_timestamp_extension_minus_one():
    data = mp_protocol.write(StreamItemMessage("1", UTC2000))
    assert data.endswith(bytes.fromhex("d6ff386d4380"))  # fixext4, type -1, seconds 946684800


def test_unserializable_argument_raises_type_error_and_the_codec_stays_usable():
    with pytest.raises(TypeError):
        mp_protocol.write(InvocationMessage("T", [object()]))
    assert mp_protocol.write(PING) == b"\x02\x91\x06"
    assert mp_protocol.write(CloseMessage()) == bytes.fromhex("049307c0c2")


def test_a_parse_error_leaves_the_callers_bytearray_resizable():
    buffer = bytearray(frame([1, {}, None, 5, []]))
    with pytest.raises(ProtocolError) as info:
        mp_protocol.parse(buffer)
    assert info.value.__cause__ is None
    buffer.clear()  # BufferError if the error kept a view of the buffer alive
    assert buffer == b""
