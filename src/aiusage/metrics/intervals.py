"""Interval algebra of the time model: clip, union, subtract, measure, split by UTC hour.

Pure and clock-free. An interval is ``(start, end)`` in epoch seconds with ``start <= end``;
a *cover* is a sorted list of disjoint intervals (they may touch). UTC hour boundaries are the
multiples of 3600 epoch seconds, so splitting needs no time-zone arithmetic
(docs/metrics.md "Time model").
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import UTC, datetime

Interval = tuple[float, float]
"""``(start, end)`` in epoch seconds."""

HOUR_S = 3600.0


def clip(interval: Interval, bounds: Interval) -> Interval | None:
    """``interval`` ∩ ``bounds``; None when they do not overlap over a positive length."""
    start, end = max(interval[0], bounds[0]), min(interval[1], bounds[1])
    return (start, end) if end > start else None


def union(intervals: Iterable[Interval]) -> list[Interval]:
    """The union as a cover: sorted, overlapping or touching intervals merged, empty ones
    (zero length) dropped."""
    merged: list[Interval] = []
    for start, end in sorted(i for i in intervals if i[1] > i[0]):
        if merged and start <= merged[-1][1]:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def subtract(cover: Iterable[Interval], minus: Iterable[Interval]) -> list[Interval]:
    """The parts of ``cover`` outside every interval of ``minus``."""
    holes = union(minus)
    result: list[Interval] = []
    for start, end in union(cover):
        pieces = [(start, end)]
        for h_start, h_end in holes:
            if h_end <= start or h_start >= end:
                continue
            nxt: list[Interval] = []
            for p_start, p_end in pieces:
                if h_end <= p_start or h_start >= p_end:
                    nxt.append((p_start, p_end))
                    continue
                if p_start < h_start:
                    nxt.append((p_start, h_start))
                if h_end < p_end:
                    nxt.append((h_end, p_end))
            pieces = nxt
        result.extend(pieces)
    return result


def measure(intervals: Iterable[Interval]) -> float:
    """Length of the union of ``intervals`` (seconds)."""
    return sum(end - start for start, end in union(intervals))


def hour_start(moment: float) -> float:
    """Epoch second of the UTC hour holding ``moment``."""
    return math.floor(moment / HOUR_S) * HOUR_S


def split_by_hour(cover: Iterable[Interval]) -> dict[float, float]:
    """Seconds of each interval inside each UTC hour, keyed by the hour's epoch second.

    ``cover`` must be disjoint (a cover), otherwise overlaps are counted twice.
    """
    seconds: dict[float, float] = {}
    for start, end in cover:
        hour = hour_start(start)
        while hour < end:
            part = min(end, hour + HOUR_S) - max(start, hour)
            if part > 0:
                seconds[hour] = seconds.get(hour, 0.0) + part
            hour += HOUR_S
    return seconds


def epoch(moment: datetime) -> float:
    """Epoch seconds of an aware datetime."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime given to the time model")
    return moment.timestamp()


def instant(seconds: float) -> datetime:
    """The aware UTC datetime of epoch ``seconds``."""
    return datetime.fromtimestamp(seconds, UTC)


__all__ = [
    "HOUR_S",
    "Interval",
    "clip",
    "epoch",
    "hour_start",
    "instant",
    "measure",
    "split_by_hour",
    "subtract",
    "union",
]
