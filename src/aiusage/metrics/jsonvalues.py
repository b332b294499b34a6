"""How the breakdowns write instants and durations in JSON (the snapshot's conventions).

Instants are ISO-8601 UTC with a ``Z``; durations are seconds rounded to the millisecond, as
the snapshot's totals are, so a list and its total print the same digits.
"""

from __future__ import annotations

from datetime import UTC, datetime


def iso(moment: datetime | None) -> str | None:
    """``moment`` as ``2026-03-10T14:25:00Z`` (None stays None)."""
    return None if moment is None else moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def seconds(value: float) -> float:
    """A duration for JSON: never negative, rounded to the millisecond (sums of many float
    deltas carry noise in the last digits)."""
    return round(max(value, 0.0), 3)


__all__ = ["iso", "seconds"]
