"""Seeded random agent event streams for the breakdown tests.

Each person works through one agent device (some through two). Sessions overlap, cross local
midnight, stay open (live or stale), detections fall outside or run longer than their session,
some detections have no session or one that never reports, and the stream arrives shuffled
across batches with repeated events.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

TOOLS = ("ChatGPT", "Claude", "Copilot", "Gemini", "Perplexity", "DeepSeek", "Poe")


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@dataclass
class Stream:
    users: list[str]
    devices: dict[str, list[str]]
    batches: list[tuple[str, list[dict]]]


def make_stream(seed: int, now: datetime, *, users: int = 7, days: int = 12) -> Stream:
    rng = random.Random(seed)
    ids = [f"p{i:02d}" for i in range(users)]
    devices = {u: [f"dev-{u}"] + ([f"dev-{u}-b"] if rng.random() < 0.3 else []) for u in ids}
    pending: list[tuple[str, dict]] = []
    n = 0

    def event(agent: str, body: dict) -> None:
        nonlocal n
        n += 1
        pending.append((agent, {"eventId": f"e{seed}-{n:05d}", **body}))

    for u in ids:
        favourite = rng.sample(TOOLS, k=rng.randint(1, 3))
        heavy = rng.random() < 0.35
        for k in range(rng.randint(0, 14 if heavy else 5)):
            sid = f"s-{u}-{k}"
            agent = rng.choice(devices[u])
            if rng.random() < 0.2:  # around a midnight (UTC or local): crosses it
                day = now - timedelta(days=rng.randint(0, days))
                start = day.replace(hour=rng.choice([22, 23, 6, 7]), minute=rng.randint(0, 59))
            else:
                start = now - timedelta(seconds=rng.uniform(0, days * 86400))
            length = timedelta(seconds=rng.uniform(120, 3 * 3600))
            start = min(start, now - timedelta(minutes=1))
            mode = rng.random()
            open_live = mode < 0.1
            if open_live:
                start = now - timedelta(seconds=rng.uniform(60, 3600))
            end = start + length
            ended = not open_live and mode < 0.9 and end <= now
            if not ended and not open_live and end > now:
                end = now
            event(
                agent,
                {
                    "type": "SessionStarted",
                    "occurredAt": iso(start),
                    "userId": u,
                    "sessionId": sid,
                    "startTime": iso(start),
                    "tool": favourite[0],
                },
            )
            horizon = (end if ended else min(end, now)) - start
            for _ in range(rng.randint(0, 6 if heavy else 3)):
                at = start + horizon * rng.uniform(0.05, 1.15 if ended else 1.0)
                at = min(at, now)
                event(
                    agent,
                    {
                        "type": "AIDetected",
                        "occurredAt": iso(at),
                        "userId": u,
                        "sessionId": sid,
                        "tool": rng.choice(favourite),
                        "duration": round(rng.uniform(5, 2400 if heavy else 900), 3),
                    },
                )
            if ended:
                event(
                    agent,
                    {
                        "type": "SessionEnded",
                        "occurredAt": iso(end),
                        "userId": u,
                        "sessionId": sid,
                        "endTime": iso(end),
                        "duration": (end - start).total_seconds(),
                        "aiUsageTime": 0,
                    },
                )
        for j in range(rng.randint(0, 2)):  # standalone, or naming a session never reported
            at = now - timedelta(seconds=rng.uniform(0, days * 86400))
            body = {
                "type": "AIDetected",
                "occurredAt": iso(at),
                "userId": u,
                "tool": rng.choice(TOOLS),
                "duration": round(rng.uniform(5, 1200), 3),
            }
            if rng.random() < 0.5:
                body["sessionId"] = f"ghost-{u}-{j}"
            event(devices[u][0], body)

    rng.shuffle(pending)
    pending += rng.sample(pending, k=len(pending) // 12)  # repeats, applied once
    batches: list[tuple[str, list[dict]]] = []
    open_batch: dict[str, list[dict]] = {}
    for agent, body in pending:
        batch = open_batch.setdefault(agent, [])
        batch.append(body)
        if len(batch) >= rng.randint(1, 9):
            batches.append((agent, open_batch.pop(agent)))
    batches += list(open_batch.items())
    return Stream(ids, devices, batches)
