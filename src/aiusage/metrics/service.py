"""The dashboard snapshot: every KPI and trend of docs/metrics.md for one organization.

One structure serves ``GET /api/dashboard``, the DashboardUpdate hub event and the hub method
``GetDashboardSnapshot()`` (issue 5). Every query reads the rollups (``usage_hourly``,
``metrics_user_hour``, ``metrics_open_sessions``) through their ``(org_id, hour)`` /
``(org_id, last_activity)`` index prefixes, bounded by the 30-day window: the cost of a
snapshot grows with the activity inside the window, never with the length of history.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, and_, case, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from aiusage.errors import NotFound
from aiusage.metrics.rollup import usage_hourly
from aiusage.metrics.tables import open_sessions, user_hour
from aiusage.metrics.windows import Windows, is_approved, parse_timezone
from aiusage.store.database import Database
from aiusage.store.tables import Organization, User

STALE_AFTER = timedelta(hours=2)
"""An open session with no activity for this long is not counted as active."""
TOP_USERS = 20
"""Rows of ``usageByUser`` (the users with the most AI-usage time)."""

_orgs = cast(Table, Organization.__table__)
_users = cast(Table, User.__table__)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


class DashboardService:
    """Computes dashboard snapshots from the rollups.

    Args:
        db: The store.
        clock: Current time (aware UTC); injected in tests.
        stale_after: Inactivity after which an unended session stops counting as active.
        top_users: Rows of ``usageByUser``.
    """

    def __init__(
        self,
        db: Database,
        *,
        clock: Callable[[], datetime] = _utcnow,
        stale_after: timedelta = STALE_AFTER,
        top_users: int = TOP_USERS,
    ) -> None:
        self._db = db
        self._clock = clock
        self._stale_after = stale_after
        self._top_users = top_users

    async def snapshot(self, org_id: str, tz: str | None = None) -> dict[str, Any]:
        """``{"metrics": {...}, "trends": {...}}`` for ``org_id`` at the clock's now.

        Raises:
            NotFound: The organization does not exist.
            ValidationError: ``tz`` is unknown or its midnights are not whole UTC hours.
        """
        windows = Windows.at(self._clock(), parse_timezone(tz))
        async with self._db.read() as conn:
            return await self.snapshot_on(conn, org_id, windows)

    async def snapshot_on(
        self, conn: AsyncConnection, org_id: str, windows: Windows
    ) -> dict[str, Any]:
        """Like :meth:`snapshot` on a caller's connection and windows (tests, exports)."""
        approved = (
            await conn.execute(select(_orgs.c.approved_tools).where(_orgs.c.id == org_id))
        ).scalar_one_or_none()
        if approved is None:
            exists = (await conn.execute(select(_orgs.c.id).where(_orgs.c.id == org_id))).first()
            if exists is None:
                raise NotFound(f"organization {org_id!r} not found")
            approved = []
        approved_tools = [str(t) for t in approved]

        hourly, daily, today = await self._totals(conn, org_id, windows)
        active = await self._active_users(conn, org_id, windows)
        hourly_users, daily_users = await self._users_per_bucket(conn, org_id, windows)
        by_tool, unapproved_today, unapproved_30d = await self._by_tool(
            conn, org_id, windows, approved_tools
        )
        by_user = await self._by_user(conn, org_id, windows)
        active_sessions = await self._active_sessions(conn, org_id, windows)
        members = (
            await conn.execute(
                select(func.count())
                .select_from(_users)
                .where(_users.c.org_id == org_id, _users.c.active.is_(True))
            )
        ).scalar_one()

        metrics = {
            "organizationId": org_id,
            "generatedAt": _iso(windows.now),
            "timezone": windows.timezone,
            "activeSessions": active_sessions,
            "sessionsToday": today["sessions"],
            "sessionsEndedToday": today["sessionsEnded"],
            "aiUsageSecondsToday": today["aiUsageSeconds"],
            "detectionsToday": today["detections"],
            "activeUsersToday": daily_users[-1],
            "activeUsers7d": active["7d"],
            "activeUsers30d": active["30d"],
            "totalUsers": members,
            "adoptionRate": (active["members30d"] / members) if members else None,
            "unapprovedDetectionsToday": unapproved_today,
            "unapprovedDetections30d": unapproved_30d,
            "approvedTools": approved_tools,
            "usageByTool": by_tool,
            "usageByUser": by_user,
        }
        trends = {
            "hourly": [
                {"hour": _iso(h), **hourly[i], "activeUsers": hourly_users[i]}
                for i, h in enumerate(windows.hours)
            ],
            "daily": [
                {"date": d.isoformat(), **daily[i], "activeUsers": daily_users[i]}
                for i, d in enumerate(windows.days)
            ],
        }
        return {"metrics": metrics, "trends": trends}

    # -- queries ----------------------------------------------------------------------------

    async def _totals(
        self, conn: AsyncConnection, org_id: str, w: Windows
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
        c = usage_hourly.c
        rows = await conn.execute(
            select(
                c.hour,
                func.sum(c.sessions_started),
                func.sum(c.sessions_ended),
                func.sum(c.ai_usage_s),
                func.sum(c.detections),
            )
            .where(c.org_id == org_id, c.hour >= w.earliest, c.hour < w.end)
            .group_by(c.hour)
        )
        hourly = [_point() for _ in w.hours]
        daily = [_point() for _ in w.days]
        first_hour = w.hours[0]
        for hour, started, ended, ai, detections in rows:
            values = (int(started or 0), int(ended or 0), float(ai or 0.0), int(detections or 0))
            if hour >= first_hour:
                _add(hourly[int((hour - first_hour) / timedelta(hours=1))], values)
            day = w.day_index(hour)
            if day is not None:
                _add(daily[day], values)
        return hourly, daily, daily[-1]

    async def _active_users(self, conn: AsyncConnection, org_id: str, w: Windows) -> dict[str, int]:
        uh = user_hour.c
        member = and_(_users.c.org_id == uh.org_id, _users.c.id == uh.user_id)
        row = (
            await conn.execute(
                select(
                    func.count(func.distinct(case((uh.hour >= w.week_start, uh.user_id)))),
                    func.count(func.distinct(uh.user_id)),
                    func.count(func.distinct(case((_users.c.active.is_(True), _users.c.id)))),
                )
                .select_from(user_hour.outerjoin(_users, member))
                .where(
                    uh.org_id == org_id,
                    uh.events > 0,
                    uh.hour >= w.month_start,
                    uh.hour < w.end,
                )
            )
        ).one()
        return {"7d": int(row[0]), "30d": int(row[1]), "members30d": int(row[2])}

    async def _users_per_bucket(
        self, conn: AsyncConnection, org_id: str, w: Windows
    ) -> tuple[list[int], list[int]]:
        uh = user_hour.c
        hourly = [0] * len(w.hours)
        rows = await conn.execute(
            select(uh.hour, func.count(func.distinct(uh.user_id)))
            .where(uh.org_id == org_id, uh.events > 0, uh.hour >= w.hours[0], uh.hour < w.end)
            .group_by(uh.hour)
        )
        for hour, n in rows:
            hourly[int((hour - w.hours[0]) / timedelta(hours=1))] = int(n)
        # Local days are contiguous ranges of UTC hours: map each hour to its day in SQL so the
        # database counts distinct users per day (DST days have 23 or 25 hours).
        day = case(
            *[(uh.hour >= start, i) for i, start in reversed(list(enumerate(w.day_starts)))],
            else_=-1,
        )
        daily = [0] * len(w.days)
        rows = await conn.execute(
            select(day.label("day"), func.count(func.distinct(uh.user_id)))
            .where(uh.org_id == org_id, uh.events > 0, uh.hour >= w.month_start, uh.hour < w.end)
            .group_by(day)
        )
        for index, n in rows:
            if 0 <= int(index) < len(daily):
                daily[int(index)] = int(n)
        return hourly, daily

    async def _by_tool(
        self, conn: AsyncConnection, org_id: str, w: Windows, approved: list[str]
    ) -> tuple[list[dict[str, Any]], int, int]:
        c = usage_hourly.c
        rows = await conn.execute(
            select(
                c.tool,
                func.sum(c.detections),
                func.sum(c.detection_duration_s),
                func.count(func.distinct(case((c.detections > 0, c.user_id)))),
                func.sum(case((c.hour >= w.today_start, c.detections), else_=0)),
            )
            .where(c.org_id == org_id, c.tool != "", c.hour >= w.month_start, c.hour < w.end)
            .group_by(c.tool)
        )
        tools: list[dict[str, Any]] = []
        unapproved_today = unapproved_30d = 0
        for tool, detections, seconds, users, today in rows:
            if not detections:
                continue
            ok = is_approved(tool, approved)
            if not ok:
                unapproved_30d += int(detections)
                unapproved_today += int(today or 0)
            tools.append(
                {
                    "tool": tool,
                    "detections": int(detections),
                    "durationSeconds": float(seconds or 0.0),
                    "users": int(users),
                    "detectionsToday": int(today or 0),
                    "approved": ok,
                }
            )
        tools.sort(key=lambda t: (-t["durationSeconds"], -t["detections"], t["tool"]))
        return tools, unapproved_today, unapproved_30d

    async def _by_user(
        self, conn: AsyncConnection, org_id: str, w: Windows
    ) -> list[dict[str, Any]]:
        c = usage_hourly.c
        ai = func.sum(c.ai_usage_s)
        rows = await conn.execute(
            select(c.user_id, func.sum(c.sessions_started), ai, func.sum(c.detections))
            .where(c.org_id == org_id, c.hour >= w.month_start, c.hour < w.end)
            .group_by(c.user_id)
            .order_by(ai.desc(), c.user_id)
            .limit(self._top_users)
        )
        return [
            {
                "userId": user,
                "sessions": int(sessions or 0),
                "aiUsageSeconds": float(seconds or 0.0),
                "detections": int(detections or 0),
            }
            for user, sessions, seconds, detections in rows
        ]

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


def _point() -> dict[str, Any]:
    return {"sessions": 0, "sessionsEnded": 0, "aiUsageSeconds": 0.0, "detections": 0}


def _add(point: dict[str, Any], values: tuple[int, int, float, int]) -> None:
    point["sessions"] += values[0]
    point["sessionsEnded"] += values[1]
    point["aiUsageSeconds"] += values[2]
    point["detections"] += values[3]


__all__ = ["STALE_AFTER", "TOP_USERS", "DashboardService"]
