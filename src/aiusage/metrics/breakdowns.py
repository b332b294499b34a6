"""The dashboard's breakdowns: people, adoption, engagement, teams, devices and shadow AI.

Entry point for :class:`~aiusage.metrics.service.DashboardService`, which merges the result of
:func:`compute_breakdowns` into ``metrics``. Every figure reads rollups over the period
(docs/metrics.md "People, teams and adoption", "Shadow AI"): the cost grows with the activity
in the period and the size of the organization, never with the length of its history.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final

from sqlalchemy.ext.asyncio import AsyncConnection

from aiusage.metrics.adoption import INACTIVE_AFTER, monitored
from aiusage.metrics.devices import by_device
from aiusage.metrics.live import LiveTime
from aiusage.metrics.people import (
    ENGAGED_MIN_DAYS,
    ENGAGED_MIN_SECONDS,
    current_live,
    load_people,
    ranked,
    shown,
)
from aiusage.metrics.shadow_ai import approved_tools, shadow_ai
from aiusage.metrics.span import period_span
from aiusage.metrics.teams import by_team
from aiusage.metrics.windows import Windows

MAX_PEOPLE: Final = 500
"""Rows of ``people`` (the most AI time first)."""
MAX_INACTIVE: Final = 200
"""Rows of ``inactivePeople``."""


async def compute_breakdowns(
    conn: AsyncConnection,
    org_id: str,
    windows: Windows,
    now: datetime,
    *,
    period_days: int,
    approved: Sequence[str] | None = None,
    live: LiveTime | None = None,
) -> dict[str, Any]:
    """The breakdown fields of ``metrics`` for ``org_id`` (camelCase, JSON-ready).

    Args:
        conn: A read connection (the snapshot's).
        windows: The snapshot's windows (zone of the days, end of the current hour).
        now: The snapshot instant (``windows.now``); "inactive" counts back from it.
        period_days: 7, 30 or 90: the period of every per-period figure.
        approved: The organization's approved tools (shadow AI is the rest); None: read
            from the organization.
        live: The live part of open sessions (docs/metrics.md §6 "Live part at snapshot
            time") as the snapshot computed it for its totals, so people and teams add up to
            the tiles; None: computed here with the default staleness rule.

    Raises:
        ValidationError: Unknown period, or a local midnight of the period that is not a
            whole UTC hour.
    """
    span = period_span(windows, period_days)
    if approved is None:
        approved = await approved_tools(conn, org_id)
    if live is None:
        live = await current_live(conn, org_id, now)
    people = await load_people(conn, org_id, span, live, now)
    watch = await monitored(conn, org_id, people)
    numerator, rate = watch.adoption(people.values())
    listed = ranked(shown(people, watch.watched))
    users = [p for p in listed if p.uses_ai]
    engaged = sum(1 for p in users if p.engaged)
    quiet = watch.inactive(now - INACTIVE_AFTER)
    return {
        "monitoredPeople": watch.count,
        "monitoredBasis": watch.basis,
        "adoptionNumerator": numerator,
        "adoptionRate": rate,
        "engagedUsers": engaged,
        "casualUsers": len(users) - engaged,
        "engagement": {
            "engagedMinSeconds": ENGAGED_MIN_SECONDS,
            "engagedMinDays": ENGAGED_MIN_DAYS,
        },
        "people": [p.as_json() for p in listed[:MAX_PEOPLE]],
        "inactivePeople": [
            {
                "userId": p.user_id,
                "email": p.email,
                "team": p.team,
                "lastActivity": p.as_json()["lastActivity"],
            }
            for p in quiet[:MAX_INACTIVE]
        ],
        "inactiveCount": len(quiet),
        "byTeam": by_team(listed),
        "byDevice": await by_device(conn, org_id, span),
        "shadowAi": await shadow_ai(conn, org_id, span, approved, week_start=windows.week_start),
    }


__all__ = ["MAX_INACTIVE", "MAX_PEOPLE", "compute_breakdowns"]
