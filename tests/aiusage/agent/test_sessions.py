from datetime import UTC, datetime, timedelta
from itertools import count

from aiusage.agent.sessions import SessionTracker

T0 = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


def tracker(**kw):
    ids = count()
    return SessionTracker("u1", "dev1", new_id=lambda: f"id{next(ids)}", **kw)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_first_tool_opens_a_session_with_the_tool_and_device():
    t = tracker()
    events = t.observe(frozenset({"Claude"}), at(0))
    assert [e["type"] for e in events] == ["SessionStarted"]
    e = events[0]
    assert e["startTime"] == "2026-11-26T09:00:00Z"
    assert e["tool"] == "Claude" and e["deviceId"] == "dev1" and e["userId"] == "u1"
    assert e["sessionId"] == t.session_id


def test_tool_disappearing_reports_ai_detected_with_segment_duration():
    t = tracker()
    t.observe(frozenset({"Claude", "Cursor"}), at(0))
    events = t.observe(frozenset({"Cursor"}), at(30))
    assert [(e["type"], e["tool"], e["duration"]) for e in events] == [
        ("AIDetected", "Claude", 30.0)
    ]


def test_idle_timeout_ends_the_session_at_the_last_use():
    t = tracker(idle_timeout=timedelta(minutes=5))
    t.observe(frozenset({"Claude"}), at(0))
    t.observe(frozenset(), at(60))
    assert t.observe(frozenset(), at(200)) == []
    events = t.observe(frozenset(), at(60 + 300))
    assert [e["type"] for e in events] == ["SessionEnded"]
    assert events[0]["endTime"] == "2026-11-26T09:01:00Z"
    assert events[0]["duration"] == 60.0
    assert events[0]["aiUsageTime"] == 60.0


def test_ai_usage_time_counts_only_time_with_a_tool_in_use():
    t = tracker(idle_timeout=timedelta(minutes=5))
    t.observe(frozenset({"Claude"}), at(0))
    t.observe(frozenset(), at(100))  # 100 s of use
    t.observe(frozenset({"Cursor"}), at(200))  # back within the idle window: same session
    t.observe(frozenset(), at(250))  # 50 s more
    (ended,) = t.observe(frozenset(), at(250 + 300))
    assert ended["duration"] == 250.0
    assert ended["aiUsageTime"] == 150.0


def test_long_segments_are_reported_in_parts():
    t = tracker(flush_after=timedelta(minutes=5))
    t.observe(frozenset({"Ollama"}), at(0))
    events = t.observe(frozenset({"Ollama"}), at(300))
    assert [(e["type"], e["duration"]) for e in events] == [("AIDetected", 300.0)]
    events = t.observe(frozenset(), at(310))
    assert [(e["type"], e["duration"]) for e in events] == [("AIDetected", 10.0)]


def test_close_ends_segments_and_session():
    t = tracker()
    t.observe(frozenset({"Claude"}), at(0))
    events = t.close(at(20))
    assert [e["type"] for e in events] == ["AIDetected", "SessionEnded"]
    assert t.session_id is None


def test_state_round_trip_resumes_and_ends_segments_at_last_use():
    t = tracker()
    t.observe(frozenset({"Claude"}), at(0))
    t.observe(frozenset({"Claude"}), at(40))
    saved = t.state()
    t2 = tracker()
    t2.restore(saved)
    events = t2.resume()
    assert [(e["type"], e["duration"]) for e in events] == [("AIDetected", 40.0)]
    # Agent was down for an hour: the session ends at the last use, not at restart time.
    (ended,) = t2.observe(frozenset(), at(3600))
    assert ended["type"] == "SessionEnded"
    assert ended["endTime"] == "2026-11-26T09:00:40Z"
    assert ended["aiUsageTime"] == 40.0


def test_every_event_has_a_unique_id():
    t = tracker()
    ids = []
    for i, tools in enumerate([{"A"}, {"A", "B"}, {"B"}, set(), set()]):
        ids += [e["eventId"] for e in t.observe(frozenset(tools), at(i * 400))]
    assert len(ids) == len(set(ids)) > 3
