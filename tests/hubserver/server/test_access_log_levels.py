"""Access-log levels: a connection's routine polls and sends at DEBUG, everything else at INFO."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest

from tests.hubserver.server.harness import make_endpoint, running_server


async def plain_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """ASGI application answering 200 ``ok`` to every HTTP request (a non-hub route)."""
    assert scope["type"] == "http"
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


async def long_polling_session(port: int) -> None:
    """Negotiate, poll, send, poll, a poll with an unknown id (404), close, a plain GET."""
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as c:
        doc = (await c.post("/hub/negotiate?negotiateVersion=1")).json()
        token = doc["connectionToken"]
        assert (await c.get(f"/hub?id={token}")).status_code == 200  # first poll
        assert (await c.post(f"/hub?id={token}", content=b"hi")).status_code == 200
        assert (await c.get(f"/hub?id={token}")).content == b"hi"
        assert (await c.get("/hub?id=unknown")).status_code == 404
        assert (await c.delete(f"/hub?id={token}")).status_code == 202
        assert (await c.get("/other")).status_code == 200


async def access_lines(caplog: pytest.LogCaptureFixture, level: int) -> list[tuple[int, str]]:
    """(level, message) of every access line of :func:`long_polling_session` at ``level``."""
    caplog.set_level(level, logger="hubserver.access")
    async with running_server([make_endpoint()], plain_app) as s:
        await long_polling_session(s.port)
    return [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "hubserver.access"]


async def test_at_info_polls_and_sends_log_nothing_negotiate_errors_and_other_routes_do(
    caplog: pytest.LogCaptureFixture,
) -> None:
    lines = await access_lines(caplog, logging.INFO)
    assert [(level, msg.split('"')[1]) for level, msg in lines] == [
        (logging.INFO, "POST /hub/negotiate?negotiateVersion=1"),
        (logging.INFO, "GET /hub?id=unknown"),
        (logging.INFO, "GET /other"),
    ]
    assert '" 404 ' in lines[1][1]


async def test_at_debug_every_request_is_logged_with_routine_ones_at_debug(
    caplog: pytest.LogCaptureFixture,
) -> None:
    lines = await access_lines(caplog, logging.DEBUG)
    levels = [
        (level, msg.split('"')[1].split("?")[0], msg.split('" ')[1][:3]) for level, msg in lines
    ]
    assert levels == [
        (logging.INFO, "POST /hub/negotiate", "200"),
        (logging.DEBUG, "GET /hub", "200"),
        (logging.DEBUG, "POST /hub", "200"),
        (logging.DEBUG, "GET /hub", "200"),
        (logging.INFO, "GET /hub", "404"),
        (logging.DEBUG, "DELETE /hub", "202"),
        (logging.INFO, "GET /other", "200"),
    ]
