"""Malformed agent batches get a 4xx with a clear error and store nothing, on SQLite and
PostgreSQL: JSON nested 100,000 deep, timestamps at the ends of ``datetime``'s range, lone
surrogates, non-finite, negative and over-a-day durations, oversized bodies."""

from __future__ import annotations

import json
from datetime import timedelta, timezone

from sqlalchemy import func, select

from aiusage.store.tables import AIDetection, AISession, ProcessedEvent, User
from tests.aiusage.api.p2b_support import iso

PATH = "/api/agent/events"
JSON = {"content-type": "application/json"}


def detected(eid: str, p, **fields):
    event = {
        "eventId": eid,
        "type": "AIDetected",
        "occurredAt": iso(p.clock.now - timedelta(minutes=5)),
        "userId": "u1",
        "tool": "Claude",
        "duration": 30,
    }
    event.update(fields)
    return event


def ended(eid: str, p, **fields):
    event = {
        "eventId": eid,
        "type": "SessionEnded",
        "occurredAt": iso(p.clock.now),
        "userId": "u1",
        "sessionId": "s1",
        "endTime": iso(p.clock.now),
        "duration": 600,
        "aiUsageTime": 60,
    }
    event.update(fields)
    return event


async def post(p, body: bytes):
    return await p.client.post(
        PATH, content=body, headers={**JSON, **p.auth("dev-1", "acme", "Agent")}
    )


async def nothing_stored(p) -> bool:
    async with p.db.read() as conn:
        counts = [
            (await conn.execute(select(func.count()).select_from(table))).scalar_one()
            for table in (ProcessedEvent, AISession, AIDetection)
        ]
        users = (
            await conn.execute(select(func.count()).select_from(User).where(User.org_id == "acme"))
        ).scalar_one()
    return counts == [0, 0, 0] and users == 0 and p.hub.sent == []


async def test_json_nested_100000_deep_is_a_400_before_decoding(platform) -> None:
    deep = b'{"events": [' + b"[" * 100_000 + b"]" * 100_000 + b"]}"
    unterminated = b'{"events": ' + b"[" * 100_000
    inside_an_event = json.dumps(
        {"events": [detected("e1", platform, extra=json.loads("[" * 40 + "]" * 40))]}
    ).encode()
    for body in (deep, unterminated, inside_an_event):
        response = await post(platform, body)
        assert response.status_code == 400
        assert response.json() == {"detail": "body is nested deeper than 32 levels"}
    assert await nothing_stored(platform)


async def test_timestamps_out_of_range_are_per_event_422s(platform) -> None:
    p = platform
    body = {
        "events": [
            detected("ok", p),
            detected("y1", p, occurredAt="0001-01-01T00:00:00+14:00"),
            detected("y9999", p, occurredAt="9999-12-31T23:59:59-14:00"),
            ended("start1", p, endTime="0001-01-01T00:30:00+01:00"),
            detected("naive", p, occurredAt="2026-03-10T14:00:00"),
        ]
    }
    response = await post(p, json.dumps(body).encode())
    assert response.status_code == 422
    assert response.json()["detail"] == [
        {"index": 1, "eventId": "y1", "errors": ["occurredAt is before 2000-01-01"]},
        {"index": 2, "eventId": "y9999", "errors": ["occurredAt is not before 9000-01-01"]},
        {"index": 3, "eventId": "start1", "errors": ["endTime is before 2000-01-01"]},
        {
            "index": 4,
            "eventId": "naive",
            "errors": ["occurredAt must include a time zone (e.g. 'Z' or '+02:00')"],
        },
    ]
    assert await nothing_stored(p)


async def test_lone_surrogates_in_tool_and_ids_are_per_event_422s(platform) -> None:
    p = platform
    events = [
        detected("ok", p),
        detected("tool", p, tool="Chat\ud800GPT"),
        detected("\udfff", p),
        detected("user", p, userId="u\ud83d"),
        ended("session", p, sessionId="\ud800"),
    ]
    # json.dumps escapes the surrogates as \ud800..., exactly what an attacker sends.
    response = await post(p, json.dumps({"events": events}).encode())
    assert response.status_code == 422
    assert response.json()["detail"] == [
        {"index": 1, "eventId": "tool", "errors": ["tool must not contain lone UTF-16 surrogates"]},
        {"index": 2, "eventId": None, "errors": ["eventId must be printable ASCII without spaces"]},
        {
            "index": 3,
            "eventId": "user",
            "errors": ["userId must be printable ASCII without spaces"],
        },
        {
            "index": 4,
            "eventId": "session",
            "errors": ["sessionId must be printable ASCII without spaces"],
        },
    ]
    # A surrogate as raw (CESU-style) bytes is not UTF-8: the body itself is refused.
    raw = json.dumps({"events": [detected("raw", p, tool="TOOL")]}).encode()
    response = await post(p, raw.replace(b"TOOL", b"\xed\xa0\x80"))
    assert response.status_code == 400
    assert response.json() == {"detail": "body is not valid UTF-8"}
    assert await nothing_stored(p)


async def test_durations_must_be_finite_non_negative_and_bounded(platform) -> None:
    p = platform
    events = [
        detected("day", p, duration=86400),
        detected("nan", p, duration="NAN"),
        detected("inf", p, duration="INF"),
        detected("overflow", p, duration="BIG"),
        detected("negative", p, duration=-0.5),
        detected("over-a-day", p, duration=86400.5),
        ended("ai-over", p, duration=60, aiUsageTime=61),
        ended("over-a-week", p, duration=7 * 86400 + 1, aiUsageTime=10),
    ]
    body = json.dumps({"events": events}).encode()
    body = body.replace(b'"NAN"', b"NaN").replace(b'"INF"', b"-Infinity")
    body = body.replace(b'"BIG"', b"1e400")
    response = await post(p, body)
    assert response.status_code == 422
    errors = {d["eventId"]: d["errors"] for d in response.json()["detail"]}
    assert errors == {
        "nan": ["duration must be finite"],
        "inf": ["duration must be finite"],
        "overflow": ["duration must be finite"],
        "negative": ["duration must not be negative"],
        "over-a-day": ["duration must be at most 86400 seconds"],
        "ai-over": ["aiUsageTime must not exceed duration"],
        "over-a-week": ["duration must be at most 604800 seconds"],
    }
    assert await nothing_stored(p)
    # The bounds themselves are accepted: a day-long detection, stamped at +14:00.
    local = (p.clock.now - timedelta(hours=1)).astimezone(timezone(timedelta(hours=14)))
    body = {"events": [detected("day", p, duration=86400, occurredAt=local.isoformat())]}
    response = await post(p, json.dumps(body).encode())
    assert (response.status_code, response.json()) == (200, {"accepted": 1, "duplicates": 0})


async def test_oversized_bodies_get_413_on_ingestion_and_every_other_json_endpoint(
    platform,
) -> None:
    p = platform
    huge = b'{"events": [], "pad": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    response = await post(p, huge)
    assert response.status_code == 413
    assert response.json() == {"detail": "body exceeds 2097152 bytes"}
    export = b'{"from": "2026-03-09T00:00:00Z", "to": "2026-03-10T00:00:00Z", "pad": "'
    response = await p.client.post(
        "/api/exports",
        content=export + b"x" * (1024 * 1024) + b'"}',
        headers={**JSON, **p.auth("ann", "acme", "Admin")},
    )
    assert response.status_code == 413
    assert response.json() == {"detail": "body exceeds 1048576 bytes", "code": "too_large"}
    assert await nothing_stored(p)
