"""Rows of an export, streamed from the store in keyset-paginated chunks.

Nothing loads the whole range: each chunk is one indexed query (``ix_ai_sessions_org_start``,
``ix_ai_detections_org_detected``) resuming after the last ``(time, id)`` seen, so memory stays
at one chunk whatever the size of the export, and no long-lived cursor or transaction is held
against the database (short read transactions interleave with ingestion on SQLite).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import and_, or_, select

from aiusage.store.database import Database
from aiusage.store.tables import ai_detections as _detections
from aiusage.store.tables import ai_sessions as _sessions

COLUMNS: Final = (
    "type",
    "id",
    "userId",
    "sessionId",
    "tool",
    "deviceId",
    "startTime",
    "endTime",
    "durationSeconds",
    "aiUsageSeconds",
)
"""Export columns. ``type`` is ``session`` (time = start; a session is in the export when it
started in the range) or ``detection`` (startTime = detection time)."""

CHUNK_ROWS: Final = 1000


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


async def export_rows(
    db: Database,
    org_id: str,
    start: datetime,
    end: datetime,
    *,
    chunk: int = CHUNK_ROWS,
) -> AsyncIterator[list[dict[str, Any]]]:
    """Yield the export's rows in chunks: sessions by start time, then detections by time."""
    s = _sessions.c
    last: tuple[datetime, str] | None = None
    while True:
        cond = [s.org_id == org_id, s.start_time >= start, s.start_time < end]
        if last is not None:
            cond.append(or_(s.start_time > last[0], and_(s.start_time == last[0], s.id > last[1])))
        async with db.read() as conn:
            rows = (
                await conn.execute(
                    select(_sessions).where(*cond).order_by(s.start_time, s.id).limit(chunk)
                )
            ).all()
        if not rows:
            break
        yield [
            {
                "type": "session",
                "id": r.id,
                "userId": r.user_id,
                "sessionId": r.id,
                "tool": r.tool,
                "deviceId": r.device_id,
                "startTime": _iso(r.start_time),
                "endTime": _iso(r.end_time),
                "durationSeconds": r.duration_s,
                "aiUsageSeconds": r.ai_usage_s,
            }
            for r in rows
        ]
        last = (rows[-1].start_time, rows[-1].id)
        if len(rows) < chunk:
            break
    d = _detections.c
    last = None
    while True:
        cond = [d.org_id == org_id, d.detected_at >= start, d.detected_at < end]
        if last is not None:
            cond.append(
                or_(d.detected_at > last[0], and_(d.detected_at == last[0], d.id > last[1]))
            )
        async with db.read() as conn:
            rows = (
                await conn.execute(
                    select(_detections).where(*cond).order_by(d.detected_at, d.id).limit(chunk)
                )
            ).all()
        if not rows:
            break
        yield [
            {
                "type": "detection",
                "id": r.id,
                "userId": r.user_id,
                "sessionId": r.session_id,
                "tool": r.tool,
                "deviceId": r.device_id,
                "startTime": _iso(r.detected_at),
                "endTime": None,
                "durationSeconds": r.duration_s,
                "aiUsageSeconds": None,
            }
            for r in rows
        ]
        last = (rows[-1].detected_at, rows[-1].id)
        if len(rows) < chunk:
            break


def _cell(value: Any) -> Any:
    # Empty for null; JSON spelling for booleans, so CSV and JSONL read the same.
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def encode_header(fmt: str, columns: Sequence[str] = COLUMNS) -> str:
    """What a file of format ``fmt`` starts with (the CSV header line; nothing for JSONL)."""
    if fmt == "csv":
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerow(columns)
        return buf.getvalue()
    return ""


def encode_rows(fmt: str, rows: list[dict[str, Any]], columns: Sequence[str] = COLUMNS) -> str:
    """``rows`` as CSV lines of ``columns`` (empty cell for null) or JSON lines."""
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        for row in rows:
            writer.writerow([_cell(row[c]) for c in columns])
        return buf.getvalue()
    return "".join(json.dumps(row, separators=(",", ":")) + "\n" for row in rows)


__all__ = ["CHUNK_ROWS", "COLUMNS", "encode_header", "encode_rows", "export_rows"]
