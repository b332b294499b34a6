"""An independent oracle for the breakdowns (docs/metrics.md §3, §10, §11).

It knows nothing of the rollups: it replays the agent events in plain Python (the merge rules
of ingestion: first eventId wins, a SessionEnded without a start creates the session at
``end - duration``, the first end wins), builds each person's intervals with the time model
(detections clipped to their session, open sessions live while active, standalone detections
count as session time) and measures unions with a sort-and-sweep written here.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

STALE = timedelta(hours=2)
ENGAGED_SECONDS = 3600.0
ENGAGED_DAYS = 3

Interval = tuple[float, float]


def ts(moment: datetime) -> float:
    return moment.timestamp()


def parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def union(intervals: list[Interval]) -> list[Interval]:
    merged: list[list[float]] = []
    for a, b in sorted(i for i in intervals if i[1] > i[0]):
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    return [(a, b) for a, b in merged]


def measure(intervals: list[Interval], lo: float, hi: float) -> float:
    return sum(max(0.0, min(b, hi) - max(a, lo)) for a, b in union(intervals))


@dataclass
class Session:
    sid: str
    user: str
    device: str
    start: datetime
    end: datetime | None = None
    started: bool = False


@dataclass
class Detection:
    user: str
    sid: str | None
    device: str
    tool: str
    duration: float
    at: datetime


@dataclass
class World:
    """The final raw state after replaying a stream."""

    sessions: dict[str, Session] = field(default_factory=dict)
    detections: list[Detection] = field(default_factory=list)

    @classmethod
    def replay(cls, batches: list[tuple[str, list[dict]]]) -> World:
        world = cls()
        seen: set[str] = set()
        for agent, events in batches:
            for e in events:
                if e["eventId"] in seen:
                    continue
                seen.add(e["eventId"])
                world.apply(agent, e)
        return world

    def apply(self, agent: str, e: dict) -> None:
        kind, sid = e["type"], e.get("sessionId")
        if kind == "SessionStarted":
            s = self.sessions.get(sid)
            if s is None:
                self.sessions[sid] = Session(sid, e["userId"], agent, parse(e["startTime"]))
            else:
                s.start, s.user = parse(e["startTime"]), e["userId"]
            self.sessions[sid].started = True
        elif kind == "SessionEnded":
            s = self.sessions.get(sid)
            end = parse(e["endTime"])
            if s is None:
                start = end - timedelta(seconds=e["duration"])
                self.sessions[sid] = Session(sid, e["userId"], agent, start, end)
            elif s.end is None:
                s.end = end
        else:
            self.detections.append(
                Detection(e["userId"], sid, agent, e["tool"], e["duration"], parse(e["occurredAt"]))
            )

    # -- the time model ------------------------------------------------------------------------

    def session_interval(self, s: Session, now: datetime, live: bool = True) -> Interval:
        """``live`` False: an open session up to its last activity only (stored rollups)."""
        if s.end is not None:
            return ts(s.start), ts(s.end)
        last = max([s.start] + [d.at for d in self.detections if d.sid == s.sid])
        if live and now - last <= STALE and s.start <= now:
            return ts(s.start), ts(max(last, now))
        return ts(s.start), ts(last)

    def clipped(self, d: Detection, now: datetime, live: bool = True) -> tuple[Interval, bool]:
        """The detection's interval and whether it is standalone."""
        raw = (ts(d.at) - d.duration, ts(d.at))
        s = self.sessions.get(d.sid) if d.sid is not None else None
        if s is None:
            return raw, True
        a, b = self.session_interval(s, now, live)
        return (max(raw[0], a), min(raw[1], b)), False

    def intervals(self, now: datetime, live: bool = True) -> dict[str, dict[str, list[Interval]]]:
        """Per person: ``ai``, ``session``, ``tool:<t>``, ``device:<d>`` interval lists."""
        out: dict[str, dict[str, list[Interval]]] = defaultdict(lambda: defaultdict(list))
        for s in self.sessions.values():
            out[s.user]["session"].append(self.session_interval(s, now, live))
        for d in self.detections:
            interval, standalone = self.clipped(d, now, live)
            dims = out[d.user]
            dims["ai"].append(interval)
            dims[f"tool:{d.tool}"].append(interval)
            dims[f"device:{d.device}"].append(interval)
            if standalone:
                dims["session"].append(interval)
        return out

    def moments(self) -> dict[str, list[datetime]]:
        out: dict[str, list[datetime]] = defaultdict(list)
        for s in self.sessions.values():
            out[s.user].append(s.start)
            if s.end is not None:
                out[s.user].append(s.end)
        for d in self.detections:
            out[d.user].append(d.at)
        return out


