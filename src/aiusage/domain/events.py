"""Agent events (``POST /api/agent/events``) and their validation.

Wire shape (docs/agent.md)::

    {"events": [{"eventId": "...", "type": "SessionStarted", "occurredAt": "2026-...Z",
                 "userId": "...", "sessionId": "...", "startTime": "...", "tool": "...",
                 "deviceId": "..."}, ...]}

Rule (published in the OpenAPI description of ``POST /api/agent/events``): a batch is
**all-or-nothing**. Every event is validated; if any is invalid, none is applied and the
answer lists, per invalid event, its index, its ``eventId`` (when readable) and every problem
found. Unknown fields are ignored so newer agents
keep working against older servers. An ``eventId`` repeated inside one batch counts as a
duplicate, exactly as one already applied by an earlier batch.

Ranges (docs/agent.md "Events schema"): timestamps from 2000-01-01 to 24 h ahead of the
server's clock, durations finite from 0 to 24 h for a detection and 7 days for a session,
``aiUsageTime`` at most ``duration``; no string may hold a lone UTF-16 surrogate (ids are
printable ASCII; tool names are checked).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from aiusage.domain.wire import LONE_SURROGATE, to_utc
from aiusage.errors import ValidationError

MAX_ID_LENGTH: Final = 64
MAX_TOOL_LENGTH: Final = 64
MAX_DETECTION_S: Final = 24 * 3600.0
"""Longest accepted detection (seconds). The agent reports detections in parts of a few
minutes; the bound lets the metrics read a bounded range of raw rows per recomputation."""
MAX_SESSION_S: Final = 7 * 24 * 3600.0
"""Longest accepted session (seconds): a tool left running over a weekend is real use, but a
longer value is an agent bug."""
MAX_FUTURE_SKEW: Final = timedelta(hours=24)
"""How far in the future a timestamp may lie (agent clock skew); beyond that it is refused."""
DURATION_TOLERANCE_S: Final = 0.001
"""aiUsageTime may exceed duration by float noise only."""

SESSION_STARTED: Final = "SessionStarted"
SESSION_ENDED: Final = "SessionEnded"
AI_DETECTED: Final = "AIDetected"
EVENT_TYPES: Final = (SESSION_STARTED, SESSION_ENDED, AI_DETECTED)

# Printable ASCII without spaces: ids end up in group names, URLs, CSV cells and log lines.
_ID_RE: Final = re.compile(r"[\x21-\x7e]+")
# Tool names are shown to people: printable text, inner spaces allowed, no control characters
# (C0, DEL, C1) and no lone surrogates (they cannot be stored or sent as UTF-8).
_TOOL_RE: Final = re.compile("[^\x00-\x1f\x7f-\x9f\ud800-\udfff]+")


@dataclass(frozen=True, slots=True)
class SessionStarted:
    """An AI-usage session began on a device."""

    event_id: str
    occurred_at: datetime
    user_id: str
    session_id: str
    start_time: datetime
    tool: str | None = None
    device_id: str | None = None


@dataclass(frozen=True, slots=True)
class SessionEnded:
    """A session ended after ``duration`` seconds, ``ai_usage_time`` of them using AI."""

    event_id: str
    occurred_at: datetime
    user_id: str
    session_id: str
    end_time: datetime
    duration: float
    ai_usage_time: float


@dataclass(frozen=True, slots=True)
class AIDetected:
    """An AI tool was seen in use for ``duration`` seconds (optionally within a session)."""

    event_id: str
    occurred_at: datetime
    user_id: str
    tool: str
    duration: float
    session_id: str | None = None


AgentEvent = SessionStarted | SessionEnded | AIDetected
"""Any validated agent event."""


@dataclass(frozen=True, slots=True)
class EventError:
    """The problems of one event of a batch (``index`` None: the batch itself)."""

    index: int | None
    event_id: str | None
    errors: tuple[str, ...]

    def to_json(self) -> dict[str, object]:
        """The wire form ``{"index", "eventId", "errors"}``."""
        return {"index": self.index, "eventId": self.event_id, "errors": list(self.errors)}


class BatchInvalid(ValidationError):
    """A batch was refused as a whole; :attr:`errors` lists every problem."""

    code = "invalid_events"

    def __init__(self, errors: Sequence[EventError]) -> None:
        super().__init__(f"{len(errors)} invalid event(s); nothing was applied")
        self.errors = tuple(errors)


class _Reader:
    """Collects every problem of one event instead of stopping at the first."""

    __slots__ = ("errors", "event", "now")

    def __init__(self, event: Mapping[str, object], now: datetime) -> None:
        self.event = event
        self.now = now
        self.errors: list[str] = []

    def ident(self, name: str, *, required: bool = True) -> str | None:
        value = self.event.get(name)
        if value is None:
            if required:
                self.errors.append(f"{name} is required")
            return None
        if not isinstance(value, str):
            self.errors.append(f"{name} must be a string")
            return None
        if not value:
            self.errors.append(f"{name} must not be empty")
            return None
        if len(value) > MAX_ID_LENGTH:
            self.errors.append(f"{name} must be at most {MAX_ID_LENGTH} characters")
            return None
        if not _ID_RE.fullmatch(value):
            self.errors.append(f"{name} must be printable ASCII without spaces")
            return None
        return value

    def tool(self, name: str, *, required: bool) -> str | None:
        value = self.event.get(name)
        if value is None:
            if required:
                self.errors.append(f"{name} is required")
            return None
        if not isinstance(value, str):
            self.errors.append(f"{name} must be a string")
            return None
        stripped = value.strip()
        if not stripped:
            self.errors.append(f"{name} must not be empty")
            return None
        if len(stripped) > MAX_TOOL_LENGTH:
            self.errors.append(f"{name} must be at most {MAX_TOOL_LENGTH} characters")
            return None
        if not _TOOL_RE.fullmatch(stripped):
            if LONE_SURROGATE.search(stripped):
                self.errors.append(f"{name} must not contain lone UTF-16 surrogates")
            else:
                self.errors.append(f"{name} must not contain control characters")
            return None
        return stripped

    def timestamp(self, name: str) -> datetime | None:
        value = self.event.get(name)
        if value is None:
            self.errors.append(f"{name} is required")
            return None
        if not isinstance(value, str) or len(value) > 40:
            self.errors.append(f"{name} must be an ISO-8601 timestamp string")
            return None
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            self.errors.append(f"{name} is not a valid ISO-8601 timestamp: {value!r}")
            return None
        try:
            # Aware, and convertible to UTC: year 1 at +14:00 parses but overflows here.
            moment = to_utc(moment)
        except ValueError as exc:
            self.errors.append(f"{name} {exc}")
            return None
        if moment > self.now + MAX_FUTURE_SKEW:
            self.errors.append(f"{name} is more than 24 hours in the future")
            return None
        return moment

    def duration(self, name: str, limit: float = MAX_SESSION_S) -> float | None:
        value = self.event.get(name)
        if value is None:
            self.errors.append(f"{name} is required")
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.errors.append(f"{name} must be a number of seconds")
            return None
        seconds = float(value)
        if not math.isfinite(seconds):
            self.errors.append(f"{name} must be finite")
            return None
        if seconds < 0:
            self.errors.append(f"{name} must not be negative")
            return None
        if seconds > limit:
            self.errors.append(f"{name} must be at most {int(limit)} seconds")
            return None
        return seconds


def parse_event(raw: object, now: datetime) -> AgentEvent | list[str]:
    """Validate one event object; returns the event or the list of its problems."""
    if not isinstance(raw, Mapping):
        return ["event must be a JSON object"]
    r = _Reader(raw, now)
    event_id = r.ident("eventId")
    kind = raw.get("type")
    if kind is None:
        r.errors.append("type is required")
    elif kind not in EVENT_TYPES:
        r.errors.append(f"type must be one of {', '.join(EVENT_TYPES)}")
    occurred_at = r.timestamp("occurredAt")
    user_id = r.ident("userId")
    if kind == SESSION_STARTED:
        session_id = r.ident("sessionId")
        start_time = r.timestamp("startTime")
        tool = r.tool("tool", required=False)
        device_id = r.ident("deviceId", required=False)
        if r.errors:
            return r.errors
        assert event_id and occurred_at and user_id and session_id and start_time
        return SessionStarted(
            event_id, occurred_at, user_id, session_id, start_time, tool, device_id
        )
    if kind == SESSION_ENDED:
        session_id = r.ident("sessionId")
        end_time = r.timestamp("endTime")
        duration = r.duration("duration")
        ai_usage = r.duration("aiUsageTime")
        if (
            duration is not None
            and ai_usage is not None
            and ai_usage > duration + DURATION_TOLERANCE_S
        ):
            r.errors.append("aiUsageTime must not exceed duration")
        if r.errors:
            return r.errors
        assert event_id and occurred_at and user_id and session_id and end_time
        assert duration is not None and ai_usage is not None
        return SessionEnded(
            event_id, occurred_at, user_id, session_id, end_time, duration, min(ai_usage, duration)
        )
    if kind == AI_DETECTED:
        tool = r.tool("tool", required=True)
        duration = r.duration("duration", MAX_DETECTION_S)
        session_id = r.ident("sessionId", required=False)
        if r.errors:
            return r.errors
        assert event_id and occurred_at and user_id and tool and duration is not None
        return AIDetected(event_id, occurred_at, user_id, tool, duration, session_id)
    return r.errors


def event_id_of(raw: object) -> str | None:
    """The ``eventId`` of a raw event when it is a readable string (for error reports)."""
    if isinstance(raw, Mapping):
        value = raw.get("eventId")
        # Echoed in the 422 body: a lone surrogate there could not be encoded as UTF-8.
        if isinstance(value, str) and len(value) <= 200 and not LONE_SURROGATE.search(value):
            return value
    return None


def parse_batch(payload: object, *, max_events: int, now: datetime) -> list[AgentEvent]:
    """Validate a whole request body.

    Args:
        payload: The decoded JSON body.
        max_events: Largest accepted batch.
        now: Server time (aware), to refuse timestamps far in the future.

    Raises:
        BatchInvalid: The body or any event is invalid (all-or-nothing rule).
    """
    if not isinstance(payload, Mapping):
        raise BatchInvalid([EventError(None, None, ("body must be a JSON object",))])
    raw_events = payload.get("events")
    if not isinstance(raw_events, list):
        raise BatchInvalid([EventError(None, None, ("events must be a JSON array",))])
    if len(raw_events) > max_events:
        raise BatchInvalid(
            [
                EventError(
                    None,
                    None,
                    (f"a batch holds at most {max_events} events, got {len(raw_events)}",),
                )
            ]
        )
    events: list[AgentEvent] = []
    problems: list[EventError] = []
    for index, raw in enumerate(raw_events):
        result = parse_event(raw, now)
        if isinstance(result, list):
            problems.append(EventError(index, event_id_of(raw), tuple(result)))
        else:
            events.append(result)
    if problems:
        raise BatchInvalid(problems)
    return events


__all__ = [
    "AI_DETECTED",
    "EVENT_TYPES",
    "SESSION_ENDED",
    "SESSION_STARTED",
    "AIDetected",
    "AgentEvent",
    "BatchInvalid",
    "EventError",
    "SessionEnded",
    "SessionStarted",
    "event_id_of",
    "parse_batch",
    "parse_event",
]
