"""KPI windows: UTC hour buckets, local days, refusal of non-hour-aligned zones."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from aiusage.errors import ValidationError
from aiusage.metrics.windows import Windows, is_approved, parse_timezone


def test_utc_windows_end_with_the_current_hour_and_today():
    w = Windows.at(datetime(2026, 3, 10, 14, 25, tzinfo=UTC))
    assert w.end == datetime(2026, 3, 10, 15, tzinfo=UTC)
    assert w.hours[0] == datetime(2026, 3, 9, 15, tzinfo=UTC)
    assert len(w.hours) == 24 and len(w.days) == 30
    assert w.days[-1] == date(2026, 3, 10) and w.days[0] == date(2026, 2, 9)
    assert w.today_start == datetime(2026, 3, 10, tzinfo=UTC)
    assert w.week_start == datetime(2026, 3, 4, tzinfo=UTC)


def test_local_days_follow_daylight_saving_time():
    w = Windows.at(datetime(2026, 3, 10, 14, 25, tzinfo=UTC), ZoneInfo("America/New_York"))
    assert w.day_starts[-1] == datetime(2026, 3, 10, 4, tzinfo=UTC)  # EDT
    assert w.day_starts[-4] == datetime(2026, 3, 7, 5, tzinfo=UTC)  # EST
    # 2026-03-08 is a 23-hour day: 05:00 UTC (EST midnight) to 04:00 UTC next day (EDT).
    assert w.day_index(datetime(2026, 3, 8, 4, tzinfo=UTC)) == 26
    assert w.day_index(datetime(2026, 3, 8, 5, tzinfo=UTC)) == 27
    assert w.day_index(datetime(2026, 3, 9, 3, tzinfo=UTC)) == 27
    assert w.day_index(datetime(2026, 3, 9, 4, tzinfo=UTC)) == 28
    assert w.day_index(datetime(2026, 3, 10, 3, tzinfo=UTC)) == 28


def test_half_hour_zones_and_unknown_zones_are_refused():
    with pytest.raises(ValidationError):
        Windows.at(datetime(2026, 3, 10, tzinfo=UTC), ZoneInfo("Asia/Kolkata"))
    with pytest.raises(ValidationError):
        parse_timezone("No/Such_Zone")


def test_approved_tools_compare_case_insensitively():
    assert is_approved(" chatgpt", ["ChatGPT"])
    assert not is_approved("DeepSeek", ["ChatGPT", "Claude"])


def test_periods_set_the_daily_trend_and_the_90_day_window_is_always_there():
    from aiusage.metrics.windows import parse_period

    now = datetime(2026, 3, 10, 14, 25, tzinfo=UTC)
    w = Windows.at(now, UTC, "7d")
    assert len(w.days) == 7 and w.period_start == datetime(2026, 3, 4, tzinfo=UTC)
    assert w.quarter_start == datetime(2025, 12, 11, tzinfo=UTC)
    assert w.month_start == datetime(2026, 2, 9, tzinfo=UTC)
    assert len(Windows.at(now, UTC, "90d").days) == 90
    assert parse_period(None) == "30d"
    with pytest.raises(ValidationError):
        parse_period("365d")
