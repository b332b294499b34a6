"""The one writer of HTTP/1.1 response heads, used by every response the server sends.

Hub endpoint answers (negotiate, long polling, Server-Sent Events, errors), the ASGI
application's responses, the server's own errors (400, 404, 408, 413, 431, 500) and the
``101 Switching Protocols`` of WebSocket upgrades all pass :func:`encode_head`, so the rules
live here once (docs/spec/transports.md §2.8):

* every header name is a token and every value is free of CR, LF and NUL, else
  :class:`InvalidResponseHeader` and nothing is written (a CR/LF would forge headers or a
  second response);
* the server alone decides the framing: ``Content-Length`` when the length is known (an
  application's own ``Content-Length`` wins and must be a decimal number), else chunked
  encoding for HTTP/1.1 and "until the connection closes" for HTTP/1.0; no framing and no
  body for 1xx, 204 and 304, nor a body for ``HEAD``; an application's ``Transfer-Encoding``
  is dropped;
* the server alone writes ``Connection`` (except on a 101, whose ``Connection: Upgrade`` is
  part of the handshake): ``close`` when the connection ends after this response (the client
  or the application asked for it, the request body was not read, an HTTP/1.0 stream),
  ``keep-alive`` to confirm an HTTP/1.0 client's request for one, nothing otherwise.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from http import HTTPStatus
from typing import Protocol

_REASONS: dict[int, bytes] = {s.value: s.phrase.encode("ascii") for s in HTTPStatus}
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_UNSAFE_VALUE = re.compile(rb"[\r\n\x00]")
_DIGITS = re.compile(rb"[0-9]+")
_SERVER_HEADERS = frozenset({b"content-length", b"transfer-encoding", b"connection"})
"""Headers whose say is the server's (framing and connection), whatever the caller gave."""

CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
"""The interim response a client sending ``Expect: 100-continue`` waits for."""


class ResponseTarget(Protocol):
    """What the writer needs to know about the request being answered (``http.Request``)."""

    method: str
    http_version: str
    keep_alive: bool
    body_complete: bool


class BodyMode(enum.Enum):
    """How the body bytes following a head must be written."""

    NONE = "none"
    """No body at all (1xx, 204, 304, or a ``HEAD`` request): write nothing."""
    RAW = "raw"
    """``Content-Length`` framed, or delimited by the connection's end: write as given."""
    CHUNKED = "chunked"
    """Chunked transfer encoding: :func:`chunk` each piece, then :data:`LAST_CHUNK`."""


LAST_CHUNK = b"0\r\n\r\n"


def chunk(data: bytes) -> bytes:
    """One chunk of a chunked body."""
    return b"%x\r\n%s\r\n" % (len(data), data)


class InvalidResponseHeader(ValueError):
    """A response header that cannot be written as given: its name is not an HTTP token, its
    value holds CR, LF or NUL, or its ``Content-Length`` is not a decimal number."""


def status_line(status: int) -> bytes:
    """``HTTP/1.1 <status> <reason>\\r\\n``."""
    return b"HTTP/1.1 %d %s\r\n" % (status, _REASONS.get(status, b""))


def header_line(name: bytes, value: bytes) -> bytes:
    """``name: value\\r\\n``.

    Raises:
        InvalidResponseHeader: ``name`` is not a token, or ``value`` contains CR/LF/NUL.
    """
    if _TOKEN.fullmatch(name) is None or _UNSAFE_VALUE.search(value) is not None:
        raise InvalidResponseHeader(name.decode("latin-1"))
    return name + b": " + value + b"\r\n"


