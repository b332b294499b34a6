"""A rolling restart with stateful dashboards, measured (docs/spec/stateful-reconnect.md §5.5).

Shared by ``tests/deploy/test_stateful_handover.py`` (asserts) and ``bench/bench_handover.py``
(prints a table): the :class:`~tests.deploy.stack.Stack` (nginx + two ``aiusage serve`` on
PostgreSQL and Redis), official JS clients with ``withStatefulReconnect()`` in one Node process
(``tests/conformance/handover.mjs``) recording the session number of every ``SessionStarted``
push, and an agent posting numbered sessions through nginx at a fixed rate. Each process in
turn gets SIGTERM, exits, and is started again.
"""

from __future__ import annotations

import json
import signal
import statistics
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.deploy.procs import LineReader
from tests.deploy.stack import SHUTDOWN_GRACE_S, Stack, node_env
from tests.deploy.test_rolling_restart import Agent

HANDOVER_CLIENT = Path(__file__).resolve().parent.parent / "conformance" / "handover.mjs"
PREFIX = "h-"


AGENTS = 4
"""Agents posting concurrently: one round trip at a time each, under load, is too slow alone."""


def session_number(session_id: str) -> tuple[str, int]:
    """(agent run, sequence number) of a session a :class:`NumberedAgent` posted."""
    run, _, number = session_id.rpartition("-")
    return run, int(number)


