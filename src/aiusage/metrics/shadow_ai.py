"""Shadow AI: the tools in use that are not on the organization's approved list.

For each unapproved tool (docs/metrics.md "Shadow AI"): the distinct people who used it in
the period and ever, its detections and AI time in the period, when the organization first
and last saw it (over all history), and whether it was first seen in the last 7 days.

Reads ``metrics_tool_seen`` (one row per tool and person: bounded by tools x people, not by
history) and ``metrics_tool_hour`` over the period's ``(org_id, hour)`` prefix.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from aiusage.metrics.jsonvalues import iso, seconds
from aiusage.metrics.span import Span
from aiusage.metrics.tables import tool_hour, tool_seen
from aiusage.metrics.windows import is_approved
from aiusage.store.tables import organizations as _orgs

MAX_TOOLS: Final = 100
"""Rows of ``shadowAi.tools`` (the most used first)."""


async def approved_tools(conn: AsyncConnection, org_id: str) -> list[str]:
    """The organization's approved list (empty for an unknown organization)."""
    found = (
        await conn.execute(select(_orgs.c.approved_tools).where(_orgs.c.id == org_id))
    ).scalar_one_or_none()
    return [str(t) for t in found or ()]


@dataclass(slots=True)
class _Tool:
    tool: str
    first_seen: datetime
    last_seen: datetime
    people_ever: int
    people: int = 0
    detections: int = 0
    ai_seconds: float = 0.0


async def shadow_ai(
    conn: AsyncConnection,
    org_id: str,
    span: Span,
    approved: Sequence[str],
    *,
    week_start: datetime,
) -> dict[str, Any]:
    """``{"tools": [...], "newThisWeek": [...]}`` for ``org_id``.

    Args:
        span: The period of the per-period figures (people, detections, aiSeconds).
        approved: The organization's approved list (compared case-insensitively).
        week_start: Tools first seen at or after this instant are "new this week".
    """
    s = tool_seen.c
    tools: dict[str, _Tool] = {}
    for tool, first, last, people in await conn.execute(
        select(s.tool, func.min(s.first_seen), func.max(s.last_seen), func.count(s.user_id))
        .where(s.org_id == org_id)
        .group_by(s.tool)
    ):
        if not is_approved(tool, approved):
            tools[tool] = _Tool(tool, first, last, int(people))
    if tools:
        h = tool_hour.c
        used = or_(h.ai_s > 0, h.detections > 0)
        for tool, people, detections, spent in await conn.execute(
            select(
                h.tool,
                func.count(func.distinct(case((used, h.user_id)))),
                func.sum(h.detections),
                func.sum(h.ai_s),
            )
            .where(h.org_id == org_id, h.hour >= span.start, h.hour < span.end)
            .group_by(h.tool)
        ):
            found = tools.get(tool)
            if found is not None:
                found.people = int(people)
                found.detections = int(detections or 0)
                found.ai_seconds = float(spent or 0.0)
    ordered = sorted(
        tools.values(),
        key=lambda t: (-t.people, -t.detections, -t.last_seen.timestamp(), t.tool),
    )
    fresh = sorted(
        (t for t in tools.values() if t.first_seen >= week_start),
        key=lambda t: (-t.first_seen.timestamp(), t.tool),
    )
    return {
        "tools": [
            {
                "tool": t.tool,
                "people": t.people,
                "peopleAllTime": t.people_ever,
                "detections": t.detections,
                "aiSeconds": seconds(t.ai_seconds),
                "firstSeen": iso(t.first_seen),
                "lastSeen": iso(t.last_seen),
                "newThisWeek": t.first_seen >= week_start,
            }
            for t in ordered[:MAX_TOOLS]
        ],
        "newThisWeek": [t.tool for t in fresh],
    }


__all__ = ["MAX_TOOLS", "approved_tools", "shadow_ai"]
