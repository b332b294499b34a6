"""The dashboard snapshot: every KPI and trend of docs/metrics.md for one organization.

One structure serves ``GET /api/dashboard``, the DashboardUpdate hub event and the hub method
``GetDashboardSnapshot()``. Every query reads the rollups (``usage_hourly``,
``metrics_user_hour``, ``metrics_person_hour``, ``metrics_tool_hour``, ``metrics_tool_seen``,
``metrics_person_seen``, ``metrics_open_sessions``) through their ``(org_id, hour)`` /
``(org_id, last_activity)`` index prefixes, bounded by the 90-day window: the cost of a
snapshot grows with the activity inside the window, never with the length of history. The live
part of open sessions (:mod:`aiusage.metrics.live`) is added at read time.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import (
    BindParameter,
    Executable,
    Subquery,
    bindparam,
    case,
    func,
    select,
    union,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from aiusage.errors import NotFound
from aiusage.metrics.breakdowns import compute_breakdowns
from aiusage.metrics.jsonvalues import iso, seconds
from aiusage.metrics.live import LiveTime, live_time
from aiusage.metrics.rollup import usage_hourly
from aiusage.metrics.tables import (
    open_sessions,
    person_hour,
    person_seen,
    tool_hour,
    tool_seen,
    user_hour,
)
from aiusage.metrics.windows import PERIODS, Windows, is_approved, parse_period, parse_timezone
from aiusage.store.database import Database
from aiusage.store.repositories import in_list
from aiusage.store.tables import organizations as _orgs
from aiusage.store.tables import users as _users

STALE_AFTER = timedelta(hours=2)
"""An open session with no activity for this long is not counted as active."""
TOP_USERS = 20
"""Rows of ``usageByUser`` (the people with the most AI time in the period)."""
BREAKDOWN_INTERVAL = timedelta(seconds=10)
"""Longest reuse of the breakdowns in DashboardUpdate pushes (docs/metrics.md §7)."""
HOUR = timedelta(hours=1)
RESIDUE_S = 1e-6
"""Seconds below which a stored union time is float residue of added-and-removed deltas."""


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class _Point:
    sessions: int = 0
    ended: int = 0
    detections: int = 0
    ai: float = 0.0
    session: float = 0.0
    users: int = 0

    def json(self) -> dict[str, Any]:
        return {
            "sessions": self.sessions,
            "sessionsEnded": self.ended,
            "detections": self.detections,
            "aiSeconds": seconds(self.ai),
            "aiUsageSeconds": seconds(self.ai),
            "sessionSeconds": seconds(self.session),
            "activeUsers": self.users,
        }


@dataclass(slots=True)
class _Buckets:
    """The hourly points (last 24 h), the daily points (period) and the windows' totals."""

    w: Windows
    hourly: list[_Point] = field(default_factory=list)
    daily: list[_Point] = field(default_factory=list)
    today: _Point = field(default_factory=_Point)
    period: _Point = field(default_factory=_Point)

    def __post_init__(self) -> None:
        self.hourly = [_Point() for _ in self.w.hours]
        self.daily = [_Point() for _ in self.w.days]

    def points(self, hour: datetime) -> list[_Point]:
        """Every point the UTC hour bucket ``hour`` adds to."""
        found: list[_Point] = []
        if self.w.hours[0] <= hour < self.w.end:
            found.append(self.hourly[int((hour - self.w.hours[0]) / HOUR)])
        day = self.w.day_index(hour)
        if day is not None:
            found.append(self.daily[day])
            found.append(self.period)
        if self.w.today_start <= hour < self.w.end:
            found.append(self.today)
        return found


