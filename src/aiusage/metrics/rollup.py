"""Incremental rollups, applied inside the ingestion transaction.

Ingestion reports every change it makes to the raw tables as *facts*: a session row before and
after the change, or a new detection row. :class:`RollupBatch` turns each fact into deltas of
the rollup tables (a change subtracts the old row's contribution and adds the new one), so the
rollups stay equal to an aggregation of the raw tables whatever merge rule ingestion applies to
out-of-order events. Deltas are summed in memory and written with one multi-row upsert per
table at :meth:`RollupBatch.flush` (a batch of 1,000 events costs a handful of statements).

Bucketing rules (docs/metrics.md "Rollups"):

* ``sessions_started``: hour of ``start_time``; ``sessions_ended``, ``session_duration_s`` and
  ``ai_usage_s`` (the session's aiUsageTime): hour of ``end_time``; session rows use the
  session's tool or ``""``.
* ``detections`` and ``detection_duration_s``: hour of ``detected_at``, row of the detected tool;
  a detection without a session adds its duration to ``ai_usage_s`` too (standalone AI use that
  no session's aiUsageTime covers).
* user activity (``metrics_user_hour``): one event for the start, one for the end, one per
  detection, each in its own hour.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any

from sqlalchemy import Table, bindparam, delete, func
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from aiusage.metrics.tables import open_sessions, user_hour
from aiusage.store.repositories import in_list, insert_for
from aiusage.store.tables import UsageHourly

usage_hourly: Table = UsageHourly.__table__  # type: ignore[assignment]

_SUM_COLUMNS = (
    "sessions_started",
    "sessions_ended",
    "session_duration_s",
    "ai_usage_s",
    "detections",
    "detection_duration_s",
)
_S_STARTED, _S_ENDED, _S_DURATION, _AI, _DET, _DET_DURATION = range(6)


@dataclass(frozen=True, slots=True)
class SessionFacts:
    """The rollup-relevant columns of one ``ai_sessions`` row (UTC-aware datetimes)."""

    org_id: str
    session_id: str
    user_id: str
    start_time: datetime | None
    end_time: datetime | None
    duration_s: float | None
    ai_usage_s: float | None
    tool: str | None = None


@dataclass(frozen=True, slots=True)
class DetectionFacts:
    """The rollup-relevant columns of one new ``ai_detections`` row."""

    org_id: str
    user_id: str
    session_id: str | None
    tool: str
    duration_s: float
    detected_at: datetime


def hour_of(moment: datetime) -> datetime:
    """The UTC hour bucket holding ``moment`` (aware datetimes only)."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime given to the metrics rollup")
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


@dataclass(slots=True)
class _OpenState:
    delete_first: bool = False
    upsert: bool = False
    user_id: str | None = None
    start_time: float | None = None
    last_activity: float | None = None


