"""Breakdown by device: AI time and sessions per agent device over the period.

Reads ``metrics_device_hour`` over the period's ``(org_id, hour)`` prefix, and the agents of
the organization for the device's name, owner and last report (docs/metrics.md "People, teams
and adoption"). A device's AI time is the sum over its people of each one's union time on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from aiusage.metrics.jsonvalues import iso, seconds
from aiusage.metrics.span import Span
from aiusage.metrics.tables import device_hour
from aiusage.store.tables import agents as _agents

MAX_DEVICES: Final = 50
"""Rows of ``byDevice`` (the most AI time first)."""


@dataclass(slots=True)
class _Device:
    device_id: str
    ai_seconds: float = 0.0
    sessions: int = 0
    top_user: str | None = None
    top_seconds: float = -1.0


async def by_device(conn: AsyncConnection, org_id: str, span: Span) -> list[dict[str, Any]]:
    """``[{deviceId, userId, name, aiSeconds, sessions, lastSeen}]``, most AI time first.

    ``userId`` is the device's enrolled owner, else the person with the most AI time on it in
    the period; ``lastSeen`` is when the device last reported (null for a device id that an
    agent named in its events but that never reported itself).
    """
    h = device_hour.c
    devices: dict[str, _Device] = {}
    for device_id, user_id, used, sessions in await conn.execute(
        select(h.device_id, h.user_id, func.sum(h.ai_s), func.sum(h.sessions))
        .where(h.org_id == org_id, h.hour >= span.start, h.hour < span.end)
        .group_by(h.device_id, h.user_id)
    ):
        device = devices.get(device_id)
        if device is None:
            device = devices[device_id] = _Device(device_id)
        used = float(used or 0.0)
        device.ai_seconds += used
        device.sessions += int(sessions or 0)
        if (used, user_id) > (device.top_seconds, device.top_user or ""):
            device.top_user, device.top_seconds = user_id, used
    top = sorted(devices.values(), key=lambda d: (-d.ai_seconds, -d.sessions, d.device_id))
    top = top[:MAX_DEVICES]
    if not top:
        return []
    a = _agents.c
    agents = {
        row.id: row
        for row in await conn.execute(
            select(a.id, a.user_id, a.name, a.last_seen_at).where(
                a.org_id == org_id, a.id.in_([d.device_id for d in top])
            )
        )
    }
    result = []
    for d in top:
        agent = agents.get(d.device_id)
        result.append(
            {
                "deviceId": d.device_id,
                "userId": (agent.user_id if agent is not None else None) or d.top_user,
                "name": agent.name if agent is not None else "",
                "aiSeconds": seconds(d.ai_seconds),
                "sessions": d.sessions,
                "lastSeen": iso(agent.last_seen_at) if agent is not None else None,
            }
        )
    return result


__all__ = ["MAX_DEVICES", "by_device"]
