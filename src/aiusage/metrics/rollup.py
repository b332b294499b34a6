"""Incremental rollups, applied inside the ingestion transaction.

Ingestion reports every change it makes to the raw tables as *facts*: a session row before and
after the change, or a new detection row with the state of its session. :class:`RollupBatch`
turns them into

* deltas of the counters (``usage_hourly``, ``metrics_user_hour``, ``metrics_tool_hour``
  detections, ``metrics_device_hour`` sessions): a change subtracts the old row's contribution
  and adds the new one, so the counters stay equal to an aggregation of the raw tables
  whatever merge rule ingestion applies to out-of-order events;
* cover operations (:class:`aiusage.metrics.cover.CoverWork`) for the union-time columns
  (``ai_s``, ``session_s``) of the hour tables: intervals added, or ranges recomputed when a
  change can remove time;
* ``MIN``/``MAX`` upserts of first/last seen, and the open-session set.

Everything is summed in memory and written with one multi-row statement per table at
:meth:`RollupBatch.flush` (a batch of 1,000 events costs a handful of statements).

Bucketing rules (docs/metrics.md "Rollups"): ``sessions_started`` in the hour of
``start_time``, ``sessions_ended`` in the hour of ``end_time``, detections in the hour of
``detected_at``; user activity (``metrics_user_hour``): one moment for the start, one for the
end, one per detection; union seconds split at every UTC hour boundary.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any

from sqlalchemy import bindparam, delete, func, select
from sqlalchemy.engine import Connection

from aiusage.metrics.bulk import BulkWrite
from aiusage.metrics.cover import (
    AI,
    SESSION,
    CoverWork,
    ai_detections,
    detection_interval,
    device_dim,
    tool_dim,
)
from aiusage.metrics.intervals import Interval, epoch, instant
from aiusage.metrics.tables import (
    device_hour,
    open_sessions,
    person_hour,
    person_seen,
    tool_hour,
    tool_seen,
    user_hour,
)
from aiusage.store.repositories import in_list, insert_for
from aiusage.store.tables import usage_hourly

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
    device_id: str | None = None


@dataclass(frozen=True, slots=True)
class DetectionFacts:
    """The rollup-relevant columns of one new ``ai_detections`` row.

    ``session`` is the state of the session it names at the end of the ingestion transaction,
    None when that session is not known (the detection is then standalone, docs/metrics.md
    "Time model"). ``detection_id`` identifies the row (None: not written by ingestion).
    """

    org_id: str
    user_id: str
    session_id: str | None
    tool: str
    duration_s: float
    detected_at: datetime
    detection_id: str | None = None
    device_id: str | None = None
    session: SessionFacts | None = None


def hour_of(moment: datetime) -> datetime:
    """The UTC hour bucket holding ``moment`` (aware datetimes only)."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime given to the metrics rollup")
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def session_interval(facts: SessionFacts, last_activity: float | None) -> Interval | None:
    """The stored interval of a session: ``[start, end]``, or ``[start, L]`` while open (``L``
    = the later of the start and ``last_activity``); None without a start."""
    if facts.start_time is None:
        return None
    start = epoch(facts.start_time)
    if facts.end_time is not None:
        return (start, epoch(facts.end_time))
    return (start, max(start, last_activity if last_activity is not None else start))


@dataclass(slots=True)
class _OpenState:
    delete_first: bool = False
    upsert: bool = False
    user_id: str | None = None
    start_time: float | None = None
    last_activity: float | None = None


def _vector(n: int) -> Any:
    return lambda: [0.0] * n


