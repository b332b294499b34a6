"""Prometheus text exposition format 0.0.4, hand-written (no client library needed).

Only what ``GET /metrics`` needs: counters, gauges and cumulative histograms with labels,
rendered as ``# HELP`` / ``# TYPE`` blocks (https://prometheus.io/docs/instrumenting/exposition_formats/).
Metric families are assembled per scrape from the live objects (a "collector" model), so the
hot paths only bump plain integers and nothing here runs per message.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "CONTENT_TYPE",
    "Histogram",
    "MetricFamily",
    "escape_label_value",
    "format_value",
    "render",
]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""``Content-Type`` of the text exposition format."""

MetricType = Literal["counter", "gauge", "histogram"]


def escape_label_value(value: str) -> str:
    """Escape ``\\``, ``"`` and newlines as the text format requires."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def format_value(value: float) -> str:
    """A sample value: integers without a fraction, ``+Inf``/``-Inf``/``NaN`` spelled out."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def _labels(labels: Mapping[str, str]) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{k}="{escape_label_value(str(v))}"' for k, v in labels.items())
    return "{" + inner + "}"


@dataclass(slots=True)
class MetricFamily:
    """One metric name with its help text, type and samples.

    ``samples`` are ``(suffix, labels, value)``: the suffix is appended to the name
    (``""`` for counters/gauges, ``_bucket``/``_sum``/``_count`` for histograms).
    """

    name: str
    help: str
    type: MetricType
    samples: list[tuple[str, dict[str, str], float]] = field(default_factory=list)

    def add(self, value: float, labels: Mapping[str, str] | None = None, suffix: str = "") -> None:
        """Append one sample."""
        self.samples.append((suffix, dict(labels or {}), value))

    def add_histogram(self, histogram: Histogram, labels: Mapping[str, str] | None = None) -> None:
        """Append the ``_bucket``/``_sum``/``_count`` samples of ``histogram``."""
        base = dict(labels or {})
        cumulative = 0
        for bound, count in zip(histogram.bounds, histogram.counts, strict=False):
            cumulative += count
            self.add(cumulative, {**base, "le": format_value(float(bound))}, "_bucket")
        self.add(histogram.count, {**base, "le": "+Inf"}, "_bucket")
        self.add(histogram.sum, base, "_sum")
        self.add(histogram.count, base, "_count")


class Histogram:
    """Cumulative-bucket histogram (Prometheus semantics: ``le`` upper bounds).

    ``observe`` is O(log buckets) and allocation-free, so it can sit on a request path.
    """

    __slots__ = ("bounds", "count", "counts", "sum")

    def __init__(self, bounds: Sequence[float]) -> None:
        ordered = sorted(float(b) for b in bounds)
        if not ordered or len(set(ordered)) != len(ordered):
            raise ValueError("histogram bounds must be non-empty and distinct")
        self.bounds: tuple[float, ...] = tuple(ordered)
        # counts[i] = observations in (bounds[i-1], bounds[i]]; the +Inf bucket is `count`.
        self.counts: list[int] = [0] * len(ordered)
        self.count = 0
        self.sum = 0.0

    def observe(self, value: float) -> None:
        """Record one observation."""
        self.count += 1
        self.sum += value
        index = bisect_left(self.bounds, value)
        if index < len(self.counts):
            self.counts[index] += 1


def render(families: Iterable[MetricFamily]) -> str:
    """The exposition text of ``families`` (a trailing newline included)."""
    lines: list[str] = []
    for family in families:
        lines.append(f"# HELP {family.name} {_escape_help(family.help)}")
        lines.append(f"# TYPE {family.name} {family.type}")
        for suffix, labels, value in family.samples:
            lines.append(f"{family.name}{suffix}{_labels(labels)} {format_value(value)}")
    return "\n".join(lines) + "\n"
