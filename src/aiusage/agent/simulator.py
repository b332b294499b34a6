"""Simulated agent traffic, posted through the real ingestion API.

Two drivers post batches to ``POST /api/agent/events`` with Agent tokens, exactly as desktop
agents send them (so dashboards, alerts and exports see real data):

* :func:`simulate` (``aiusage agent simulate``): a load at a chosen event rate.
  :class:`TrafficModel` decides *what* happens (pure, seeded, driven by the caller's clock):
  users start sessions, use AI tools (mostly approved ones, occasionally an unapproved one) and
  end their sessions.
  Detections stay physically possible at any rate: one ends at its ``occurredAt``, starts no
  earlier than its session and than the previous use of the same tool in that session.
* :func:`simulate_workforce` (``aiusage serve --demo``): the people of a
  :class:`~aiusage.agent.workforce.Workforce` at their real pace, each device with its own token;
  its history is posted first, then events as they happen.

Both are bounded by ``duration``; clocks and the sleep are injectable so tests run without
waiting.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import httpx

from aiusage.agent.workforce import Workforce

log = logging.getLogger("aiusage.agent.simulator")

APPROVED_TOOLS: Final = ("GitHub Copilot", "ChatGPT", "Claude", "Cursor", "Microsoft 365 Copilot")
"""Tools the demo organization approves (weights below favour the first ones)."""
UNAPPROVED_TOOLS: Final = ("DeepSeek", "Perplexity", "Character.AI")
"""Tools a simulated user occasionally uses without approval (shadow AI)."""
_WEIGHTS: Final = (35, 30, 20, 10, 5)
MAX_BATCH: Final = 500
"""Largest batch posted (the API accepts 1,000)."""
CATCH_UP_STEP: Final = timedelta(hours=24)
"""Slice of history a workforce generates and posts at a time."""
HISTORY_POSTED: Final = "simulated history posted"
"""Start of the log line telling that a workforce's history is in (scripts wait for it)."""
CATCH_UP_PAUSE: Final = 0.5
"""Seconds between two slices of history, so that the server receiving them (the demo's own)
keeps answering its users while the history loads."""


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def union_seconds(intervals: Sequence[tuple[datetime, datetime]]) -> float:
    """Seconds covered by at least one of ``intervals`` (start, end)."""
    total, reach = 0.0, None
    for start, end in sorted(intervals):
        if reach is None or start > reach:
            total += (end - start).total_seconds()
            reach = end
        elif end > reach:
            total += (end - reach).total_seconds()
            reach = end
    return total


@dataclass(slots=True)
class _Session:
    session_id: str
    user_id: str
    tool: str
    started: datetime
    planned_s: float
    uses: list[tuple[datetime, datetime]] = field(default_factory=list)
    """Reported tool uses (start, end), for the session's AI time."""
    tool_free: dict[str, datetime] = field(default_factory=dict)
    """Per tool, when its last reported use ended (a tool is not used twice at once)."""


