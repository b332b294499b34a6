"""Spans: the dashboard period in the viewer's days, and an export's range of whole hours."""

from __future__ import annotations

from bisect import bisect_right
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Column, MetaData, Table, create_engine, insert, select

from aiusage.errors import ValidationError
from aiusage.metrics.span import Span, day_index, period_span, utc_span
from aiusage.metrics.windows import Windows, parse_timezone
from aiusage.store.tables import UTCDateTime

NOW = datetime(2026, 3, 30, 10, 20, tzinfo=UTC)


def test_period_has_one_local_midnight_per_day_and_ends_with_the_current_hour():
    windows = Windows.at(NOW, parse_timezone("Europe/Paris"))
    span = period_span(windows, 7)
    assert span.end == datetime(2026, 3, 30, 11, tzinfo=UTC)
    # Paris switched to summer time on 2026-03-29: midnight moves from 23:00 to 22:00 UTC.
    assert span.day_starts[0] == datetime(2026, 3, 23, 23, tzinfo=UTC)
    assert span.day_starts[-2:] == (
        datetime(2026, 3, 28, 23, tzinfo=UTC),
        datetime(2026, 3, 29, 22, tzinfo=UTC),
    )
    assert span.start == span.day_starts[0] and len(span.day_starts) == 7


@pytest.mark.parametrize("days", [7, 30, 90])
def test_the_last_day_of_the_period_is_today_in_the_viewer_zone(days):
    windows = Windows.at(NOW, parse_timezone("America/Los_Angeles"))
    span = period_span(windows, days)
    assert len(span.day_starts) == days
    assert span.day_starts[-1] == windows.today_start
    assert span.day_starts[0].astimezone(parse_timezone("America/Los_Angeles")).hour == 0


def test_period_of_an_unoffered_length_is_refused():
    with pytest.raises(ValidationError, match="7d, 30d, 90d"):
        period_span(Windows.at(NOW), 14)


@pytest.mark.parametrize("period", ["7d", "30d", "90d"])
def test_the_span_of_the_snapshot_period_has_the_snapshot_days(period):
    windows = Windows.at(NOW, parse_timezone("Europe/Paris"), period)
    span = period_span(windows, windows.period_days)
    assert span.day_starts == windows.day_starts and span.end == windows.end


def test_utc_span_cuts_utc_days_and_refuses_partial_hours():
    span = utc_span(datetime(2026, 3, 1, 22, tzinfo=UTC), datetime(2026, 3, 3, 5, tzinfo=UTC))
    assert span.day_starts == (
        datetime(2026, 3, 1, 22, tzinfo=UTC),
        datetime(2026, 3, 2, tzinfo=UTC),
        datetime(2026, 3, 3, tzinfo=UTC),
    )
    with pytest.raises(ValidationError, match="whole UTC hour"):
        utc_span(datetime(2026, 3, 1, 22, 30, tzinfo=UTC), datetime(2026, 3, 3, tzinfo=UTC))
    with pytest.raises(ValidationError, match="before"):
        utc_span(datetime(2026, 3, 3, tzinfo=UTC), datetime(2026, 3, 3, tzinfo=UTC))
    with pytest.raises(ValidationError, match="366"):
        start = datetime(2025, 1, 1, tzinfo=UTC)
        utc_span(start, start + timedelta(days=367))
    with pytest.raises(ValidationError, match="time zone"):
        utc_span(datetime(2026, 3, 1), datetime(2026, 3, 2, tzinfo=UTC))


@pytest.mark.parametrize("days", [1, 2, 7, 30, 90])
def test_day_index_finds_the_day_of_every_hour_like_a_bisection(days):
    windows = Windows.at(NOW, parse_timezone("America/New_York"), "90d")  # a DST change
    starts = windows.quarter_starts[-days:]
    span = Span(starts[0], windows.end, starts)
    hours = [span.start - timedelta(hours=2) + timedelta(hours=h) for h in range(days * 24 + 30)]
    table = Table("hours", MetaData(), Column("hour", UTCDateTime(), primary_key=True))
    engine = create_engine("sqlite://")
    with engine.begin() as conn:
        table.create(conn)
        conn.execute(insert(table), [{"hour": h} for h in hours])
        rows = conn.execute(
            select(table.c.hour, day_index(table.c.hour, days)), span.params()
        ).all()
    assert len(rows) == len(hours)
    for hour, got in rows:
        assert got == bisect_right(span.day_starts, hour) - 1, hour
