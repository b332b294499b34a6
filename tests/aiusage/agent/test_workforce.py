"""The demo workforce: physically possible agent events from people with believable habits."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

from aiusage.agent.workforce import (
    IDLE_TIMEOUT,
    LAPSED_DAYS,
    NEW_SHADOW_DAYS,
    Workforce,
    day_plan,
    demo_people,
)

NOW = datetime(2026, 12, 4, 15, 30, tzinfo=UTC)


def ts(value: Any) -> datetime:
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def run(days: int = 10, people: int = 40, seed: int = 3) -> list[dict[str, Any]]:
    ids = count()
    workforce = Workforce(
        demo_people(people, NOW),
        start=NOW - timedelta(days=days),
        anchor=NOW,
        seed=seed,
        new_id=lambda: f"id{next(ids)}",
    )
    return workforce.advance(NOW)


def test_every_detection_lies_inside_its_session_and_no_event_is_in_the_future():
    events = run()
    starts = {e["sessionId"]: ts(e["startTime"]) for e in events if e["type"] == "SessionStarted"}
    ends = {e["sessionId"]: e for e in events if e["type"] == "SessionEnded"}
    detections = [e for e in events if e["type"] == "AIDetected"]
    assert len(detections) > 1000 and len(ends) > 100
    for d in detections:
        end = ts(d["occurredAt"])
        begin = end - timedelta(seconds=d["duration"])
        session_end = ts(ends[d["sessionId"]]["endTime"]) if d["sessionId"] in ends else NOW
        assert starts[d["sessionId"]] <= begin <= end <= session_end, d
    for sid, e in ends.items():
        elapsed = (ts(e["endTime"]) - starts[sid]).total_seconds()
        assert 0 <= e["aiUsageTime"] <= e["duration"] == elapsed <= 24 * 3600
    assert all(ts(e["occurredAt"]) <= NOW for e in events)
    assert len({e["eventId"] for e in events}) == len(events)


def test_session_ai_time_is_the_union_of_its_detections():
    events = run(days=4)
    by_session: dict[str, list[tuple[datetime, datetime]]] = defaultdict(list)
    for d in (e for e in events if e["type"] == "AIDetected"):
        end = ts(d["occurredAt"])
        by_session[d["sessionId"]].append((end - timedelta(seconds=d["duration"]), end))
    overlapping = 0
    for e in (e for e in events if e["type"] == "SessionEnded"):
        spans = sorted(by_session[e["sessionId"]])
        covered, reach = 0.0, None
        for a, b in spans:
            if reach is not None and a < reach:
                overlapping += 1
            a = max(a, reach) if reach is not None else a
            if b > a:
                covered += (b - a).total_seconds()
            reach = b if reach is None else max(reach, b)
        assert abs(covered - e["aiUsageTime"]) < 1e-6, e
    assert overlapping > 0  # two tools at once happen, and count once


def test_people_use_one_or_two_tools_per_session_and_never_overlap_their_own_sessions():
    events = run()
    tools: dict[str, set[str]] = defaultdict(set)
    for d in (e for e in events if e["type"] == "AIDetected"):
        tools[d["sessionId"]].add(d["tool"])
    sizes = {len(t) for t in tools.values()}
    assert sizes == {1, 2}
    spans: dict[str, list[tuple[datetime, datetime]]] = defaultdict(list)
    starts = {e["sessionId"]: ts(e["startTime"]) for e in events if e["type"] == "SessionStarted"}
    for e in (e for e in events if e["type"] == "SessionEnded"):
        spans[e["userId"]].append((starts[e["sessionId"]], ts(e["endTime"])))
    for user_spans in spans.values():
        user_spans.sort()
        for (_a, b), (c, _d) in zip(user_spans, user_spans[1:], strict=False):
            assert c - b >= IDLE_TIMEOUT  # a new session only after the idle timeout


def test_some_people_are_inactive_and_a_shadow_tool_is_new_this_week():
    people = demo_people(40, NOW)
    events = run(days=20)
    active = {e["userId"] for e in events}
    never = {p.user_id for p in people if p.habit == "never"}
    lapsed = {p.user_id for p in people if p.habit == "lapsed"}
    assert never and never.isdisjoint(active)
    recent = NOW - timedelta(days=LAPSED_DAYS - 1)
    assert lapsed <= active
    assert not [e for e in events if e["userId"] in lapsed and ts(e["occurredAt"]) > recent]
    assert all(p.team is None for p in people if p.habit == "never")
    assert {p.team for p in people} >= {"Support", "Engineering", "Sales", "Marketing", "Product"}
    first_seen: dict[str, datetime] = {}
    for d in (e for e in events if e["type"] == "AIDetected"):
        first_seen.setdefault(d["tool"], ts(d["occurredAt"]))
    new = [t for t, at in first_seen.items() if at >= NOW - timedelta(days=7)]
    assert new == ["Manus"]
    assert first_seen["Manus"] >= NOW - timedelta(days=NEW_SHADOW_DAYS + 1)
    assert len({p.email for p in people}) == 40


def test_plans_are_reproducible_and_advancing_in_steps_gives_the_same_events():
    person = demo_people(2, NOW)[0]
    day = NOW.date() - timedelta(days=3)
    assert day_plan(person, day, NOW, seed=5) == day_plan(person, day, NOW, seed=5)
    at_once = run(days=2, people=8)
    ids = count()
    stepped = Workforce(
        demo_people(8, NOW),
        start=NOW - timedelta(days=2),
        anchor=NOW,
        seed=3,
        new_id=lambda: f"id{next(ids)}",
    )
    pieces: list[dict[str, Any]] = []
    moment = NOW - timedelta(days=2)
    while moment < NOW:  # bounded: 48 steps
        moment = min(NOW, moment + timedelta(hours=1))
        pieces += stepped.advance(moment)
    key = lambda e: (e["occurredAt"], e["userId"], e["type"], e.get("tool"), e.get("duration"))  # noqa: E731
    assert sorted(map(key, pieces)) == sorted(map(key, at_once))
