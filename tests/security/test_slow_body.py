"""Slow request bodies on hub endpoints: an anonymous client is refused from the request head
(its body is never waited for), and an admitted one gets 408 when its body is too slow.
Real sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio

import pytest

from tests.hubserver.server.harness import make_endpoint, running_server, split_response, token_auth
from tests.support.slow_http import read_response, trickle

BODY_TIMEOUT = 0.4
pytestmark = pytest.mark.integration


def post_head(path: str, length: int, token: str | None = None) -> bytes:
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    return (
        f"POST {path} HTTP/1.1\r\nHost: t\r\n{auth}Content-Type: text/plain\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()


async def test_an_anonymous_negotiate_with_a_trickled_body_is_refused_at_once() -> None:
    ep = make_endpoint(authenticate=token_auth)
    async with running_server([ep], access_log=False) as server:
        data, closed, elapsed = await trickle(
            server.port, post_head("/hub/negotiate?negotiateVersion=1", 100), b"x" * 100, 3.0, 2.0
        )
    status, headers, body = split_response(data)
    assert (status, body) == (401, b"Unauthorized")
    assert headers["www-authenticate"] == "Bearer"
    assert headers["connection"] == "close"
    assert closed
    assert elapsed < 1.5  # not after the (30 s) body timeout, and not never


async def test_an_admitted_negotiate_with_a_trickled_body_gets_408() -> None:
    ep = make_endpoint(authenticate=token_auth)
    async with running_server([ep], access_log=False, body_timeout=BODY_TIMEOUT) as server:
        data, closed, elapsed = await trickle(
            server.port,
            post_head("/hub/negotiate?negotiateVersion=1", 100, "ann"),
            b"x" * 100,
            0.1,
            3.0,
        )
        assert ep.connection_count() == 0
    status, headers, body = split_response(data)
    assert (status, body) == (408, b"Request Timeout")
    assert headers["connection"] == "close"
    assert closed
    assert BODY_TIMEOUT <= elapsed < BODY_TIMEOUT + 1.0


async def test_a_long_polling_send_with_a_trickled_body_gets_408() -> None:
    ep = make_endpoint(authenticate=token_auth)
    async with running_server([ep], access_log=False, body_timeout=BODY_TIMEOUT) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(post_head("/hub/negotiate?negotiateVersion=1", 0, "ann"))
        data, _ = await read_response(reader, 0.5)
        writer.close()
        status, _, body = split_response(data)
        assert status == 200
        token = body.split(b'"connectionToken":"')[1].split(b'"')[0].decode()
        data, closed, _ = await trickle(
            server.port, post_head(f"/hub?id={token}", 50, "ann"), b"y" * 50, 0.1, 3.0
        )
        assert split_response(data)[0] == 408
        assert closed
        # A body that arrives in time (in two pieces) is accepted as before.
        data, _, _ = await trickle(
            server.port, post_head(f"/hub?id={token}", 2, "ann"), b"ok", 0.05, 0.5
        )
        assert split_response(data)[0] == 200


async def test_a_forbidden_send_is_answered_without_reading_its_body() -> None:
    ep = make_endpoint(authenticate=token_auth)
    async with running_server([ep], access_log=False) as server:
        data, closed, elapsed = await trickle(
            server.port, post_head("/hub?id=whatever", 10_000, "evil"), b"z" * 10, 1.0, 2.0
        )
    status, headers, _ = split_response(data)
    assert status == 403
    assert headers["connection"] == "close"
    assert closed and elapsed < 1.5
