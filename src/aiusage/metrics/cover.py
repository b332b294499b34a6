"""Incremental unions: keeps ``metrics_cover`` equal to the union of each person's intervals
and turns every change of it into per-hour seconds for the hour tables.

Two operations, collected during a batch and applied at :meth:`CoverWork.apply`:

* :meth:`CoverWork.add`: an interval that is now covered (a new detection, a session that
  grew). Only the cover rows it overlaps are read and merged; adding is idempotent.
* :meth:`CoverWork.recompute`: a range of one person's time that may have *lost* coverage (a
  session start moved, a session arrived after detections counted standalone, ...). The cover
  rows inside the range are replaced by the union recomputed from the raw rows overlapping it
  (bounded: a detection lasts at most :data:`MAX_DETECTION_S`).

The difference between the rows before and after, split by UTC hour, is the delta of each hour
table (docs/metrics.md "Rollups"): the hour tables hold exactly the measure of the cover.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, select
from sqlalchemy.engine import Connection

from aiusage.metrics.intervals import Interval, clip, epoch, instant, split_by_hour, union
from aiusage.metrics.tables import cover
from aiusage.store.repositories import ai_sessions, in_list
from aiusage.store.tables import ai_detections as ai_detections

MAX_DETECTION_S = 24 * 3600.0
"""Longest detection interval (seconds); longer durations are capped."""
AI, SESSION = "a", "s"
"""Cover dimensions of a person's AI time and session time."""

INFINITY = float("inf")


def tool_dim(tool: str) -> str:
    """Cover dimension of the time with ``tool``."""
    return f"t:{tool}"


def device_dim(device: str) -> str:
    """Cover dimension of the AI time reported by ``device``."""
    return f"d:{device}"


def detection_interval(detected_at: datetime, duration_s: float) -> Interval:
    """``[detected_at - duration, detected_at]``, the duration capped and never negative."""
    end = epoch(detected_at)
    return (end - min(max(duration_s, 0.0), MAX_DETECTION_S), end)


@dataclass(frozen=True, slots=True)
class RawSession:
    """The time-model columns of one ``ai_sessions`` row (epoch seconds)."""

    user_id: str
    start: float
    end: float | None


@dataclass(frozen=True, slots=True)
class RawDetection:
    """The time-model columns of one ``ai_detections`` row."""

    user_id: str
    session_id: str | None
    tool: str
    device_id: str | None
    interval: Interval


def person_intervals(
    user_id: str,
    detections: Iterable[RawDetection],
    sessions: Mapping[str, RawSession],
    last_activity: Mapping[str, float],
) -> dict[str, list[Interval]]:
    """The intervals of every dimension of ``user_id`` (docs/metrics.md "Time model").

    Args:
        detections: Detections (of any user; only ``user_id``'s count).
        sessions: Every known session the detections name, plus ``user_id``'s sessions.
        last_activity: Last activity ``L`` of open sessions (an open session is
            ``[start, L]``; missing: ``start``).
    """
    dims: dict[str, list[Interval]] = defaultdict(list)
    for sid, s in sessions.items():
        if s.user_id == user_id:
            end = s.end if s.end is not None else max(s.start, last_activity.get(sid, s.start))
            dims[SESSION].append((s.start, end))
    for d in detections:
        if d.user_id != user_id:
            continue
        session = sessions.get(d.session_id) if d.session_id is not None else None
        if session is None:
            part: Interval | None = d.interval
            dims[SESSION].append(d.interval)
        else:
            part = clip(d.interval, (session.start, session.end or INFINITY))
        if part is not None:
            for dim in (AI, tool_dim(d.tool), device_dim(d.device_id or "")):
                dims[dim].append(part)
    return dims