@dataclass(slots=True)
class _Core:
    """A snapshot without its breakdowns, and what the breakdowns need from it."""

    windows: Windows
    approved: list[str]
    live: LiveTime
    metrics: dict[str, Any]
    trends: dict[str, Any]

    def finish(self, breakdowns: dict[str, Any]) -> dict[str, Any]:
        """``{"metrics", "trends"}`` with ``breakdowns`` merged into the metrics."""
        metrics = {**self.metrics, **breakdowns}
        # Engagement is a breakdown figure: the top people take it from the people list.
        engaged = {p["userId"]: bool(p.get("engaged")) for p in breakdowns.get("people", [])}
        metrics["usageByUser"] = [
            {**user, "engaged": engaged.get(user["userId"], False)}
            for user in self.metrics["usageByUser"]
        ]
        return {"metrics": metrics, "trends": self.trends}


_WINDOWS = ("7d", "30d", "90d", "period")
"""The distinct-people windows that end now (besides today), in :func:`_window_starts` order."""


@dataclass(frozen=True, slots=True)
class _ActivityQueries:
    """Distinct active people per window, UTC hour and day, over the activity of one org."""

    activity: Subquery
    windows: Executable
    hourly: Executable
    daily: Executable


@cache
def _activity_queries(days: int) -> _ActivityQueries:
    # Built once per period length with bound parameters (org, earliest, end, first_hour,
    # since_<window>, day_<i>): constructing these statements, the day CASE of up to 90
    # branches above all, cost more than running them, on the event loop of every push.
    uh, ph = user_hour.c, person_hour.c
    earliest: BindParameter[Any] = bindparam("earliest")
    end: BindParameter[Any] = bindparam("end")
    activity = union(
        select(uh.hour, uh.user_id).where(
            uh.org_id == bindparam("org"), uh.events > 0, uh.hour >= earliest, uh.hour < end
        ),
        select(ph.hour, ph.user_id).where(
            ph.org_id == bindparam("org"),
            ph.session_s > RESIDUE_S,
            ph.hour >= earliest,
            ph.hour < end,
        ),
    ).subquery()
    a = activity.c
    windows = select(
        *[
            func.count(func.distinct(case((a.hour >= bindparam(f"since_{name}"), a.user_id))))
            for name in _WINDOWS
        ]
    )
    hourly = (
        select(a.hour, func.count(func.distinct(a.user_id)))
        .where(a.hour >= bindparam("first_hour"))
        .group_by(a.hour)
    )
    day = case(
        *[(a.hour >= bindparam(f"day_{i}"), i) for i in reversed(range(days))],
        else_=-1,
    )
    daily = select(day.label("day"), func.count(func.distinct(a.user_id))).group_by(day)
    return _ActivityQueries(activity, windows, hourly, daily)


def _window_starts(w: Windows) -> dict[str, datetime]:
    """Starts of the distinct-people windows that end now (besides today)."""
    return {
        "7d": w.week_start,
        "30d": w.month_start,
        "90d": w.quarter_start,
        "period": w.period_start,
    }


