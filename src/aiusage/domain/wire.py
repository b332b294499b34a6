"""Checks every decoded wire value shares: lone surrogates, and timestamps within range.

JSON's ``\\ud800`` escape (and MessagePack strings decoded leniently) can give Python ``str``
values holding lone UTF-16 surrogates. Such a string cannot be encoded as UTF-8, so it breaks
the first database write, JSON answer or log line it reaches, far from where it came in. The
same holds for timestamps at the edges of ``datetime``'s range: ``0001-01-01T00:00:00+14:00``
parses, then overflows when converted to UTC. Inputs are therefore checked here, once, at the
boundary (REST bodies, agent events, hub payloads), and refused with a clear message.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Final

from pydantic import AfterValidator

LONE_SURROGATE: Final = re.compile("[\ud800-\udfff]")
"""Any surrogate code point in a decoded ``str`` (a valid pair decodes to one code point)."""

EARLIEST: Final = datetime(2000, 1, 1, tzinfo=UTC)
"""Earliest accepted timestamp: older values are agent or client bugs."""
LATEST: Final = datetime(9000, 1, 1, tzinfo=UTC)
"""Latest timestamp any input may carry (far from ``datetime.max``, so arithmetic cannot
overflow); endpoints with a tighter rule (agent events: 24 h ahead) check it themselves."""


def has_lone_surrogate(value: object) -> bool:
    """Whether a decoded JSON-like value holds a surrogate in any string (keys included).

    Iterative, so a deeply nested value cannot exhaust the interpreter's stack.
    """
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if not item.isascii() and LONE_SURROGATE.search(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return False


def to_utc(moment: datetime) -> datetime:
    """``moment`` in UTC, when it is aware and within [:data:`EARLIEST`, :data:`LATEST`).

    Raises:
        ValueError: Naive (no time zone), or out of range (including values such as year 1
            with a positive offset, which ``astimezone`` cannot represent).
    """
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("must include a time zone (e.g. 'Z' or '+02:00')")
    try:
        utc = moment.astimezone(UTC)
    except OverflowError:  # only at the ends of datetime's range: year 1 or year 9999
        raise ValueError(_TOO_EARLY if moment.year < LATEST.year else _TOO_LATE) from None
    if utc < EARLIEST:
        raise ValueError(_TOO_EARLY)
    if utc >= LATEST:
        raise ValueError(_TOO_LATE)
    return utc


_TOO_EARLY: Final = f"is before {EARLIEST.date().isoformat()}"
_TOO_LATE: Final = f"is not before {LATEST.date().isoformat()}"

WireTimestamp = Annotated[datetime, AfterValidator(to_utc)]
"""A pydantic field type: an aware ISO-8601 timestamp within range, normalised to UTC."""

__all__ = [
    "EARLIEST",
    "LATEST",
    "LONE_SURROGATE",
    "WireTimestamp",
    "has_lone_surrogate",
    "to_utc",
]
