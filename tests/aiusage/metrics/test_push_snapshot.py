"""DashboardService.push_snapshot: fresh core KPIs every push, breakdowns reused for a while
(docs/metrics.md §7 "Push cadence"), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from aiusage.domain.events import parse_batch
from aiusage.errors import NotFound
from aiusage.metrics.service import BREAKDOWN_INTERVAL, DashboardService
from aiusage.store.ingest import Ingestor
from aiusage.store.repositories import OrganizationRepository

START = datetime(2026, 3, 10, 14, 0, 0, tzinfo=UTC)
ORG = "acme"


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def session(user: str, sid: str, start: datetime, minutes: int) -> list[dict]:
    """A closed session of ``minutes`` with one detection covering its second half."""
    end = start + timedelta(minutes=minutes)
    return [
        {
            "eventId": f"{sid}-s",
            "type": "SessionStarted",
            "occurredAt": _iso(start),
            "userId": user,
            "sessionId": sid,
            "startTime": _iso(start),
            "tool": "Claude",
        },
        {
            "eventId": f"{sid}-d",
            "type": "AIDetected",
            "occurredAt": _iso(end),
            "userId": user,
            "sessionId": sid,
            "tool": "Claude",
            "duration": minutes * 30,
        },
        {
            "eventId": f"{sid}-e",
            "type": "SessionEnded",
            "occurredAt": _iso(end),
            "userId": user,
            "sessionId": sid,
            "endTime": _iso(end),
            "duration": minutes * 60,
            "aiUsageTime": minutes * 30,
        },
    ]


class Clock:
    """A settable clock (aware UTC)."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def ingest(db, events: list[dict], now: datetime) -> None:
    batch = parse_batch({"events": events}, max_events=1000, now=now)
    await Ingestor(db).ingest(ORG, "dev-1", batch, now=now)


def people_of(snap: dict) -> dict[str, float]:
    return {p["userId"]: p["aiSeconds"] for p in snap["metrics"]["people"]}


async def test_push_reuses_breakdowns_within_the_interval_and_core_stays_fresh(db):
    async with db.write() as conn:
        await OrganizationRepository().create(conn, ORG, "Acme", now=START)
    clock = Clock(START + timedelta(minutes=30))
    service = DashboardService(db, clock=clock)
    await ingest(db, session("ann", "s1", START, 10), clock.now)

    first = await service.push_snapshot(ORG)
    assert first == await service.snapshot(ORG)
    assert people_of(first) == {"ann": 300.0}

    # A new person within the interval: core KPIs move, the pushed breakdowns do not.
    clock.now += BREAKDOWN_INTERVAL / 2
    await ingest(db, session("bob", "s2", START + timedelta(minutes=5), 10), clock.now)
    second = await service.push_snapshot(ORG)
    fresh = await service.snapshot(ORG)
    assert second["metrics"]["detectionsToday"] == 2
    assert second["trends"] == fresh["trends"]
    assert people_of(second) == {"ann": 300.0}
    assert people_of(fresh) == {"ann": 300.0, "bob": 300.0}
    # usageByUser is core: both people, with engagement from the reused people list.
    assert [u["userId"] for u in second["metrics"]["usageByUser"]] == ["ann", "bob"]
    assert all(u["engaged"] is False for u in second["metrics"]["usageByUser"])

    # Once the interval has passed the push carries fresh breakdowns again.
    clock.now = START + timedelta(minutes=30) + BREAKDOWN_INTERVAL
    third = await service.push_snapshot(ORG)
    assert third == await service.snapshot(ORG)
    assert people_of(third) == {"ann": 300.0, "bob": 300.0}


async def test_push_of_an_unknown_organization_raises_not_found(db):
    with pytest.raises(NotFound):
        await DashboardService(db, clock=lambda: START).push_snapshot("nobody")