def encode_headers(headers: Iterable[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    """Text headers as bytes (Latin-1, the HTTP/1.1 header charset).

    Raises:
        InvalidResponseHeader: A name or value has characters outside Latin-1.
    """
    out = []
    for name, value in headers:
        try:
            out.append((name.encode("latin-1"), value.encode("latin-1")))
        except UnicodeEncodeError:
            raise InvalidResponseHeader(name) from None  # never the value: it may be secret
    return out


def connection_header(request: ResponseTarget) -> bytes:
    """The ``Connection`` header the response needs: ``close`` when the connection ends
    after it, ``keep-alive`` to confirm an HTTP/1.0 client's request for one (HTTP/1.0
    connections close by default), nothing otherwise."""
    if not request.keep_alive:
        return b"Connection: close\r\n"
    if request.http_version == "1.0":
        return b"Connection: keep-alive\r\n"
    return b""


def _has_no_body(status: int) -> bool:
    return status < 200 or status in (204, 304)


def encode_head(
    request: ResponseTarget,
    status: int,
    headers: Iterable[tuple[bytes, bytes]],
    body_length: int | None,
) -> tuple[bytes, BodyMode]:
    """Status line, headers, framing and ``Connection``, then the blank line.

    Args:
        request: The request answered; its ``keep_alive`` is cleared when the connection
            must close after this response.
        status: Status code.
        headers: Headers as given by the hub endpoint or the application (any case).
        body_length: Length of the whole body when known; None streams it (chunked, or
            until close for HTTP/1.0) unless ``headers`` carry a ``Content-Length``.

    Returns:
        The head, and how to write the body that follows it.

    Raises:
        InvalidResponseHeader: A header cannot be written (nothing was changed).
    """
    out = bytearray(status_line(status))
    given_length: bytes | None = None
    length_line = b""
    close = False
    upgrade = status == 101
    for name, value in headers:
        if _TOKEN.fullmatch(name) is None or _UNSAFE_VALUE.search(value) is not None:
            raise InvalidResponseHeader(name.decode("latin-1"))
        lower = name.lower()
        if lower not in _SERVER_HEADERS:
            out += b"%s: %s\r\n" % (name, value)
        elif lower == b"content-length":
            value = value.strip()
            if _DIGITS.fullmatch(value) is None or given_length not in (None, value):
                raise InvalidResponseHeader(name.decode("latin-1"))
            given_length = value
            length_line = b"%s: %s\r\n" % (name, value)  # as the application spelled it
        elif lower == b"connection":
            if upgrade:
                out += b"%s: %s\r\n" % (name, value)
            else:
                close = close or b"close" in (t.strip() for t in value.lower().split(b","))
        # Transfer-Encoding: dropped, the server decides the framing.
    if close:
        request.keep_alive = False
    if not request.body_complete:
        # Answered before the body was read (401, 413, 408, an early application answer):
        # the rest of the body would have to be drained, so the connection cannot carry
        # another request.
        request.keep_alive = False
    mode = BodyMode.RAW
    if upgrade:
        return bytes(out + b"\r\n"), BodyMode.RAW
    if _has_no_body(status):
        mode = BodyMode.NONE
        if status == 304:
            out += length_line
    elif given_length is not None:
        out += length_line
    elif body_length is not None:
        out += b"Content-Length: %d\r\n" % body_length
    elif request.method == "HEAD":
        pass  # no body follows, so no framing either
    elif request.http_version == "1.1":
        out += b"Transfer-Encoding: chunked\r\n"
        mode = BodyMode.CHUNKED
    else:
        # HTTP/1.0 has no chunked encoding: the body ends when the connection does.
        request.keep_alive = False
    if request.method == "HEAD":
        mode = BodyMode.NONE
    out += connection_header(request)
    out += b"\r\n"
    return bytes(out), mode


class _Closing:
    """Stand-in for a request that could not be parsed: HTTP/1.1, connection closes."""

    method = "GET"
    http_version = "1.1"
    keep_alive = False
    body_complete = True


def text_response(request: ResponseTarget | None, status: int, text: bytes) -> bytes:
    """A complete ``text/plain`` response (the server's own errors); ``request`` None when
    the request could not even be parsed (the connection then closes)."""
    target: ResponseTarget = request if request is not None else _Closing()
    head, mode = encode_head(
        target, status, [(b"Content-Type", b"text/plain; charset=utf-8")], len(text)
    )
    return head + text if mode is not BodyMode.NONE else head