class DashboardService:
    """Computes dashboard snapshots from the rollups.

    Args:
        db: The store.
        clock: Current time (aware UTC); injected in tests.
        stale_after: Inactivity after which an unended session stops counting as active.
        top_users: Rows of ``usageByUser``.
        breakdown_interval: Longest reuse of the breakdowns by :meth:`push_snapshot`.
    """

    def __init__(
        self,
        db: Database,
        *,
        clock: Callable[[], datetime] = _utcnow,
        stale_after: timedelta = STALE_AFTER,
        top_users: int = TOP_USERS,
        breakdown_interval: timedelta = BREAKDOWN_INTERVAL,
    ) -> None:
        self._db = db
        self._clock = clock
        self._stale_after = stale_after
        self._top_users = top_users
        self._breakdown_interval = breakdown_interval
        self._pushed: dict[str, tuple[datetime, dict[str, Any]]] = {}
        """Per organization: when its pushed breakdowns were computed, and them."""

    async def snapshot(
        self, org_id: str, tz: str | None = None, period: str | None = None
    ) -> dict[str, Any]:
        """``{"metrics": {...}, "trends": {...}}`` for ``org_id`` at the clock's now.

        Args:
            tz: IANA zone of "today" and of the days (default UTC).
            period: ``7d``, ``30d`` (default) or ``90d``.

        Raises:
            NotFound: The organization does not exist.
            ValidationError: ``tz`` is unknown or its midnights are not whole UTC hours, or the
                period is unknown.
        """
        windows = Windows.at(self._clock(), parse_timezone(tz), parse_period(period))
        async with self._db.read() as conn:
            return await self.snapshot_on(conn, org_id, windows)

    async def push_snapshot(self, org_id: str) -> dict[str, Any]:
        """The snapshot a DashboardUpdate push carries (default zone and period).

        The core KPIs and trends are computed fresh; the breakdown fields (those of
        :func:`~aiusage.metrics.breakdowns.compute_breakdowns`) are reused from this
        organization's previous push while they are younger than ``breakdown_interval``
        (docs/metrics.md §7 "Push cadence"): they are about a quarter of the snapshot's work
        and change slowly, and a push runs on the event loop between ingestion batches.

        Raises:
            NotFound: The organization does not exist.
        """
        windows = Windows.at(self._clock(), parse_timezone(None), parse_period(None))
        async with self._db.read() as conn:
            core = await self._core(conn, org_id, windows)
            kept = self._pushed.get(org_id)
            if kept is None or windows.now - kept[0] >= self._breakdown_interval:
                kept = (windows.now, await self._breakdowns(conn, org_id, core))
                # Keep only organizations pushed recently: the map stays as small as the
                # set of active organizations.
                oldest = kept[0] - self._breakdown_interval
                for org in [o for o, (at, _) in self._pushed.items() if at <= oldest]:
                    del self._pushed[org]
                self._pushed[org_id] = kept
        return core.finish(kept[1])

    async def snapshot_on(
        self, conn: AsyncConnection, org_id: str, windows: Windows
    ) -> dict[str, Any]:
        """Like :meth:`snapshot` on a caller's connection and windows (tests, exports)."""
        core = await self._core(conn, org_id, windows)
        return core.finish(await self._breakdowns(conn, org_id, core))

    async def _breakdowns(self, conn: AsyncConnection, org_id: str, core: _Core) -> dict[str, Any]:
        """People, adoption, engagement, teams, devices and shadow AI (the breakdowns)."""
        w = core.windows
        return await compute_breakdowns(
            conn,
            org_id,
            w,
            w.now,
            period_days=PERIODS[w.period],
            approved=core.approved,
            live=core.live,
        )

    async def _core(self, conn: AsyncConnection, org_id: str, windows: Windows) -> _Core:
        """Every field of the snapshot but the breakdowns."""
        approved = (
            await conn.execute(select(_orgs.c.approved_tools).where(_orgs.c.id == org_id))
        ).scalar_one_or_none()
        if approved is None:
            exists = (await conn.execute(select(_orgs.c.id).where(_orgs.c.id == org_id))).first()
            if exists is None:
                raise NotFound(f"organization {org_id!r} not found")
            approved = []
        approved_tools = [str(t) for t in approved]
        w = windows
        live = await live_time(conn, org_id, w.now, self._stale_after)
        buckets = _Buckets(w)
        await self._totals(conn, org_id, buckets, live)
        active = await self._active_users(conn, org_id, buckets, live)
        by_tool, unapproved_today, unapproved_30d = await self._by_tool(
            conn, org_id, w, approved_tools
        )
        by_user, ai_users = await self._by_user(conn, org_id, w, live)
        members = (
            await conn.execute(
                select(func.count())
                .select_from(_users)
                .where(_users.c.org_id == org_id, _users.c.active.is_(True))
            )
        ).scalar_one()
        period_ai = buckets.period.ai
        metrics: dict[str, Any] = {
            "organizationId": org_id,
            "generatedAt": iso(w.now),
            "timezone": w.timezone,
            "period": w.period,
            "periodDays": PERIODS[w.period],
            "activeSessions": await self._active_sessions(conn, org_id, w),
            "sessionsToday": buckets.today.sessions,
            "sessionsEndedToday": buckets.today.ended,
            "detectionsToday": buckets.today.detections,
            "aiSecondsToday": seconds(buckets.today.ai),
            "aiUsageSecondsToday": seconds(buckets.today.ai),
            "sessionSecondsToday": seconds(buckets.today.session),
            "aiSecondsPeriod": seconds(period_ai),
            "sessionSecondsPeriod": seconds(buckets.period.session),
            "activeUsersToday": buckets.today.users,
            "activeUsers7d": active["7d"],
            "activeUsers30d": active["30d"],
            "activeUsers90d": active["90d"],
            "activeUsersPeriod": active["period"],
            "aiUsersPeriod": ai_users,
            "aiSecondsPerActiveUser": seconds(period_ai / ai_users) if ai_users else None,
            "totalUsers": members,
            "unapprovedDetectionsToday": unapproved_today,
            "unapprovedDetections30d": unapproved_30d,
            "approvedTools": approved_tools,
            "usageByTool": by_tool,
            "usageByUser": by_user,
        }
        trends = {
            "hourly": [{"hour": iso(h), **buckets.hourly[i].json()} for i, h in enumerate(w.hours)],
            "daily": [
                {"date": d.isoformat(), **buckets.daily[i].json()} for i, d in enumerate(w.days)
            ],
        }
        return _Core(w, approved_tools, live, metrics, trends)

    # -- queries ----------------------------------------------------------------------------

    async def _totals(
        self, conn: AsyncConnection, org_id: str, b: _Buckets, live: LiveTime
    ) -> None:
        w = b.w
        c = usage_hourly.c
        for hour, started, ended, detections in await conn.execute(
            select(
                c.hour,
                func.sum(c.sessions_started),
                func.sum(c.sessions_ended),
                func.sum(c.detections),
            )
            .where(c.org_id == org_id, c.hour >= w.earliest, c.hour < w.end)
            .group_by(c.hour)
        ):
            for point in b.points(hour):
                point.sessions += int(started or 0)
                point.ended += int(ended or 0)
                point.detections += int(detections or 0)
        p = person_hour.c
        for hour, ai, session in await conn.execute(
            select(p.hour, func.sum(p.ai_s), func.sum(p.session_s))
            .where(p.org_id == org_id, p.hour >= w.earliest, p.hour < w.end)
            .group_by(p.hour)
        ):
            for point in b.points(hour):
                point.ai += float(ai or 0.0)
                point.session += float(session or 0.0)
        for hour_s, extra in live.hours().items():
            for point in b.points(datetime.fromtimestamp(hour_s, UTC)):
                point.session += extra

    async def _active_users(
        self, conn: AsyncConnection, org_id: str, b: _Buckets, live: LiveTime
    ) -> dict[str, int]:
        """Distinct active people (docs/metrics.md "Activity") per bucket and window."""
        w = b.w
        q = _activity_queries(len(w.day_starts))
        params: dict[str, Any] = {
            "org": org_id,
            "earliest": w.earliest,
            "end": w.end,
            "first_hour": w.hours[0],
            **{f"since_{name}": start for name, start in _window_starts(w).items()},
            **{f"day_{i}": start for i, start in enumerate(w.day_starts)},
        }
        counts = (await conn.execute(q.windows, params)).one()
        windows = {name: int(n) for name, n in zip(_WINDOWS, counts, strict=True)}
        for hour, n in await conn.execute(q.hourly, params):
            b.hourly[int((hour - w.hours[0]) / HOUR)].users = int(n)
        for index, n in await conn.execute(q.daily, params):
            if 0 <= int(index) < len(b.daily):
                b.daily[int(index)].users = int(n)
        activity = q.activity
        if live.active:
            await self._live_activity(conn, activity, params, b, live, windows)
        b.today.users = b.daily[-1].users
        return windows

    async def _live_activity(
        self,
        conn: AsyncConnection,
        activity: Any,
        params: dict[str, Any],
        b: _Buckets,
        live: LiveTime,
        windows: dict[str, int],
    ) -> None:
        """Add the people whom only their live session makes active in a recent bucket: an
        active session makes its person active in the current hour, and its live tail in
        every hour it adds time to."""
        w = b.w
        recent = w.hours[0]
        first = w.day_index(recent)
        if first is not None:
            recent = min(recent, w.day_starts[first])
        a = activity.c
        stored: dict[str, set[datetime]] = defaultdict(set)
        for hour, user in await conn.execute(
            select(a.hour, a.user_id).where(
                a.hour >= recent, in_list(conn.dialect.name, a.user_id, "users")
            ),
            {**params, "users": sorted(live.active)},
        ):
            stored[str(user)].add(hour)
        for user in live.active:
            gained = {w.current_hour}
            gained |= {
                datetime.fromtimestamp(h, UTC) for h, s in live.extra.get(user, {}).items() if s > 0
            }
            had = stored.get(user, set())
            for hour in sorted(gained - had):
                if w.hours[0] <= hour < w.end:
                    b.hourly[int((hour - w.hours[0]) / HOUR)].users += 1
            days_had = {w.day_index(h) for h in had}
            for index in {w.day_index(h) for h in gained} - days_had:
                if index is not None:
                    b.daily[index].users += 1
        # Every window ends now, so it counts a live person unless it counted them already.
        # Stored activity since ``recent`` is inside every window; older activity is read for
        # the few live people without any (their last activity moment is normally recent).
        latest = {user: max(hours) for user, hours in stored.items() if hours}
        missing = sorted(live.active - set(latest))
        if missing:
            for user, hour in await conn.execute(
                select(a.user_id, func.max(a.hour))
                .where(in_list(conn.dialect.name, a.user_id, "users"))
                .group_by(a.user_id),
                {**params, "users": missing},
            ):
                latest[str(user)] = hour
        since = _window_starts(w)
        for user in live.active:
            last = latest.get(user)
            for name, start in since.items():
                if last is None or last < start:
                    windows[name] += 1

    async def _by_tool(
        self, conn: AsyncConnection, org_id: str, w: Windows, approved: list[str]
    ) -> tuple[list[dict[str, Any]], int, int]:
        t = tool_hour.c
        in_period = t.hour >= w.period_start
        start = min(w.period_start, w.month_start)
        rows = await conn.execute(
            select(
                t.tool,
                func.sum(case((in_period, t.ai_s), else_=0.0)),
                func.sum(case((in_period, t.detections), else_=0)),
                func.count(func.distinct(case((in_period & (t.detections > 0), t.user_id)))),
                func.sum(case((t.hour >= w.today_start, t.detections), else_=0)),
                func.sum(case((t.hour >= w.month_start, t.detections), else_=0)),
            )
            .where(t.org_id == org_id, t.hour >= start, t.hour < w.end)
            .group_by(t.tool)
        )
        s = tool_seen.c
        seen = {
            tool: (first, last)
            for tool, first, last in await conn.execute(
                select(s.tool, func.min(s.first_seen), func.max(s.last_seen))
                .where(s.org_id == org_id)
                .group_by(s.tool)
            )
        }
        tools: list[dict[str, Any]] = []
        unapproved_today = unapproved_30d = 0
        for tool, tool_s, detections, users, today, month in rows:
            ok = is_approved(tool, approved)
            if not ok:
                unapproved_30d += int(month or 0)
                unapproved_today += int(today or 0)
            if not detections:
                continue
            first, last = seen.get(tool, (None, None))
            tools.append(
                {
                    "tool": tool,
                    "aiSeconds": seconds(float(tool_s or 0.0)),
                    "durationSeconds": seconds(float(tool_s or 0.0)),
                    "detections": int(detections),
                    "users": int(users),
                    "detectionsToday": int(today or 0),
                    "approved": ok,
                    "firstSeen": iso(first) if first is not None else None,
                    "lastSeen": iso(last) if last is not None else None,
                }
            )
        tools.sort(key=lambda x: (-x["aiSeconds"], -x["detections"], x["tool"]))
        return tools, unapproved_today, unapproved_30d

    async def _by_user(
        self, conn: AsyncConnection, org_id: str, w: Windows, live: LiveTime
    ) -> tuple[list[dict[str, Any]], int]:
        """The top people by AI time in the period, and how many have AI time > 0."""
        people: dict[str, dict[str, Any]] = {}

        def entry(user: str) -> dict[str, Any]:
            found = people.get(user)
            if found is None:
                found = people[user] = {
                    "userId": user,
                    "aiSeconds": 0.0,
                    "sessionSeconds": 0.0,
                    "sessions": 0,
                    "detections": 0,
                }
            return found

        p = person_hour.c
        for user, ai, session in await conn.execute(
            select(p.user_id, func.sum(p.ai_s), func.sum(p.session_s))
            .where(p.org_id == org_id, p.hour >= w.period_start, p.hour < w.end)
            .group_by(p.user_id)
        ):
            e = entry(user)
            e["aiSeconds"] += float(ai or 0.0)
            e["sessionSeconds"] += float(session or 0.0)
        start, end = w.period_start.timestamp(), w.end.timestamp()
        for user in live.extra:
            extra = live.seconds(user, start, end)
            if extra > 0:
                entry(user)["sessionSeconds"] += extra
        c = usage_hourly.c
        for user, sessions, detections in await conn.execute(
            select(c.user_id, func.sum(c.sessions_started), func.sum(c.detections))
            .where(c.org_id == org_id, c.hour >= w.period_start, c.hour < w.end)
            .group_by(c.user_id)
        ):
            e = entry(user)
            e["sessions"] += int(sessions or 0)
            e["detections"] += int(detections or 0)
        ai_users = sum(1 for e in people.values() if seconds(e["aiSeconds"]) > 0)
        top = sorted(people.values(), key=lambda e: (-seconds(e["aiSeconds"]), e["userId"]))
        top = [e for e in top if e["aiSeconds"] > 0 or e["sessions"] or e["detections"]]
        top = top[: self._top_users]
        ids = [e["userId"] for e in top]
        details: dict[str, tuple[Any, Any]] = {}
        seen: dict[str, datetime] = {}
        if ids:
            u, s = _users.c, person_seen.c
            for user, email, team in await conn.execute(
                select(u.id, u.email, u.team).where(
                    u.org_id == bindparam("org"), in_list(conn.dialect.name, u.id, "ids")
                ),
                {"org": org_id, "ids": ids},
            ):
                details[user] = (email, team)
            for user, last in await conn.execute(
                select(s.user_id, s.last_seen).where(
                    s.org_id == bindparam("org"), in_list(conn.dialect.name, s.user_id, "ids")
                ),
                {"org": org_id, "ids": ids},
            ):
                seen[user] = last
        result = []
        for e in top:
            email, team = details.get(e["userId"], (None, None))
            last = seen.get(e["userId"])
            ai = seconds(e["aiSeconds"])
            result.append(
                {
                    "userId": e["userId"],
                    "email": email,
                    "team": team,
                    "aiSeconds": ai,
                    "aiUsageSeconds": ai,
                    "sessionSeconds": seconds(e["sessionSeconds"]),
                    "sessions": e["sessions"],
                    "detections": e["detections"],
                    "lastActivity": iso(last) if last is not None else None,
                }
            )
        return result, ai_users

    async def _active_sessions(self, conn: AsyncConnection, org_id: str, w: Windows) -> int:
        o = open_sessions.c
        now = w.now.timestamp()
        return int(
            (
                await conn.execute(
                    select(func.count()).where(
                        o.org_id == org_id,
                        o.last_activity >= now - self._stale_after.total_seconds(),
                        o.start_time.is_not(None),
                        o.start_time <= now,
                    )
                )
            ).scalar_one()
        )


__all__ = ["BREAKDOWN_INTERVAL", "STALE_AFTER", "TOP_USERS", "DashboardService"]
