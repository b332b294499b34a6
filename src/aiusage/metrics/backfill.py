"""Builds the union-time rollups from the raw tables, person by person (an upgrade of a store
that has history from before them, docs/metrics.md "Rollups").

It feeds every raw session and detection of one person to a :class:`RollupBatch` in backfill
mode (the older counters are left alone), so the result is the one ingestion would have
written. Memory is bounded by one person's history.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, union
from sqlalchemy.engine import Connection

from aiusage.metrics.cover import ai_detections
from aiusage.metrics.rollup import DetectionFacts, RollupBatch, SessionFacts
from aiusage.store.repositories import ai_sessions, in_list


def backfill(conn: Connection) -> int:
    """Write the union-time rollups of every person of every organization; return the number
    of people. Run once, on empty union-time tables (inside the upgrade's transaction)."""
    s, d = ai_sessions.c, ai_detections.c
    people = conn.execute(
        union(select(s.org_id, s.user_id), select(d.org_id, d.user_id)).order_by(
            "org_id", "user_id"
        )
    ).all()
    for org, user in people:
        _person(conn, org, user)
    return len(people)


def _facts(org: str, r: Any) -> SessionFacts:
    return SessionFacts(
        org_id=org,
        session_id=r.id,
        user_id=r.user_id,
        start_time=r.start_time,
        end_time=r.end_time,
        duration_s=r.duration_s,
        ai_usage_s=r.ai_usage_s,
        tool=r.tool,
        device_id=r.device_id,
    )


def _person(conn: Connection, org: str, user: str) -> None:
    s, d = ai_sessions.c, ai_detections.c
    cols = (
        s.id,
        s.user_id,
        s.device_id,
        s.tool,
        s.start_time,
        s.end_time,
        s.duration_s,
        s.ai_usage_s,
    )
    sessions = {
        r.id: _facts(org, r)
        for r in conn.execute(select(*cols).where(s.org_id == org, s.user_id == user))
    }
    detections = conn.execute(
        select(d.id, d.session_id, d.tool, d.device_id, d.duration_s, d.detected_at).where(
            d.org_id == org, d.user_id == user
        )
    ).all()
    named = sorted({r.session_id for r in detections if r.session_id} - set(sessions))
    if named:
        stmt = select(*cols).where(s.org_id == org, in_list(conn.dialect.name, s.id, "ids"))
        for r in conn.execute(stmt, {"ids": named}):
            sessions[r.id] = _facts(org, r)
    batch = RollupBatch(backfill=True)
    for facts in sessions.values():
        if facts.user_id == user:
            batch.session_changed(None, facts)
    for row in detections:
        batch.detection_added(
            DetectionFacts(
                org_id=org,
                user_id=user,
                session_id=row.session_id,
                tool=row.tool,
                duration_s=float(row.duration_s),
                detected_at=row.detected_at,
                detection_id=row.id,
                device_id=row.device_id,
                session=sessions.get(row.session_id) if row.session_id else None,
            )
        )
    batch.flush(conn)


__all__ = ["backfill"]
