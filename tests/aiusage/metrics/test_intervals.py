"""The interval algebra of the time model."""

from __future__ import annotations

import random

from aiusage.metrics.intervals import clip, measure, split_by_hour, subtract, union

H = 3600.0


def test_union_merges_overlapping_and_touching_intervals_and_drops_empty_ones():
    assert union([(5, 7), (0, 2), (2, 3), (6, 9), (4, 4)]) == [(0, 3), (5, 9)]
    assert measure([(0, 10), (5, 15), (20, 20)]) == 15


def test_clip_keeps_only_a_positive_overlap():
    assert clip((0, 10), (5, 20)) == (5, 10)
    assert clip((0, 5), (5, 20)) is None


def test_split_by_hour_cuts_at_every_utc_hour_boundary():
    assert split_by_hour([(H - 60, 2 * H + 30)]) == {0.0: 60.0, H: H, 2 * H: 30.0}


def test_subtract_removes_the_holes():
    assert subtract([(0, 10)], [(2, 3), (5, 12)]) == [(0, 2), (3, 5)]


def test_measures_agree_with_a_brute_force_count_of_seconds():
    rng = random.Random(7)
    for _ in range(200):
        ivs = [(a, a + rng.randint(0, 20)) for a in (rng.randint(0, 100) for _ in range(6))]
        holes = [(a, a + rng.randint(0, 30)) for a in (rng.randint(0, 100) for _ in range(3))]
        seconds = {s for a, b in ivs for s in range(a, b)}
        assert measure(ivs) == len(seconds)
        kept = {s for s in seconds if not any(a <= s < b for a, b in holes)}
        assert measure(subtract(ivs, holes)) == len(kept)
        assert sum(split_by_hour(union(ivs)).values()) == len(seconds)
