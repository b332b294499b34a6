"""The wire error texts and their one detail helper (docs/spec/hub-protocol.md §3.5, §3.7)."""

from __future__ import annotations

from hubserver.errors import HubError, MessageTooLargeError
from hubserver.protocol import texts


def test_a_hub_error_is_always_shown_as_a_hub_exception() -> None:
    assert texts.detail(HubError("nope"), detailed=False) == " HubException: nope"
    assert texts.detail(HubError("nope"), detailed=True) == " HubException: nope"


def test_other_errors_only_with_detailed_errors_and_parse_errors_as_invalid_data() -> None:
    assert texts.detail(ValueError("bad"), detailed=False) == ""
    assert texts.detail(ValueError("bad"), detailed=True) == " ValueError: bad"
    too_large = MessageTooLargeError(texts.message_too_large(32768))
    assert texts.detail(too_large, detailed=True) == (
        " InvalidDataException: The maximum message size of 32768B was exceeded. "
        "The message size can be configured in AddHubOptions."
    )


def test_texts_match_aspnet() -> None:
    assert texts.method_not_found("M") == (
        "Failed to invoke 'M' due to an error on the server. HubException: Method does not exist."
    )
    assert texts.streaming_mismatch("M", method_streams=True) == (
        "The client attempted to invoke the streaming 'M' method with a non-streaming invocation."
    )
    assert texts.streaming_mismatch("M", method_streams=False) == (
        "The client attempted to invoke the non-streaming 'M' method with a streaming invocation."
    )
    assert texts.stream_count_mismatch("M", 2, 1) == (
        "An unexpected error occurred invoking 'M' on the server. "
        "HubException: Client sent 2 stream(s), Hub method expects 1."
    )
    assert texts.budget_exceeded("more than 1 bytes per second") == (
        "Connection closed with an error. Inbound message budget exceeded: "
        "more than 1 bytes per second."
    )