@dataclass(slots=True)
class CoverWork:
    """Cover operations of one organization's batch."""

    org_id: str
    _adds: list[tuple[str, str, Interval]] = field(default_factory=list)
    _ranges: dict[str, list[Interval]] = field(default_factory=lambda: defaultdict(list))

    def add(self, user_id: str, dim: str, interval: Interval) -> None:
        """``interval`` is covered in ``user_id``'s ``dim`` (idempotent)."""
        if interval[1] > interval[0]:
            self._adds.append((user_id, dim, interval))

    def recompute(self, user_id: str, interval: Interval) -> None:
        """Recompute every dimension of ``user_id`` inside ``interval`` from the raw rows."""
        if interval[1] > interval[0]:
            self._ranges[user_id].append(interval)

    @property
    def empty(self) -> bool:
        """True when there is nothing to apply."""
        return not (self._adds or self._ranges)

    def apply(self, conn: Connection) -> dict[tuple[str, str], dict[float, float]]:
        """Update ``metrics_cover``; return the seconds gained (or lost) per (user, dim) and
        UTC hour (epoch second of the hour)."""
        spans = [iv for _, _, iv in self._adds]
        spans += [iv for ivs in self._ranges.values() for iv in ivs]
        if not spans:
            return {}
        users = sorted({u for u, _, _ in self._adds} | set(self._ranges))
        lo = min(a for a, _ in spans)
        hi = max(b for _, b in spans)
        rows = _load_cover(conn, self.org_id, users, lo, hi)
        before = {key: set(value) for key, value in rows.items()}
        for user, ranges in sorted(self._ranges.items()):
            for a, b in union(ranges):
                fresh = _raw_dims(conn, self.org_id, user, a, b)
                keys = {k for k in rows if k[0] == user} | {(user, d) for d in fresh}
                for key in keys:
                    rows[key] = _replace(rows.get(key, []), (a, b), fresh.get(key[1], []))
        for user, dim, interval in self._adds:
            key = (user, dim)
            rows[key] = _merge(rows.get(key, []), interval)
        deltas: dict[tuple[str, str], dict[float, float]] = {}
        gone: list[dict[str, Any]] = []
        new: list[dict[str, Any]] = []
        for key in sorted(rows):
            old, now = before.get(key, set()), set(rows[key])
            removed, inserted = sorted(old - now), sorted(now - old)
            if not removed and not inserted:
                continue
            delta = split_by_hour(inserted)
            for hour, seconds in split_by_hour(removed).items():
                delta[hour] = delta.get(hour, 0.0) - seconds
            deltas[key] = delta
            base = {"org_id": self.org_id, "user_id": key[0], "dim": key[1]}
            gone += [{**base, "start": s} for s, _ in removed]
            new += [{**base, "start_s": s, "end_s": e} for s, e in inserted]
        if gone:
            conn.execute(_DELETE, gone)
        if new:
            conn.execute(insert(cover), new)
        return deltas


_DELETE = delete(cover).where(
    cover.c.org_id == bindparam("org_id"),
    cover.c.user_id == bindparam("user_id"),
    cover.c.dim == bindparam("dim"),
    cover.c.start_s == bindparam("start"),
)


def _load_cover(
    conn: Connection, org_id: str, users: list[str], lo: float, hi: float
) -> dict[tuple[str, str], list[Interval]]:
    c = cover.c
    found: dict[tuple[str, str], list[Interval]] = defaultdict(list)
    stmt = select(c.user_id, c.dim, c.start_s, c.end_s).where(
        c.org_id == bindparam("org"),
        in_list(conn.dialect.name, c.user_id, "users"),
        c.end_s >= bindparam("lo"),
        c.start_s <= bindparam("hi"),
    )
    for user, dim, start, end in conn.execute(
        stmt, {"org": org_id, "users": users, "lo": lo, "hi": hi}
    ):
        found[(user, dim)].append((float(start), float(end)))
    for value in found.values():
        value.sort()
    return found


def _merge(rows: list[Interval], interval: Interval) -> list[Interval]:
    """``rows`` with ``interval`` added: the rows it overlaps or touches become one."""
    start, end = interval
    kept: list[Interval] = []
    for row in rows:
        if row[1] >= start and row[0] <= end:
            start, end = min(start, row[0]), max(end, row[1])
        else:
            kept.append(row)
    kept.append((start, end))
    kept.sort()
    return kept


