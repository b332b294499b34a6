"""Prometheus text exposition (aiusage.observability.exposition)."""

from __future__ import annotations

import math

import pytest

from aiusage.observability.exposition import (
    Histogram,
    MetricFamily,
    escape_label_value,
    format_value,
    render,
)


def test_a_counter_renders_help_type_and_labelled_samples():
    fam = MetricFamily("aiusage_things_total", "Things seen.", "counter")
    fam.add(3, {"kind": "a"})
    fam.add(4.5, {"kind": "b"})
    assert render([fam]) == (
        "# HELP aiusage_things_total Things seen.\n"
        "# TYPE aiusage_things_total counter\n"
        'aiusage_things_total{kind="a"} 3\n'
        'aiusage_things_total{kind="b"} 4.5\n'
    )


def test_label_values_escape_backslash_quote_and_newline():
    assert escape_label_value('a\\b"c\nd') == 'a\\\\b\\"c\\nd'
    fam = MetricFamily("m", "h", "gauge")
    fam.add(1, {"org": 'ev"il\n'})
    assert 'm{org="ev\\"il\\n"} 1' in render([fam])


def test_special_values_are_spelled_as_prometheus_expects():
    assert format_value(math.inf) == "+Inf"
    assert format_value(-math.inf) == "-Inf"
    assert format_value(math.nan) == "NaN"
    assert format_value(2.0) == "2"
    assert format_value(True) == "1"


def test_histogram_buckets_are_cumulative_with_sum_and_count():
    hist = Histogram([0.1, 1.0])
    for value in (0.05, 0.1, 0.5, 3.0):
        hist.observe(value)
    fam = MetricFamily("lat_seconds", "Latency.", "histogram")
    fam.add_histogram(hist, {"route": "x"})
    text = render([fam])
    assert 'lat_seconds_bucket{route="x",le="0.1"} 2\n' in text  # 0.05 and 0.1 (le is <=)
    assert 'lat_seconds_bucket{route="x",le="1"} 3\n' in text
    assert 'lat_seconds_bucket{route="x",le="+Inf"} 4\n' in text
    assert 'lat_seconds_count{route="x"} 4\n' in text
    assert 'lat_seconds_sum{route="x"} 3.65\n' in text


def test_histogram_bounds_must_be_distinct():
    with pytest.raises(ValueError):
        Histogram([1.0, 1.0])
    with pytest.raises(ValueError):
        Histogram([])