@dataclass(slots=True)
class RollupBatch:
    """Deltas collected during one ingestion transaction.

    Usage: call :meth:`session_changed` / :meth:`detection_added` for every raw row written,
    then ``batch.flush(conn)`` (a synchronous connection, e.g. inside
    ``Database.run_write``) before the commit, *after* the raw rows are written (a range
    recomputation reads them). Never report a duplicate event.
    """

    _hourly: dict[tuple[str, datetime, str, str], list[float]] = field(
        default_factory=lambda: defaultdict(_vector(len(_SUM_COLUMNS)))
    )
    _activity: dict[tuple[str, datetime, str], int] = field(
        default_factory=lambda: defaultdict(int)
    )
    _open: dict[tuple[str, str], _OpenState] = field(default_factory=dict)
    _tool_detections: dict[tuple[str, datetime, str, str], int] = field(
        default_factory=lambda: defaultdict(int)
    )
    _device_sessions: dict[tuple[str, datetime, str, str], int] = field(
        default_factory=lambda: defaultdict(int)
    )
    _tool_seen: dict[tuple[str, str, str], list[Any]] = field(default_factory=dict)
    _person_seen: dict[tuple[str, str], list[datetime]] = field(default_factory=dict)
    _changes: list[tuple[SessionFacts | None, SessionFacts]] = field(default_factory=list)
    _earlier: dict[tuple[str, str], list[tuple[str, Interval]]] | None = None
    backfill: bool = False
    """Write only the tables added with the union time model (migration backfill): the
    counters of ``usage_hourly`` / ``metrics_user_hour`` and the open sessions exist already."""
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
        self._changes.append((before, after))
        self.orgs.add(after.org_id)
        for moment in (after.start_time, after.end_time):
            if moment is not None:
                self._seen_person(after.org_id, after.user_id, moment)
        key = (after.org_id, after.session_id)
        state = self._open.get(key)
        if after.end_time is not None:
            # Ended: the row leaves the open set, whatever this batch queued for it before.
            self._open[key] = _OpenState(delete_first=True)
            return
        if after.start_time is None:
            return
        if state is None or state.delete_first:
            state = self._open[key] = _OpenState()
        start = after.start_time.timestamp()
        state.upsert = True
        state.user_id = after.user_id
        state.start_time = start
        state.last_activity = _max(state.last_activity, start)

    def detection_added(self, detection: DetectionFacts) -> None:
        """A detection row was inserted."""
        hour = hour_of(detection.detected_at)
        org, user, tool = detection.org_id, detection.user_id, detection.tool
        sums = self._hourly[(org, hour, user, tool)]
        sums[_DET] += 1
        sums[_DET_DURATION] += detection.duration_s
        if detection.session_id is None:
            sums[_AI] += detection.duration_s
        self._activity[(org, hour, user)] += 1
        self._tool_detections[(org, hour, user, tool)] += 1
        seen = self._tool_seen.get((org, tool, user))
        if seen is None:
            self._tool_seen[(org, tool, user)] = [detection.detected_at, detection.detected_at, 1]
        else:
            seen[0] = min(seen[0], detection.detected_at)
            seen[1] = max(seen[1], detection.detected_at)
            seen[2] += 1
        self._seen_person(org, user, detection.detected_at)
        self.detections.append(detection)
        self.orgs.add(org)
        session = detection.session
        if detection.session_id is None or (session is not None and session.end_time is not None):
            # A detection of an ended session must not (re)create an open-session row: it
            # would stay forever, since no SessionEnded will come to delete it.
            return
        key = (org, detection.session_id)
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
            device = facts.device_id or ""
            self._device_sessions[(facts.org_id, hour, device, facts.user_id)] += sign
        if facts.end_time is not None:
            hour = hour_of(facts.end_time)
            sums = self._hourly[(facts.org_id, hour, facts.user_id, tool)]
            sums[_S_ENDED] += sign
            sums[_S_DURATION] += sign * (facts.duration_s or 0.0)
            sums[_AI] += sign * (facts.ai_usage_s or 0.0)
            self._activity[(facts.org_id, hour, facts.user_id)] += sign

    def _seen_person(self, org: str, user: str, moment: datetime) -> None:
        seen = self._person_seen.get((org, user))
        if seen is None:
            self._person_seen[(org, user)] = [moment, moment]
        else:
            seen[0], seen[1] = min(seen[0], moment), max(seen[1], moment)

    # -- union time -----------------------------------------------------------------------------

    def _cover_work(self, conn: Connection) -> list[CoverWork]:
        """The cover operations of the batch's facts (docs/metrics.md "Incremental union")."""
        works: dict[str, CoverWork] = {}

        def work(org: str) -> CoverWork:
            if org not in works:
                works[org] = CoverWork(org)
            return works[org]

        batch_ids = {d.detection_id for d in self.detections if d.detection_id is not None}
        batch_last: dict[tuple[str, str], float] = {}
        for d in self.detections:
            if d.session_id is not None:
                key = (d.org_id, d.session_id)
                batch_last[key] = max(batch_last.get(key, -_INF), epoch(d.detected_at))
        earlier = self._earlier
        if earlier is None:
            earlier = self._earlier_detections(conn, batch_ids)
        for before, after in self._changes:
            org, sid = after.org_id, after.session_id
            prior = earlier.get((org, sid), [])
            prior_last = max((iv[1] for _, iv in prior), default=None)
            last = _opt_max(prior_last, batch_last.get((org, sid)))
            now_iv = session_interval(after, last)
            if now_iv is None:
                continue
            if before is None:
                if not prior:
                    work(org).add(after.user_id, SESSION, now_iv)
                    continue
                # Its detections were counted standalone until now: they get clipped.
                span = _hull([now_iv, *(iv for _, iv in prior)])
                for user in {after.user_id, *(u for u, _ in prior)}:
                    work(org).recompute(user, span)
                continue
            old_iv = session_interval(before, prior_last)
            shrinks = (
                old_iv is None
                or before.user_id != after.user_id
                or before.start_time != after.start_time
                or old_iv[1] > now_iv[1]
            )
            if not shrinks:
                work(org).add(after.user_id, SESSION, now_iv)
                continue
            span = _hull([now_iv] if old_iv is None else [now_iv, old_iv])
            for user in {before.user_id, after.user_id, *(u for u, _ in prior)}:
                work(org).recompute(user, span)
        for d in self.detections:
            w = work(d.org_id)
            interval = detection_interval(d.detected_at, d.duration_s)
            session = d.session
            if session is None or session.start_time is None:
                part: Interval | None = interval
                w.add(d.user_id, SESSION, interval)
            else:
                start = epoch(session.start_time)
                end = epoch(session.end_time) if session.end_time is not None else _INF
                part = (max(interval[0], start), min(interval[1], end))
                if session.end_time is None:
                    w.add(session.user_id, SESSION, (start, max(start, interval[1])))
            if part is not None and part[1] > part[0]:
                for dim in (AI, tool_dim(d.tool), device_dim(d.device_id or "")):
                    w.add(d.user_id, dim, part)
        return [w for _, w in sorted(works.items()) if not w.empty]

    def before_detections(self, conn: Connection) -> None:
        """Optional: called after the batch's session rows are written and before its
        detections are; reads the sessions' earlier detections while they are the only ones
        (cheaper than reading them all at :meth:`flush` and skipping the batch's own)."""
        self._earlier = self._earlier_detections(conn, set())

    def _earlier_detections(
        self, conn: Connection, batch_ids: set[str]
    ) -> dict[tuple[str, str], list[tuple[str, Interval]]]:
        """Detections written by earlier batches of the sessions this batch changed:
        ``(user, interval)`` per (org, session)."""
        wanted: dict[str, set[str]] = defaultdict(set)
        for _, after in self._changes:
            wanted[after.org_id].add(after.session_id)
        found: dict[tuple[str, str], list[tuple[str, Interval]]] = defaultdict(list)
        stmt = _statements(conn.dialect.name).session_detections
        for org, sids in sorted(wanted.items()):
            for chunk in _chunks(sorted(sids), 500):
                for row in conn.execute(stmt, {"org": org, "ids": list(chunk)}):
                    if row.id in batch_ids:
                        continue
                    interval = detection_interval(row.detected_at, float(row.duration_s))
                    found[(org, row.session_id)].append((row.user_id, interval))
        return found

    # -- write --------------------------------------------------------------------------------

    @property
    def empty(self) -> bool:
        """True when nothing was reported."""
        return not (
            self._hourly or self._activity or self._open or self._changes or self.detections
        )

    def flush(self, conn: Connection) -> None:
        """Write the collected deltas with the caller's (synchronous) connection, in its
        transaction (``Database.run_write``), after the raw rows of the batch.

        Rows are written in key order so concurrent PostgreSQL transactions lock them in the
        same order (no deadlock between two ingestion batches).
        """
        stmts = _statements(conn.dialect.name)
        person: dict[tuple[str, datetime, str], list[float]] = defaultdict(_vector(2))
        tools: dict[tuple[str, datetime, str, str], list[float]] = defaultdict(_vector(2))
        devices: dict[tuple[str, datetime, str, str], list[float]] = defaultdict(_vector(2))
        for (org, hour, user, tool), n in self._tool_detections.items():
            tools[(org, hour, user, tool)][1] += n
        for (org, hour, device, user), n in self._device_sessions.items():
            devices[(org, hour, device, user)][1] += n
        for work in self._cover_work(conn):
            for (user, dim), per_hour in work.apply(conn).items():
                for hour_s, seconds in per_hour.items():
                    hour = instant(hour_s)
                    if dim == AI:
                        person[(work.org_id, hour, user)][0] += seconds
                    elif dim == SESSION:
                        person[(work.org_id, hour, user)][1] += seconds
                    elif dim.startswith("t:"):
                        tools[(work.org_id, hour, user, dim[2:])][0] += seconds
                    else:
                        devices[(work.org_id, hour, dim[2:], user)][0] += seconds
        if not self.backfill:
            _write(conn, stmts.hourly, self._hourly)
            _write(conn, stmts.activity, {k: [n] for k, n in self._activity.items()})
            self._flush_open(conn, stmts)
        _write(conn, stmts.person, person)
        _write(conn, stmts.tool, tools)
        _write(conn, stmts.device, devices)
        stmts.tool_seen.execute(conn, [(*key, *v) for key, v in sorted(self._tool_seen.items())])
        stmts.person_seen.execute(
            conn, [(*key, *v) for key, v in sorted(self._person_seen.items())]
        )
        self._hourly.clear()
        self._activity.clear()
        self._open.clear()
        self._tool_detections.clear()
        self._device_sessions.clear()
        self._tool_seen.clear()
        self._person_seen.clear()
        self._changes.clear()
        self._earlier = None

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


