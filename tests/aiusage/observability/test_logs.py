"""Log redaction, JSON lines and request ids (aiusage.observability.logs)."""

from __future__ import annotations

import io
import json
import logging

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from aiusage.observability.logs import (
    REDACTED,
    RequestIdMiddleware,
    configure_logging,
    current_request_id,
    redact,
)

JWT = (
    "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0."
    "eyJzdWIiOiJhbm4iLCJvcmciOiJhY21lIn0."
    "c2lnbmF0dXJlLXNpZ25hdHVyZS1zaWduYXR1cmU"
)


@pytest.mark.parametrize(
    "text",
    [
        f"GET /hubs/analytics?id=abc&access_token={JWT}&x=1",
        "GET /hubs/analytics?access_token=opaque-secret-123",
        f"Authorization: Bearer {JWT}",
        "authorization: Bearer opaque.secret.value",
        f'{{"access_token": "{JWT}", "ok": 1}}',
        f"token refused: {JWT} expired",
        "headers={'authorization': 'Basic dXNlcjpwYXNz'}",
    ],
)
def test_no_credential_survives_redaction(text):
    cleaned = redact(text)
    assert REDACTED in cleaned
    for secret in (JWT, "opaque-secret-123", "opaque.secret.value", "dXNlcjpwYXNz"):
        assert secret not in cleaned


def test_redaction_keeps_the_rest_of_the_line():
    assert redact(f"GET /h?id=abc&access_token={JWT}&x=1") == (
        f"GET /h?id=abc&access_token={REDACTED}&x=1"
    )
    assert redact("nothing secret here") == "nothing secret here"


def _capture(fmt: str) -> tuple[io.StringIO, logging.Handler]:
    stream = io.StringIO()
    handler = configure_logging(fmt, "INFO", stream=stream)
    return stream, handler


@pytest.fixture
def restore_root():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for h in list(root.handlers):
        if h not in handlers:
            root.removeHandler(h)
    root.setLevel(level)


def test_the_filter_redacts_arguments_and_tracebacks(restore_root):
    stream, _ = _capture("text")
    log = logging.getLogger("aiusage.test.redaction")
    log.info("client sent %s", f"Bearer {JWT}")
    try:
        raise ValueError(f"bad url ?access_token={JWT}")
    except ValueError:
        log.exception("failed")
    out = stream.getvalue()
    assert JWT not in out
    assert out.count(REDACTED) >= 2
    assert "ValueError: bad url ?access_token=[redacted]" in out


def test_json_lines_carry_level_logger_message_and_no_token(restore_root):
    stream, _ = _capture("json")
    logging.getLogger("aiusage.test.json").warning("token %s refused", JWT)
    line = json.loads(stream.getvalue().strip().splitlines()[-1])
    assert line["level"] == "WARNING"
    assert line["logger"] == "aiusage.test.json"
    assert line["message"] == f"token {REDACTED} refused"
    assert line["ts"].endswith("+00:00") and isinstance(line["pid"], int)
    assert "request_id" not in line


def test_json_access_lines_take_the_request_id_from_the_engine_line(restore_root):
    stream, _ = _capture("json")
    logging.getLogger("hubserver.access").info(
        '127.0.0.1:5 "GET /hubs/analytics?access_token=[redacted]" 101 2.0ms rid=abc-12'
    )
    line = json.loads(stream.getvalue().strip().splitlines()[-1])
    assert line["request_id"] == "abc-12"


def test_configure_logging_twice_leaves_one_handler(restore_root):
    root = logging.getLogger()
    before = len(root.handlers)
    first = configure_logging("text", "INFO", stream=io.StringIO())
    second = configure_logging("json", "DEBUG", stream=io.StringIO())
    assert first not in root.handlers and second in root.handlers
    assert len(root.handlers) <= before + 1
    assert root.level == logging.DEBUG
    with pytest.raises(ValueError):
        configure_logging("xml")


def _request_id_app() -> RequestIdMiddleware:
    async def endpoint(_request: Request) -> JSONResponse:
        logging.getLogger("aiusage.test.rid").info("inside the request")
        return JSONResponse({"rid": current_request_id()})

    return RequestIdMiddleware(Starlette(routes=[Route("/x", endpoint)]))


def test_a_well_formed_incoming_request_id_is_used_logged_and_echoed(restore_root):
    stream, _ = _capture("json")
    with TestClient(_request_id_app()) as client:
        response = client.get("/x", headers={"X-Request-ID": "nginx-abc123"})
    assert response.json() == {"rid": "nginx-abc123"}
    assert response.headers["x-request-id"] == "nginx-abc123"
    lines = [json.loads(x) for x in stream.getvalue().splitlines()]
    inside = [x for x in lines if x["message"] == "inside the request"]
    assert inside and inside[0]["request_id"] == "nginx-abc123"
    assert current_request_id() is None


def test_a_malformed_request_id_is_replaced_by_a_fresh_one():
    with TestClient(_request_id_app()) as client:
        first = client.get("/x", headers={"X-Request-ID": "bad id with spaces"})
        second = client.get("/x")
    rid1, rid2 = first.json()["rid"], second.json()["rid"]
    assert rid1 and rid2 and rid1 != rid2 and " " not in rid1
    assert first.headers["x-request-id"] == rid1


async def test_the_engine_request_id_from_the_scope_wins_over_the_header():
    seen: list[str | None] = []

    async def app(scope, receive, send):
        seen.append(current_request_id())
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    sent: list[dict] = []

    async def send(message):
        sent.append(message)

    async def receive():
        return {"type": "http.request", "body": b""}

    scope = {
        "type": "http",
        "headers": [(b"x-request-id", b"from-client")],
        "extensions": {"hubserver.request_id": "engine-7"},
    }
    await RequestIdMiddleware(app)(scope, receive, send)
    assert seen == ["engine-7"]
    assert (b"x-request-id", b"engine-7") in sent[0]["headers"]