@dataclass(slots=True)
class TrafficModel:
    """Seeded generator of agent events for ``users`` simulated people.

    Args:
        users: Number of simulated users (ids ``sim-user-001``...).
        seed: Random seed (None: nondeterministic).
        unapproved_share: Probability that a detection is of an unapproved tool.
        mean_session_s: Mean planned session length in seconds.
        user_prefix: Prefix of user ids.
    """

    users: int
    seed: int | None = None
    unapproved_share: float = 0.04
    mean_session_s: float = 120.0
    user_prefix: str = "sim-user-"
    _rng: random.Random = field(init=False)
    _open: dict[str, _Session] = field(init=False, default_factory=dict)
    _all: list[str] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        if self.users < 1:
            raise ValueError("users must be at least 1")
        self._rng = random.Random(self.seed)
        self._all = [f"{self.user_prefix}{i:03d}" for i in range(1, self.users + 1)]

    def user_ids(self) -> list[str]:
        """Every simulated user id."""
        return list(self._all)

    @property
    def open_sessions(self) -> int:
        """Sessions started and not ended yet."""
        return len(self._open)

    def step(self, now: datetime, count: int) -> list[dict[str, Any]]:
        """``count`` events happening at ``now`` (sessions that ran their course end first)."""
        events: list[dict[str, Any]] = []
        for session in list(self._open.values()):
            if len(events) >= count:
                break
            if (now - session.started).total_seconds() >= session.planned_s:
                events.append(self._end(session, now))
        while len(events) < count:
            idle = (
                [u for u in self._all if u not in self._open]
                if len(self._open) < len(self._all)
                else []
            )
            # Start a session when few are running, else mostly use AI inside running ones.
            if idle and (not self._open or self._rng.random() < 0.25):
                events.append(self._start(self._rng.choice(idle), now))
            else:
                session = self._rng.choice(list(self._open.values()))
                events.append(self._detect(session, now))
        return events

    def end_all(self, now: datetime) -> list[dict[str, Any]]:
        """SessionEnded for every open session (end of the simulation)."""
        return [self._end(s, now) for s in list(self._open.values())]

    def _event(self, kind: str, user: str, now: datetime, **fields: Any) -> dict[str, Any]:
        return {
            "eventId": uuid.UUID(int=self._rng.getrandbits(128), version=4).hex,
            "type": kind,
            "occurredAt": _iso(now),
            "userId": user,
            **fields,
        }

    def _start(self, user: str, now: datetime) -> dict[str, Any]:
        tool = self._rng.choices(APPROVED_TOOLS, _WEIGHTS)[0]
        session = _Session(
            session_id=f"sim-{uuid.UUID(int=self._rng.getrandbits(128), version=4).hex[:20]}",
            user_id=user,
            tool=tool,
            started=now,
            planned_s=self._rng.expovariate(1.0 / self.mean_session_s),
        )
        self._open[user] = session
        return self._event(
            "SessionStarted",
            user,
            now,
            sessionId=session.session_id,
            startTime=_iso(now),
            tool=tool,
            deviceId=f"sim-device-{user[-3:]}",
        )

    def _detect(self, session: _Session, now: datetime) -> dict[str, Any]:
        if self._rng.random() < self.unapproved_share:
            tool = self._rng.choice(UNAPPROVED_TOOLS)
        elif self._rng.random() < 0.8:
            tool = session.tool
        else:
            tool = self._rng.choices(APPROVED_TOOLS, _WEIGHTS)[0]
        # A use ends now and cannot begin before the session or the previous use of the tool.
        since = max(session.started, session.tool_free.get(tool, session.started))
        seconds = min(round(self._rng.uniform(2.0, 90.0), 1), (now - since).total_seconds())
        session.tool_free[tool] = now
        session.uses.append((now - timedelta(seconds=seconds), now))
        return self._event(
            "AIDetected",
            session.user_id,
            now,
            sessionId=session.session_id,
            tool=tool,
            duration=seconds,
        )

    def _end(self, session: _Session, now: datetime) -> dict[str, Any]:
        del self._open[session.user_id]
        duration = round(max(0.0, (now - session.started).total_seconds()), 3)
        return self._event(
            "SessionEnded",
            session.user_id,
            now,
            sessionId=session.session_id,
            endTime=_iso(now),
            duration=duration,
            # AI time is the union of the uses (two tools at once count once).
            aiUsageTime=round(min(union_seconds(session.uses), duration), 3),
        )