def _write(
    conn: Connection,
    upsert: BulkWrite,
    sums: Mapping[Any, Sequence[float]],
) -> None:
    # Runs for every row of every batch: tuples, no per-value call but the counters' int().
    counters = upsert.counters
    rows = []
    for key, values in sorted(sums.items()):
        if not any(values):
            continue
        numbers = list(values)
        for i in counters:
            numbers[i] = int(numbers[i])
        rows.append((*key, *numbers))
    upsert.execute(conn, rows)


@dataclass(frozen=True, slots=True)
class _Statements:
    """The rollup statements of one dialect, built once (building an ON CONFLICT statement
    costs more than executing it on a small batch)."""

    hourly: BulkWrite
    activity: BulkWrite
    person: BulkWrite
    tool: BulkWrite
    device: BulkWrite
    tool_seen: BulkWrite
    person_seen: BulkWrite
    close_open: Any
    open_upsert: Any
    session_detections: Any


@cache
def _statements(dialect: str) -> _Statements:
    if dialect not in ("sqlite", "postgresql"):
        raise ValueError(f"unsupported dialect for rollups: {dialect!r}")
    ins = insert_for(dialect, open_sessions)
    greatest = func.max if dialect == "sqlite" else func.greatest
    d = ai_detections.c

    def add(*names: str) -> dict[str, str]:
        return dict.fromkeys(names, "add")

    seen = {"first_seen": "min", "last_seen": "max"}
    return _Statements(
        hourly=BulkWrite(dialect, usage_hourly, add(*_SUM_COLUMNS)),
        activity=BulkWrite(dialect, user_hour, add("events")),
        person=BulkWrite(dialect, person_hour, add("ai_s", "session_s")),
        tool=BulkWrite(dialect, tool_hour, add("ai_s", "detections")),
        device=BulkWrite(dialect, device_hour, add("ai_s", "sessions")),
        tool_seen=BulkWrite(dialect, tool_seen, {**seen, **add("detections")}),
        person_seen=BulkWrite(dialect, person_seen, seen),
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
        session_detections=select(d.id, d.session_id, d.user_id, d.duration_s, d.detected_at).where(
            d.org_id == bindparam("org"), in_list(dialect, d.session_id, "ids")
        ),
    )


_INF = float("inf")


def _max(current: float | None, value: float) -> float:
    return value if current is None or value > current else current


def _opt_max(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    return a if b is None or a >= b else b


def _hull(intervals: Iterable[Interval]) -> Interval:
    items = list(intervals)
    return (min(a for a, _ in items), max(b for _, b in items))


def _chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


__all__ = [
    "DetectionFacts",
    "RollupBatch",
    "SessionFacts",
    "hour_of",
    "session_interval",
    "usage_hourly",
]
