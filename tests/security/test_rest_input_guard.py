"""The JSON endpoints other than ingestion (login, exports, enrollment, enrollment codes, alert
acknowledgement) answer the crash inputs with a clear 4xx and store nothing: JSON nested
100,000 deep, a lone surrogate, NaN and overflowing numbers, bodies that are not JSON, and
timestamps at the ends of ``datetime``'s range (exports)."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from aiusage.api.auth_routes import install_auth_routes
from aiusage.api.input_guard import decode_json, nesting_problem
from aiusage.auth.login import LoginService
from aiusage.realtime.store_access import StoreAccess
from aiusage.store.tables import Agent, EnrollmentCode, ExportJob

DEEP = b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
SURROGATE = (
    b'{"email": "a\\ud800@acme.io", "password": "x", "code": "\\udc00", "userId": "\\ud800"}'
)
NAN = b'{"email": "a@acme.io", "password": "x", "code": "c", "ttlSeconds": NaN}'
OVERFLOW = b'{"email": "a@acme.io", "password": "x", "code": "c", "ttlSeconds": 1e400}'

TOO_DEEP = {"detail": "body is nested deeper than 32 levels", "code": "invalid_json"}
LONE = {
    "detail": "body holds a lone UTF-16 surrogate (\\ud800-\\udfff) in a string",
    "code": "invalid_json",
}


@pytest.fixture
def guarded(platform):
    """The platform with login and device enrollment wired as ``aiusage serve`` does."""
    install_auth_routes(
        platform.app,
        login=LoginService(StoreAccess(platform.db), platform.issuer),
        issuer=platform.issuer,
    )
    platform.app.state.sessions_database = platform.db
    return platform


def endpoints(p):
    admin = p.auth("ann", "acme", "Admin")
    return {
        "/api/auth/login": {},
        "/api/agent/enroll": {},
        "/api/agent/enrollment-codes": admin,
        "/api/exports": admin,
        "/api/alerts/1/acknowledge": admin,
    }


async def stored(p) -> list[int]:
    async with p.db.read() as conn:
        return [
            (await conn.execute(select(func.count()).select_from(table))).scalar_one()
            for table in (ExportJob, EnrollmentCode, Agent)
        ]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (DEEP, TOO_DEEP),
        (b"[" * 100_000, TOO_DEEP),
        (SURROGATE, LONE),
        (
            NAN,
            {"detail": "body is not valid JSON: NaN is not a JSON number", "code": "invalid_json"},
        ),
        (
            OVERFLOW,
            {
                "detail": "body is not valid JSON: number out of range: 1e400",
                "code": "invalid_json",
            },
        ),
    ],
    ids=["deep", "unterminated", "surrogate", "nan", "overflow"],
)
async def test_crash_inputs_get_400_on_every_json_endpoint(guarded, body, expected) -> None:
    for path, headers in endpoints(guarded).items():
        response = await guarded.client.post(
            path, content=body, headers={**headers, "content-type": "application/json"}
        )
        assert (path, response.status_code, response.json()) == (path, 400, expected)
    assert await stored(guarded) == [0, 0, 0]
    # Well-formed bodies (non-ASCII text and a valid surrogate pair included) still pass.
    response = await guarded.client.post(
        "/api/agent/enrollment-codes",
        content=json.dumps({"ttlSeconds": 3600, "note": "caf\u00e9 \U0001f600"}).encode(),
        headers={**guarded.auth("ann", "acme", "Admin"), "content-type": "application/json"},
    )
    assert response.status_code == 201
    assert await stored(guarded) == [0, 1, 0]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("from", "0001-01-01T00:00:00+14:00", "Value error, is before 2000-01-01"),
        ("to", "9999-12-31T23:59:59-14:00", "Value error, is not before 9000-01-01"),
        ("from", "1999-12-31T23:00:00Z", "Value error, is before 2000-01-01"),
    ],
)
async def test_export_ranges_at_the_ends_of_datetime_get_422(
    guarded, field, value, message
) -> None:
    body = {"from": "2026-03-09T00:00:00Z", "to": "2026-03-10T00:00:00Z", field: value}
    response = await guarded.client.post(
        "/api/exports", json=body, headers=guarded.auth("ann", "acme", "Admin")
    )
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert (error["loc"], error["msg"]) == (["body", field], message)
    assert await stored(guarded) == [0, 0, 0]


async def test_bodies_that_are_not_json_get_415_instead_of_an_echoing_422(guarded) -> None:
    # FastAPI's 422 echoed such a body, and crashed on bytes that are not UTF-8.
    for path, headers in endpoints(guarded).items():
        for body in (b"\xff\xfe\x00", b"email=%ED%A0%80"):
            response = await guarded.client.post(
                path, content=body, headers={**headers, "content-type": "text/plain"}
            )
            assert (path, response.status_code, response.json()) == (
                path,
                415,
                {
                    "detail": "content type must be application/json",
                    "code": "unsupported_media_type",
                },
            )
    assert await stored(guarded) == [0, 0, 0]


def test_nesting_check_reads_strings_and_escapes_like_json() -> None:
    # Brackets inside strings, escaped quotes and escaped backslashes are not structure.
    tricky = json.dumps({"s": "[[[[" * 20, "q": '"[[[' * 20, "b": "\\" * 7 + "[" * 50}).encode()
    assert nesting_problem(tricky, 2) is None
    assert decode_json(tricky, max_depth=2) == json.loads(tricky)
    exact = b"[" * 32 + b"]" * 32
    assert nesting_problem(exact) is None
    assert nesting_problem(b"[" + exact + b"]") == "body is nested deeper than 32 levels"
    assert nesting_problem(b"[{" * 20 + b"}]" * 20) == "body is nested deeper than 32 levels"
    assert nesting_problem(b"[}" * 40) == "body is not valid JSON: unbalanced brackets"
