"""The load-test coordinator: spreads N connections over worker processes and source
addresses, drives agent events through the REST API at R events/s, samples the server, merges
the workers' accounting and produces the result the report is written from.

Phases of :func:`run_loadtest` (each bounded in time):

1. ``connect``: workers open their connections (``concurrency`` handshakes at a time each);
   connect rate = connections / time until every worker reported its connect phase done.
2. ``idle``: 3 s settle, then the median of 3 RSS samples gives memory per connection.
3. ``events``: ``duration`` seconds of agent events (SessionStarted, one sequence per
   organization, the marker in ``sessionId``); with ``event_rate`` 0 the connections just stay.
4. ``drain``: until no new tracked message arrived for 1 s (at most 15 s).
5. ``stop``: workers close, send per-organization accounting; lost = expected - distinct.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import secrets
import statistics
import sys
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from aiusage.loadtest import wire
from aiusage.loadtest.client import ClientConfig, http_call
from aiusage.loadtest.monitor import ServerMonitor, parse_prometheus
from aiusage.loadtest.stats import LatencyHistogram

MAX_CONNS_PER_WORKER: Final = 12_000
"""Keeps a worker well under 15,000 descriptors (negotiate/POST sockets come on top) and so
under the 20,000-descriptor hard limit per process of the benchmark machine
(docs/benchmarks.md)."""

TRANSPORT_CHOICES: Final = ("ws", "sse", "lp", "mix")
PROTOCOL_CHOICES: Final = ("json", "messagepack")


class LoadTestError(Exception):
    """A load test that cannot run (bad target, no tokens, workers died)."""


def parse_target(url: str) -> tuple[str, int, str]:
    """``(host, port, hub path)`` of a loopback URL.

    Raises:
        LoadTestError: Not http(s), or not a 127.0.0.0/8 / localhost address: this tool only
            ever loads the machine it runs on.
    """
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "ws"):
        raise LoadTestError(
            f"unsupported URL scheme {parts.scheme!r}: use http://127.0.0.1:PORT/..."
        )
    host = parts.hostname or ""
    if host == "localhost":
        host = "127.0.0.1"
    octets = host.split(".")
    if not (
        len(octets) == 4
        and octets[0] == "127"
        and all(o.isdigit() and int(o) < 256 for o in octets)
    ):
        raise LoadTestError(
            f"refusing target host {host!r}: the load tester only targets loopback "
            "(127.0.0.0/8 or localhost)"
        )
    port = parts.port or 80
    path = parts.path.rstrip("/") or "/hubs/analytics"
    return host, port, path


@dataclass(slots=True)
class LoadTestConfig:
    """Everything one run needs (the CLI's flags)."""

    url: str
    connections: int
    orgs: list[str]
    dashboard_tokens: dict[str, str]
    agent_tokens: dict[str, str]
    transport: str = "ws"
    protocol: str = "json"
    duration: float = 30.0
    event_rate: float = 10.0
    events_url: str | None = None  # default: <scheme>://<host>:<port>/api/agent/events
    kind: str = "signalr"  # signalr | socketio | raw (comparison stacks)
    workers: int = 0  # 0: automatic
    sources: int = 2  # source addresses per worker (127.0.0.x)
    concurrency: int = 200
    connect_timeout: float = 0.0  # 0: automatic
    keepalive_s: float = 15.0
    reconnect: bool = True
    skip_negotiation: bool = False
    post_concurrency: int = 8
    server_pids: list[int] = field(default_factory=list)
    label: str = ""
    quiet: bool = False

    def transports(self) -> list[str]:
        """The per-connection transport cycle."""
        return ["ws", "sse", "lp"] if self.transport == "mix" else [self.transport]


@dataclass(slots=True)
class WorkerHandle:
    """A worker process and what it last reported."""

    index: int
    proc: asyncio.subprocess.Process
    count: int
    last: dict[str, Any] = field(default_factory=dict)
    connected: dict[str, Any] | None = None
    final: dict[str, Any] | None = None
    pending_hist: list[LatencyHistogram] = field(default_factory=list)
    reader_task: asyncio.Task[None] | None = None


def delivery_accounting(finals: list[dict[str, Any]], expected: dict[str, int]) -> dict[str, Any]:
    """Merge the workers' per-organization rows ``[connections, distinct, duplicates]``.

    Every connection open when the events started should receive each of its organization's
    accepted events exactly once: expected = sum(connections x accepted events), lost =
    expected - distinct received (never negative: an event whose POST failed on our side may
    still have been applied and pushed).
    """
    exp = dist = dups = conns = 0
    transports: dict[str, int] = {}
    for f in finals:
        for org, (n, d, k) in f["orgs"].items():
            exp += n * expected.get(org, 0)
            dist += d
            dups += k
            conns += n
        for name, count in f.get("transports", {}).items():
            transports[name] = transports.get(name, 0) + count
    return {
        "expected": exp,
        "received": dist,
        "lost": max(0, exp - dist),
        "duplicates": dups,
        "connections": conns,
        "transports": transports,
    }


class Coordinator:
    """Runs one load test; the phases are separate methods so scenarios can compose them
    (the connect-storm scenario restarts the server between ``connect`` and ``stop``)."""

    def __init__(self, cfg: LoadTestConfig, *, clock: Callable[[], float] = time.time) -> None:
        if cfg.transport not in TRANSPORT_CHOICES:
            raise LoadTestError(f"--transport must be one of {', '.join(TRANSPORT_CHOICES)}")
        if cfg.protocol not in PROTOCOL_CHOICES:
            raise LoadTestError(f"--protocol must be one of {', '.join(PROTOCOL_CHOICES)}")
        if cfg.skip_negotiation and (cfg.transport != "ws" or cfg.kind != "signalr"):
            raise LoadTestError(
                "--skip-negotiation needs --transport ws (docs/spec/transports.md §2.6)"
            )
        if cfg.connections < 1 or not cfg.orgs:
            raise LoadTestError("need at least one connection and one organization")
        self.cfg = cfg
        self.host, self.port, self.path = parse_target(cfg.url)
        if cfg.events_url:
            eh, ep, epath = parse_target(cfg.events_url)
            self.events_target = (eh, ep, epath)
        else:
            self.events_target = (self.host, self.port, "/api/agent/events")
        self.clock = clock
        self.run_id = secrets.token_hex(3)
        self.workers: list[WorkerHandle] = []
        self.monitor = ServerMonitor(self.port, cfg.server_pids or None)
        self.timeline: list[dict[str, Any]] = []
        self.phase = "init"
        self.t0 = clock()
        self.phases: dict[str, float] = {}
        self.seq: dict[str, int] = {o: 0 for o in cfg.orgs}
        self.expected: dict[str, int] = {o: 0 for o in cfg.orgs}
        self.events_sent = 0
        self.events_failed = 0
        self.posts = 0
        self.post_errors: list[str] = []
        self.post_latency = LatencyHistogram()
        self.connect_s: float | None = None
        self.rss_before: int | None = None
        self.rss_idle: int | None = None
        self.samples: list[tuple[float, int, float]] = []
        self._sampler: asyncio.Task[None] | None = None
        self._prev_sample: tuple[float, float] | None = None
        self._last_tick_counts: dict[str, float] = {}

    # -- workers ----------------------------------------------------------------------------

    def _plan(self) -> list[tuple[int, int]]:
        n = self.cfg.connections
        workers = self.cfg.workers or max(1, math.ceil(n / MAX_CONNS_PER_WORKER))
        workers = max(workers, math.ceil(n / MAX_CONNS_PER_WORKER))
        base, extra = divmod(n, workers)
        plan = []
        first = 0
        for w in range(workers):
            count = base + (1 if w < extra else 0)
            plan.append((first, count))
            first += count
        return plan

    def _client_config(self, w: int, first: int, count: int) -> ClientConfig:
        cfg = self.cfg
        # Source addresses 127.0.0.2.. per worker: ~28K ephemeral ports per (source, destination).
        sources = [f"127.0.0.{2 + (w * cfg.sources + k) % 250}" for k in range(max(1, cfg.sources))]
        return ClientConfig(
            host=self.host,
            port=self.port,
            path=self.path,
            kind=cfg.kind,
            transports=cfg.transports(),
            protocol=cfg.protocol,
            orgs=list(cfg.orgs),
            tokens=dict(cfg.dashboard_tokens),
            run_id=self.run_id,
            first_index=first,
            count=count,
            sources=sources,
            concurrency=cfg.concurrency,
            reconnect=cfg.reconnect,
            keepalive_s=cfg.keepalive_s,
            skip_negotiation=cfg.skip_negotiation,
            max_seconds=self._budget() + 300.0,
        )

    def _budget(self) -> float:
        return self._connect_timeout() + self.cfg.duration + 60.0

    def _connect_timeout(self) -> float:
        return self.cfg.connect_timeout or max(60.0, self.cfg.connections / 100.0)

    async def start_workers(self) -> None:
        """Spawn the worker processes and hand each its share of connections."""
        env = dict(os.environ)
        for w, (first, count) in enumerate(self._plan()):
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "aiusage.loadtest.worker",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                env=env,
                limit=16 * 1024 * 1024,
            )
            handle = WorkerHandle(w, proc, count)
            conf = asdict(self._client_config(w, first, count))
            assert proc.stdin is not None
            proc.stdin.write(json.dumps(conf).encode() + b"\n")
            await proc.stdin.drain()
            handle.reader_task = asyncio.get_running_loop().create_task(self._read(handle))
            self.workers.append(handle)

    async def _read(self, h: WorkerHandle) -> None:
        assert h.proc.stdout is not None
        while True:
            line = await h.proc.stdout.readline()
            if not line:
                return
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            kind = msg.get("kind")
            if "hist" in msg:
                h.pending_hist.append(LatencyHistogram.from_json(msg["hist"]))
            h.last = msg
            if kind == "connected":
                h.connected = msg
            elif kind == "final":
                h.final = msg
                return

    def _sum(self, key: str) -> int:
        return sum(int(h.last.get(key, 0)) for h in self.workers)

    async def wait_connected(self) -> None:
        """Phase 1: until every worker finished its connect phase (bounded)."""
        self.phase = "connect"
        deadline = time.monotonic() + self._connect_timeout()
        while time.monotonic() < deadline:
            if all(h.connected is not None for h in self.workers):
                break
            if any(h.proc.returncode is not None and h.final is None for h in self.workers):
                raise LoadTestError("a worker process died during the connect phase")
            await asyncio.sleep(0.1)
        else:
            raise LoadTestError(
                f"connect phase did not finish within {self._connect_timeout():.0f} s"
            )
        self.connect_s = max(float(h.connected["connect_s"]) for h in self.workers if h.connected)
        self.phases["connected"] = self.clock() - self.t0

    # -- server sampling and the timeline ---------------------------------------------------

    async def _sample_server(self) -> tuple[int, float] | None:
        s = self.monitor.sample()
        if s is not None:
            return s.rss_bytes, s.cpu_seconds
        try:
            status, body = await http_call(self.host, self.port, "GET", "/metrics", {}, limit_s=5)
        except (OSError, TimeoutError):
            return None
        if status != 200:
            return None
        rss, cpu = parse_prometheus(body.decode("utf-8", "replace"))
        if rss is None:
            return None
        self.monitor.source = "metrics"
        return rss, cpu or 0.0

    async def _tick(self) -> None:
        now = self.clock()
        sample = await self._sample_server()
        rss = cpu_pct = None
        if sample is not None:
            rss = sample[0]
            self.samples.append((now, sample[0], sample[1]))
            if self._prev_sample is not None and now > self._prev_sample[0]:
                cpu_pct = 100.0 * (sample[1] - self._prev_sample[1]) / (now - self._prev_sample[0])
            self._prev_sample = (now, sample[1])
        hist = LatencyHistogram()
        for h in self.workers:
            for part in h.pending_hist:
                hist.merge(part)
            h.pending_hist.clear()
        counts = {
            "deliveries": float(self._sum("deliveries")),
            "tracked": float(self._sum("tracked")),
            "events": float(self.events_sent),
        }
        prev = self._last_tick_counts or counts
        dt = max(1e-6, now - prev.get("t", now - 1.0))
        row: dict[str, Any] = {
            "t": round(now - self.t0, 3),
            "phase": self.phase,
            "open": self._sum("open"),
            "deliveries_per_s": (counts["deliveries"] - prev["deliveries"]) / dt,
            "tracked_per_s": (counts["tracked"] - prev["tracked"]) / dt,
            "events_per_s": (counts["events"] - prev["events"]) / dt,
            "latency_ms": hist.summary_ms(),
            "server_rss_mb": round(rss / 2**20, 1) if rss is not None else None,
            "server_cpu_pct": round(cpu_pct, 1) if cpu_pct is not None else None,
            "disconnects": self._sum("disconnects"),
        }
        counts["t"] = now
        self._last_tick_counts = counts
        self.timeline.append(row)
        if not self.cfg.quiet:
            lat = row["latency_ms"]
            lat_txt = f"{lat['p50']}/{lat['p99']} ms" if lat["count"] else "-"
            rss_txt = f"{row['server_rss_mb']} MB" if rss is not None else "n/a"
            cpu_txt = f"{row['server_cpu_pct']:.0f}%" if cpu_pct is not None else "n/a"
            print(
                f"[{row['t']:7.1f}s] {self.phase:8s} open {row['open']}/{self.cfg.connections} "
                f"failed {self._sum('connect_failed')} drop {row['disconnects']} "
                f"events/s {row['events_per_s']:.0f} deliveries/s {row['deliveries_per_s']:.0f} "
                f"lat p50/p99 {lat_txt} server {rss_txt} cpu {cpu_txt}",
                file=sys.stderr,
                flush=True,
            )

    async def _sampler_loop(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            await self._tick()

    def start_sampler(self) -> None:
        """Start the 1 s progress/timeline tick."""
        self._sampler = asyncio.get_running_loop().create_task(self._sampler_loop())

    async def measure_before(self) -> None:
        """Server RSS before any connection."""
        s = await self._sample_server()
        self.rss_before = s[0] if s else None

    async def measure_idle(self, settle: float = 3.0) -> None:
        """Phase 2: median of 3 RSS samples after ``settle`` seconds."""
        self.phase = "idle"
        await asyncio.sleep(settle)
        values = []
        for _ in range(3):
            s = await self._sample_server()
            if s:
                values.append(s[0])
            await asyncio.sleep(0.3)
        self.rss_idle = int(statistics.median(values)) if values else None

    # -- agent events -----------------------------------------------------------------------

    def _batch(self, org: str, n: int) -> bytes:
        now = datetime.now(UTC)
        stamp = now.isoformat().replace("+00:00", "Z")
        t_us = int(now.timestamp() * 1e6)
        events = []
        for _ in range(n):
            self.seq[org] += 1
            seq = self.seq[org]
            events.append(
                {
                    "eventId": f"lt-{self.run_id}-{seq}",
                    "type": "SessionStarted",
                    "occurredAt": stamp,
                    "startTime": stamp,
                    "userId": "loadtest-user",
                    "sessionId": wire.make_marker(self.run_id, seq, t_us),
                }
            )
        return json.dumps({"events": events}, separators=(",", ":")).encode()

    async def _post(self, sem: asyncio.Semaphore, org: str, n: int) -> None:
        host, port, path = self.events_target
        body = self._batch(org, n)
        headers = {
            "Authorization": f"Bearer {self.cfg.agent_tokens[org]}",
            "Content-Type": "application/json",
        }
        t = time.monotonic()
        try:
            status, resp = await http_call(host, port, "POST", path, headers, body, limit_s=30)
        except (OSError, TimeoutError) as exc:
            status, resp = 0, repr(exc).encode()
        finally:
            sem.release()
        self.post_latency.add((time.monotonic() - t) * 1e6)
        self.posts += 1
        if status == 200:
            try:
                answer = json.loads(resp)
                accepted = int(answer.get("accepted", n))
            except (ValueError, AttributeError):
                accepted = n
            self.expected[org] += accepted
            self.events_sent += n
        else:
            self.events_failed += n
            if len(self.post_errors) < 10:
                self.post_errors.append(f"HTTP {status}: {resp[:200]!r}")

    async def drive_events(self) -> None:
        """Phase 3: ``event_rate`` events/s for ``duration`` s, round-robin over the
        organizations, batched per organization every 20 ms (a slow server makes batches grow
        instead of requests pile up: at most ``post_concurrency`` POSTs are in flight)."""
        cfg = self.cfg
        self.phase = "events"
        self.phases["events_start"] = self.clock() - self.t0
        start = time.monotonic()
        end = start + cfg.duration
        if cfg.event_rate <= 0:
            await asyncio.sleep(cfg.duration)
            self.phases["events_end"] = self.clock() - self.t0
            return
        sem = asyncio.Semaphore(cfg.post_concurrency)
        issued = 0
        cursor = 0
        tasks: set[asyncio.Task[None]] = set()
        orgs = cfg.orgs
        while time.monotonic() < end:
            due = int((time.monotonic() - start) * cfg.event_rate) - issued
            if due > 0:
                per_org: dict[str, int] = {}
                for _ in range(min(due, 100_000)):
                    org = orgs[cursor % len(orgs)]
                    cursor += 1
                    per_org[org] = per_org.get(org, 0) + 1
                for org, n in per_org.items():
                    for k in range(0, n, 1000):  # the API takes <= 1000 events per batch
                        await sem.acquire()
                        t = asyncio.get_running_loop().create_task(
                            self._post(sem, org, min(1000, n - k))
                        )
                        tasks.add(t)
                        t.add_done_callback(tasks.discard)
                issued += min(due, 100_000)
            await asyncio.sleep(0.02)
        if tasks:
            await asyncio.wait(tasks, timeout=60)
        self.phases["events_end"] = self.clock() - self.t0

    async def drain(self, quiet: float = 1.0, limit: float = 15.0) -> None:
        """Phase 4: until no tracked message arrived for ``quiet`` seconds."""
        self.phase = "drain"
        deadline = time.monotonic() + limit
        last = self._sum("tracked")
        while time.monotonic() < deadline:
            await asyncio.sleep(quiet)
            cur = self._sum("tracked")
            if cur == last:
                break
            last = cur
            # Progress lines are 1 s apart: the last delivery happened within ``quiet`` before.
            self.phases["last_delivery"] = self.clock() - self.t0

    async def stop(self) -> None:
        """Phase 5: workers close and send their final accounting."""
        self.phase = "stop"
        for h in self.workers:
            if h.proc.stdin is not None and h.proc.returncode is None:
                try:
                    h.proc.stdin.write(b'{"cmd":"stop"}\n')
                    await h.proc.stdin.drain()
                except (ConnectionError, OSError):
                    pass
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and any(h.final is None for h in self.workers):
            if all(h.final is not None or h.proc.returncode is not None for h in self.workers):
                break
            await asyncio.sleep(0.1)
        if self._sampler is not None:
            self._sampler.cancel()
        await self._tick()
        await self.kill_workers()

    async def kill_workers(self) -> None:
        """Make sure no worker outlives the run (by pid, never by name)."""
        for h in self.workers:
            if h.proc.returncode is None:
                try:
                    await asyncio.wait_for(h.proc.wait(), 5)
                except TimeoutError:
                    h.proc.kill()
                    await h.proc.wait()
            if h.reader_task is not None:
                h.reader_task.cancel()

    # -- result ------------------------------------------------------------------------------

    def result(self) -> dict[str, Any]:
        """The run's figures (the JSON report's ``result``)."""
        cfg = self.cfg
        finals = [h.final for h in self.workers if h.final is not None]
        total = LatencyHistogram.merged(LatencyHistogram.from_json(f["total"]) for f in finals)
        acc = delivery_accounting(finals, self.expected)
        expected_deliveries = acc["expected"]
        distinct = acc["received"]
        duplicates = acc["duplicates"]
        lost = acc["lost"]
        measured_conns = acc["connections"]
        transports = acc["transports"]

        def fsum(key: str) -> int:
            return sum(int(f.get(key, 0)) for f in finals)

        connected = measured_conns
        events_window = (
            self.phases.get("events_end", 0.0) - self.phases.get("events_start", 0.0)
        ) or cfg.duration
        # Deliveries/s over the time messages actually flowed (a saturated server keeps
        # delivering after the last event was sent).
        delivery_window = max(
            events_window,
            self.phases.get("last_delivery", 0.0) - self.phases.get("events_start", 0.0),
        )
        rows = [r for r in self.timeline if r["phase"] in ("events", "drain")]
        peak_dps = max((r["deliveries_per_s"] for r in rows), default=0.0)
        cpu_rows = [r["server_cpu_pct"] for r in rows if r["server_cpu_pct"] is not None]
        rss_vals = [s[1] for s in self.samples]
        kb_per_conn = None
        if self.rss_before is not None and self.rss_idle is not None and connected:
            kb_per_conn = round((self.rss_idle - self.rss_before) / 1024 / connected, 2)
        errors: list[str] = []
        for f in finals:
            errors += f.get("errors", [])
        return {
            "connections": {
                "requested": cfg.connections,
                "connected": connected,
                "failed": fsum("connect_failed"),
                "connect_s": round(self.connect_s, 3) if self.connect_s else None,
                "connect_rate_per_s": round(connected / self.connect_s, 1)
                if self.connect_s
                else None,
                "unexpected_disconnects": fsum("disconnects"),
                "reconnects": fsum("reconnects"),
                "reconnect_failed": fsum("reconnect_failed"),
                "transports": transports,
            },
            "events": {
                "sent": self.events_sent,
                "failed": self.events_failed,
                "posts": self.posts,
                "rate_achieved_per_s": round(self.events_sent / events_window, 2),
                "post_latency_ms": self.post_latency.summary_ms(),
                "errors": self.post_errors,
            },
            "delivery": {
                "expected": expected_deliveries,
                "received": distinct,
                "lost": lost,
                "duplicates": duplicates,
                "all_pushed_messages": fsum("deliveries"),
                "tracked_per_s": round(distinct / delivery_window, 1) if delivery_window else None,
                "deliveries_per_s": round(fsum("deliveries") / max(delivery_window, 1e-9), 1),
                "delivery_window_s": round(delivery_window, 2),
                "peak_deliveries_per_s": round(peak_dps, 1),
            },
            "latency_ms": total.summary_ms(),
            "server": {
                "source": self.monitor.source,
                "rss_before_mb": round(self.rss_before / 2**20, 1) if self.rss_before else None,
                "rss_idle_mb": round(self.rss_idle / 2**20, 1) if self.rss_idle else None,
                "rss_peak_mb": round(max(rss_vals) / 2**20, 1) if rss_vals else None,
                "kb_per_conn_idle": kb_per_conn,
                "cpu_pct_mean_events": round(statistics.mean(cpu_rows), 1) if cpu_rows else None,
            },
            "errors": errors[:20],
        }

    def report(self) -> dict[str, Any]:
        """``{config, result, timeline}`` (what :func:`~aiusage.loadtest.report.write_report`
        takes)."""
        return {"config": self.config_json(), "result": self.result(), "timeline": self.timeline}

    def config_json(self) -> dict[str, Any]:
        """The configuration, without tokens."""
        cfg = self.cfg
        return {
            "url": cfg.url,
            "kind": cfg.kind,
            "label": cfg.label,
            "connections": cfg.connections,
            "orgs": len(cfg.orgs),
            "transport": cfg.transport,
            "protocol": cfg.protocol,
            "duration_s": cfg.duration,
            "event_rate": cfg.event_rate,
            "workers": len(self.workers) or len(self._plan()),
            "sources_per_worker": cfg.sources,
            "concurrency": cfg.concurrency,
            "skip_negotiation": cfg.skip_negotiation,
            "run_id": self.run_id,
            "started_at": datetime.fromtimestamp(self.t0, UTC).isoformat(),
        }


async def run_loadtest(
    cfg: LoadTestConfig, *, settle: float = 3.0, drain_limit: float = 15.0
) -> dict[str, Any]:
    """Run every phase and return ``{config, result, timeline}``.

    Args:
        cfg: The run.
        settle: Seconds between the connect phase and the idle memory sample.
        drain_limit: Longest wait for in-flight messages after the last event.
    """
    coord = Coordinator(cfg)
    await coord.measure_before()
    coord.start_sampler()
    try:
        await coord.start_workers()
        await coord.wait_connected()
        await coord.measure_idle(settle)
        await coord.drive_events()
        await coord.drain(limit=drain_limit)
    finally:
        await coord.stop()
    return coord.report()
