"""Handshake request/response codec and server-side checks (docs/spec/handshake.md §3.2;
HandshakeProtocol.cs, HubConnectionContext.HandshakeAsync)."""

from __future__ import annotations

import pytest

from hubserver.errors import HandshakeError
from hubserver.protocol.base import TransferFormat
from hubserver.protocol.handshake import (
    HANDSHAKE_CANCELED,
    HandshakeRequest,
    HandshakeResponse,
    handshake_failure_text,
    parse_handshake_request,
    parse_handshake_response,
    select_protocol,
    write_handshake_request,
    write_handshake_response,
)
from hubserver.protocol.registry import JSON, MESSAGEPACK


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        pytest.param(b'{"protocol":"json","version":1}', HandshakeRequest("json", 1), id="js"),
        pytest.param(
            b'{"protocol":"messagepack","version":2}',
            HandshakeRequest("messagepack", 2),
            id="js_stateful",
        ),
        pytest.param(
            b'{"protocol": "json", "version": 0}',
            HandshakeRequest("json", 0),
            id="signalrcore_version_0",
        ),
        pytest.param(
            b'{"version":1,"protocol":"json","extra":[1,{"a":null}]}',
            HandshakeRequest("json", 1),
            id="extra_properties",
        ),
    ],
)
def test_valid_requests_parse(record, expected):
    assert parse_handshake_request(record + b"\x1e") == (expected, len(record) + 1)


def test_bytes_after_the_request_are_not_consumed():
    data = b'{"protocol":"json","version":1}\x1e{"type":6}\x1e'
    request, consumed = parse_handshake_request(data)
    assert request == HandshakeRequest("json", 1)
    assert data[consumed:] == b'{"type":6}\x1e'


def test_incomplete_request_returns_none_at_every_split():
    data = b'{"protocol":"json","version":1}\x1e'
    for split in range(len(data)):
        assert parse_handshake_request(data[:split]) == (None, 0)
    assert parse_handshake_request(memoryview(data))[1] == len(data)


@pytest.mark.parametrize(
    ("record", "error"),
    [
        pytest.param(b"not json", "Error reading JSON.", id="not_json"),
        pytest.param(
            b"[]", "Unexpected JSON Token Type 'Array'. Expected a JSON Object.", id="array"
        ),
        pytest.param(
            b'{"version":1}',
            "Missing required property 'protocol'. Message content: {\"version\":1}",
            id="missing_protocol",
        ),
        pytest.param(
            b'{"protocol":"json"}',
            'Missing required property \'version\'. Message content: {"protocol":"json"}',
            id="missing_version",
        ),
        pytest.param(
            b'{"protocol":"json","version":null}',
            "Missing required property 'version'. "
            'Message content: {"protocol":"json","version":null}',
            id="null_version",
        ),
        pytest.param(
            b'{"protocol":1,"version":1}',
            "Expected 'protocol' to be of type String.",
            id="numeric_protocol",
        ),
        pytest.param(
            b'{"protocol":"json","version":"1"}',
            "Expected 'version' to be of type Number.",
            id="string_version",
        ),
    ],
)
def test_invalid_requests_raise_handshake_error(record, error):
    with pytest.raises(HandshakeError) as info:
        parse_handshake_request(record + b"\x1e")
    assert str(info.value) == error


def test_request_over_the_size_limit_is_canceled():
    with pytest.raises(HandshakeError, match=HANDSHAKE_CANCELED):
        parse_handshake_request(b'{"protocol":"json"' + b" " * 100, max_message_size=64)
    with pytest.raises(HandshakeError, match=HANDSHAKE_CANCELED):
        parse_handshake_request(
            b'{"protocol":"json",' + b" " * 100 + b'"version":1}\x1e', max_message_size=64
        )
    assert (
        parse_handshake_request(b'{"protocol":"json","version":1}\x1e', max_message_size=64)[0]
        is not None
    )


@pytest.mark.parametrize("version", [0, 1, 2])
@pytest.mark.parametrize("name", ["json", "messagepack", "JSON", "MessagePack"])
def test_select_protocol_accepts_versions_0_to_2(name, version):
    protocol = select_protocol(HandshakeRequest(name, version))
    assert protocol is (JSON if name.lower() == "json" else MESSAGEPACK)


@pytest.mark.parametrize(
    ("request_", "kwargs", "error"),
    [
        pytest.param(
            HandshakeRequest("xml", 1), {}, "The protocol 'xml' is not supported.", id="unknown"
        ),
        pytest.param(
            HandshakeRequest("json", 3),
            {},
            "The server does not support version 3 of the 'json' protocol.",
            id="version_3",
        ),
        pytest.param(
            HandshakeRequest("messagepack", -1),
            {},
            "The server does not support version -1 of the 'messagepack' protocol.",
            id="negative",
        ),
        pytest.param(
            HandshakeRequest("messagepack", 1),
            {"transfer_formats": {TransferFormat.TEXT}},
            "Cannot use the 'messagepack' protocol on the current transport. "
            "The transport does not support 'Binary' transfer format.",
            id="binary_over_sse",
        ),
        pytest.param(
            HandshakeRequest("messagepack", 1),
            {"supported_protocols": ("json",)},
            "The protocol 'messagepack' is not supported.",
            id="disabled",
        ),
    ],
)
def test_select_protocol_refuses_with_the_dotnet_texts(request_, kwargs, error):
    with pytest.raises(HandshakeError) as info:
        select_protocol(request_, **kwargs)
    assert str(info.value) == error


def test_json_over_a_text_only_transport_is_accepted():
    assert (
        select_protocol(HandshakeRequest("json", 1), transfer_formats={TransferFormat.TEXT}) is JSON
    )


def test_responses_never_carry_a_type():
    assert write_handshake_response() == b"{}\x1e"
    assert write_handshake_response("The protocol 'x' is not supported.") == (
        b'{"error":"The protocol \'x\' is not supported."}\x1e'
    )
    assert parse_handshake_response(write_handshake_response("é")) == (
        HandshakeResponse("é"),
        len('{"error":"é"}'.encode()),
    )


def test_client_side_rejects_a_hub_message_as_handshake_response():
    with pytest.raises(HandshakeError, match="Expected a handshake response from the server."):
        parse_handshake_response(b'{"type":6}\x1e')
    assert parse_handshake_response(b"{}") == (None, 0)
    with pytest.raises(HandshakeError, match="Expected 'error' to be of type String."):
        parse_handshake_response(b'{"error":1}\x1e')


def test_write_handshake_request_matches_the_js_client():
    assert (
        write_handshake_request("messagepack", 2) == b'{"protocol":"messagepack","version":2}\x1e'
    )


def test_failure_text_hides_details_unless_detailed_errors():
    error = HandshakeError("Missing required property 'protocol'. Message content: {}")
    assert (
        handshake_failure_text(error) == "An unexpected error occurred during connection handshake."
    )
    assert handshake_failure_text(error, detailed_errors=True) == (
        "An unexpected error occurred during connection handshake. InvalidDataException: "
        "Missing required property 'protocol'. Message content: {}"
    )
    assert handshake_failure_text(HandshakeError(HANDSHAKE_CANCELED)) == HANDSHAKE_CANCELED
