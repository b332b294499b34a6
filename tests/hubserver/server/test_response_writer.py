"""The one response-head writer (hubserver.server.response): framing, Connection, validation,
and that no other server module writes a status line of its own."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from hubserver.server.response import (
    BodyMode,
    InvalidResponseHeader,
    encode_head,
    text_response,
)
from tests.hubserver.server.harness import raw_exchange, running_server

SRC = Path(__file__).resolve().parents[3] / "src" / "hubserver"


@dataclass
class Req:
    method: str = "GET"
    http_version: str = "1.1"
    keep_alive: bool = True
    body_complete: bool = True


def head_of(
    req: Req, status: int, headers: list[tuple[bytes, bytes]], length: int | None
) -> tuple[list[bytes], BodyMode]:
    raw, mode = encode_head(req, status, headers, length)
    assert raw.endswith(b"\r\n\r\n")
    return raw[:-4].split(b"\r\n"), mode


def test_a_known_length_is_content_length_framed_and_keeps_the_connection() -> None:
    req = Req()
    lines, mode = head_of(req, 200, [(b"Content-Type", b"text/plain")], 5)
    assert lines == [b"HTTP/1.1 200 OK", b"Content-Type: text/plain", b"Content-Length: 5"]
    assert (mode, req.keep_alive) == (BodyMode.RAW, True)


def test_a_stream_is_chunked_for_http_1_1_and_ends_with_the_connection_for_http_1_0() -> None:
    lines, mode = head_of(Req(), 200, [], None)
    assert (lines[1:], mode) == ([b"Transfer-Encoding: chunked"], BodyMode.CHUNKED)
    old = Req(http_version="1.0")
    lines, mode = head_of(old, 200, [], None)
    assert (lines[1:], mode, old.keep_alive) == ([b"Connection: close"], BodyMode.RAW, False)


def test_http_1_0_keep_alive_is_confirmed_and_close_is_said() -> None:
    lines, _ = head_of(Req(http_version="1.0"), 200, [], 0)
    assert lines[-1] == b"Connection: keep-alive"
    lines, _ = head_of(Req(keep_alive=False), 200, [], 0)
    assert lines[-1] == b"Connection: close"


def test_the_application_content_length_wins_and_must_be_a_number() -> None:
    lines, mode = head_of(Req(), 200, [(b"content-length", b"12")], None)
    assert (lines[1:], mode) == ([b"content-length: 12"], BodyMode.RAW)
    for bad in (b"12, 13", b"-1", b"abc"):
        with pytest.raises(InvalidResponseHeader):
            encode_head(Req(), 200, [(b"content-length", bad)], None)
    with pytest.raises(InvalidResponseHeader):
        encode_head(Req(), 200, [(b"content-length", b"1"), (b"content-length", b"2")], None)


def test_framing_and_connection_headers_of_the_caller_are_the_server_s() -> None:
    req = Req()
    lines, mode = head_of(
        req,
        200,
        [(b"transfer-encoding", b"gzip, chunked"), (b"connection", b"keep-alive, close")],
        None,
    )
    # The caller's Transfer-Encoding is dropped; its "close" is honoured and written once.
    assert lines[1:] == [b"Transfer-Encoding: chunked", b"Connection: close"]
    assert (mode, req.keep_alive) == (BodyMode.CHUNKED, False)


@pytest.mark.parametrize("status", [100, 204, 304])
def test_statuses_without_a_body_get_no_framing(status: int) -> None:
    lines, mode = head_of(Req(), status, [], 0)
    assert lines[1:] == []
    assert mode is BodyMode.NONE


def test_a_304_keeps_the_application_s_content_length() -> None:
    lines, _ = head_of(Req(), 304, [(b"content-length", b"42")], None)
    assert lines[1:] == [b"content-length: 42"]


def test_head_requests_get_the_length_but_no_body_and_never_chunks() -> None:
    lines, mode = head_of(Req(method="HEAD"), 200, [], 7)
    assert (lines[1:], mode) == ([b"Content-Length: 7"], BodyMode.NONE)
    lines, mode = head_of(Req(method="HEAD"), 200, [], None)
    assert (lines[1:], mode) == ([], BodyMode.NONE)


def test_a_101_keeps_its_connection_upgrade_and_adds_nothing() -> None:
    headers = [(b"Upgrade", b"websocket"), (b"Connection", b"Upgrade")]
    lines, mode = head_of(Req(), 101, headers, None)
    assert lines == [b"HTTP/1.1 101 Switching Protocols", *(b"%s: %s" % h for h in headers)]
    assert mode is BodyMode.RAW


def test_an_answer_before_the_body_was_read_closes_the_connection() -> None:
    req = Req(body_complete=False)
    lines, _ = head_of(req, 401, [], 0)
    assert (lines[-1], req.keep_alive) == (b"Connection: close", False)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        (b"X-Ok", b"a\r\nSet-Cookie: evil=1"),
        (b"X-Ok", b"a\nb"),
        (b"X-Ok", b"a\rb"),
        (b"X-Ok", b"a\x00b"),
        (b"X Bad", b"v"),
        (b"X:Bad", b"v"),
        (b"", b"v"),
    ],
)
def test_unwritable_headers_are_refused_before_anything_changes(name: bytes, value: bytes) -> None:
    req = Req()
    with pytest.raises(InvalidResponseHeader):
        encode_head(req, 200, [(b"connection", b"close"), (name, value)], 0)
    assert req.keep_alive


def test_text_responses_without_a_request_close_the_connection() -> None:
    data = text_response(None, 400, b"Bad Request")
    assert data == (
        b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"Content-Length: 11\r\nConnection: close\r\n\r\nBad Request"
    )


def test_no_other_module_writes_a_status_line() -> None:
    """Every head goes through hubserver.server.response: no other hubserver module holds
    an ``HTTP/1.x <status>`` literal."""
    pattern = re.compile(rb"HTTP/1\.[01] \d{3}|HTTP/1\.1 %d")
    offenders = [
        str(path.relative_to(SRC))
        for path in SRC.rglob("*.py")
        if path.name != "response.py" and pattern.search(path.read_bytes())
    ]
    assert offenders == []


# --- over a socket: the ASGI path uses the same writer ---------------------------------------


async def streamed(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """ASGI app: a body in two parts without Content-Length, or a bad Content-Length."""
    if scope["type"] != "http":
        return
    bad = scope["path"] == "/bad-length"
    headers = [(b"content-length", b"1e3")] if bad else [(b"content-type", b"text/plain")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"ab", "more_body": True})
    await send({"type": "http.response.body", "body": b"cd"})


async def test_a_streamed_answer_to_head_has_no_chunks_and_the_connection_goes_on() -> None:
    async with running_server([], streamed, access_log=False) as s:
        data = await raw_exchange(
            s.port,
            b"HEAD /s HTTP/1.1\r\nHost: x\r\n\r\nGET /s HTTP/1.1\r\nHost: x\r\n"
            b"Connection: close\r\n\r\n",
            read_until_close=True,
        )
    head, rest = data.split(b"\r\n\r\n", 1)
    assert b"Transfer-Encoding" not in head and b"Content-Length" not in head
    # No "0\r\n\r\n" after the HEAD answer: the next bytes are the GET's response.
    assert rest.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"Transfer-Encoding: chunked" in rest
    assert rest.endswith(b"\r\n\r\n2\r\nab\r\n2\r\ncd\r\n0\r\n\r\n")


async def test_an_application_content_length_that_is_not_a_number_is_a_500(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with (
        running_server([], streamed, access_log=False) as s,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{s.port}") as c,
    ):
        with caplog.at_level(logging.ERROR, "hubserver.server"):
            r = await c.get("/bad-length")
    assert (r.status_code, r.text) == (500, "Internal Server Error")
    assert any("content-length" in rec.message for rec in caplog.records)
