"""A simulated workforce whose AI-tool use drives the desktop agent's own session tracker.

Used by ``aiusage serve --demo``. Every simulated person has a name, a team, a device, working
hours (the demo company spans time zones, so someone is at work at any hour of the day) and a
habit: *engaged* (uses AI most working days), *casual* (now and then), *lapsed* (stopped a
while before the demo began) or *never*. A few people also use an unapproved tool (shadow AI),
one of them only since a couple of days before the demo began.

A person's day plan (which tools are in use from when to when) is drawn from a generator seeded
by (seed, person, UTC day), so plans are reproducible and independent of when they are asked
for. The plans are fed, one observation every :data:`TICK` seconds, to
:class:`~aiusage.agent.sessions.SessionTracker`, the state machine the real agent runs; the
events are therefore exactly what agents send: detections end at their ``occurredAt``, lie
inside their session and never last longer than the time elapsed; a session ends after the
agent's idle timeout, at the last moment a tool was seen; two tools at once are two
overlapping detections.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final, Literal

from aiusage.agent.sessions import SessionTracker

Habit = Literal["engaged", "casual", "lapsed", "never"]

TICK: Final = 20
"""Seconds between two observations of a simulated agent (plans are aligned to it)."""
IDLE_TIMEOUT: Final = timedelta(minutes=10)
"""Gap without any tool that ends a simulated session (the agent's ``idle_timeout``)."""
FLUSH_AFTER: Final = timedelta(minutes=1)
"""Longest use reported as one detection (the agent's ``flush_after``): long uses show up in
the live feed while they last."""
LAPSED_DAYS: Final = 10
"""A lapsed person's last active day lies this many days before the demo began."""
NEW_SHADOW_DAYS: Final = 2
"""The newest unapproved tool was first used this many days before the demo began."""

TEAMS: Final = (
    ("Support", 0.5),
    ("Engineering", 7.0),
    ("Marketing", 8.5),
    ("Sales", 13.0),
    ("Product", 15.5),
)
"""Teams and the UTC hour their working day starts (Manila, Berlin, London, New York, San
Francisco): their days overlap, so the demo has activity at any hour."""
_TEAM_TOOLS: Final = {
    "Engineering": ("GitHub Copilot", "Cursor", "Claude", "ChatGPT"),
    "Product": ("Claude", "GitHub Copilot", "ChatGPT", "Cursor"),
    "Support": ("ChatGPT", "Microsoft 365 Copilot", "Claude"),
    "Marketing": ("ChatGPT", "Claude", "Microsoft 365 Copilot"),
    "Sales": ("Microsoft 365 Copilot", "ChatGPT", "Claude"),
}
_HABITS: Final[tuple[Habit, ...]] = (
    "engaged",
    "engaged",
    "casual",
    "engaged",
    "casual",
    "engaged",
    "lapsed",
    "engaged",
    "casual",
    "never",
)
"""Habit of person ``i`` is ``_HABITS[i % 10]``: half engaged, some casual, some inactive."""
_SHADOW: Final = {2: "Perplexity", 5: "DeepSeek", 11: "Perplexity"}
"""Index -> unapproved tool used since before the history begins."""
_NEW_SHADOW: Final = (7, "Manus")
"""Index and unapproved tool first used :data:`NEW_SHADOW_DAYS` days before the demo began."""
_FIRST: Final = (
    "Ann", "Ben", "Chloe", "David", "Emma", "Felix", "Grace", "Hugo", "Iris", "Jonas",
    "Kate", "Liam", "Maya", "Noah", "Olivia", "Pablo", "Rosa", "Sam", "Tara", "Victor",
)  # fmt: skip
_LAST: Final = (
    "Lee", "Novak", "Garcia", "Okafor", "Schmidt", "Rossi", "Tanaka", "Dubois", "Kowalski",
    "Silva", "Nguyen", "Berg", "Moreau", "Cohen", "Reyes", "Larsen", "Patel", "Weber",
    "Santos", "Fischer",
)  # fmt: skip

Use = tuple[int, int, str]
"""One continuous use of a tool: (start, end) in epoch seconds (multiples of TICK), tool."""


@dataclass(frozen=True, slots=True)
class Person:
    """One simulated employee and their device."""

    user_id: str
    name: str
    email: str
    team: str | None
    device_id: str
    device_name: str
    habit: Habit
    start_hour: float
    """UTC hour their working day starts."""
    tools: tuple[str, ...]
    """Approved tools they use, favourite first."""
    shadow_tool: str | None = None
    shadow_since: date | None = None
    """First day they use ``shadow_tool`` (None: since before the history begins)."""


def demo_people(count: int, anchor: datetime, user_prefix: str = "sim-user-") -> list[Person]:
    """The ``count`` people of the demo organization (ids ``sim-user-001``...).

    ``anchor`` is when the demo began (the organization's creation): lapsed people stopped
    :data:`LAPSED_DAYS` before it, the newest shadow tool appeared :data:`NEW_SHADOW_DAYS`
    before it.
    """
    people = []
    for i in range(count):
        habit = _HABITS[i % len(_HABITS)]
        # The people who never used AI are the newest hires, not assigned to a team yet.
        # Shifted every ten people so that each team gets a mix of habits.
        team, start_hour = (None, 7.5) if habit == "never" else TEAMS[(i + i // 10) % len(TEAMS)]
        favourites = list(_TEAM_TOOLS[team or "Engineering"])
        random.Random(f"tools:{i}").shuffle(favourites)
        # Beyond 20 people first names repeat: shift the last name so e-mails stay unique.
        first, last = _FIRST[i % len(_FIRST)], _LAST[(i * 7 + i // len(_FIRST)) % len(_LAST)]
        shadow, since = _SHADOW.get(i), None
        if i == _NEW_SHADOW[0]:
            shadow, since = _NEW_SHADOW[1], (anchor - timedelta(days=NEW_SHADOW_DAYS)).date()
        people.append(
            Person(
                user_id=f"{user_prefix}{i + 1:03d}",
                name=f"{first} {last}",
                email=f"{first.lower()}.{last.lower()}@demo.local",
                team=team,
                device_id=f"sim-device-{i + 1:03d}",
                device_name=f"{first}'s laptop",
                habit=habit,
                start_hour=start_hour,
                tools=tuple(favourites[:2]),
                shadow_tool=shadow,
                shadow_since=since,
            )
        )
    return people


def _tick(seconds: float) -> int:
    return int(seconds // TICK) * TICK


@dataclass(slots=True)
class _Agent:
    person: Person
    tracker: SessionTracker
    cursor: int
    """Epoch second of the next observation."""
    plans: dict[date, list[Use]] = field(default_factory=dict)


@dataclass(slots=True)
class Workforce:
    """The simulated agents of ``people``, observed from ``start`` on.

    Args:
        people: Who (see :func:`demo_people`).
        start: First observation (events before it are never produced).
        anchor: When the demo began (lapsed habits and the newest shadow tool count from it).
        seed: Seed of the day plans.
        new_id: Id factory for events and sessions (tests inject a deterministic one).
    """

    people: Sequence[Person]
    start: datetime
    anchor: datetime
    seed: int = 0
    new_id: Callable[[], str] = field(default=lambda: uuid.uuid4().hex)
    _agents: list[_Agent] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        first = _tick(self.start.timestamp())
        self._agents = [
            _Agent(
                p,
                SessionTracker(
                    p.user_id,
                    p.device_id,
                    idle_timeout=IDLE_TIMEOUT,
                    flush_after=FLUSH_AFTER,
                    new_id=self.new_id,
                ),
                first,
            )
            for p in self.people
        ]

    @property
    def open_sessions(self) -> int:
        """Sessions started and not ended yet."""
        return sum(a.tracker.session_id is not None for a in self._agents)

    def advance(self, now: datetime) -> list[dict[str, Any]]:
        """Every event the agents produce up to ``now``, in time order."""
        limit = now.timestamp()
        events: list[dict[str, Any]] = []
        for agent in self._agents:
            events += self._run(agent, limit)
        events.sort(key=lambda e: str(e["occurredAt"]))
        return events

    def _run(self, agent: _Agent, limit: float) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        tracker = agent.tracker
        # Bounded: one iteration per tick up to ``limit``, idle stretches are jumped over.
        while agent.cursor <= limit:
            t = agent.cursor
            uses = self._uses_around(agent, t)
            tools = frozenset(tool for a, b, tool in uses if a <= t < b)
            if tools or tracker.session_id is not None:
                events += tracker.observe(tools, datetime.fromtimestamp(t, UTC))
                agent.cursor = t + TICK
                continue
            upcoming = [a for a, _b, _tool in uses if a > t]
            # Nothing in use and no session: sleep until the next use (or the next day).
            day_end = _tick(
                datetime.combine(_day(t) + timedelta(days=1), datetime.min.time(), UTC).timestamp()
            )
            agent.cursor = min(upcoming) if upcoming else max(day_end, t + TICK)
        return events

    def _uses_around(self, agent: _Agent, t: int) -> list[Use]:
        # A plan runs into the next UTC day (evening shifts): look at yesterday's too.
        today = _day(t)
        return self._plan(agent, today - timedelta(days=1)) + self._plan(agent, today)

    def _plan(self, agent: _Agent, day: date) -> list[Use]:
        plan = agent.plans.get(day)
        if plan is None:
            if len(agent.plans) > 8:  # keep the cache small in long runs
                agent.plans.clear()
            plan = agent.plans[day] = day_plan(agent.person, day, self.anchor, self.seed)
        return plan


def _day(t: int) -> date:
    return datetime.fromtimestamp(t, UTC).date()


def day_plan(person: Person, day: date, anchor: datetime, seed: int = 0) -> list[Use]:
    """When ``person`` uses which tool on UTC ``day`` (reproducible from its arguments)."""
    rng = random.Random(f"{seed}:{person.user_id}:{day.isoformat()}")
    habit = person.habit
    if habit == "never":
        return []
    if habit == "lapsed" and day > (anchor - timedelta(days=LAPSED_DAYS)).date():
        return []
    # Casual people use AI on a few days a month, briefly: under the engagement threshold
    # (docs/metrics.md) most months.
    work_chance = {"engaged": 0.9, "casual": 0.15, "lapsed": 0.45}[habit]
    if day.weekday() >= 5 and person.team != "Support":  # support works in weekend shifts
        work_chance *= 0.2
    if rng.random() >= work_chance:
        return []
    midnight = datetime.combine(day, datetime.min.time(), UTC).timestamp()
    begin = midnight + (person.start_hour + rng.uniform(-0.75, 0.75)) * 3600
    end_of_day = begin + 9 * 3600
    sessions = rng.randint(2, 4) if habit == "engaged" else rng.randint(1, 2)
    shortest, longest = (20, 90) if habit == "engaged" else (5, 30)
    uses: list[Use] = []
    t = begin + rng.uniform(0, 45) * 60
    for _ in range(sessions):
        stop = min(t + rng.uniform(shortest, longest) * 60, end_of_day)
        if stop - t < 4 * 60:
            break
        uses += _session_uses(rng, person, day, t, stop)
        # Breaks between sessions outlast the idle timeout, so sessions stay apart.
        t = stop + rng.uniform(12, 50) * 60
    return uses


def _session_uses(
    rng: random.Random, person: Person, day: date, start: float, stop: float
) -> list[Use]:
    primary = person.tools[0] if rng.random() < 0.7 or len(person.tools) < 2 else person.tools[1]
    uses: list[Use] = []
    t = start
    while t < stop:  # bounded: every step advances t by at least a minute
        end = min(t + rng.uniform(1, 8) * 60, stop)
        uses.append((_tick(t), _tick(end), primary))
        # Pauses (reading, writing, meetings) shorter than the idle timeout.
        t = end + rng.uniform(1, 9) * 60
    shadow_ok = person.shadow_tool is not None and (
        person.shadow_since is None or day >= person.shadow_since
    )
    # Someone who just discovered a tool tries it in most sessions.
    trying = shadow_ok and person.shadow_since is not None
    if rng.random() < (0.7 if trying else 0.35):
        # A second tool in the same session, sometimes at the same time as the first.
        others = [x for x in person.tools if x != primary]
        other = (
            person.shadow_tool
            if shadow_ok and (trying or rng.random() < 0.5 or not others)
            else (others[0] if others else None)
        )
        for _ in range(rng.randint(1, 3) if other else 0):
            a = rng.uniform(start, max(start, stop - 120))
            uses.append((_tick(a), _tick(min(stop, a + rng.uniform(2, 10) * 60)), str(other)))
    return [u for u in uses if u[1] > u[0]]


__all__ = [
    "IDLE_TIMEOUT",
    "TEAMS",
    "TICK",
    "Person",
    "Workforce",
    "day_plan",
    "demo_people",
]
