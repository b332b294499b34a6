"""Property test of the time model: random event streams (overlaps, out-of-order batches,
duplicates, late detections, sessions across midnight, open and stale sessions, time zones)
go through the real ingestion path; every KPI of the snapshot equals the independent oracle
(``oracle.py``), and the invariants of docs/metrics.md hold. Seeded, bounded, both databases."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from aiusage.domain.events import parse_batch
from aiusage.metrics.tables import person_hour, tool_hour
from aiusage.store.ingest import Ingestor
from aiusage.store.repositories import OrganizationRepository, UserRepository

from .oracle import check, iso

ZONES = [None, "America/New_York", "Europe/Berlin", "Asia/Tokyo", "America/Los_Angeles"]
TOOLS = ["ChatGPT", "Claude", "Copilot", "DeepSeek"]
APPROVED = ["chatgpt", "Copilot"]


def random_stream(rng: random.Random, now: datetime) -> list[dict]:
    """Events of 1-4 people; session and detection times are whole seconds."""
    events: list[dict] = []
    counter = 0

    def eid() -> str:
        nonlocal counter
        counter += 1
        return f"e{counter}"

    span = rng.choice([3 * 3600, 26 * 3600, 4 * 86400])
    for u in range(rng.randint(1, 4)):
        user = f"u{u}"
        for k in range(rng.randint(0, 4)):
            sid = f"{user}-s{k}"
            start = now - timedelta(seconds=rng.randint(-600, span))
            duration = rng.randint(0, 4 * 3600)
            kind = rng.choice(["ended", "ended", "open", "end_only"])
            tool = rng.choice(TOOLS)
            if kind != "end_only":
                events.append(
                    {
                        "eventId": eid(),
                        "type": "SessionStarted",
                        "occurredAt": iso(start),
                        "userId": user,
                        "sessionId": sid,
                        "startTime": iso(start),
                        "tool": tool,
                    }
                )
            if kind != "open":
                end = start + timedelta(seconds=duration)
                # An agent's reported duration may disagree with its start: when the end
                # arrives first, the start it implies is corrected by the SessionStarted.
                reported = max(0, duration + rng.choice([0, 0, rng.randint(-900, 900)]))
                events.append(
                    {
                        "eventId": eid(),
                        "type": "SessionEnded",
                        "occurredAt": iso(end),
                        "userId": user,
                        "sessionId": sid,
                        "endTime": iso(end),
                        "duration": reported,
                        "aiUsageTime": rng.randint(0, reported),
                    }
                )
            for _ in range(rng.randint(0, 4)):
                at = start + timedelta(seconds=rng.randint(-1800, duration + 1800))
                if at > now + timedelta(minutes=30):
                    continue
                events.append(
                    {
                        "eventId": eid(),
                        "type": "AIDetected",
                        "occurredAt": iso(at),
                        "userId": user,
                        "sessionId": sid,
                        "tool": rng.choice([tool, *TOOLS]),
                        "duration": rng.choice([0, rng.randint(1, 900), rng.randint(1, 7200)]),
                    }
                )
        for _ in range(rng.randint(0, 3)):
            at = now - timedelta(seconds=rng.randint(-300, span))
            det = {
                "eventId": eid(),
                "type": "AIDetected",
                "occurredAt": iso(at),
                "userId": user,
                "tool": rng.choice(TOOLS),
                "duration": rng.randint(0, 5400),
            }
            if rng.random() < 0.3:
                det["sessionId"] = f"{user}-ghost"  # a session that never arrives
            events.append(det)
    return events


def batches(rng: random.Random, events: list[dict]) -> list[list[dict]]:
    """Shuffled (out of order), with duplicates, cut into 1-5 batches."""
    if not events:
        return []
    sent = events + [rng.choice(events) for _ in range(len(events) // 4)]
    rng.shuffle(sent)
    cuts = sorted(rng.sample(range(1, len(sent)), min(len(sent) - 1, rng.randint(0, 4))))
    return [sent[a:b] for a, b in zip([0, *cuts], [*cuts, len(sent)], strict=True) if sent[a:b]]


async def check_invariants(db, org: str) -> None:
    """Per person and UTC hour: AI ≤ session ≤ 3600 s; per (person, tool): tool ≤ session."""
    async with db.read() as conn:
        people = {
            (r.hour, r.user_id): (r.ai_s, r.session_s)
            for r in await conn.execute(select(person_hour).where(person_hour.c.org_id == org))
        }
        tools = (await conn.execute(select(tool_hour).where(tool_hour.c.org_id == org))).all()
    for key, (ai, session) in people.items():
        assert -1e-6 <= ai <= session + 1e-6 <= 3600 + 2e-6, key
    for r in tools:
        assert r.ai_s <= people.get((r.hour, r.user_id), (0.0, 0.0))[1] + 1e-6, r


async def run_examples(db, seed: int, examples: int) -> None:
    rng = random.Random(seed)
    for n in range(examples):
        org = f"org{seed}-{n}"
        now = datetime(2026, 3, 8, 0, 0, tzinfo=UTC) + timedelta(seconds=rng.randint(0, 3 * 86400))
        async with db.write() as conn:
            await OrganizationRepository().create(
                conn, org, org, approved_tools=APPROVED, now=now - timedelta(days=100)
            )
            await UserRepository().create(
                conn, org, email=f"m@{org}.test", role="Manager", user_id="u0", now=now
            )
        ingestor = Ingestor(db)
        for batch in batches(rng, random_stream(rng, now)):
            events = parse_batch({"events": batch}, max_events=1000, now=now)
            await ingestor.ingest(org, rng.choice(["dev-a", "dev-b"]), events, now=now)
        await check_invariants(db, org)
        tz = rng.choice(ZONES)
        for later in (timedelta(0), timedelta(minutes=rng.randint(1, 200))):
            await check(db, org, now + later, tz, rng.choice(["7d", "30d", "90d"]), APPROVED)


async def test_every_kpi_equals_the_oracle_on_random_streams(db):
    await run_examples(db, seed=15, examples=30)
