"""The live part of session time: open, active sessions accrue up to now at snapshot time.

The rollups store an open session up to its last activity ``L``. At snapshot time each active
session (not stale, docs/metrics.md ``activeSessions``) extends to now: its tail ``[L, now]``,
**minus** what the person's stored session cover already holds, is added to the person's
session time, split by UTC hour (docs/metrics.md "Live part at snapshot time"). Reads are
bounded: open sessions active in the last ``stale_after`` and cover rows ending after their
``L``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncConnection

from aiusage.metrics.cover import SESSION
from aiusage.metrics.intervals import Interval, split_by_hour, subtract
from aiusage.metrics.tables import cover, open_sessions
from aiusage.store.repositories import in_list


@dataclass(frozen=True, slots=True)
class LiveTime:
    """What active sessions add at the snapshot instant.

    Attributes:
        active: People with at least one active session (active in the current hour).
        extra: Session seconds added per person and UTC hour (epoch second of the hour).
    """

    active: frozenset[str] = frozenset()
    extra: dict[str, dict[float, float]] = field(default_factory=dict)

    def seconds(self, user: str, start: float, end: float) -> float:
        """Extra seconds of ``user`` in the hours ``[start, end)`` (epoch seconds)."""
        return sum(s for h, s in self.extra.get(user, {}).items() if start <= h < end)

    def hours(self) -> dict[float, float]:
        """Extra seconds of everyone per UTC hour."""
        total: dict[float, float] = defaultdict(float)
        for per_hour in self.extra.values():
            for hour, seconds in per_hour.items():
                total[hour] += seconds
        return total


async def live_time(
    conn: AsyncConnection, org_id: str, now: datetime, stale_after: timedelta
) -> LiveTime:
    """The live session time of ``org_id`` at ``now`` (see the module docstring)."""
    o = open_sessions.c
    at = now.timestamp()
    rows = (
        await conn.execute(
            select(o.user_id, o.last_activity).where(
                o.org_id == org_id,
                o.last_activity >= at - stale_after.total_seconds(),
                o.start_time.is_not(None),
                o.start_time <= at,
                o.user_id.is_not(None),
            )
        )
    ).all()
    if not rows:
        return LiveTime()
    tails: dict[str, list[Interval]] = defaultdict(list)
    for user, last in rows:
        tails[str(user)].append((float(last), at))
    lo = min(float(last) for _, last in rows)
    c = cover.c
    stored: dict[str, list[Interval]] = defaultdict(list)
    found = await conn.execute(
        select(c.user_id, c.start_s, c.end_s).where(
            c.org_id == bindparam("org"),
            in_list(conn.dialect.name, c.user_id, "users"),
            c.dim == SESSION,
            c.end_s >= bindparam("lo"),
            c.start_s <= bindparam("at"),
        ),
        {"org": org_id, "users": sorted(tails), "lo": lo, "at": at},
    )
    for user, start, end in found:
        stored[str(user)].append((float(start), float(end)))
    extra: dict[str, dict[float, float]] = {}
    for user, intervals in tails.items():
        per_hour = split_by_hour(subtract(intervals, stored.get(user, [])))
        if per_hour:
            extra[user] = per_hour
    return LiveTime(active=frozenset(tails), extra=extra)


__all__ = ["LiveTime", "live_time"]
