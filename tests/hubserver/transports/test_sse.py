"""Server-Sent Events shell (docs/spec/transports.md §2.3)."""

from __future__ import annotations

import asyncio

from hubserver.protocol.json_protocol import JsonHubProtocol
from hubserver.protocol.serialized import SerializedMessage
from hubserver.transports.sse import ServerSentEventsTransport, format_event
from tests.hubserver.transports.fakes import FakeExchange, FakeOwner


def test_event_format_has_a_data_line_per_line_and_a_blank_line() -> None:
    assert format_event(b'{"type":6}\x1e') == b'data: {"type":6}\x1e\r\n\r\n'
    assert format_event(b"a\r\nb") == b"data: a\r\ndata: b\r\n\r\n"


async def test_start_sends_headers_and_the_initial_comment() -> None:
    exchange, owner = FakeExchange(), FakeOwner()
    sse = ServerSentEventsTransport(exchange, owner)
    sse.start()
    assert exchange.status == 200
    headers = dict(exchange.headers)
    assert headers["Content-Type"] == "text/event-stream"
    assert headers["Cache-Control"] == "no-cache,no-store"
    assert headers["Pragma"] == "no-cache"
    assert headers["Content-Encoding"] == "identity"
    assert exchange.chunks == [b":\r\n"]


async def test_sends_in_one_tick_become_one_event() -> None:
    exchange, owner = FakeExchange(), FakeOwner()
    sse = ServerSentEventsTransport(exchange, owner)
    sse.start()
    sse.send(b"a\x1e", False)
    sse.send(b"b\x1e", False)
    assert sse.buffered_bytes() == 4
    await asyncio.sleep(0)
    assert exchange.chunks[1:] == [b"data: a\x1eb\x1e\r\n\r\n"]


async def test_close_flushes_and_ends_the_stream() -> None:
    exchange, owner = FakeExchange(), FakeOwner()
    sse = ServerSentEventsTransport(exchange, owner)
    sse.start()
    sse.send(b"bye", False)
    sse.close()
    assert exchange.chunks[-1] == b"data: bye\r\n\r\n"
    assert exchange.ended and owner.closed == []


async def test_client_going_away_is_a_graceful_end() -> None:
    exchange, owner = FakeExchange(), FakeOwner()
    sse = ServerSentEventsTransport(exchange, owner)
    sse.start()
    exchange.disconnect()
    assert owner.closed == [(sse, True, None)]
    sse.send(b"late", False)
    await asyncio.sleep(0)
    assert exchange.chunks == [b":\r\n"]


async def test_a_broadcast_alone_in_a_tick_is_formatted_once_for_every_stream() -> None:
    protocol = JsonHubProtocol()
    message = SerializedMessage(None, {protocol.name: b'{"type":1}\x1e'})
    streams = []
    for _ in range(3):
        exchange = FakeExchange()
        sse = ServerSentEventsTransport(exchange, FakeOwner())
        sse.start()
        streams.append((sse, exchange))
    streams[0][0].send_serialized(message, protocol)
    streams[1][0].send_serialized(message, protocol)
    streams[2][0].send(b"own\x1e", False)  # a message of its own first: one combined event
    streams[2][0].send_serialized(message, protocol)
    await asyncio.sleep(0)
    first, second = streams[0][1].chunks[1], streams[1][1].chunks[1]
    assert first == b'data: {"type":1}\x1e\r\n\r\n' and first is second  # built once
    assert streams[2][1].chunks[1] == b'data: own\x1e{"type":1}\x1e\r\n\r\n'
