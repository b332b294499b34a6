"""JsonHubProtocol: invalid input with .NET's exact texts, leniency, argument encoding
(docs/spec/hub-protocol.md §3.1, §3.3; JsonHubProtocol.cs)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import math
import uuid
from decimal import Decimal

import pydantic
import pytest
from pydantic.alias_generators import to_camel

from hubserver.errors import ProtocolError
from hubserver.protocol.base import TransferFormat
from hubserver.protocol.json_protocol import JsonHubProtocol
from hubserver.protocol.messages import (
    PING,
    CloseMessage,
    CompletionMessage,
    InvocationMessage,
    StreamItemMessage,
)

json_protocol = JsonHubProtocol()

INVALID = [
    ("not_an_object_array", b"[]", "Unexpected JSON Token Type 'Array'. Expected a JSON Object."),
    (
        "not_an_object_string",
        b'"x"',
        "Unexpected JSON Token Type 'String'. Expected a JSON Object.",
    ),
    ("not_an_object_number", b"42", "Unexpected JSON Token Type 'Number'. Expected a JSON Object."),
    ("not_an_object_null", b"null", "Unexpected JSON Token Type 'Null'. Expected a JSON Object."),
    ("not_an_object_true", b"true", "Unexpected JSON Token Type 'True'. Expected a JSON Object."),
    ("truncated_json", b"{", "Error reading JSON."),
    ("empty_record", b"", "Error reading JSON."),
    ("invalid_utf8", b'{"type":\xff}', "Error reading JSON."),
    ("trailing_garbage", b'{"type":6} x', "Error reading JSON."),
    ("missing_type", b"{}", "Missing required property 'type'."),
    ("null_type", b'{"type":null}', "Missing required property 'type'."),
    ("string_type", b'{"type":"1"}', "Expected 'type' to be of type Number."),
    ("boolean_type", b'{"type":true}', "Expected 'type' to be of type Number."),
    ("fractional_type", b'{"type":1.5}', "Expected 'type' to be of type Number."),
    ("unknown_type", b'{"type":99}', "Unknown message type '99'."),
    (
        "invocation_missing_target",
        b'{"type":1,"arguments":[]}',
        "Missing required property 'target'.",
    ),
    (
        "invocation_empty_target",
        b'{"type":1,"target":"","arguments":[]}',
        "Missing required property 'target'.",
    ),
    (
        "invocation_null_target",
        b'{"type":1,"target":null,"arguments":[]}',
        "Missing required property 'target'.",
    ),
    (
        "invocation_numeric_target",
        b'{"type":1,"target":42,"arguments":[]}',
        "Expected 'target' to be of type String.",
    ),
    (
        "invocation_missing_arguments",
        b'{"type":1,"target":"T"}',
        "Missing required property 'arguments'.",
    ),
    (
        "invocation_object_arguments",
        b'{"type":1,"target":"T","arguments":{}}',
        "Expected 'arguments' to be of type Array.",
    ),
    (
        "invocation_string_arguments",
        b'{"type":1,"target":"T","arguments":"x"}',
        "Expected 'arguments' to be of type Array.",
    ),
    (
        "invocation_arguments_checked_before_target",
        b'{"type":1,"arguments":5}',
        "Expected 'arguments' to be of type Array.",
    ),
    (
        "invocation_string_stream_ids",
        b'{"type":1,"target":"T","arguments":[],"streamIds":"1"}',
        "Expected 'streamIds' to be of type Array.",
    ),
    (
        "invocation_null_stream_id",
        b'{"type":1,"target":"T","arguments":[],"streamIds":[null]}',
        "Null value for 'streamIds' is not valid.",
    ),
    (
        "invocation_numeric_stream_id",
        b'{"type":1,"target":"T","arguments":[],"streamIds":[1]}',
        "Expected 'streamIds' items to be of type String.",
    ),
    (
        "invocation_numeric_invocation_id",
        b'{"type":1,"target":"T","arguments":[],"invocationId":1}',
        "Expected 'invocationId' to be of type String.",
    ),
    (
        "invocation_array_headers",
        b'{"type":1,"target":"T","arguments":[],"headers":[]}',
        "Expected 'headers' to be of type StartObject.",
    ),
    (
        "invocation_numeric_header",
        b'{"type":1,"target":"T","arguments":[],"headers":{"a":1}}',
        "Expected header 'a' to be of type String.",
    ),
    ("stream_item_missing_id", b'{"type":2,"item":1}', "Missing required property 'invocationId'."),
    (
        "stream_item_missing_item",
        b'{"type":2,"invocationId":"1"}',
        "Missing required property 'item'.",
    ),
    ("completion_missing_id", b'{"type":3}', "Missing required property 'invocationId'."),
    (
        "completion_empty_id",
        b'{"type":3,"invocationId":""}',
        "Missing required property 'invocationId'.",
    ),
    (
        "completion_error_and_result",
        b'{"type":3,"invocationId":"1","error":"e","result":1}',
        "The 'error' and 'result' properties are mutually exclusive.",
    ),
    (
        "completion_numeric_error",
        b'{"type":3,"invocationId":"1","error":5}',
        "Expected 'error' to be of type String.",
    ),
    (
        "stream_invocation_missing_target",
        b'{"type":4,"invocationId":"1","arguments":[]}',
        "Missing required property 'target'.",
    ),
    (
        "stream_invocation_missing_id",
        b'{"type":4,"target":"T","arguments":[]}',
        "Missing required property 'invocationId'.",
    ),
    (
        "stream_invocation_missing_arguments",
        b'{"type":4,"invocationId":"1","target":"T"}',
        "Missing required property 'arguments'.",
    ),
    (
        "stream_invocation_empty_target",
        b'{"type":4,"invocationId":"1","target":"","arguments":[]}',
        "Missing required property 'target'.",
    ),
    ("cancel_missing_id", b'{"type":5}', "Missing required property 'invocationId'."),
    (
        "close_string_allow_reconnect",
        b'{"type":7,"allowReconnect":"yes"}',
        "Expected 'allowReconnect' to be true or false.",
    ),
    ("close_numeric_error", b'{"type":7,"error":1}', "Expected 'error' to be of type String."),
    ("ack_missing_sequence_id", b'{"type":8}', "Missing required property 'sequenceId'."),
    (
        "sequence_string_sequence_id",
        b'{"type":9,"sequenceId":"1"}',
        "Expected 'sequenceId' to be of type Number.",
    ),
    (
        "sequence_boolean_sequence_id",
        b'{"type":9,"sequenceId":true}',
        "Expected 'sequenceId' to be of type Number.",
    ),
]


@pytest.mark.parametrize(("record", "error"), [pytest.param(r, e, id=n) for n, r, e in INVALID])
def test_invalid_record_raises_protocol_error_with_the_dotnet_text(record, error):
    with pytest.raises(ProtocolError) as info:
        json_protocol.parse(record + b"\x1e")
    assert str(info.value) == error


def test_protocol_identity_is_json_version_2_text():
    assert (json_protocol.name, json_protocol.version) == ("json", 2)
    assert json_protocol.transfer_format is TransferFormat.TEXT


def test_partial_record_is_left_unconsumed():
    data = b'{"type":6}\x1e{"type":7,"err'
    messages, consumed = json_protocol.parse(data)
    assert messages == [PING]
    assert consumed == len(b'{"type":6}\x1e')


def test_buffer_without_separator_yields_nothing():
    assert json_protocol.parse(b'{"type":6}') == ([], 0)
    assert json_protocol.parse(b"") == ([], 0)


def test_parse_accepts_bytearray_and_memoryview():
    data = b'{"type":6}\x1e{"type":6}\x1e'
    for buffer in (bytearray(data), memoryview(data)):
        assert json_protocol.parse(buffer) == ([PING, PING], len(data))


def test_null_values_count_as_absent():
    messages, _ = json_protocol.parse(
        b'{"type":1,"target":"T","arguments":[],"invocationId":null,"streamIds":null,'
        b'"headers":null}\x1e{"type":7,"error":null,"allowReconnect":null}\x1e'
    )
    assert messages == [InvocationMessage("T", []), CloseMessage()]


def test_empty_invocation_id_means_non_blocking():
    messages, _ = json_protocol.parse(
        b'{"type":1,"invocationId":"","target":"T","arguments":[]}\x1e'
    )
    assert messages == [InvocationMessage("T", [])]


def test_stream_item_keeps_a_null_item():
    messages, _ = json_protocol.parse(b'{"type":2,"invocationId":"1","item":null}\x1e')
    assert messages == [StreamItemMessage("1", None)]


def test_completion_with_null_result_has_a_result():
    messages, _ = json_protocol.parse(b'{"type":3,"invocationId":"1","result":null}\x1e')
    assert messages == [CompletionMessage.with_result("1", None)]
    assert messages[0].has_result


def test_completion_with_error_and_null_result_is_an_error():
    messages, _ = json_protocol.parse(
        b'{"type":3,"invocationId":"1","result":null,"error":"x"}\x1e'
    )
    assert messages == [CompletionMessage.with_error("1", "x")]


def test_error_in_a_later_record_raises_even_after_valid_ones():
    with pytest.raises(ProtocolError):
        json_protocol.parse(b'{"type":6}\x1e{"type":1}\x1e')


def test_write_omits_empty_invocation_id_and_error():
    assert (
        json_protocol.write(InvocationMessage("T", [], ""))
        == b'{"type":1,"target":"T","arguments":[]}\x1e'
    )
    # .NET: an empty error is not written; has_result decides.
    assert (
        json_protocol.write(CompletionMessage("1", error=""))
        == b'{"type":3,"invocationId":"1"}\x1e'
    )


def test_write_close_error_without_reconnect_has_no_allow_reconnect_key():
    assert json_protocol.write(CloseMessage("e")) == b'{"type":7,"error":"e"}\x1e'


def test_write_accepts_tuples_for_arguments_and_stream_ids():
    message = InvocationMessage("T", (1, 2), "3", ("4",))
    assert json_protocol.write(message) == (
        b'{"type":1,"invocationId":"3","target":"T","arguments":[1,2],"streamIds":["4"]}\x1e'
    )


def test_write_keeps_non_ascii_as_utf8_and_escapes_control_characters():
    data = json_protocol.write(InvocationMessage("T", ["é\x1e\n"]))
    assert data == '{"type":1,"target":"T","arguments":["é\\u001e\\n"]}\x1e'.encode()
    # A record separator inside a string never ends the record early.
    assert data.count(b"\x1e") == 1


class Color(enum.Enum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


@dataclasses.dataclass
class Point:
    x: int
    when: dt.datetime


class Snapshot(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(alias_generator=to_camel, populate_by_name=True)
    org_id: str
    started_at: dt.datetime
    ratio: Decimal


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        pytest.param(
            dt.datetime(2000, 1, 1, tzinfo=dt.UTC), '"2000-01-01T00:00:00Z"', id="aware_utc"
        ),
        pytest.param(
            dt.datetime(2000, 1, 1, 2, 30, tzinfo=dt.timezone(dt.timedelta(hours=2))),
            '"2000-01-01T00:30:00Z"',
            id="aware_offset",
        ),
        pytest.param(
            dt.datetime(2000, 1, 1, 0, 0, 0, 1500),
            '"2000-01-01T00:00:00.001500Z"',
            id="naive_is_utc",
        ),
        pytest.param(dt.date(2024, 2, 29), '"2024-02-29"', id="date"),
        pytest.param(
            uuid.UUID("00010203-0405-0607-0706-050403020100"),
            '"00010203-0405-0607-0706-050403020100"',
            id="uuid",
        ),
        pytest.param(b"\x01\x02\x03", '"AQID"', id="bytes"),
        pytest.param(bytearray(b"\xff"), '"/w=="', id="bytearray"),
        pytest.param(memoryview(b"\x00"), '"AA=="', id="memoryview"),
        pytest.param(Color.RED, '"red"', id="enum"),
        pytest.param(Level.HIGH, "3", id="int_enum"),
        pytest.param(
            Point(1, dt.datetime(2000, 1, 1)),
            '{"x":1,"when":"2000-01-01T00:00:00Z"}',
            id="dataclass",
        ),
        pytest.param(
            Snapshot(
                org_id="o", started_at=dt.datetime(2000, 1, 1, tzinfo=dt.UTC), ratio=Decimal("0.5")
            ),
            '{"orgId":"o","startedAt":"2000-01-01T00:00:00Z","ratio":"0.5"}',
            id="pydantic_by_alias",
        ),
        pytest.param(frozenset({1}), "[1]", id="frozenset"),
        pytest.param(dt.time(12, 30), '"12:30:00"', id="time"),
        pytest.param(Decimal("1.25"), "1.25", id="decimal"),
    ],
)
def test_argument_values_are_encoded_as_dotnet_clients_expect(value, encoded):
    data = json_protocol.write(InvocationMessage("T", [value]))
    assert data == ('{"type":1,"target":"T","arguments":[' + encoded + "]}\x1e").encode()


def test_unserializable_argument_raises_type_error():
    with pytest.raises(TypeError):
        json_protocol.write(InvocationMessage("T", [object()]))


def test_nan_argument_raises_value_error():
    with pytest.raises(ValueError):
        json_protocol.write(CompletionMessage.with_result("1", math.nan))
