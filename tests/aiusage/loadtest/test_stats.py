"""Latency histogram and sequence accounting."""

from __future__ import annotations

import random

from aiusage.loadtest.stats import REORDER_WINDOW, LatencyHistogram, SeqTracker


def test_histogram_percentiles_are_within_one_percent_of_exact() -> None:
    rng = random.Random(7)
    values = [rng.lognormvariate(9, 1.2) for _ in range(20_000)]
    h = LatencyHistogram()
    for v in values:
        h.add(v)
    ordered = sorted(values)
    for p in (50, 95, 99):
        exact = ordered[int(p / 100 * len(ordered)) - 1]
        got = h.percentile_us(p)
        assert got is not None
        assert abs(got - exact) / exact < 0.015, (p, got, exact)
    assert h.percentile_us(100) == max(values)
    assert h.count == len(values)


def test_histogram_merges_and_round_trips_through_json() -> None:
    a, b = LatencyHistogram(), LatencyHistogram()
    for v in (100.0, 2000.0, 3.0):
        a.add(v)
    b.add(50_000.0)
    merged = LatencyHistogram.merged([LatencyHistogram.from_json(a.to_json()), b])
    assert merged.count == 4
    assert merged.max_us == 50_000.0
    summary = merged.summary_ms()
    assert summary["max"] == 50.0
    assert summary["count"] == 4


def test_empty_histogram_summary_has_no_percentiles() -> None:
    assert LatencyHistogram().summary_ms() == {
        "count": 0,
        "mean": None,
        "p50": None,
        "p95": None,
        "p99": None,
        "max": None,
    }


def test_seq_tracker_counts_in_order_delivery_once() -> None:
    t = SeqTracker()
    assert all(t.see(s) for s in range(1, 101))
    assert (t.distinct, t.duplicates, t.low, t.ahead) == (100, 0, 101, None)


def test_seq_tracker_detects_duplicates_before_and_after_a_gap() -> None:
    t = SeqTracker()
    for s in (1, 2, 2, 5, 5, 3, 1):
        t.see(s)
    assert t.distinct == 4  # 1, 2, 3, 5
    assert t.duplicates == 3
    assert t.low == 4 and t.ahead == {5}


def test_seq_tracker_reordered_delivery_loses_nothing() -> None:
    t = SeqTracker()
    seqs = list(range(1, 1001))
    random.Random(3).shuffle(seqs)
    for s in seqs:
        assert t.see(s)
    assert t.distinct == 1000 and t.duplicates == 0 and t.ahead is None


def test_seq_tracker_gives_up_on_a_gap_after_the_window_and_stays_bounded() -> None:
    t = SeqTracker()
    t.see(1)
    for s in range(3, REORDER_WINDOW + 10):  # 2 never arrives
        t.see(s)
    assert t.ahead is None or len(t.ahead) <= REORDER_WINDOW
    assert t.low > 2
    assert t.distinct == REORDER_WINDOW + 8
    expected = REORDER_WINDOW + 9
    assert expected - t.distinct == 1  # exactly one lost