def local_day_starts(now: datetime, zone: str, days: int) -> list[datetime]:
    tz = ZoneInfo(zone)
    today: date = now.astimezone(tz).date()
    return [
        datetime.combine(today - timedelta(days=days - 1 - i), time(0), tz).astimezone(UTC)
        for i in range(days)
    ]


@dataclass
class PersonTruth:
    ai: float = 0.0
    session: float = 0.0
    ai_days: int = 0
    sessions: int = 0
    detections: int = 0
    active: bool = False
    last: datetime | None = None

    @property
    def engaged(self) -> bool:
        return self.ai >= ENGAGED_SECONDS and self.ai_days >= ENGAGED_DAYS


def people_truth(
    world: World, now: datetime, day_starts: list[datetime], end: datetime, *, live: bool = True
) -> dict[str, PersonTruth]:
    lo, hi = ts(day_starts[0]), ts(end)
    bounds = [ts(d) for d in day_starts] + [hi]
    out: dict[str, PersonTruth] = defaultdict(PersonTruth)
    for user, dims in world.intervals(now, live).items():
        p = out[user]
        p.ai = measure(dims["ai"], lo, hi)
        p.session = measure(dims["session"], lo, hi)
        p.ai_days = sum(
            1 for i in range(len(day_starts)) if measure(dims["ai"], bounds[i], bounds[i + 1]) > 0
        )
    for s in world.sessions.values():
        if day_starts[0] <= s.start < end:
            out[s.user].sessions += 1
    for d in world.detections:
        if day_starts[0] <= d.at < end:
            out[d.user].detections += 1
    for user, moments in world.moments().items():
        out[user].last = max(moments)
        out[user].active = any(day_starts[0] <= m < end for m in moments)
    return out


def tools_truth(
    world: World, now: datetime, start: datetime, end: datetime
) -> dict[str, dict[str, object]]:
    """Per tool: period people/detections/aiSeconds and all-history first/last/people."""
    lo, hi = ts(start), ts(end)
    out: dict[str, dict[str, object]] = {}
    per_user = world.intervals(now)
    for d in world.detections:
        t = out.setdefault(
            d.tool,
            {"people": set(), "ever": set(), "detections": 0, "first": d.at, "last": d.at},
        )
        t["ever"].add(d.user)  # type: ignore[union-attr]
        t["first"] = min(t["first"], d.at)  # type: ignore[type-var]
        t["last"] = max(t["last"], d.at)  # type: ignore[type-var]
        if start <= d.at < end:
            t["detections"] += 1  # type: ignore[operator]
    for tool, t in out.items():
        seconds = 0.0
        for user, dims in per_user.items():
            used = measure(dims.get(f"tool:{tool}", []), lo, hi)
            seconds += used
            own = [d for d in world.detections if d.user == user and d.tool == tool]
            if used > 0 or any(start <= d.at < end for d in own):
                t["people"].add(user)  # type: ignore[union-attr]
        t["aiSeconds"] = seconds
    return out


def devices_truth(
    world: World, now: datetime, start: datetime, end: datetime
) -> dict[str, dict[str, float]]:
    lo, hi = ts(start), ts(end)
    out: dict[str, dict[str, float]] = defaultdict(lambda: {"aiSeconds": 0.0, "sessions": 0})
    for dims in world.intervals(now).values():
        for name, intervals in dims.items():
            if name.startswith("device:"):
                out[name.removeprefix("device:")]["aiSeconds"] += measure(intervals, lo, hi)
    for s in world.sessions.values():
        if start <= s.start < end:
            out[s.device]["sessions"] += 1
    return {k: v for k, v in out.items() if v["aiSeconds"] > 0 or v["sessions"] > 0}
