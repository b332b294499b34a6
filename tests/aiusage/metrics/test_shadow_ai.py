"""Shadow AI (docs/metrics.md §11): unapproved tools, people per tool, first/last seen over all
history and tools first seen this week, worked out by hand on a small stream."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from aiusage.domain.events import parse_batch
from aiusage.metrics.breakdowns import compute_breakdowns
from aiusage.metrics.windows import Windows, parse_timezone
from aiusage.store.ingest import Ingestor
from aiusage.store.repositories import OrganizationRepository

NOW = datetime(2026, 3, 10, 14, 25, tzinfo=UTC)


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def detection(n: int, user: str, tool: str, at: datetime, seconds: float) -> dict:
    return {
        "eventId": f"d{n}",
        "type": "AIDetected",
        "occurredAt": iso(at),
        "userId": user,
        "tool": tool,
        "duration": seconds,
    }


async def ingest(db, events: list[dict]) -> None:
    await Ingestor(db).ingest(
        "acme", "dev-1", parse_batch({"events": events}, max_events=1000, now=NOW), now=NOW
    )


@pytest.fixture
async def acme(db):
    async with db.write() as conn:
        await OrganizationRepository().create(
            conn, "acme", "Acme", approved_tools=[" chatgpt "], now=NOW - timedelta(days=200)
        )
    return db


async def shadow(db, tz: str = "UTC", days: int = 30) -> dict:
    async with db.read() as conn:
        got = await compute_breakdowns(
            conn, "acme", Windows.at(NOW, parse_timezone(tz)), NOW, period_days=days
        )
    return got["shadowAi"]


async def test_unapproved_tools_with_people_first_and_last_seen(acme):
    old = NOW - timedelta(days=60)
    await ingest(
        acme,
        [
            detection(1, "ann", "Claude", old, 100),  # first seen long before the period
            detection(2, "ann", "Claude", NOW - timedelta(days=3), 300),
            detection(3, "bob", "Claude", NOW - timedelta(days=2), 200),
            detection(4, "bob", "Claude", NOW - timedelta(days=2, seconds=100), 200),
            detection(5, "cid", "Gemini", old - timedelta(days=1), 50),  # only before the period
            detection(6, "ann", "DeepSeek", NOW - timedelta(hours=5), 60),  # new this week
            detection(7, "bob", "ChatGPT", NOW - timedelta(hours=1), 60),  # approved (case)
        ],
    )
    got = await shadow(acme)
    tools = {t["tool"]: t for t in got["tools"]}
    assert set(tools) == {"Claude", "Gemini", "DeepSeek"}
    claude = tools["Claude"]
    assert (claude["people"], claude["peopleAllTime"], claude["detections"]) == (2, 2, 3)
    # bob's two detections overlap by 100 s: time with the tool is their union (300 s).
    assert claude["aiSeconds"] == pytest.approx(300 + 300)
    assert claude["firstSeen"] == iso(old) and claude["lastSeen"] == iso(NOW - timedelta(days=2))
    assert claude["newThisWeek"] is False
    gemini = tools["Gemini"]
    assert (gemini["people"], gemini["peopleAllTime"], gemini["detections"]) == (0, 1, 0)
    assert gemini["aiSeconds"] == 0 and gemini["lastSeen"] == iso(old - timedelta(days=1))
    assert tools["DeepSeek"]["newThisWeek"] is True
    assert got["newThisWeek"] == ["DeepSeek"]
    assert [t["tool"] for t in got["tools"]] == ["Claude", "DeepSeek", "Gemini"]


async def test_new_this_week_follows_the_viewer_days(acme):
    # Six and a half days ago: in the 7-day window in UTC (from 2026-03-04 00:00 UTC), but in
    # Los Angeles the window starts at 2026-03-04 08:00 UTC, after it.
    first = datetime(2026, 3, 4, 2, tzinfo=UTC)
    await ingest(acme, [detection(1, "ann", "Poe", first, 30)])
    assert (await shadow(acme, "UTC"))["newThisWeek"] == ["Poe"]
    assert (await shadow(acme, "America/Los_Angeles"))["newThisWeek"] == []


async def test_approving_a_tool_takes_it_off_the_list(acme):
    await ingest(acme, [detection(1, "ann", "Claude", NOW - timedelta(hours=2), 30)])
    assert [t["tool"] for t in (await shadow(acme))["tools"]] == ["Claude"]
    async with acme.write() as conn:
        await OrganizationRepository().set_approved_tools(conn, "acme", ["ChatGPT", "CLAUDE"])
    assert await shadow(acme) == {"tools": [], "newThisWeek": []}
