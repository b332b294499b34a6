"""A range of whole UTC hours cut into days: the period of a breakdown or of a people export.

Breakdowns read hourly rollups, so a range must start and end on whole UTC hours, and a "day"
is a run of hours starting at a local midnight (23 or 25 hours on daylight-saving days).
:func:`period_span` takes the dashboard's 7/30/90-day period from a snapshot's
:class:`~aiusage.metrics.windows.Windows` (which checks the zone's midnights);
:func:`utc_span` builds an export's range.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

from sqlalchemy import bindparam, case

from aiusage.errors import ValidationError
from aiusage.metrics.rollup import hour_of
from aiusage.metrics.windows import PERIODS, Windows

MAX_SPAN_DAYS = 366
"""Longest export range: a day is one branch of the SQL day mapping."""


@dataclass(frozen=True, slots=True)
class Span:
    """The hour buckets ``[start, end)`` and the days they fall into.

    Attributes:
        start: First hour bucket (UTC, whole hour).
        end: Exclusive end (UTC, whole hour).
        day_starts: UTC instants starting each day of the span, ascending; ``day_starts[0]``
            is ``start``.
    """

    start: datetime
    end: datetime
    day_starts: tuple[datetime, ...]

    def params(self) -> dict[str, datetime]:
        """Bind values of a statement built with :func:`day_index` (and ``start``/``end``)."""
        values = {f"day{i}": moment for i, moment in enumerate(self.day_starts)}
        values["start"], values["end"] = self.start, self.end
        return values


def day_index(column: Any, days: int) -> Any:
    """SQL expression: the index of the day holding the hour bucket ``column`` (-1 before the
    first day), for a span of ``days`` days whose starts are the bind parameters ``day0`` ...
    (:meth:`Span.params`).

    Buckets are mapped in the database, so distinct-day counts are one grouped query. The
    expression is a balanced tree of ``CASE`` (a binary search: about 7 comparisons per row
    for 90 days, where a flat ``CASE`` makes up to 90), with parameters instead of literal
    instants so a statement built once (``functools.cache``) serves every snapshot without
    rebuilding or re-keying a 90-branch expression.
    """
    return _search(column, [bindparam(f"day{i}") for i in range(days)], 0, days)


def _search(column: Any, starts: list[Any], lo: int, hi: int) -> Any:
    # Index of the last start <= column among starts[lo:hi], or lo - 1 when none.
    if hi - lo == 1:
        return case((column >= starts[lo], lo), else_=lo - 1)
    mid = (lo + hi) // 2
    return case(
        (column >= starts[mid], _search(column, starts, mid, hi)),
        else_=_search(column, starts, lo, mid),
    )


def _whole_hour(moment: datetime, what: str) -> datetime:
    if moment.tzinfo is None:
        raise ValidationError(f"{what} must include a time zone")
    moment = moment.astimezone(UTC)
    if moment != hour_of(moment):
        raise ValidationError(f"{what} must be a whole UTC hour: breakdowns use hourly rollups")
    return moment


def period_span(windows: Windows, period_days: int) -> Span:
    """The last ``period_days`` local days of ``windows`` (today included), ending where every
    window of the snapshot ends (the end of the current UTC hour).

    Raises:
        ValidationError: ``period_days`` is not an offered period.
    """
    if period_days not in PERIODS.values():
        raise ValidationError(f"period must be one of {', '.join(PERIODS)}")
    starts = windows.quarter_starts[-period_days:]
    return Span(start=starts[0], end=windows.end, day_starts=starts)


def utc_span(start: datetime, end: datetime) -> Span:
    """``[start, end)`` with UTC days (an export's range).

    Raises:
        ValidationError: A bound is naive or not a whole UTC hour, or ``start >= end``.
    """
    first = _whole_hour(start, "from")
    last = _whole_hour(end, "to")
    if first >= last:
        raise ValidationError("from must be before to")
    if last - first > timedelta(days=MAX_SPAN_DAYS):
        raise ValidationError(f"a people export covers at most {MAX_SPAN_DAYS} days")
    starts = [first]
    midnight = datetime.combine(first.date() + timedelta(days=1), time(0), UTC)
    while midnight < last:
        starts.append(midnight)
        midnight += timedelta(days=1)
    return Span(start=first, end=last, day_starts=tuple(starts))


__all__ = ["MAX_SPAN_DAYS", "Span", "day_index", "period_span", "utc_span"]
