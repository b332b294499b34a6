from datetime import UTC, datetime, timedelta

import pytest

from aiusage.domain.events import (
    AIDetected,
    BatchInvalid,
    SessionEnded,
    SessionStarted,
    parse_batch,
    parse_event,
)
from aiusage.domain.organizations import (
    ROLES,
    normalize_email,
    validate_org_id,
    validate_role,
    validate_subscription,
)
from aiusage.errors import ValidationError

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def base(kind, **fields):
    event = {"eventId": "e1", "type": kind, "occurredAt": "2026-05-01T11:00:00Z", "userId": "u1"}
    event.update(fields)
    return event


def test_each_event_type_parses_into_its_dataclass_with_utc_times() -> None:
    started = parse_event(
        base(
            "SessionStarted",
            sessionId="s1",
            startTime="2026-05-01T12:30:00+02:00",
            tool=" ChatGPT ",
            deviceId="dev-1",
        ),
        NOW,
    )
    assert started == SessionStarted(
        "e1",
        datetime(2026, 5, 1, 11, tzinfo=UTC),
        "u1",
        "s1",
        datetime(2026, 5, 1, 10, 30, tzinfo=UTC),
        "ChatGPT",
        "dev-1",
    )
    ended = parse_event(
        base(
            "SessionEnded",
            sessionId="s1",
            endTime="2026-05-01T11:00:00Z",
            duration=60,
            aiUsageTime=59.5,
        ),
        NOW,
    )
    assert isinstance(ended, SessionEnded) and (ended.duration, ended.ai_usage_time) == (60.0, 59.5)
    detected = parse_event(base("AIDetected", tool="Claude", duration=0), NOW)
    assert detected == AIDetected(
        "e1", datetime(2026, 5, 1, 11, tzinfo=UTC), "u1", "Claude", 0.0, None
    )


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"startTime": "2026-05-01T10:00:00"},
            "startTime must include a time zone (e.g. 'Z' or '+02:00')",
        ),
        ({"startTime": "not a date"}, "startTime is not a valid ISO-8601 timestamp: 'not a date'"),
        ({"startTime": 1714557600}, "startTime must be an ISO-8601 timestamp string"),
        ({"startTime": "2026-05-03T12:00:01Z"}, "startTime is more than 24 hours in the future"),
        ({"startTime": "1999-12-31T23:59:59Z"}, "startTime is before 2000-01-01"),
        ({"sessionId": ""}, "sessionId must not be empty"),
        ({"sessionId": "x" * 65}, "sessionId must be at most 64 characters"),
        ({"sessionId": "has space"}, "sessionId must be printable ASCII without spaces"),
        ({"sessionId": 7}, "sessionId must be a string"),
        ({"tool": "bad\ttool"}, "tool must not contain control characters"),
        ({"tool": "t" * 65}, "tool must be at most 64 characters"),
    ],
)
def test_session_started_field_errors_are_specific(fields, message) -> None:
    event = base("SessionStarted", sessionId="s1", startTime="2026-05-01T10:00:00Z")
    event.update(fields)
    assert parse_event(event, NOW) == [message]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"duration": -1}, "duration must not be negative"),
        ({"duration": True}, "duration must be a number of seconds"),
        ({"duration": "5"}, "duration must be a number of seconds"),
        ({"duration": float("inf")}, "duration must be finite"),
        ({"duration": 604800.5}, "duration must be at most 604800 seconds"),
        ({"aiUsageTime": 61}, "aiUsageTime must not exceed duration"),
        ({"aiUsageTime": None}, "aiUsageTime is required"),
    ],
)
def test_session_ended_duration_rules(fields, message) -> None:
    event = base(
        "SessionEnded", sessionId="s1", endTime="2026-05-01T11:00:00Z", duration=60, aiUsageTime=30
    )
    event.update(fields)
    if fields.get("aiUsageTime", 0) is None:
        del event["aiUsageTime"]
    assert parse_event(event, NOW) == [message]


def test_every_problem_of_an_event_is_reported_at_once() -> None:
    errors = parse_event({"type": "AIDetected", "duration": -3}, NOW)
    assert errors == [
        "eventId is required",
        "occurredAt is required",
        "userId is required",
        "tool is required",
        "duration must not be negative",
    ]


def test_unknown_types_and_non_objects_are_refused() -> None:
    assert parse_event(base("Heartbeat"), NOW) == [
        "type must be one of SessionStarted, SessionEnded, AIDetected"
    ]
    assert parse_event([1, 2], NOW) == ["event must be a JSON object"]


def test_a_batch_is_all_or_nothing_and_reports_indexes_and_event_ids() -> None:
    good = base("AIDetected", tool="Claude", duration=1)
    bad = base("AIDetected", eventId="e2", duration=1)
    with pytest.raises(BatchInvalid) as exc:
        parse_batch({"events": [good, bad, "x"]}, max_events=10, now=NOW)
    assert [e.to_json() for e in exc.value.errors] == [
        {"index": 1, "eventId": "e2", "errors": ["tool is required"]},
        {"index": 2, "eventId": None, "errors": ["event must be a JSON object"]},
    ]


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ([], "body must be a JSON object"),
        ({}, "events must be a JSON array"),
        ({"events": {}}, "events must be a JSON array"),
        ({"events": [{}] * 3}, "a batch holds at most 2 events, got 3"),
    ],
)
def test_batch_shape_errors(payload, message) -> None:
    with pytest.raises(BatchInvalid) as exc:
        parse_batch(payload, max_events=2, now=NOW)
    assert [e.to_json() for e in exc.value.errors] == [
        {"index": None, "eventId": None, "errors": [message]}
    ]


def test_an_empty_batch_is_valid() -> None:
    assert parse_batch({"events": []}, max_events=2, now=NOW) == []


def test_future_skew_up_to_a_day_is_tolerated() -> None:
    event = base(
        "AIDetected", tool="x", duration=1, occurredAt=(NOW + timedelta(hours=23)).isoformat()
    )
    assert isinstance(parse_event(event, NOW), AIDetected)


def test_organization_vocabularies_are_validated() -> None:
    assert validate_org_id("acme-1.eu_x") == "acme-1.eu_x"
    for bad in ("", "-acme", "a b", "x" * 65, "org:1"):
        with pytest.raises(ValidationError):
            validate_org_id(bad)
    assert validate_subscription("past_due") == "past_due"
    with pytest.raises(ValidationError):
        validate_subscription("free")
    with pytest.raises(ValidationError):
        validate_role("admin")
    assert normalize_email("  A@B.Test ") == "a@b.test"
    with pytest.raises(ValidationError):
        normalize_email("nope")


def test_domain_roles_match_the_auth_roles() -> None:
    from aiusage.auth.principal import KNOWN_ROLES

    assert set(ROLES) == KNOWN_ROLES
