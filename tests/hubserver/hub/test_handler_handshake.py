"""Handshake (docs/spec/handshake.md §3.2): first record only, exact replies, errors, timeout."""

from __future__ import annotations

import pytest

from hubserver.protocol.handshake import write_handshake_request
from hubserver.protocol.messages import InvocationMessage
from hubserver.protocol.registry import JSON
from hubserver.transports.base import TransportType
from tests.support.hub_client import HubTestClient, settle


@pytest.mark.parametrize("version", [0, 1, 2])
async def test_json_handshake_is_answered_with_empty_object_as_first_text_frame(
    handler, lifetime, version
):
    client = HubTestClient(handler, "json")
    response = await client.connect(version)
    assert response.error is None
    assert client.ctx.sent[0] == (b"{}\x1e", False)
    assert lifetime.local_connection_count() == 1


async def test_messagepack_handshake_reply_is_json_in_a_binary_frame(handler):
    client = HubTestClient(handler, "messagepack")
    await client.connect(1)
    assert client.ctx.sent[0] == (b"{}\x1e", True)
    completion = await client.invoke("Echo", "hi")
    assert completion.result == "hi"
    # [3, {}, "0", 3, "hi"]: Completion with a result (kind 3), varint length 9, binary frame.
    assert client.ctx.sent[1] == (bytes.fromhex("09 95 03 80 a1 30 03 a2 68 69"), True)


async def test_handshake_split_across_chunks_and_followed_by_a_message_in_the_same_chunk(handler):
    client = HubTestClient(handler)
    request = write_handshake_request("json", 1)
    invocation = JSON.write(InvocationMessage("Echo", ["x"], invocation_id="7"))
    client.send_raw(request[:5])
    await settle()
    assert client.ctx.sent == []
    client.send_raw(request[5:] + invocation)
    completion = await client.wait_completion("7")
    assert completion.result == "x"
    assert client.ctx.sent[0][0] == b"{}\x1e"


async def _handshake_error(client: HubTestClient, raw: bytes) -> str | None:
    client.send_raw(raw)
    await settle()
    client.read()
    assert client.handshake is not None
    assert client.ctx.closed
    return client.handshake.error


@pytest.mark.parametrize(
    ("protocol", "version", "text"),
    [
        ("foo", 1, "The protocol 'foo' is not supported."),
        ("json", 3, "The server does not support version 3 of the 'json' protocol."),
        ("messagepack", 9, "The server does not support version 9 of the 'messagepack' protocol."),
    ],
)
async def test_unsupported_protocol_or_version_is_refused_with_the_dotnet_text(
    handler, lifetime, protocol, version, text
):
    client = HubTestClient(handler)
    error = await _handshake_error(client, write_handshake_request(protocol, version))
    assert error == text
    assert client.ctx.sent == [(b'{"error":"' + text.encode() + b'"}\x1e', False)]
    assert lifetime.local_connection_count() == 0
    await settle()
    assert handler.connection_count() == 0


async def test_protocol_missing_from_supported_protocols_is_refused(make_handler):
    handler = make_handler(supported_protocols=("json",))
    client = HubTestClient(handler)
    error = await _handshake_error(client, write_handshake_request("messagepack", 1))
    assert error == "The protocol 'messagepack' is not supported."


async def test_binary_protocol_over_server_sent_events_is_refused(handler):
    client = HubTestClient(handler, transport=TransportType.SERVER_SENT_EVENTS)
    error = await _handshake_error(client, write_handshake_request("messagepack", 1))
    assert error == (
        "Cannot use the 'messagepack' protocol on the current transport. The transport does "
        "not support 'Binary' transfer format."
    )


async def test_json_over_server_sent_events_is_accepted(handler):
    client = HubTestClient(handler, transport=TransportType.SERVER_SENT_EVENTS)
    assert (await client.connect()).error is None


async def test_malformed_handshake_gets_the_generic_text(handler):
    client = HubTestClient(handler)
    error = await _handshake_error(client, b'{"protocol":"json"}\x1e')
    assert error == "An unexpected error occurred during connection handshake."


async def test_malformed_handshake_with_detailed_errors_carries_the_reason(make_handler):
    client = HubTestClient(make_handler(detailed_errors=True))
    error = await _handshake_error(client, b'{"protocol":"json"}\x1e')
    assert error == (
        "An unexpected error occurred during connection handshake. InvalidDataException: "
        'Missing required property \'version\'. Message content: {"protocol":"json"}'
    )


async def test_handshake_over_the_size_limit_is_canceled(make_handler):
    client = HubTestClient(make_handler(maximum_receive_message_size=64))
    error = await _handshake_error(client, b'{"protocol":"json","version":1,"pad":"' + b"x" * 80)
    assert error == "Handshake was canceled."


async def test_handshake_times_out_after_15_seconds(handler, clock):
    client = HubTestClient(handler)
    clock.advance(14.9)
    handler.tick()
    assert client.ctx.sent == []
    clock.advance(0.1)
    handler.tick()
    assert client.ctx.sent == [(b'{"error":"Handshake was canceled."}\x1e', False)]
    assert client.ctx.closed
    await settle()
    assert handler.connection_count() == 0


async def test_hub_messages_before_a_complete_handshake_are_not_dispatched(handler):
    client = HubTestClient(handler)
    # Without the record separator the whole thing is still "the handshake".
    client.send_raw(b'{"protocol":"json","version":1')
    await settle()
    assert client.ctx.sent == []
    assert handler.local_connections() == []


async def test_connection_registers_with_lifetime_only_after_handshake(handler, lifetime):
    client = HubTestClient(handler)
    assert lifetime.local_connection_count() == 0
    await client.connect()
    assert lifetime.local_connection_count() == 1
    assert [c.connection_id for c in handler.local_connections()] == [client.connection_id]
    assert handler.local_connections()[0].protocol_name == "json"
