"""Export rows are streamed in keyset chunks, scoped to one organization and the range."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from aiusage.domain.events import parse_batch
from aiusage.exports.writer import COLUMNS, encode_header, encode_rows, export_rows
from aiusage.store.database import Database
from aiusage.store.ingest import Ingestor
from aiusage.store.repositories import OrganizationRepository

NOW = datetime(2026, 3, 10, 14, 25, tzinfo=UTC)


def iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


@pytest.fixture
async def db(tmp_path):
    store = Database(f"sqlite+aiosqlite:///{tmp_path}/s.db")
    await store.migrate()
    async with store.write() as conn:
        for org in ("acme", "globex"):
            await OrganizationRepository().create(conn, org, org, now=NOW)
    try:
        yield store
    finally:
        await store.dispose()


async def test_rows_come_in_chunks_in_time_order_without_gaps_or_repeats(db):
    same_time = NOW - timedelta(hours=2)  # ties on the time column exercise the id tiebreak
    events = [
        {
            "eventId": f"e{i}",
            "type": "SessionStarted",
            "occurredAt": iso(same_time if i % 2 else NOW - timedelta(minutes=i)),
            "userId": "u",
            "sessionId": f"s{i:02d}",
            "startTime": iso(same_time if i % 2 else NOW - timedelta(minutes=i)),
        }
        for i in range(23)
    ] + [
        {
            "eventId": f"d{i}",
            "type": "AIDetected",
            "occurredAt": iso(NOW - timedelta(minutes=i)),
            "userId": "u",
            "tool": "ChatGPT",
            "duration": 1,
        }
        for i in range(5)
    ]
    await Ingestor(db).ingest(
        "acme", "dev", parse_batch({"events": events}, max_events=1000, now=NOW), now=NOW
    )
    await Ingestor(db).ingest(
        "globex", "dev", parse_batch({"events": events[:3]}, max_events=1000, now=NOW), now=NOW
    )
    chunks = [
        c
        async for c in export_rows(
            db, "acme", NOW - timedelta(days=1), NOW + timedelta(hours=1), chunk=4
        )
    ]
    assert max(len(c) for c in chunks) == 4 and len(chunks) >= 7
    rows = [r for c in chunks for r in c]
    sessions = [r for r in rows if r["type"] == "session"]
    assert sorted(r["id"] for r in sessions) == sorted(f"s{i:02d}" for i in range(23))
    assert len({r["id"] for r in sessions}) == 23
    assert [r["startTime"] for r in sessions] == sorted(r["startTime"] for r in sessions)
    assert len([r for r in rows if r["type"] == "detection"]) == 5


async def test_range_is_half_open(db):
    start = NOW - timedelta(hours=1)
    events = [
        {
            "eventId": "a",
            "type": "SessionStarted",
            "occurredAt": iso(start),
            "userId": "u",
            "sessionId": "at-start",
            "startTime": iso(start),
        },
        {
            "eventId": "b",
            "type": "SessionStarted",
            "occurredAt": iso(NOW),
            "userId": "u",
            "sessionId": "at-end",
            "startTime": iso(NOW),
        },
    ]
    await Ingestor(db).ingest(
        "acme", "dev", parse_batch({"events": events}, max_events=1000, now=NOW), now=NOW
    )
    rows = [r async for c in export_rows(db, "acme", start, NOW) for r in c]
    assert [r["id"] for r in rows] == ["at-start"]


def test_csv_and_jsonl_encodings():
    row = {c: None for c in COLUMNS} | {"type": "session", "id": "s,1", "durationSeconds": 1.5}
    assert encode_header("csv").strip().split(",") == list(COLUMNS)
    assert encode_rows("csv", [row]).startswith('session,"s,1",')
    assert encode_header("jsonl") == ""
    assert encode_rows("jsonl", [row]).count("\n") == 1
