"""Accounting of the load test: a mergeable log-bucket latency histogram and per-connection
sequence tracking (lost and duplicated messages) in O(1) memory per connection.

Every pushed message is counted (not a sample): the histogram keeps 1% wide buckets, so
percentiles are exact to about 1% while 10^8 latencies cost a few kilobytes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Final

# Shared with the client's inlined hot path (client.Conn.on_message).
_GROWTH: Final = 1.01
_LOG_GROWTH: Final = math.log(_GROWTH)
_FLOOR_US: Final = 10.0
"""Latencies below 10 µs share bucket 0 (loopback cannot be faster than that)."""


def bucket_of(latency_us: float) -> int:
    """Histogram bucket of a latency in microseconds (negative clock skew -> bucket 0)."""
    if latency_us <= _FLOOR_US:
        return 0
    return 1 + int(math.log(latency_us / _FLOOR_US) / _LOG_GROWTH)


def bucket_upper_us(bucket: int) -> float:
    """The upper bound of a bucket in microseconds (what percentiles report)."""
    if bucket <= 0:
        return _FLOOR_US
    return _FLOOR_US * _GROWTH**bucket


class LatencyHistogram:
    """Counts of latencies per bucket, with exact count, sum and max."""

    __slots__ = ("buckets", "count", "max_us", "sum_us")

    def __init__(self) -> None:
        self.buckets: dict[int, int] = {}
        self.count = 0
        self.sum_us = 0.0
        self.max_us = 0.0

    def add(self, latency_us: float) -> None:
        """Record one latency."""
        b = bucket_of(latency_us)
        self.buckets[b] = self.buckets.get(b, 0) + 1
        self.count += 1
        self.sum_us += latency_us
        if latency_us > self.max_us:
            self.max_us = latency_us

    def merge(self, other: LatencyHistogram) -> None:
        """Add ``other``'s counts to this one."""
        for b, c in other.buckets.items():
            self.buckets[b] = self.buckets.get(b, 0) + c
        self.count += other.count
        self.sum_us += other.sum_us
        self.max_us = max(self.max_us, other.max_us)

    def percentile_us(self, p: float) -> float | None:
        """The ``p``-th percentile (0-100), None when empty. The maximum is exact."""
        if self.count == 0:
            return None
        if p >= 100:
            return self.max_us
        rank = max(1, math.ceil(p / 100.0 * self.count))
        seen = 0
        for b in sorted(self.buckets):
            seen += self.buckets[b]
            if seen >= rank:
                return min(bucket_upper_us(b), self.max_us)
        return self.max_us

    def summary_ms(self) -> dict[str, float | int | None]:
        """``{count, mean, p50, p95, p99, max}`` in milliseconds."""

        def ms(v: float | None) -> float | None:
            return None if v is None else round(v / 1000.0, 3)

        return {
            "count": self.count,
            "mean": ms(self.sum_us / self.count) if self.count else None,
            "p50": ms(self.percentile_us(50)),
            "p95": ms(self.percentile_us(95)),
            "p99": ms(self.percentile_us(99)),
            "max": ms(self.max_us) if self.count else None,
        }

    def to_json(self) -> dict[str, object]:
        """Wire form between worker and coordinator."""
        return {
            "b": {str(k): v for k, v in self.buckets.items()},
            "n": self.count,
            "s": self.sum_us,
            "m": self.max_us,
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, object]) -> LatencyHistogram:
        """Inverse of :meth:`to_json`."""
        h = cls()
        raw = obj.get("b", {})
        assert isinstance(raw, dict)
        h.buckets = {int(k): int(v) for k, v in raw.items()}
        h.count = int(obj.get("n", 0))  # type: ignore[call-overload]
        h.sum_us = float(obj.get("s", 0.0))  # type: ignore[arg-type]
        h.max_us = float(obj.get("m", 0.0))  # type: ignore[arg-type]
        return h

    @classmethod
    def merged(cls, parts: Iterable[LatencyHistogram]) -> LatencyHistogram:
        """A new histogram holding the sum of ``parts``."""
        h = cls()
        for part in parts:
            h.merge(part)
        return h


REORDER_WINDOW: Final = 4096
"""How many messages past a gap a connection waits before it declares the gap lost. A message
arriving later than that is counted as a duplicate-or-late; with in-order delivery (one hub
connection is ordered) gaps never heal, so the window only bounds memory."""


class SeqTracker:
    """Distinct and duplicated sequence numbers (1, 2, 3, ...) seen by one connection.

    ``low`` is the smallest sequence number not yet seen; numbers above it seen out of order
    wait in ``ahead``. Lost messages are computed at the end as ``expected - distinct``.
    """

    __slots__ = ("ahead", "distinct", "duplicates", "low")

    def __init__(self) -> None:
        self.low = 1
        self.ahead: set[int] | None = None
        self.distinct = 0
        self.duplicates = 0

    def see(self, seq: int) -> bool:
        """Record ``seq``; False when it was already seen (a duplicate)."""
        if seq < self.low:
            self.duplicates += 1
            return False
        if seq == self.low:
            self.distinct += 1
            self.low += 1
            ahead = self.ahead
            if ahead:
                while self.low in ahead:
                    ahead.discard(self.low)
                    self.low += 1
                if not ahead:
                    self.ahead = None
            return True
        ahead = self.ahead
        if ahead is None:
            ahead = self.ahead = set()
        elif seq in ahead:
            self.duplicates += 1
            return False
        ahead.add(seq)
        self.distinct += 1
        if len(ahead) > REORDER_WINDOW:
            # Give up on the gap(s) below the oldest number waiting: they are lost.
            self.low = min(ahead)
            while self.low in ahead:
                ahead.discard(self.low)
                self.low += 1
        return True
