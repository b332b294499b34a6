"""Negotiate codec (docs/spec/negotiate.md §1.2, §1.3, §1.5)."""

from __future__ import annotations

import json

import pytest

from hubserver.protocol.negotiate import (
    AvailableTransport,
    NegotiateResponse,
    NegotiateVersionError,
    query_get,
    select_version,
    wants_stateful_reconnect,
    write_error,
)

TRANSPORTS = [
    AvailableTransport("WebSockets", ("Text", "Binary")),
    AvailableTransport("ServerSentEvents", ("Text",)),
]


@pytest.mark.parametrize(
    ("requested", "expected"), [(None, 0), ("0", 0), ("1", 1), ("2", 1), ("99", 1), (" 1 ", 1)]
)
def test_version_selection(requested: str | None, expected: int) -> None:
    assert select_version(requested) == expected


def test_non_integer_version_error_text() -> None:
    with pytest.raises(NegotiateVersionError) as info:
        select_version("abc")
    assert str(info.value) == "The client requested a non-integer protocol version."


def test_version_below_minimum_error_text() -> None:
    with pytest.raises(NegotiateVersionError) as info:
        select_version("-1")
    assert str(info.value) == (
        "The client requested version '-1', but the server does not support this version."
    )
    with pytest.raises(NegotiateVersionError):
        select_version(None, minimum=1)


def test_query_lookup_is_case_insensitive() -> None:
    assert query_get({"NegotiateVersion": "1"}, "negotiateVersion") == "1"
    assert query_get({"a": "1"}, "b") is None
    assert wants_stateful_reconnect({"usestatefulreconnect": "True"})
    assert not wants_stateful_reconnect({"useStatefulReconnect": "false"})
    assert not wants_stateful_reconnect({})


def test_version_1_response_has_token_and_transports_in_order() -> None:
    body = NegotiateResponse(1, "id", "tok", TRANSPORTS).to_bytes()
    assert body == (
        b'{"negotiateVersion":1,"connectionId":"id","connectionToken":"tok",'
        b'"availableTransports":[{"transport":"WebSockets","transferFormats":["Text","Binary"]},'
        b'{"transport":"ServerSentEvents","transferFormats":["Text"]}]}'
    )


def test_version_0_response_has_no_token_and_stateful_flag_only_when_true() -> None:
    doc = json.loads(NegotiateResponse(0, "id", "id", TRANSPORTS).to_bytes())
    assert doc["negotiateVersion"] == 0 and "connectionToken" not in doc
    assert "useStatefulReconnect" not in doc
    doc = json.loads(NegotiateResponse(1, "id", "t", TRANSPORTS, True).to_bytes())
    assert doc["useStatefulReconnect"] is True


def test_error_body() -> None:
    assert write_error("boom") == b'{"error":"boom"}'