@dataclass(slots=True)
class RollupBatch:
    """Deltas collected during one ingestion transaction.

    Usage: call :meth:`session_changed` / :meth:`detection_added` for every raw row written,
    then ``batch.flush(conn)`` (a synchronous connection, e.g. inside
    ``Database.run_write``) before the commit. Never report a duplicate event.
    """

    _hourly: dict[tuple[str, datetime, str, str], list[float]] = field(
        default_factory=lambda: defaultdict(lambda: [0.0] * len(_SUM_COLUMNS))
    )
    _activity: dict[tuple[str, datetime, str], int] = field(
        default_factory=lambda: defaultdict(int)
    )
    _open: dict[tuple[str, str], _OpenState] = field(default_factory=dict)
    detections: list[DetectionFacts] = field(default_factory=list)
    """New detections of this batch (alert rules read them after the commit)."""
    orgs: set[str] = field(default_factory=set)
    """Organizations whose data changed (their dashboards are marked dirty)."""

    # -- facts --------------------------------------------------------------------------------

    def session_changed(self, before: SessionFacts | None, after: SessionFacts) -> None:
        """A session row was inserted (``before`` None) or updated."""
        if before is not None:
            self._session_contribution(before, -1)
        self._session_contribution(after, +1)
        self.orgs.add(after.org_id)
        key = (after.org_id, after.session_id)
        state = self._open.get(key)
        if after.end_time is not None:
            # Ended: the row leaves the open set, whatever this batch queued for it before.
            self._open[key] = _OpenState(delete_first=True)
            return
        if after.start_time is None:
            return
        if state is None:
            state = self._open[key] = _OpenState()
        start = after.start_time.timestamp()
        state.upsert = True
        state.user_id = after.user_id
        state.start_time = start
        state.last_activity = _max(state.last_activity, start)

    def detection_added(self, detection: DetectionFacts) -> None:
        """A detection row was inserted."""
        hour = hour_of(detection.detected_at)
        sums = self._hourly[(detection.org_id, hour, detection.user_id, detection.tool)]
        sums[_DET] += 1
        sums[_DET_DURATION] += detection.duration_s
        if detection.session_id is None:
            sums[_AI] += detection.duration_s
        self._activity[(detection.org_id, hour, detection.user_id)] += 1
        self.detections.append(detection)
        self.orgs.add(detection.org_id)
        if detection.session_id is not None:
            key = (detection.org_id, detection.session_id)
            state = self._open.get(key)
            if state is None:
                state = self._open[key] = _OpenState()
            state.upsert = True
            state.last_activity = _max(state.last_activity, detection.detected_at.timestamp())

    def _session_contribution(self, facts: SessionFacts, sign: int) -> None:
        tool = facts.tool or ""
        if facts.start_time is not None:
            hour = hour_of(facts.start_time)
            self._hourly[(facts.org_id, hour, facts.user_id, tool)][_S_STARTED] += sign
            self._activity[(facts.org_id, hour, facts.user_id)] += sign
        if facts.end_time is not None:
            hour = hour_of(facts.end_time)
            sums = self._hourly[(facts.org_id, hour, facts.user_id, tool)]
            sums[_S_ENDED] += sign
            sums[_S_DURATION] += sign * (facts.duration_s or 0.0)
            sums[_AI] += sign * (facts.ai_usage_s or 0.0)
            self._activity[(facts.org_id, hour, facts.user_id)] += sign

    # -- write --------------------------------------------------------------------------------

    @property
    def empty(self) -> bool:
        """True when nothing was reported."""
        return not (self._hourly or self._activity or self._open)

    def flush(self, conn: Connection) -> None:
        """Write the collected deltas with the caller's (synchronous) connection, in its
        transaction (``Database.run_write``).

        Rows are written in key order so concurrent PostgreSQL transactions lock them in the
        same order (no deadlock between two ingestion batches).
        """
        stmts = _statements(conn.dialect.name)
        hourly_rows = [
            {
                "org_id": org,
                "hour": hour,
                "user_id": user,
                "tool": tool,
                **{name: _num(name, sums[i]) for i, name in enumerate(_SUM_COLUMNS)},
            }
            for (org, hour, user, tool), sums in sorted(self._hourly.items())
            if any(sums)
        ]
        if hourly_rows:
            conn.execute(stmts.hourly, hourly_rows)
        activity_rows = [
            {"org_id": org, "hour": hour, "user_id": user, "events": n}
            for (org, hour, user), n in sorted(self._activity.items())
            if n
        ]
        if activity_rows:
            conn.execute(stmts.activity, activity_rows)
        self._flush_open(conn, stmts)
        self._hourly.clear()
        self._activity.clear()
        self._open.clear()

    def _flush_open(self, conn: Connection, stmts: _Statements) -> None:
        doomed: dict[str, list[str]] = defaultdict(list)
        for org, sid in sorted(key for key, st in self._open.items() if st.delete_first):
            doomed[org].append(sid)
        for org, sids in doomed.items():
            # One organization per statement: "org_id = ? AND session_id IN (...)" walks the
            # primary key (a row-value IN over both columns made SQLite scan the table).
            for chunk in _chunks(sids, 500):
                conn.execute(stmts.close_open, {"org": org, "ids": list(chunk)})
        rows = [
            {
                "org_id": org,
                "session_id": sid,
                "user_id": st.user_id,
                "start_time": st.start_time,
                "last_activity": st.last_activity,
            }
            for (org, sid), st in sorted(self._open.items())
            if st.upsert and st.last_activity is not None
        ]
        if rows:
            conn.execute(stmts.open_upsert, rows)


@dataclass(frozen=True, slots=True)
class _Statements:
    """The rollup statements of one dialect, built once (building an ON CONFLICT statement
    costs more than executing it on a small batch)."""

    hourly: Any
    activity: Any
    close_open: Any
    open_upsert: Any


@cache
def _statements(dialect: str) -> _Statements:
    if dialect not in ("sqlite", "postgresql"):
        raise ValueError(f"unsupported dialect for rollups: {dialect!r}")
    ins = insert_for(dialect, open_sessions)
    greatest = func.max if dialect == "sqlite" else func.greatest
    return _Statements(
        hourly=_additive_upsert(dialect, usage_hourly, _SUM_COLUMNS),
        activity=_additive_upsert(dialect, user_hour, ("events",)),
        close_open=delete(open_sessions).where(
            open_sessions.c.org_id == bindparam("org"),
            in_list(dialect, open_sessions.c.session_id, "ids"),
        ),
        open_upsert=ins.on_conflict_do_update(
            index_elements=["org_id", "session_id"],
            set_={
                "user_id": func.coalesce(ins.excluded.user_id, open_sessions.c.user_id),
                "start_time": func.coalesce(ins.excluded.start_time, open_sessions.c.start_time),
                "last_activity": greatest(
                    open_sessions.c.last_activity, ins.excluded.last_activity
                ),
            },
        ),
    )


def _max(current: float | None, value: float) -> float:
    return value if current is None or value > current else current


def _num(name: str, value: float) -> float | int:
    return int(value) if name in ("sessions_started", "sessions_ended", "detections") else value


def _chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _additive_upsert(dialect: str, table: Table, columns: Iterable[str]) -> Any:
    ins = insert_for(dialect, table)
    pk = [c.name for c in table.primary_key.columns]
    updates: Mapping[str, ColumnElement[Any]] = {
        name: table.c[name] + ins.excluded[name] for name in columns
    }
    return ins.on_conflict_do_update(index_elements=pk, set_=updates)


__all__ = ["DetectionFacts", "RollupBatch", "SessionFacts", "hour_of"]
