"""Access log: method, path, status, duration, request id; never a token."""

from __future__ import annotations

import logging

import httpx
import pytest
import websockets

from hubserver.server.access_log import redact_target, request_id
from tests.hubserver.server.harness import make_endpoint, running_server, token_auth

SECRET = "s3cr3t-t0ken"


def test_redaction_of_access_token_values() -> None:
    assert (
        redact_target("/hub?id=1&access_token=abc&x=2") == "/hub?id=1&access_token=[redacted]&x=2"
    )
    assert redact_target("/hub?ACCESS_TOKEN=abc") == "/hub?ACCESS_TOKEN=[redacted]"
    assert redact_target("/hub?my_access_token=abc") == "/hub?my_access_token=abc"
    assert redact_target("/plain") == "/plain"


def test_request_ids_are_taken_when_well_formed_else_generated() -> None:
    assert request_id("abc-123") == "abc-123"
    generated = {request_id("bad id\r\n"), request_id(None)}
    assert len(generated) == 2 and all(" " not in g for g in generated)


async def test_log_lines_carry_request_data_and_never_the_token(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="hubserver.access")
    async with running_server([make_endpoint(authenticate=token_auth)]) as s:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{s.port}") as c:
            await c.post(
                f"/hub/negotiate?access_token={SECRET}", headers={"x-request-id": "req-42"}
            )
            await c.post("/hub/negotiate", headers={"authorization": f"Bearer {SECRET}"})
        async with websockets.connect(f"ws://127.0.0.1:{s.port}/hub?access_token={SECRET}"):
            pass
    lines = [r.getMessage() for r in caplog.records if r.name == "hubserver.access"]
    assert len(lines) == 3
    assert all(SECRET not in line for line in lines)
    # Every server-side record (the test's own httpx client may log its URL at INFO).
    assert all(
        SECRET not in r.getMessage() for r in caplog.records if r.name.startswith("hubserver")
    )
    assert '"POST /hub/negotiate?access_token=[redacted]" 200' in lines[0]
    assert lines[0].endswith("rid=req-42")
    assert "ms rid=" in lines[1]
    assert '"GET /hub?access_token=[redacted]" 101' in lines[2]


async def test_access_log_can_be_disabled(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="hubserver.access")
    async with running_server([make_endpoint()], access_log=False) as s, httpx.AsyncClient() as c:
        await c.post(f"http://127.0.0.1:{s.port}/hub/negotiate")
    assert not [r for r in caplog.records if r.name == "hubserver.access"]