class NumberedAgent(Agent):
    """The rolling-restart test's agent, posting ``SessionStarted`` events numbered 0, 1, 2...
    at ``rate`` per second on average (batches every 0.1 s, bigger after a slow round trip)."""

    def __init__(self, base_url: str, token: str, rate: int) -> None:
        super().__init__(base_url, token, interval=0.1)
        self.rate = rate
        self.per_batch = max(1, rate // 10)
        self.run = uuid.uuid4().hex[:6]
        self._next = 0
        self.started = 0.0
        self.stopped = 0.0

    def _batch(self) -> list[dict[str, Any]]:
        now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        due = int(self.rate * (time.monotonic() - self.started)) - self._next
        events = []
        for _ in range(max(self.per_batch, min(due, 10 * self.per_batch))):
            sid = f"{PREFIX}{self.run}-{self._next}"
            self._next += 1
            events.append(
                {
                    "eventId": f"e-{sid}",
                    "type": "SessionStarted",
                    "occurredAt": now,
                    "userId": f"user-{self._next % 7}",
                    "sessionId": sid,
                    "startTime": now,
                    "tool": "ChatGPT",
                    "deviceId": "dev-1",
                }
            )
        return events

    def start(self) -> None:
        self.started = time.monotonic()
        super().start()

    def stop(self) -> None:
        super().stop()
        self.stopped = time.monotonic()


@dataclass
class HandoverRun:
    """What one rolling restart produced."""

    dashboards: int
    acked: set[str]
    agent_statuses: dict[int, int]
    exits_s: list[float]
    clients: list[dict[str, Any]]
    ids_before: list[str]
    agent_rate: float
    lost: list[int] = field(default_factory=list)
    """Per dashboard: acknowledged sessions never received."""
    duplicated: list[int] = field(default_factory=list)
    """Per dashboard: sessions received more than once."""
    out_of_order: list[int] = field(default_factory=list)
    """Per dashboard: pushes that arrived after a higher-numbered one."""

    def __post_init__(self) -> None:
        for client in self.clients:
            ids = [v for v in client["values"] if isinstance(v, str) and v.startswith(PREFIX)]
            self.lost.append(len(self.acked - set(ids)))
            self.duplicated.append(len(ids) - len(set(ids)))
            highest: dict[str, int] = {}
            inversions = 0
            for run, n in map(session_number, ids):
                if n < highest.get(run, -1):
                    inversions += 1
                highest[run] = max(highest.get(run, -1), n)
            self.out_of_order.append(inversions)

    @property
    def restarts(self) -> int:
        """Dashboards that fell back to a new connection (automatic reconnect)."""
        return sum(1 for c in self.clients if c["restarts"])

    @property
    def same_ids(self) -> int:
        """Dashboards still on the connection id they started with."""
        return sum(1 for c, i in zip(self.clients, self.ids_before, strict=True) if c["id"] == i)

    @property
    def resumes(self) -> int:
        """Stateful resumes the clients completed (lost socket -> replay sent)."""
        return sum(len(c["resumeGapsMs"]) for c in self.clients)

    def resume_gap_ms(self, q: float) -> float:
        """Quantile ``q`` of the reconnect gap: lost socket to replay sent on the new one."""
        return _quantile([float(g) for c in self.clients for g in c["resumeGapsMs"]], q)

    def push_gap_ms(self, q: float) -> float:
        """Quantile ``q`` over dashboards of the longest pause between two pushes."""
        return _quantile([float(c["maxGapMs"]) for c in self.clients], q)


def _quantile(values: list[float], q: float) -> float:
    if len(values) < 2:
        return values[0] if values else 0.0
    return statistics.quantiles(sorted(values), n=100, method="inclusive")[int(q * 100) - 1]


def start_dashboards(stack: Stack, count: int, token: str) -> tuple[LineReader, list[str]]:
    """``count`` stateful official clients through nginx, in one Node process."""
    proc = subprocess.Popen(
        [
            "node",
            str(HANDOVER_CLIENT),
            stack.http_url + "/hubs/analytics",
            str(count),
            "json",
            "SessionStarted",
            "sessionId",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**node_env(), "HANDOVER_TOKEN": token},
        start_new_session=True,
    )
    stack.others.append(proc)
    reader = LineReader(proc)
    ready = reader.wait_for(lambda e: e["event"] == "ready", 90)
    ids: list[str] = ready["ids"]
    return reader, ids


def restart(stack: Stack, name: str) -> float:
    """SIGTERM one process, wait for its exit (0), start it again; seconds until it exited."""
    backend = next(b for b in stack.backends if b.name == name)
    proc = backend.proc
    assert proc is not None
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(SHUTDOWN_GRACE_S + 10)
    took = time.monotonic() - started
    assert code == 0, backend.log_text()[-3000:]
    stack.spawn(backend)
    stack.wait_ready(backend)
    # docs/deploy.md "Rolling restarts": more than nginx's fail_timeout (2 s) before the next.
    time.sleep(3.0)
    return took


def restart_order(stack: Stack) -> list[str]:
    """The process holding most dashboards first, so that both restarts move them (nginx's
    hash may have put them all on one process)."""
    key = 'aiusage_hub_connections{transport="WebSockets",protocol="json"}'
    held = {b.name: stack.metrics(b).get(key, 0.0) for b in stack.backends}
    return sorted(held, key=lambda name: -held[name])


def rolling_restart(stack: Stack, dashboards: int = 200, rate: int = 100) -> HandoverRun:
    """Dashboards connected, agent posting, restart a then b, then collect what arrived."""
    admin = stack.token("ann", "Admin")
    reader, ids = start_dashboards(stack, dashboards, admin)
    token = stack.token("dev-1", "Agent")
    agents = [NumberedAgent(stack.http_url, token, rate // AGENTS) for _ in range(AGENTS)]
    for agent in agents:
        agent.start()
    exits: list[float] = []
    try:
        time.sleep(2.0)
        for name in restart_order(stack):
            exits.append(restart(stack, name))
        time.sleep(1.0)
    finally:
        for agent in agents:
            agent.stop()
    time.sleep(2.0)  # the last pushes reach every dashboard
    assert reader.proc.stdin is not None
    reader.proc.stdin.write("report\n")
    reader.proc.stdin.flush()
    result = reader.wait_for(lambda e: e["event"] == "result", 60)
    elapsed = max(max(a.stopped for a in agents) - min(a.started for a in agents), 1e-9)
    acked = set().union(*(a.acked for a in agents))
    statuses: dict[int, int] = {}
    for agent in agents:
        for code, n in agent.statuses.items():
            statuses[code] = statuses.get(code, 0) + n
    return HandoverRun(
        dashboards=dashboards,
        acked=acked,
        agent_statuses=statuses,
        exits_s=exits,
        clients=result["clients"],
        ids_before=ids,
        agent_rate=len(acked) / elapsed,
    )


def summary(run: HandoverRun) -> dict[str, Any]:
    """The figures of a run, JSON-ready (the bench prints them as a table)."""
    return {
        "dashboards": run.dashboards,
        "events acknowledged": len(run.acked),
        "agent events/s": round(run.agent_rate, 1),
        "process exit after SIGTERM (s)": [round(x, 2) for x in run.exits_s],
        "dashboards on their first connection id": run.same_ids,
        "dashboards that started over": run.restarts,
        "events lost (all dashboards)": sum(run.lost),
        "events duplicated (all dashboards)": sum(run.duplicated),
        "out-of-order pushes (all dashboards)": sum(run.out_of_order),
        "stateful resumes": run.resumes,
        "reconnect gap p50 (ms)": round(run.resume_gap_ms(0.5)),
        "reconnect gap p99 (ms)": round(run.resume_gap_ms(0.99)),
        "longest pause between pushes p50 (ms)": round(run.push_gap_ms(0.5)),
        "longest pause between pushes p99 (ms)": round(run.push_gap_ms(0.99)),
    }


def dumps(run: HandoverRun) -> str:
    """:func:`summary` as one JSON line."""
    return json.dumps(summary(run))
