"""Regenerate ``event_stream.json``: the recorded agent event stream of the KPI correctness
test (run from this directory: ``python make_event_stream.py``). Deterministic (fixed seed).

The stream covers 10 days plus a few events older than 30 days, 8 users, 6 tools (2 not
approved), and the awkward cases: SessionEnded before its SessionStarted, sessions across
midnight, detections without a session, open sessions that are recent, kept alive by a
detection, or stale, an event later in the current hour and one beyond it, and duplicates
(re-sent events across batches and a repeat inside one batch).
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

NOW = datetime(2026, 3, 10, 14, 25, tzinfo=UTC)
USERS = [f"u{i:02d}" for i in range(1, 9)]
TOOLS = ["GitHub Copilot", "ChatGPT", "Claude", "Cursor", "DeepSeek", "Perplexity"]
WEIGHTS = [30, 25, 20, 15, 5, 5]


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def main() -> None:
    rng = random.Random(20260310)
    events: list[dict[str, object]] = []
    counter = 0

    def eid() -> str:
        nonlocal counter
        counter += 1
        return f"ev-{counter:05d}"

    def session(user: str, start: datetime, minutes: float | None, n_det: int, tag: str) -> None:
        sid = f"s-{tag}"
        tool = rng.choice(TOOLS[:4]) if rng.random() < 0.6 else None
        started = {
            "eventId": eid(),
            "type": "SessionStarted",
            "occurredAt": iso(start),
            "userId": user,
            "sessionId": sid,
            "startTime": iso(start),
        }
        if tool:
            started["tool"] = tool
        events.append(started)
        span = minutes if minutes is not None else 30
        for _ in range(n_det):
            at = start + timedelta(minutes=rng.uniform(0, span))
            events.append(
                {
                    "eventId": eid(),
                    "type": "AIDetected",
                    "occurredAt": iso(at),
                    "userId": user,
                    "sessionId": sid,
                    "tool": rng.choices(TOOLS, WEIGHTS)[0],
                    "duration": round(rng.uniform(5, 600), 3),
                }
            )
        if minutes is not None:
            end = start + timedelta(minutes=minutes)
            duration = minutes * 60
            events.append(
                {
                    "eventId": eid(),
                    "type": "SessionEnded",
                    "occurredAt": iso(end),
                    "userId": user,
                    "sessionId": sid,
                    "endTime": iso(end),
                    "duration": duration,
                    "aiUsageTime": round(duration * rng.uniform(0.05, 0.9), 3),
                }
            )

    # Old history, outside every 30-day window.
    for i, user in enumerate(USERS[:3]):
        session(user, NOW - timedelta(days=40, hours=i), 45, 2, f"old{i}")
    # Ten days of ordinary use (today is handled below); most sessions end before now.
    today = NOW.replace(hour=0, minute=0, second=0, microsecond=0)
    for day in range(9, 0, -1):
        base = today - timedelta(days=day)
        for user in USERS:
            for k in range(rng.randint(0, 3)):
                start = base + timedelta(hours=rng.randint(7, 19), minutes=rng.randint(0, 59))
                session(user, start, rng.uniform(5, 120), rng.randint(0, 4), f"d{day}{user}{k}")
            if rng.random() < 0.3:  # standalone detection (no session)
                at = base + timedelta(hours=rng.randint(6, 22), minutes=rng.randint(0, 59))
                events.append(
                    {
                        "eventId": eid(),
                        "type": "AIDetected",
                        "occurredAt": iso(at),
                        "userId": user,
                        "tool": rng.choices(TOOLS, WEIGHTS)[0],
                        "duration": round(rng.uniform(5, 300), 3),
                    }
                )
    # Across midnight into today.
    session("u01", today - timedelta(minutes=35), 80, 2, "midnight")
    # Today: ended sessions in the morning.
    for i, user in enumerate(USERS[:6]):
        session(user, today + timedelta(hours=6 + i, minutes=7 * i), 25 + 5 * i, 2, f"t{i}")
    # Open sessions: recent (active), old but kept alive by a detection (active), stale.
    session("u02", NOW - timedelta(minutes=20), None, 1, "open-recent")
    session("u03", NOW - timedelta(hours=3), None, 0, "open-alive")
    events.append(
        {
            "eventId": eid(),
            "type": "AIDetected",
            "occurredAt": iso(NOW - timedelta(minutes=30)),
            "userId": "u03",
            "sessionId": "s-open-alive",
            "tool": "Claude",
            "duration": 120.0,
        }
    )
    session("u04", NOW - timedelta(hours=5), None, 0, "open-stale")
    session("u05", NOW - timedelta(hours=4), None, 0, "open-stale2")
    events.append(
        {
            "eventId": eid(),
            "type": "AIDetected",
            "occurredAt": iso(NOW - timedelta(hours=2, minutes=30)),
            "userId": "u05",
            "sessionId": "s-open-stale2",
            "tool": "DeepSeek",
            "duration": 60.0,
        }
    )
    # Later in the current hour (counts) and beyond it (does not).
    for minutes, tag in ((15, "late-in-hour"), (125, "next-hours")):
        events.append(
            {
                "eventId": f"ev-{tag}",
                "type": "AIDetected",
                "occurredAt": iso(NOW + timedelta(minutes=minutes)),
                "userId": "u06",
                "tool": "Perplexity",
                "duration": 42.0,
            }
        )
    # A user who is not a member any more (deactivated after using AI).
    session("u09", today - timedelta(days=2, hours=-10), 30, 1, "former")

    # Arrival order: roughly chronological in batches of 25, some ends before their starts.
    events.sort(key=lambda e: str(e["occurredAt"]))
    for i in range(0, len(events) - 1, 17):
        a, b = events[i], events[i + 1]
        if a["type"] == "SessionStarted" and b["type"] == "SessionEnded":
            events[i], events[i + 1] = b, a
    ends = [i for i, e in enumerate(events) if e["type"] == "SessionEnded"]
    for i in rng.sample(ends, 5):  # move a few ends before their starts
        ev = events.pop(i)
        events.insert(max(0, i - 6), ev)
    batches = [events[i : i + 25] for i in range(0, len(events), 25)]
    # Duplicates: re-send 15 earlier events in later batches, and one repeat inside a batch.
    for _ in range(15):
        k = rng.randrange(1, len(batches))
        src = rng.randrange(0, k)
        batches[k].append(dict(rng.choice(batches[src])))
    batches[3].append(dict(batches[3][0]))
    document = {
        "now": iso(NOW),
        "org": "acme",
        "approvedTools": ["GitHub Copilot", "chatgpt", "Claude", "Cursor"],
        "members": ["admin1", "manager1", "idle1", "idle2"],
        "deactivated": ["u09"],
        "batches": [{"agent": f"dev-{i % 3}", "events": b} for i, b in enumerate(batches)],
    }
    with open("event_stream.json", "w", encoding="utf-8") as fh:
        json.dump(document, fh, indent=1)
    print(f"{sum(len(b) for b in batches)} events in {len(batches)} batches")


if __name__ == "__main__":
    main()
