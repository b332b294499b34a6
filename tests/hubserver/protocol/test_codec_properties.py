"""Property tests shared by both codecs: write/parse round trips and "garbage in ->
ProtocolError only" (docs/spec/hub-protocol.md §3.3, docs/spec/messagepack.md §4)."""

from __future__ import annotations

import contextlib
import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from hubserver.errors import ProtocolError
from hubserver.protocol.json_protocol import JsonHubProtocol
from hubserver.protocol.messagepack_protocol import MessagePackHubProtocol
from hubserver.protocol.messages import (
    PING,
    AckMessage,
    CancelInvocationMessage,
    CloseMessage,
    CompletionMessage,
    InvocationMessage,
    SequenceMessage,
    StreamInvocationMessage,
    StreamItemMessage,
)

json_protocol = JsonHubProtocol()
mp_protocol = MessagePackHubProtocol()

ids = st.text(min_size=1, max_size=12)
names = st.text(min_size=1, max_size=20)
headers = st.dictionaries(
    st.text(min_size=1, max_size=8), st.text(min_size=1, max_size=8), max_size=3
)
stream_ids = st.none() | st.lists(ids, min_size=1, max_size=3)

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
msgpack_values = st.recursive(
    json_scalars
    | st.binary(max_size=20)
    | st.datetimes(
        min_value=dt.datetime(1, 1, 1),
        max_value=dt.datetime(9999, 12, 31),
        timezones=st.just(dt.UTC),
    ),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def messages(values):
    args = st.lists(values, max_size=4)
    return st.one_of(
        st.builds(InvocationMessage, names, args, st.none() | ids, stream_ids, headers),
        st.builds(StreamInvocationMessage, ids, names, args, stream_ids, headers),
        st.builds(StreamItemMessage, ids, values, headers),
        st.builds(CompletionMessage.with_result, ids, values),
        st.builds(CompletionMessage.with_error, ids, st.text(min_size=1, max_size=30)),
        st.builds(CompletionMessage.empty, ids),
        st.builds(CancelInvocationMessage, ids, headers),
        st.just(PING),
        st.builds(CloseMessage, st.none() | st.text(min_size=1, max_size=30), st.booleans()),
        st.builds(AckMessage, st.integers(min_value=0, max_value=2**63 - 1)),
        st.builds(SequenceMessage, st.integers(min_value=0, max_value=2**63 - 1)),
    )


@settings(max_examples=300)
@given(st.lists(messages(json_values), min_size=1, max_size=4))
def test_json_round_trips_any_message_sequence(batch):
    data = b"".join(json_protocol.write(m) for m in batch)
    assert json_protocol.parse(data) == (batch, len(data))


@settings(max_examples=300)
@given(st.lists(messages(msgpack_values), min_size=1, max_size=4))
def test_messagepack_round_trips_any_message_sequence(batch):
    data = b"".join(mp_protocol.write(m) for m in batch)
    assert mp_protocol.parse(data) == (batch, len(data))


@settings(max_examples=200)
@given(messages(json_values))
def test_both_codecs_agree_on_json_compatible_messages(message):
    from_json, _ = json_protocol.parse(json_protocol.write(message))
    from_msgpack, _ = mp_protocol.parse(mp_protocol.write(message))
    assert from_json == from_msgpack == [message]


@settings(max_examples=300)
@given(st.binary(max_size=64))
def test_json_parse_of_arbitrary_bytes_raises_only_protocol_error(data):
    with contextlib.suppress(ProtocolError):
        json_protocol.parse(data)


@settings(max_examples=300)
@given(st.binary(max_size=64))
def test_messagepack_parse_of_arbitrary_bytes_raises_only_protocol_error(data):
    with contextlib.suppress(ProtocolError):
        mp_protocol.parse(data)


@settings(max_examples=200)
@given(json_values)
def test_messagepack_parse_of_arbitrary_well_formed_values_raises_only_protocol_error(value):
    import msgpack

    from hubserver.protocol.framing import write_varint

    for shaped in (
        value,
        [1, value],
        [3, {}, "1", value, value],
        [7, value, value],
        [2, {}, value],
    ):
        body = msgpack.packb(shaped)
        with contextlib.suppress(ProtocolError):
            mp_protocol.parse(write_varint(len(body)) + body)


@settings(max_examples=200)
@given(json_values)
def test_json_parse_of_arbitrary_well_formed_values_raises_only_protocol_error(value):
    import json

    for t in range(0, 11):
        for shaped in (
            {"type": t, "x": value},
            {
                "type": t,
                "target": value,
                "arguments": value,
                "invocationId": value,
                "item": value,
                "error": value,
                "result": value,
                "headers": value,
                "streamIds": value,
                "allowReconnect": value,
                "sequenceId": value,
            },
        ):
            with contextlib.suppress(ProtocolError):
                json_protocol.parse(json.dumps(shaped).encode() + b"\x1e")
