"""An independent oracle of the dashboard KPIs: plain Python over the raw rows.

It follows docs/metrics.md ("Time model", "metrics", "trends") without any code of
``aiusage.metrics``: union measures are computed by coordinate compression (every elementary
segment between two endpoints is covered or not), not by merging sorted intervals as the
rollups do, and everything is recomputed from ``ai_sessions`` / ``ai_detections`` / ``users``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from aiusage.metrics.service import DashboardService

HOUR = timedelta(hours=1)
STALE = timedelta(hours=2)
CAP = 24 * 3600.0
TOP = 20
TOL = 0.01


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def covered(intervals: list[tuple[float, float]], a: float, b: float) -> float:
    """Length of (union of intervals) ∩ [a, b), by coordinate compression."""
    points = {a, b}
    for s, e in intervals:
        if e > s:
            points.update(p for p in (s, e) if a < p < b)
    ordered = sorted(points)
    total = 0.0
    for lo, hi in zip(ordered, ordered[1:], strict=False):
        mid = (lo + hi) / 2
        if any(s <= mid <= e and e > s for s, e in intervals):
            total += hi - lo
    return total


@dataclass
class Raw:
    sessions: dict  # id -> dict(user, start, end, device)
    detections: list  # dicts(user, session_id, tool, dur, at, device)
    users: dict  # id -> dict(active, email, team)


async def load_raw(db, org: str) -> Raw:
    def ts(v):
        if isinstance(v, str):
            v = datetime.fromisoformat(v)
        if v.tzinfo is None:
            v = v.replace(tzinfo=UTC)
        return v.timestamp()

    async with db.read() as conn:
        sessions = {
            r.id: {
                "user": r.user_id,
                "start": ts(r.start_time),
                "end": ts(r.end_time) if r.end_time else None,
            }
            for r in await conn.execute(
                text("SELECT id, user_id, start_time, end_time FROM ai_sessions WHERE org_id = :o"),
                {"o": org},
            )
        }
        detections = [
            {
                "user": r.user_id,
                "session": r.session_id,
                "tool": r.tool,
                "dur": float(r.duration_s),
                "at": ts(r.detected_at),
            }
            for r in await conn.execute(
                text(
                    "SELECT user_id, session_id, tool, duration_s, detected_at FROM ai_detections "
                    "WHERE org_id = :o"
                ),
                {"o": org},
            )
        ]
        users = {
            r.id: {"active": bool(r.active), "email": r.email, "team": r.team}
            for r in await conn.execute(
                text("SELECT id, active, email, team FROM users WHERE org_id = :o"), {"o": org}
            )
        }
    return Raw(sessions, detections, users)


def oracle(raw: Raw, now: datetime, tz: str | None, period_days: int, approved: list[str]) -> dict:
    zone = ZoneInfo(tz) if tz else UTC
    t_now = now.timestamp()
    end = (now.replace(minute=0, second=0, microsecond=0) + HOUR).timestamp()
    today = now.astimezone(zone).date()

    def midnight(days_ago: int) -> float:
        return datetime.combine(today - timedelta(days=days_ago), time(0), zone).timestamp()

    day_bounds = [
        (midnight(period_days - 1 - i), midnight(period_days - 2 - i)) for i in range(period_days)
    ]
    day_bounds[-1] = (day_bounds[-1][0], end)
    hours = [(end - 3600 * (24 - i), end - 3600 * (23 - i)) for i in range(24)]

    # Last activity of open sessions, and which are active (not stale).
    last: dict[str, float] = {}
    for sid, s in raw.sessions.items():
        if s["end"] is None:
            last[sid] = max([s["start"]] + [d["at"] for d in raw.detections if d["session"] == sid])
    active = {
        sid
        for sid, s in raw.sessions.items()
        if s["end"] is None and s["start"] <= t_now and last[sid] >= t_now - STALE.total_seconds()
    }

    def session_iv(sid: str) -> tuple[float, float]:
        s = raw.sessions[sid]
        if s["end"] is not None:
            return (s["start"], s["end"])
        if sid in active:
            return (s["start"], max(last[sid], t_now))
        return (s["start"], last[sid])

    people = (
        set(raw.users)
        | {s["user"] for s in raw.sessions.values()}
        | {d["user"] for d in raw.detections}
    )
    ai_iv: dict[str, list] = {p: [] for p in people}
    sess_iv: dict[str, list] = {p: [] for p in people}
    tool_iv: dict[tuple[str, str], list] = {}
    moments: dict[str, list[float]] = {p: [] for p in people}
    for sid, s in raw.sessions.items():
        sess_iv[s["user"]].append(session_iv(sid))
        moments[s["user"]].append(s["start"])
        if s["end"] is not None:
            moments[s["user"]].append(s["end"])
    for d in raw.detections:
        iv = (d["at"] - min(d["dur"], CAP), d["at"])
        moments[d["user"]].append(d["at"])
        if d["session"] in raw.sessions:
            s = raw.sessions[d["session"]]
            lo, hi = s["start"], s["end"] if s["end"] is not None else float("inf")
            iv = (max(iv[0], lo), min(iv[1], hi))
        else:
            sess_iv[d["user"]].append(iv)
        if iv[1] > iv[0]:
            ai_iv[d["user"]].append(iv)
            tool_iv.setdefault((d["user"], d["tool"]), []).append(iv)
    live_people = {raw.sessions[sid]["user"] for sid in active}

    def is_active(p: str, a: float, b: float) -> bool:
        if any(a <= m < b for m in moments[p]):
            return True
        if covered(sess_iv[p], a, b) > 0:
            return True
        return p in live_people and a <= t_now < b

    def point(a: float, b: float) -> dict:
        return {
            "sessions": sum(1 for s in raw.sessions.values() if a <= s["start"] < b),
            "sessionsEnded": sum(
                1 for s in raw.sessions.values() if s["end"] is not None and a <= s["end"] < b
            ),
            "detections": sum(1 for d in raw.detections if a <= d["at"] < b),
            "aiSeconds": sum(covered(ai_iv[p], a, b) for p in people),
            "sessionSeconds": sum(covered(sess_iv[p], a, b) for p in people),
            "activeUsers": sum(1 for p in people if is_active(p, a, b)),
        }

    period_start = day_bounds[0][0]
    today_start = day_bounds[-1][0]

    def window_users(start: float) -> int:
        return sum(1 for p in people if is_active(p, start, end))

    is_ok = {t.strip().casefold() for t in approved}

    def unapproved(start: float) -> int:
        return sum(
            1
            for d in raw.detections
            if start <= d["at"] < end and d["tool"].strip().casefold() not in is_ok
        )

    tools = {}
    for tool in sorted({d["tool"] for d in raw.detections if period_start <= d["at"] < end}):
        in_period = [
            d for d in raw.detections if d["tool"] == tool and period_start <= d["at"] < end
        ]
        every = [d["at"] for d in raw.detections if d["tool"] == tool]
        tools[tool] = {
            "aiSeconds": sum(
                covered(tool_iv.get((p, tool), []), period_start, end) for p in people
            ),
            "detections": len(in_period),
            "users": len({d["user"] for d in in_period}),
            "detectionsToday": sum(1 for d in in_period if d["at"] >= today_start),
            "approved": tool.strip().casefold() in is_ok,
            "firstSeen": min(every),
            "lastSeen": max(every),
        }
    by_user = []
    for p in people:
        row = {
            "userId": p,
            "aiSeconds": covered(ai_iv[p], period_start, end),
            "sessionSeconds": covered(sess_iv[p], period_start, end),
            "sessions": sum(
                1
                for s in raw.sessions.values()
                if s["user"] == p and period_start <= s["start"] < end
            ),
            "detections": sum(
                1 for d in raw.detections if d["user"] == p and period_start <= d["at"] < end
            ),
            "lastActivity": max(moments[p]) if moments[p] else None,
        }
        if row["aiSeconds"] > 0 or row["sessions"] or row["detections"]:
            by_user.append(row)
    ai_users = sum(1 for p in people if covered(ai_iv[p], period_start, end) > 0)
    period_point = point(period_start, end)
    return {
        "activeSessions": len(active),
        "today": point(today_start, end),
        "period": period_point,
        "activeUsers": {
            "7d": window_users(midnight(6)),
            "30d": window_users(midnight(29)),
            "90d": window_users(midnight(89)),
            "period": window_users(period_start),
        },
        "aiUsersPeriod": ai_users,
        "totalUsers": sum(1 for u in raw.users.values() if u["active"]),
        "unapprovedToday": unapproved(today_start),
        "unapproved30d": unapproved(midnight(29)),
        "tools": tools,
        "byUser": sorted(by_user, key=lambda r: (-round(r["aiSeconds"], 3), r["userId"]))[:TOP],
        "hourly": [point(a, b) for a, b in hours],
        "hours": [datetime.fromtimestamp(a, UTC) for a, _ in hours],
        "daily": [point(a, b) for a, b in day_bounds],
        "dates": [today - timedelta(days=period_days - 1 - i) for i in range(period_days)],
        # per person and bucket, for the invariants
        "people": people,
        "ai_iv": ai_iv,
        "sess_iv": sess_iv,
        "tool_iv": tool_iv,
    }


def close(actual: float, expected: float) -> bool:
    return actual == pytest.approx(expected, abs=TOL)


def assert_point(got: dict, want: dict, where: str) -> None:
    for key in ("sessions", "sessionsEnded", "detections", "activeUsers"):
        assert got[key] == want[key], (where, key, got, want)
    for key in ("aiSeconds", "sessionSeconds"):
        assert close(got[key], want[key]), (where, key, got[key], want[key])
    assert got["aiUsageSeconds"] == got["aiSeconds"]
    assert got["aiSeconds"] <= got["sessionSeconds"] + TOL, where


async def check(
    db, org: str, now: datetime, tz: str | None, period: str, approved: list[str]
) -> dict:
    """Assert that the snapshot of ``org`` at ``now`` equals the oracle; return it."""
    days = int(period[:-1])
    snap = await DashboardService(db, clock=lambda: now).snapshot(org, tz=tz, period=period)
    want = oracle(await load_raw(db, org), now, tz, days, approved)
    m, trends = snap["metrics"], snap["trends"]
    where = f"{org} at {now} tz={tz} period={period}"
    assert m["period"] == period and m["periodDays"] == days
    assert m["activeSessions"] == want["activeSessions"], where
    assert m["sessionsToday"] == want["today"]["sessions"], where
    assert m["sessionsEndedToday"] == want["today"]["sessionsEnded"], where
    assert m["detectionsToday"] == want["today"]["detections"], where
    assert close(m["aiSecondsToday"], want["today"]["aiSeconds"]), where
    assert m["aiUsageSecondsToday"] == m["aiSecondsToday"]
    assert close(m["sessionSecondsToday"], want["today"]["sessionSeconds"]), where
    assert close(m["aiSecondsPeriod"], want["period"]["aiSeconds"]), where
    assert close(m["sessionSecondsPeriod"], want["period"]["sessionSeconds"]), where
    assert m["activeUsersToday"] == want["today"]["activeUsers"], where
    for name, key in (
        ("7d", "activeUsers7d"),
        ("30d", "activeUsers30d"),
        ("90d", "activeUsers90d"),
        ("period", "activeUsersPeriod"),
    ):
        assert m[key] == want["activeUsers"][name], (where, key)
    assert m["aiUsersPeriod"] == want["aiUsersPeriod"], where
    if want["aiUsersPeriod"]:
        assert close(
            m["aiSecondsPerActiveUser"], want["period"]["aiSeconds"] / want["aiUsersPeriod"]
        )
    else:
        assert m["aiSecondsPerActiveUser"] is None
    assert m["totalUsers"] == want["totalUsers"]
    assert m["unapprovedDetectionsToday"] == want["unapprovedToday"], where
    assert m["unapprovedDetections30d"] == want["unapproved30d"], where
    tools = {t["tool"]: t for t in m["usageByTool"]}
    assert set(tools) == set(want["tools"]), where
    for tool, expected in want["tools"].items():
        got = tools[tool]
        assert close(got["aiSeconds"], expected["aiSeconds"]), (where, tool)
        assert got["durationSeconds"] == got["aiSeconds"]
        for key in ("detections", "users", "detectionsToday", "approved"):
            assert got[key] == expected[key], (where, tool, key)
        assert got["firstSeen"] == iso(datetime.fromtimestamp(expected["firstSeen"], UTC))
        assert got["lastSeen"] == iso(datetime.fromtimestamp(expected["lastSeen"], UTC))
        # Tool time never exceeds the AI time of the period (a tool's union ⊂ each person's).
        assert got["aiSeconds"] <= m["aiSecondsPeriod"] + TOL
    assert [u["userId"] for u in m["usageByUser"]] == [u["userId"] for u in want["byUser"]], where
    for got, expected in zip(m["usageByUser"], want["byUser"], strict=True):
        for key in ("aiSeconds", "sessionSeconds"):
            assert close(got[key], expected[key]), (where, got["userId"], key)
        assert (
            got["sessions"] == expected["sessions"] and got["detections"] == expected["detections"]
        )
        assert got["lastActivity"] == iso(datetime.fromtimestamp(expected["lastActivity"], UTC))
        assert got["aiSeconds"] <= got["sessionSeconds"] + TOL
    assert [p["hour"] for p in trends["hourly"]] == [iso(h) for h in want["hours"]]
    for i, (got, expected) in enumerate(zip(trends["hourly"], want["hourly"], strict=True)):
        assert_point(got, expected, f"{where} hour {i}")
        assert got["sessionSeconds"] <= 3600 * max(1, got["activeUsers"]) + TOL
    assert [p["date"] for p in trends["daily"]] == [d.isoformat() for d in want["dates"]]
    for i, (got, expected) in enumerate(zip(trends["daily"], want["daily"], strict=True)):
        assert_point(got, expected, f"{where} day {i}")
    return snap
