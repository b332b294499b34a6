"""Turn periodic observations ("these tools are in use now") into agent events.

Pure state machine, no I/O, time passed in:

* the first observation with any tool opens a session -> ``SessionStarted``;
* a tool's continuous use ends when an observation no longer shows it -> ``AIDetected`` with
  that segment's duration; segments longer than ``flush_after`` are reported in parts so the
  dashboard sees long uses while they happen;
* ``idle_timeout`` without any tool closes the session at the last moment a tool was seen ->
  ``SessionEnded`` with ``duration`` (start to last use) and ``aiUsageTime`` (time during which
  at least one tool was in use; never more than ``duration``).

The state is a plain dict (:meth:`SessionTracker.state` / ``restore``) so the agent can persist
it and finish a session that was open when the agent stopped.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

Event = dict[str, Any]


def _iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


class SessionTracker:
    """Sessions and AI-tool segments of one user on one device.

    Args:
        user_id: Reported as ``userId``.
        device_id: Reported as ``deviceId`` on SessionStarted.
        idle_timeout: Gap without any tool that ends a session.
        flush_after: Longest segment reported as one AIDetected.
        new_id: Id factory (tests inject a deterministic one).
    """

    def __init__(
        self,
        user_id: str,
        device_id: str | None = None,
        idle_timeout: timedelta = timedelta(minutes=5),
        flush_after: timedelta = timedelta(minutes=5),
        new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
    ) -> None:
        self.user_id = user_id
        self.device_id = device_id
        self.idle_timeout = idle_timeout
        self.flush_after = flush_after
        self._new_id = new_id
        self.session_id: str | None = None
        self.start: datetime | None = None
        self.last_active: datetime | None = None
        self.ai_usage = 0.0
        self.any_since: datetime | None = None
        self.segments: dict[str, datetime] = {}

    # -- persistence -------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """JSON-able snapshot of the open session, for restarts."""
        return {
            "sessionId": self.session_id,
            "start": _iso(self.start) if self.start else None,
            "lastActive": _iso(self.last_active) if self.last_active else None,
            "aiUsage": self.ai_usage,
            "anySince": _iso(self.any_since) if self.any_since else None,
            "segments": {k: _iso(v) for k, v in self.segments.items()},
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Load a snapshot written by :meth:`state`."""

        def ts(v: str | None) -> datetime | None:
            return datetime.fromisoformat(v) if v else None

        self.session_id = state.get("sessionId")
        self.start = ts(state.get("start"))
        self.last_active = ts(state.get("lastActive"))
        self.ai_usage = float(state.get("aiUsage", 0.0))
        self.any_since = ts(state.get("anySince"))
        self.segments = {
            k: v for k, s in state.get("segments", {}).items() if (v := ts(s)) is not None
        }

    def resume(self) -> list[Event]:
        """After a restore: tool segments cannot be trusted across the agent's downtime, so
        they end at the last moment a tool was seen; an idle session then ends normally."""
        events: list[Event] = []
        if self.last_active is None:
            self.segments.clear()
            self.any_since = None
            return events
        for tool in sorted(self.segments):
            events.append(self._detected(tool, self.segments[tool], self.last_active))
        self.segments.clear()
        if self.any_since is not None:
            self.ai_usage += max(0.0, (self.last_active - self.any_since).total_seconds())
            self.any_since = None
        return events

    # -- transitions -------------------------------------------------------------------------
    def observe(self, tools: frozenset[str], now: datetime) -> list[Event]:
        """Feed one observation; returns the events it produces, in order."""
        events: list[Event] = []
        if (
            self.session_id is not None
            and self.last_active is not None
            and not self.segments
            and now - self.last_active >= self.idle_timeout
        ):
            events.extend(self._end_session())
        if tools:
            if self.session_id is None:
                self.session_id = self._new_id()
                self.start = now
                self.ai_usage = 0.0
                events.append(
                    self._event(
                        "SessionStarted",
                        now,
                        startTime=_iso(now),
                        tool=sorted(tools)[0],
                        deviceId=self.device_id,
                    )
                )
            if self.any_since is None:
                self.any_since = now
            self.last_active = now
            for tool in sorted(tools):
                since = self.segments.get(tool)
                if since is None:
                    self.segments[tool] = now
                elif now - since >= self.flush_after:
                    events.append(self._detected(tool, since, now))
                    self.segments[tool] = now
        for tool in sorted(set(self.segments) - tools):
            events.append(self._detected(tool, self.segments.pop(tool), now))
        if not tools and self.any_since is not None:
            self.ai_usage += (now - self.any_since).total_seconds()
            self.any_since = None
            self.last_active = now
        return events

    def close(self, now: datetime) -> list[Event]:
        """End every segment and the session now (agent shutting down)."""
        events = self.observe(frozenset(), now)
        if self.session_id is not None:
            events.extend(self._end_session())
        return events

    def _end_session(self) -> list[Event]:
        assert self.start is not None and self.last_active is not None
        duration = max(0.0, (self.last_active - self.start).total_seconds())
        event = self._event(
            "SessionEnded",
            self.last_active,
            endTime=_iso(self.last_active),
            duration=round(duration, 3),
            aiUsageTime=round(min(self.ai_usage, duration), 3),
        )
        self.session_id = None
        self.start = self.last_active = self.any_since = None
        self.ai_usage = 0.0
        return [event]

    def _detected(self, tool: str, since: datetime, now: datetime) -> Event:
        return self._event(
            "AIDetected", now, tool=tool, duration=round(max(0.0, (now - since).total_seconds()), 3)
        )

    def _event(self, kind: str, at: datetime, **fields: Any) -> Event:
        event: Event = {
            "eventId": self._new_id(),
            "type": kind,
            "occurredAt": _iso(at),
            "userId": self.user_id,
            "sessionId": self.session_id,
        }
        event.update({k: v for k, v in fields.items() if v is not None})
        return event
