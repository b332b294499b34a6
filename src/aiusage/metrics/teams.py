"""Breakdown by team: people, active people, AI and session time per ``users.team``.

People without a team are grouped under ``team: null`` (shown as "Unassigned"). A person's
figures are their own union times, so a team's AI time is the sum over its people and the
teams add up to the organization's total (docs/metrics.md "People, teams and adoption").
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from aiusage.metrics.jsonvalues import seconds
from aiusage.metrics.people import Person


def by_team(people: Iterable[Person]) -> list[dict[str, Any]]:
    """``[{team, people, activePeople, aiUsers, aiSeconds, sessionSeconds}]``, most AI time
    first, "Unassigned" last among equals.

    ``activePeople`` counts people with an activity moment or some session time in the
    period; ``aiUsers`` those with AI time.
    """
    teams: dict[str | None, dict[str, Any]] = {}
    for p in people:
        row = teams.get(p.team)
        if row is None:
            row = teams[p.team] = {
                "team": p.team,
                "people": 0,
                "activePeople": 0,
                "aiUsers": 0,
                "aiSeconds": 0.0,
                "sessionSeconds": 0.0,
            }
        row["people"] += 1
        row["activePeople"] += int(p.active or p.session_seconds > 0 or p.ai_seconds > 0)
        row["aiUsers"] += int(p.uses_ai)
        row["aiSeconds"] += p.ai_seconds
        row["sessionSeconds"] += p.session_seconds
    ordered = sorted(
        teams.values(),
        key=lambda t: (-t["aiSeconds"], t["team"] is None, t["team"] or ""),
    )
    for t in ordered:
        t["aiSeconds"], t["sessionSeconds"] = seconds(t["aiSeconds"]), seconds(t["sessionSeconds"])
    return ordered


__all__ = ["by_team"]
