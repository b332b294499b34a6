"""Time windows of the dashboard KPIs and the tool-name rule (docs/metrics.md "Windows").

Every KPI is computed from UTC hour buckets, so a day boundary must fall on a UTC hour: the
optional ``tz`` (an IANA zone) moves day boundaries to local midnight and is refused when that
midnight is not a whole UTC hour (e.g. Asia/Kolkata, UTC+05:30) rather than silently rounded.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from aiusage.errors import ValidationError
from aiusage.metrics.rollup import hour_of

HOUR = timedelta(hours=1)
HOURLY_POINTS = 24
"""Points of the hourly trend: the current hour and the 23 before it."""
DAILY_POINTS = 30
"""Days of the default period (and of the 30-day windows), today included."""
WEEK_DAYS = 7
QUARTER_DAYS = 90
"""Longest window (days, today included): the 90-day KPIs and the longest period."""
PERIODS = {"7d": 7, "30d": 30, "90d": 90}
"""The periods offered (``?period=``), in days, today included."""
DEFAULT_PERIOD = "30d"


def parse_period(name: str | None) -> str:
    """The period name for ``name`` (None -> :data:`DEFAULT_PERIOD`).

    Raises:
        ValidationError: Not one of :data:`PERIODS`.
    """
    if name is None:
        return DEFAULT_PERIOD
    if name not in PERIODS:
        raise ValidationError(f"period must be one of {', '.join(PERIODS)}")
    return name


def parse_timezone(name: str | None) -> tzinfo:
    """The zone for ``name`` (None or ``UTC`` -> UTC).

    Raises:
        ValidationError: Unknown zone name.
    """
    if name is None or name in ("UTC", "Z", "Etc/UTC"):
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValidationError(f"unknown time zone {name!r}") from exc


def tool_key(tool: str) -> str:
    """Canonical form of a tool name for approved-list comparison (trimmed, case-folded)."""
    return tool.strip().casefold()


def is_approved(tool: str, approved: Iterable[str]) -> bool:
    """True when ``tool`` is on the organization's approved list (case-insensitive)."""
    key = tool_key(tool)
    return any(tool_key(item) == key for item in approved)


@dataclass(frozen=True, slots=True)
class Windows:
    """The buckets a snapshot at ``now`` covers.

    Attributes:
        now: The snapshot instant (UTC).
        end: Exclusive end of every window: the end of the current UTC hour (events stamped
            later in the current hour, e.g. by a fast agent clock, count; later hours do not).
        current_hour: Start of the current UTC hour.
        hours: Starts of the 24 hourly-trend buckets, oldest first.
        days: Local dates of the period's days (the daily trend), oldest first
            (``days[-1]`` is today).
        day_starts: UTC instants of the local midnights starting ``days``.
        timezone: Name of the zone of ``days``.
        period: Name of the period (``7d``, ``30d``, ``90d``).
        quarter_starts: UTC instants of the local midnights of the last 90 days (the longest
            window), oldest first.
    """

    now: datetime
    end: datetime
    current_hour: datetime
    hours: tuple[datetime, ...]
    days: tuple[date, ...]
    day_starts: tuple[datetime, ...]
    timezone: str
    period: str = DEFAULT_PERIOD
    quarter_starts: tuple[datetime, ...] = ()

    @property
    def today_start(self) -> datetime:
        """Local midnight of today, in UTC."""
        return self.day_starts[-1]

    @property
    def week_start(self) -> datetime:
        """Start of the 7-day window (today and the 6 days before)."""
        return self.quarter_starts[-WEEK_DAYS]

    @property
    def month_start(self) -> datetime:
        """Start of the 30-day window (today and the 29 days before)."""
        return self.quarter_starts[-DAILY_POINTS]

    @property
    def quarter_start(self) -> datetime:
        """Start of the 90-day window (today and the 89 days before)."""
        return self.quarter_starts[0]

    @property
    def period_start(self) -> datetime:
        """Start of the period (its first local midnight)."""
        return self.day_starts[0]

    @property
    def period_days(self) -> int:
        """Days of the period, today included."""
        return len(self.days)

    @property
    def earliest(self) -> datetime:
        """Earliest bucket any KPI reads."""
        return min(self.quarter_start, self.hours[0])

    @classmethod
    def at(cls, now: datetime, zone: tzinfo = UTC, period: str = DEFAULT_PERIOD) -> Windows:
        """Windows for a snapshot at ``now`` in ``zone`` over ``period``.

        Raises:
            ValidationError: A local midnight in the window is not a whole UTC hour, or the
                period is unknown.
        """
        period_days = PERIODS[parse_period(period)]
        if now.tzinfo is None:
            raise ValueError("naive datetime given as the snapshot time")
        now = now.astimezone(UTC)
        current = hour_of(now)
        today = now.astimezone(zone).date()
        days = tuple(today - timedelta(days=QUARTER_DAYS - 1 - i) for i in range(QUARTER_DAYS))
        starts = []
        for day in days:
            start = datetime.combine(day, time(0), zone).astimezone(UTC)
            if start != hour_of(start):
                raise ValidationError(
                    f"time zone {zone!s}: local midnight of {day} is not a whole UTC hour; "
                    "KPIs are bucketed by UTC hour"
                )
            starts.append(start)
        hours = tuple(current - HOUR * (HOURLY_POINTS - 1 - i) for i in range(HOURLY_POINTS))
        return cls(
            now=now,
            end=current + HOUR,
            current_hour=current,
            hours=hours,
            days=days[-period_days:],
            day_starts=tuple(starts[-period_days:]),
            timezone=str(zone),
            period=period,
            quarter_starts=tuple(starts),
        )

    def day_index(self, bucket: datetime) -> int | None:
        """Index in :attr:`days` of the hour bucket ``bucket`` (None: outside the window)."""
        if bucket < self.day_starts[0] or bucket >= self.end:
            return None
        index = 0
        for i, start in enumerate(self.day_starts):
            if bucket >= start:
                index = i
        return index


__all__ = [
    "DAILY_POINTS",
    "DEFAULT_PERIOD",
    "HOURLY_POINTS",
    "PERIODS",
    "QUARTER_DAYS",
    "Windows",
    "is_approved",
    "parse_period",
    "parse_timezone",
    "tool_key",
]