@dataclass(slots=True)
class SimulationStats:
    """What a simulation run did."""

    batches: int = 0
    events_sent: int = 0
    accepted: int = 0
    duplicates: int = 0
    failed_batches: int = 0
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly summary (printed by the CLI)."""
        return {
            "batches": self.batches,
            "eventsSent": self.events_sent,
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "failedBatches": self.failed_batches,
            "errors": self.errors[:10],
        }


def mint_agent_token(
    data_dir: str | Path, org: str, *, sub: str | None = None, ttl: int = 24 * 3600
) -> str:
    """An Agent token for ``org`` from the built-in issuer of ``data_dir`` (as
    ``aiusage token issue --role Agent`` would print)."""
    from aiusage.auth.issuer import BuiltinIssuer  # cryptography import only when needed

    issuer = BuiltinIssuer.load_or_create(data_dir)
    return issuer.issue(sub or f"simulator-{org}", org, "Agent", ttl)


async def simulate(
    base_url: str,
    token: str,
    *,
    org: str,
    users: int,
    rate: float,
    duration: float,
    seed: int | None = None,
    batch_interval: float = 1.0,
    unapproved_share: float = 0.04,
    client: httpx.AsyncClient | None = None,
    clock: Callable[[], float] = time.monotonic,
    wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    stop: asyncio.Event | None = None,
) -> SimulationStats:
    """Post simulated traffic for ``duration`` seconds at about ``rate`` events per second.

    Every ``batch_interval`` seconds the events of that interval are posted as one batch
    (split at :data:`MAX_BATCH`); at the end, open sessions are ended. A failing batch is
    counted and logged, and the run goes on (a load generator must not die on one 503).

    Args:
        base_url: Server root, e.g. ``http://127.0.0.1:8080``.
        token: Agent token of ``org``.
        org: Organization (sent as ``X-Organization-Id``; the token decides).
        users: Simulated users.
        rate: Events per second (> 0).
        duration: Seconds to run (>= 0).
        client: An httpx client to use (tests pass one over ``ASGITransport``).
        clock, wall_clock, sleep: Time sources (injectable).
        stop: Set to end early (the demo's shutdown).
    """
    if rate <= 0:
        raise ValueError("rate must be positive")
    if duration < 0:
        raise ValueError("duration must not be negative")
    model = TrafficModel(users, seed=seed, unapproved_share=unapproved_share)
    stats = SimulationStats()
    own = client is None
    http = client or httpx.AsyncClient(base_url=base_url, timeout=30.0)
    headers = {"Authorization": f"Bearer {token}", "X-Organization-Id": org}
    url = base_url.rstrip("/") + "/api/agent/events"
    started = clock()
    carry = 0.0
    # Bounded loop: one iteration per interval of the duration (plus the final flush).
    max_rounds = int(duration / batch_interval) + 2
    try:
        for _ in range(max_rounds):
            elapsed = clock() - started
            if elapsed >= duration or (stop is not None and stop.is_set()):
                break
            carry += rate * batch_interval
            count, carry = int(carry), carry - int(carry)
            if count:
                await _post(http, url, headers, model.step(wall_clock(), count), stats)
            await sleep(max(0.0, batch_interval - (clock() - started - elapsed)))
        final = model.end_all(wall_clock())
        if final:
            await _post(http, url, headers, final, stats)
    finally:
        if own:
            await http.aclose()
    return stats


async def simulate_workforce(
    base_url: str,
    tokens: Mapping[str, str],
    *,
    org: str,
    workforce: Workforce,
    duration: float,
    interval: float = 2.0,
    heartbeat: float = 300.0,
    client: httpx.AsyncClient | None = None,
    clock: Callable[[], float] = time.monotonic,
    wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    stop: asyncio.Event | None = None,
) -> SimulationStats:
    """Post the events of ``workforce`` as they happen, for ``duration`` seconds.

    The first round posts everything from ``workforce.start`` to now (the history); then every
    ``interval`` seconds what happened since. Each device posts with its own token; a device
    whose person still works checks in at least every ``heartbeat`` seconds (an empty batch, as
    a running agent with nothing to report), so it is not reported silent between sessions.
    Open sessions are left open at the end: the agents did not stop, the simulation did.

    Args:
        tokens: Agent token per device id (:attr:`Person.device_id`).
        workforce: The simulated people and their agents.
        client, clock, wall_clock, sleep, stop: As in :func:`simulate`.
    """
    if interval <= 0:
        raise ValueError("interval must be positive")
    stats = SimulationStats()
    own = client is None
    http = client or httpx.AsyncClient(base_url=base_url, timeout=60.0)
    url = base_url.rstrip("/") + "/api/agent/events"
    device_of = {p.user_id: p.device_id for p in workforce.people}
    # A lapsed person's device stopped reporting with them.
    alive = {p.device_id for p in workforce.people if p.habit != "lapsed"} & set(tokens)
    last_post: dict[str, float] = {}
    reached = workforce.start
    caught_up = False
    started = clock()
    try:
        for _ in range(int(duration / interval) + 2):  # bounded by the duration
            elapsed = clock() - started
            if elapsed >= duration or (stop is not None and stop.is_set()):
                break
            now = wall_clock()
            # The history is generated and posted a slice at a time, with pauses: at once, it
            # would hold the event loop of the demo's own server for a minute.
            while reached < now:  # bounded: one slice per CATCH_UP_STEP of history
                reached = min(now, reached + CATCH_UP_STEP)
                by_device: dict[str, list[dict[str, Any]]] = {}
                for event in workforce.advance(reached):
                    by_device.setdefault(device_of[str(event["userId"])], []).append(event)
                for device in sorted(set(by_device) | alive):
                    events = by_device.get(device, [])
                    due = clock() - last_post.get(device, -heartbeat) >= heartbeat
                    if device in tokens and (events or due):
                        headers = {
                            "Authorization": f"Bearer {tokens[device]}",
                            "X-Organization-Id": org,
                        }
                        await _post(http, url, headers, events, stats, allow_empty=True)
                        last_post[device] = clock()
                if reached < now:
                    await sleep(CATCH_UP_PAUSE)
            if not caught_up:
                caught_up = True
                log.info("%s up to %s: %d events", HISTORY_POSTED, _iso(now), stats.events_sent)
            await sleep(max(0.0, interval - (clock() - started - elapsed)))
    finally:
        if own:
            await http.aclose()
    return stats


async def _post(
    http: httpx.AsyncClient,
    url: str,
    headers: dict[str, str],
    events: Sequence[dict[str, Any]],
    stats: SimulationStats,
    *,
    allow_empty: bool = False,
) -> None:
    for i in range(0, max(len(events), 1 if allow_empty else 0), MAX_BATCH):
        chunk = list(events[i : i + MAX_BATCH])
        stats.batches += 1
        stats.events_sent += len(chunk)
        try:
            response = await http.post(url, json={"events": chunk}, headers=headers)
        except httpx.HTTPError as exc:
            stats.failed_batches += 1
            stats.errors.append(f"{type(exc).__name__}: {exc}")
            log.warning("simulator batch failed: %s", type(exc).__name__)
            continue
        if response.status_code == 200:
            body = response.json()
            stats.accepted += int(body.get("accepted", 0))
            stats.duplicates += int(body.get("duplicates", 0))
        else:
            stats.failed_batches += 1
            stats.errors.append(f"HTTP {response.status_code}: {response.text[:200]}")
            log.warning("simulator batch refused: HTTP %d", response.status_code)


__all__ = [
    "APPROVED_TOOLS",
    "UNAPPROVED_TOOLS",
    "SimulationStats",
    "TrafficModel",
    "mint_agent_token",
    "simulate",
    "simulate_workforce",
    "union_seconds",
]
