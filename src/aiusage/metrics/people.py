"""Per-person figures over a span: AI and session time, sessions, detections, last activity.

One function, :func:`load_people`, feeds the dashboard's ``people``, ``inactivePeople``,
``byTeam``, engagement and adoption figures, and the "people" export, so they all follow the
same definitions (docs/metrics.md "People, teams and adoption"). It reads only rollups and the
organization's own rows (users, agents), through ``(org_id, hour)`` prefixes bounded by the
span, and one row per person for the last activity:

* ``metrics_person_hour``: union AI and session seconds per person and UTC hour;
* ``usage_hourly``: sessions started and detections per person and hour;
* ``metrics_user_hour``: the hours in which each person had an activity moment;
* ``metrics_person_seen``: each person's latest activity moment, over all history.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, Final

from sqlalchemy import Select, bindparam, case, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from aiusage.metrics.jsonvalues import iso, seconds
from aiusage.metrics.live import LiveTime, live_time
from aiusage.metrics.rollup import usage_hourly
from aiusage.metrics.span import Span, day_index
from aiusage.metrics.tables import person_hour, person_seen, user_hour
from aiusage.store.tables import agents as _agents
from aiusage.store.tables import users as _users

ENGAGED_MIN_SECONDS: Final = 3600.0
"""Engaged: at least this much AI time in the period..."""
ENGAGED_MIN_DAYS: Final = 3
"""...and AI time on at least this many distinct days of the period."""


@dataclass(slots=True)
class Person:
    """One person's figures over a span, and what the organization knows about them.

    Attributes:
        user_id: The person's id.
        email, team: From ``users`` (None: unknown, or no team: "Unassigned").
        member: The user exists and is not deactivated.
        enrolled: Owns an enrolled, non-revoked agent device.
        reported: An agent has reported for this person at least once (ever).
        ai_seconds: Union of their detection intervals inside the span.
        session_seconds: Union of their session intervals (and standalone detections).
        ai_days: Days of the span with AI time.
        sessions: Sessions started in the span.
        detections: Detections made in the span.
        active: At least one activity moment (session start/end, detection) in the span.
        last_activity: Their latest activity moment over all history (None: never).
    """

    user_id: str
    email: str | None = None
    team: str | None = None
    member: bool = False
    enrolled: bool = False
    reported: bool = False
    ai_seconds: float = 0.0
    session_seconds: float = 0.0
    ai_days: int = 0
    sessions: int = 0
    detections: int = 0
    active: bool = False
    last_activity: datetime | None = None

    @property
    def engaged(self) -> bool:
        """AI time of at least 1 h on at least 3 distinct days of the span."""
        return self.ai_seconds >= ENGAGED_MIN_SECONDS and self.ai_days >= ENGAGED_MIN_DAYS

    @property
    def uses_ai(self) -> bool:
        """Some AI time in the span."""
        return self.ai_seconds > 0

    def as_json(self) -> dict[str, Any]:
        """The person as in ``metrics.people`` and the people export (camelCase)."""
        return {
            "userId": self.user_id,
            "email": self.email,
            "team": self.team,
            "aiSeconds": seconds(self.ai_seconds),
            "sessionSeconds": seconds(self.session_seconds),
            "sessions": self.sessions,
            "detections": self.detections,
            "lastActivity": iso(self.last_activity),
            "engaged": self.engaged,
        }


@cache
def _times(days: int) -> Select[Any]:
    # AI and session time, and days with AI time, per person over a span of ``days`` days.
    ph = person_hour.c
    return (
        select(
            ph.user_id,
            func.sum(ph.ai_s),
            func.sum(ph.session_s),
            func.count(func.distinct(case((ph.ai_s > 0, day_index(ph.hour, days))))),
        )
        .where(
            ph.org_id == bindparam("org"),
            ph.hour >= bindparam("start"),
            ph.hour < bindparam("end"),
        )
        .group_by(ph.user_id)
    )


async def current_live(conn: AsyncConnection, org_id: str, now: datetime) -> LiveTime:
    """The live part of session time at ``now`` with the default staleness rule (for readers
    other than the snapshot, which passes its own)."""
    # Imported here: the service imports the breakdowns, which import this module.
    from aiusage.metrics.service import STALE_AFTER

    return await live_time(conn, org_id, now, STALE_AFTER)


async def load_people(
    conn: AsyncConnection, org_id: str, span: Span, live: LiveTime, now: datetime
) -> dict[str, Person]:
    """Every person the organization knows or has figures for, by id.

    ``live`` is the live part of open sessions at ``now`` (docs/metrics.md §6 "Live part at
    snapshot time"): its seconds inside the span are added to the stored session time, and,
    when the span holds ``now``, a person with an active session is active, as in the
    snapshot's totals.

    People without a ``users`` row (not expected: ingestion creates one per reported id) are
    kept with ``member`` False, so sums over people still equal the organization's totals.
    """
    people: dict[str, Person] = {}

    def person(user_id: str) -> Person:
        found = people.get(user_id)
        if found is None:
            found = people[user_id] = Person(user_id)
        return found

    u = _users.c
    for user_id, email, team, active, last_seen in await conn.execute(
        select(u.id, u.email, u.team, u.active, u.last_seen_at).where(u.org_id == org_id)
    ):
        p = person(user_id)
        p.email, p.team, p.member, p.reported = email, team, bool(active), last_seen is not None

    a = _agents.c
    for (user_id,) in await conn.execute(
        select(a.user_id)
        .where(a.org_id == org_id, a.user_id.is_not(None), a.revoked_at.is_(None))
        .distinct()
    ):
        person(user_id).enrolled = True

    for user_id, ai, session, days in await conn.execute(
        _times(len(span.day_starts)), {"org": org_id, **span.params()}
    ):
        p = person(user_id)
        p.ai_seconds, p.session_seconds = float(ai or 0.0), float(session or 0.0)
        p.ai_days = int(days or 0)

    lo, hi = span.start.timestamp(), span.end.timestamp()
    for user_id in live.extra:
        person(user_id).session_seconds += live.seconds(user_id, lo, hi)
    if span.start <= now < span.end:
        for user_id in live.active:
            person(user_id).active = True

    c = usage_hourly.c
    for user_id, sessions, detections in await conn.execute(
        select(c.user_id, func.sum(c.sessions_started), func.sum(c.detections))
        .where(c.org_id == org_id, c.hour >= span.start, c.hour < span.end)
        .group_by(c.user_id)
    ):
        p = person(user_id)
        p.sessions, p.detections = int(sessions or 0), int(detections or 0)

    uh = user_hour.c
    for (user_id,) in await conn.execute(
        select(uh.user_id)
        .where(uh.org_id == org_id, uh.events > 0, uh.hour >= span.start, uh.hour < span.end)
        .distinct()
    ):
        person(user_id).active = True

    seen = person_seen.c
    for user_id, last in await conn.execute(
        select(seen.user_id, seen.last_seen).where(seen.org_id == org_id)
    ):
        person(user_id).last_activity = last
    return people


def shown(people: dict[str, Person], watched: Iterable[Person]) -> list[Person]:
    """The people a breakdown lists: those watched for activity, plus anyone with a figure in
    the span (a removed user's past usage still counts in the totals)."""
    ids = {p.user_id for p in watched}
    return [
        p
        for p in people.values()
        if p.user_id in ids
        or p.active
        or p.ai_seconds > 0
        or p.session_seconds > 0
        or p.sessions
        or p.detections
    ]


def ranked(people: list[Person]) -> list[Person]:
    """People by AI time, then session time, descending, then by id (a stable order)."""
    return sorted(people, key=lambda p: (-p.ai_seconds, -p.session_seconds, p.user_id))


__all__ = [
    "ENGAGED_MIN_DAYS",
    "ENGAGED_MIN_SECONDS",
    "Person",
    "current_live",
    "load_people",
    "ranked",
    "shown",
]
