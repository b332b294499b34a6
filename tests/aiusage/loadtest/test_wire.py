"""The load-test client's wire helpers: HTTP/1.1 responses (httptools), SSE, SignalR records,
markers."""

from __future__ import annotations

import msgpack
import pytest

from aiusage.loadtest import wire


def test_http_reader_handles_content_length_split_and_keep_alive() -> None:
    reader = wire.HttpResponseReader()
    raw = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloHTTP/1.1 204 No Content\r\n\r\n"
    assert reader.feed(raw[:20]) == []
    assert reader.head is None
    body = reader.feed(raw[20:])
    assert reader.head is not None and reader.head.status == 200
    assert b"".join(body) == b"hello" and reader.complete
    reader.next_response()
    assert reader.feed(b"") == []
    assert reader.head is not None and reader.head.status == 204 and reader.complete


def test_http_reader_decodes_chunked_bodies_across_arbitrary_splits() -> None:
    raw = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/event-stream\r\n\r\n"
        b'3\r\n:\r\n\r\n12\r\ndata: {"a":1}\x1e\r\n\r\n\r\n0\r\n\r\n'
    )
    for step in (1, 2, 7, len(raw)):
        reader = wire.HttpResponseReader()
        pieces: list[bytes] = []
        for i in range(0, len(raw), step):
            pieces += reader.feed(raw[i : i + step])
        assert b"".join(pieces) == b':\r\ndata: {"a":1}\x1e\r\n\r\n'
        assert reader.complete


def test_http_reader_reads_until_close_without_length() -> None:
    reader = wire.HttpResponseReader()
    assert reader.feed(b"HTTP/1.1 200 OK\r\n\r\nabc") == [b"abc"]
    assert not reader.complete
    reader.eof()
    assert reader.complete


def test_http_reader_rejects_a_garbage_status_line() -> None:
    with pytest.raises(wire.HttpError):
        wire.HttpResponseReader().feed(b"SSH-2.0-OpenSSH\r\n\r\n")


def test_http_reader_rejects_a_bad_chunk_size() -> None:
    reader = wire.HttpResponseReader()
    with pytest.raises(wire.HttpError):
        reader.feed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")


def test_http_reader_refuses_an_oversized_head() -> None:
    line = b"X-Pad: " + b"a" * 1000 + b"\r\n"
    head = b"HTTP/1.1 200 OK\r\n" + line * (wire.MAX_HEAD_BYTES // len(line) + 3)
    with pytest.raises(wire.HttpError, match="too large"):
        wire.HttpResponseReader().feed(head)


def test_http_reader_parses_back_to_back_responses_fed_byte_by_byte() -> None:
    raw = (
        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc"
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nde\r\n0\r\n\r\n"
    )
    reader = wire.HttpResponseReader()
    bodies: list[bytes] = []
    pieces: list[bytes] = []
    for i in range(len(raw)):
        pieces += reader.feed(raw[i : i + 1])
        if reader.complete:
            bodies.append(b"".join(pieces))
            pieces = []
            reader.next_response()
            pieces += reader.feed(b"")
    assert bodies == [b"abc", b"de"]


def test_sse_reader_joins_data_lines_and_skips_comments() -> None:
    reader = wire.SseReader()
    events = reader.feed(b":\r\n\r\ndata: one\r\ndata: two\r\n\r\ndata:three\n")
    assert events == [b"one\ntwo"]
    assert reader.feed(b"\n") == [b"three"]


def test_split_records_keeps_partial_json_and_msgpack_records() -> None:
    buf = bytearray(b'{"type":6}\x1e{"type":1,')
    assert wire.split_records(buf, False) == [b'{"type":6}']
    assert buf == bytearray(b'{"type":1,')
    body = msgpack.packb([1, {}, None, "T", ["x" * 200], []])
    framed = bytes([0x80 | (len(body) & 0x7F), len(body) >> 7]) + body
    buf = bytearray(wire.MSGPACK_PING + framed[:10])
    assert wire.split_records(buf, True) == [b"\x91\x06"]
    buf += framed[10:]
    assert wire.split_records(buf, True) == [body]
    assert buf == bytearray()


def test_varint_matches_the_spec_examples() -> None:
    assert wire.read_varint(b"\x35", 0) == (53, 1)
    assert wire.read_varint(b"\x80\x29", 0) == (5248, 2)
    assert wire.read_varint(b"\x80", 0) is None


def test_record_type_reads_json_fast_path_any_order_and_msgpack() -> None:
    assert wire.record_type(b'{"type":1,"target":"A","arguments":[]}', False) == 1
    assert wire.record_type(b'{"target":"A","type":7}', False) == 7
    assert wire.record_type(b"not json", False) == 0
    assert wire.record_type(msgpack.packb([1, {}, None, "A", [], []]), True) == 1
    assert wire.record_type(b"\x91\x06", True) == 6
    assert wire.record_type(b"", True) == 0


def test_handshake_response_success_keeps_following_records() -> None:
    buf = bytearray(b'{}\x1e{"type":6}\x1e')
    assert wire.parse_handshake_response(buf) is True
    assert buf == bytearray(b'{"type":6}\x1e')
    assert wire.parse_handshake_response(bytearray(b"{}")) is None


def test_handshake_error_is_raised_with_the_server_text() -> None:
    with pytest.raises(wire.HandshakeRefused, match="not supported"):
        wire.parse_handshake_response(
            bytearray(b'{"error":"The protocol \'x\' is not supported."}\x1e')
        )
    with pytest.raises(wire.HandshakeRefused):
        wire.parse_handshake_response(bytearray(b'{"type":6}\x1e'))


def test_close_error_reads_json_and_msgpack_close_messages() -> None:
    assert wire.close_error(b'{"type":7,"error":"boom","allowReconnect":true}', False) == (
        "boom",
        True,
    )
    assert wire.close_error(msgpack.packb([7, None, True]), True) == (None, True)
    assert wire.close_error(msgpack.packb([7, "bad"]), True) == ("bad", False)


def test_markers_survive_json_and_msgpack_and_several_per_payload() -> None:
    a = wire.make_marker("ab12", 7, 1_700_000_000_123_456)
    b = wire.make_marker("ab12", 8, 1_700_000_000_223_456)
    other = wire.make_marker("zz99", 1, 5)
    assert len(a) <= 64
    prefix = wire.marker_prefix("ab12")
    as_json = f'{{"type":1,"target":"S","arguments":[{{"sessionId":"{a}"}}]}}'.encode()
    assert list(wire.iter_markers(as_json, prefix)) == [(7, 1_700_000_000_123_456)]
    packed = msgpack.packb([1, {}, None, "S", [{"sessionId": a}, {"s": other}, {"sessionId": b}]])
    assert list(wire.iter_markers(packed, prefix)) == [
        (7, 1_700_000_000_123_456),
        (8, 1_700_000_000_223_456),
    ]


def test_handshake_request_and_pings_are_the_documented_bytes() -> None:
    assert wire.handshake_request("json") == b'{"protocol":"json","version":1}\x1e'
    assert wire.ping_record(False) == b'{"type":6}\x1e'
    assert wire.ping_record(True) == b"\x02\x91\x06"