def _replace(rows: list[Interval], span: Interval, fresh: list[Interval]) -> list[Interval]:
    """``rows`` outside ``span`` (rows crossing its edges are cut there), plus the union of
    ``fresh`` inside it."""
    a, b = span
    kept: list[Interval] = []
    for start, end in rows:
        if end <= a or start >= b:
            kept.append((start, end))
            continue
        if start < a:
            kept.append((start, a))
        if end > b:
            kept.append((b, end))
    kept += [part for iv in union(fresh) if (part := clip(iv, span)) is not None]
    kept.sort()
    return kept


def _raw_dims(
    conn: Connection, org_id: str, user_id: str, a: float, b: float
) -> dict[str, list[Interval]]:
    """Every interval of ``user_id`` that may overlap ``[a, b]``, per dimension, read from the
    raw tables (detections ending in ``[a, b + MAX_DETECTION_S]``, sessions overlapping)."""
    dialect = conn.dialect.name
    d, s = ai_detections.c, ai_sessions.c
    detections = [
        RawDetection(
            r.user_id,
            r.session_id,
            r.tool,
            r.device_id,
            detection_interval(r.detected_at, float(r.duration_s)),
        )
        for r in conn.execute(
            select(d.user_id, d.session_id, d.tool, d.device_id, d.duration_s, d.detected_at).where(
                d.org_id == org_id,
                d.user_id == user_id,
                d.detected_at >= instant(a),
                d.detected_at <= instant(b + MAX_DETECTION_S),
            )
        )
    ]
    sessions: dict[str, RawSession] = {}
    session_cols = (s.id, s.user_id, s.start_time, s.end_time)

    def keep(rows: Iterable[Any]) -> None:
        for r in rows:
            end = epoch(r.end_time) if r.end_time is not None else None
            sessions[r.id] = RawSession(r.user_id, epoch(r.start_time), end)

    # Two range reads on (org_id, user_id, end_time): open sessions, then those ending after
    # ``a`` (an OR of both, or a bound on start_time, would make SQLite walk every earlier
    # session of the person). Sessions outside ``[a, b]`` are cut off by the caller.
    for ends in (s.end_time.is_(None), s.end_time >= instant(a)):
        keep(
            conn.execute(
                select(*session_cols).where(s.org_id == org_id, s.user_id == user_id, ends)
            )
        )
    named = sorted({x.session_id for x in detections if x.session_id} - set(sessions))
    if named:
        keep(
            conn.execute(
                select(*session_cols).where(
                    s.org_id == bindparam("org"), in_list(dialect, s.id, "ids")
                ),
                {"org": org_id, "ids": named},
            )
        )
    return person_intervals(
        user_id,
        detections,
        sessions,
        last_detections(conn, org_id, [sid for sid, x in sessions.items() if x.end is None]),
    )


def last_detections(conn: Connection, org_id: str, session_ids: list[str]) -> dict[str, float]:
    """The latest ``detected_at`` (epoch seconds) of each of ``session_ids`` that has one."""
    if not session_ids:
        return {}
    d = ai_detections.c
    rows = conn.execute(
        select(d.session_id, func.max(d.detected_at))
        .where(d.org_id == bindparam("org"), in_list(conn.dialect.name, d.session_id, "ids"))
        .group_by(d.session_id),
        {"org": org_id, "ids": sorted(session_ids)},
    )
    # MAX() keeps the column type, so values come back as aware datetimes.
    return {sid: epoch(moment) for sid, moment in rows if moment is not None}


__all__ = [
    "AI",
    "MAX_DETECTION_S",
    "SESSION",
    "CoverWork",
    "RawDetection",
    "RawSession",
    "detection_interval",
    "device_dim",
    "last_detections",
    "person_intervals",
    "tool_dim",
]
