"""Rows of a "people" export: one row per person over [from, to), from the rollups.

The figures are those of the dashboard's ``people`` list (same time model, same rollups, same
code: :func:`aiusage.metrics.people.load_people`), over a range of whole UTC hours with UTC
days for the engagement rule (docs/metrics.md "Exports").
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any, Final

from aiusage.metrics.adoption import monitored
from aiusage.metrics.people import current_live, load_people, ranked, shown
from aiusage.metrics.span import utc_span
from aiusage.store.database import Database

PEOPLE_COLUMNS: Final = (
    "userId",
    "email",
    "team",
    "aiSeconds",
    "sessionSeconds",
    "sessions",
    "detections",
    "engaged",
    "lastActivity",
)
"""Columns of a people export (``team`` empty: unassigned; ``lastActivity``: the person's
latest activity moment known when the export runs, empty: never)."""


async def people_rows(
    db: Database,
    org_id: str,
    start: datetime,
    end: datetime,
    *,
    chunk: int,
    clock: Callable[[], datetime],
) -> AsyncIterator[list[dict[str, Any]]]:
    """Yield the people of ``org_id`` over ``[start, end)`` in chunks of ``chunk`` rows, most
    AI time first. Open sessions count live up to ``clock()``, as on the dashboard.

    Raises:
        ValidationError: ``start``/``end`` are not whole UTC hours, or out of order.
    """
    span = utc_span(start, end)
    now = clock()
    async with db.read() as conn:
        live = await current_live(conn, org_id, now)
        people = await load_people(conn, org_id, span, live, now)
        watch = await monitored(conn, org_id, people)
    rows = [
        {name: p.as_json()[name] for name in PEOPLE_COLUMNS}
        for p in ranked(shown(people, watch.watched))
    ]
    for i in range(0, len(rows), chunk):
        yield rows[i : i + chunk]


__all__ = ["PEOPLE_COLUMNS", "people_rows"]
