"""Shared machinery of the capacity scenarios: start/stop the three stacks compared in every
scenario, run the load tester (aiusage.loadtest) against each, print a table and write the
results into bench/results/.

Stacks (same client, same agent-event driver, same accounting for all three):

* ``aiusage``: ``aiusage serve`` (one process, or P processes sharing the port with
  SO_REUSEPORT and the Redis backplane), SignalR over WebSockets; events go through the real
  ingestion endpoint (validation, SQLite commit, publish).
* ``python-socketio``: bench/scenarios/servers/sio_server.py, Engine.IO v4/Socket.IO over
  WebSocket, ``sio.emit(room=org)``.
* ``raw``: bench/scenarios/servers/raw_ref.py, the picows-raw reference (frame built once,
  written to each transport), no protocol above WebSocket.

Everything binds 127.0.0.1; every process started here is stopped by its pid.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
RESULTS = ROOT / "bench" / "results"
PY = sys.executable
sys.path.insert(0, str(ROOT / "src"))

from aiusage.loadtest.coordinator import Coordinator, LoadTestConfig, run_loadtest  # noqa: E402
from aiusage.loadtest.report import write_report  # noqa: E402
from aiusage.loadtest.setup import ensure_organizations, mint_tokens, org_ids  # noqa: E402

STACKS = ("aiusage", "python-socketio", "raw")
REDIS_URL = os.environ.get("AIUSAGE_BENCH_REDIS", "redis://127.0.0.1:6379/0")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_listening(port: int, procs: list[subprocess.Popen[bytes]], limit: float = 60.0) -> float:
    """Block until 127.0.0.1:port accepts; return the time.time() it first did."""
    end = time.monotonic() + limit
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return time.time()
        except OSError:
            dead = [p for p in procs if p.poll() is not None]
            if dead:
                raise RuntimeError(f"server exited with {dead[0].returncode}") from None
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port} after {limit:.0f} s")


@dataclass
class Stack:
    """One server stack under test (possibly several processes)."""

    name: str
    procs_count: int = 1
    data_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="lt-data-")))
    port: int = field(default_factory=free_port)
    events_port: int = field(default_factory=free_port)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    prefix: str = field(default_factory=lambda: f"lt{os.getpid()}x{int(time.time()) % 100000}")
    env: dict[str, str] = field(default_factory=dict)
    """Extra environment of the server processes (over the quiet defaults of :meth:`start`)."""

    @property
    def kind(self) -> str:
        return {"aiusage": "signalr", "python-socketio": "socketio", "raw": "raw"}[self.name]

    @property
    def url(self) -> str:
        path = {"aiusage": "/hubs/analytics", "python-socketio": "/socket.io/", "raw": "/"}[
            self.name
        ]
        return f"http://127.0.0.1:{self.port}{path}"

    @property
    def events_url(self) -> str | None:
        return (
            f"http://127.0.0.1:{self.events_port}/api/agent/events" if self.name == "raw" else None
        )

    def _commands(self) -> list[list[str]]:
        n = self.procs_count
        if self.name == "aiusage":
            base = [
                PY,
                "-m",
                "aiusage.cli",
                "serve",
                "--port",
                str(self.port),
                "--data-dir",
                str(self.data_dir),
            ]
            if n == 1:
                return [base]
            # `aiusage serve --workers N` children, started directly (migration done by
            # prepare()): SO_REUSEPORT on one port, groups shared through Redis.
            return [
                [*base, "--redis-url", REDIS_URL, "--workers", str(n), "--worker-index", str(i)]
                for i in range(n)
            ]
        if self.name == "python-socketio":
            cmd = [PY, str(HERE / "servers" / "sio_server.py"), "--port", str(self.port)]
            return [cmd + (["--reuse-port"] if n > 1 else []) for _ in range(n)]
        cmd = [
            PY,
            str(HERE / "servers" / "raw_ref.py"),
            "--port",
            str(self.port),
            "--events-port",
            str(self.events_port),
        ]
        return [cmd + (["--reuse-port"] if n > 1 else []) for _ in range(n)]

    def prepare(self, orgs: list[str]) -> None:
        """aiusage: create the organizations (and migrate) before the servers start."""
        if self.name == "aiusage":
            asyncio.run(ensure_organizations(orgs, self.data_dir))

    def start(self) -> float:
        """Start every process; return when the port accepts (time.time())."""
        env = dict(
            os.environ,
            AIUSAGE_ACCESS_LOG="0",
            AIUSAGE_LOG_LEVEL="WARNING",
            AIUSAGE_CHANNEL_PREFIX=self.prefix,
            PYTHONPATH=str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""),
        )
        env.update(self.env)
        self.procs = [
            subprocess.Popen(cmd, env=env, cwd=str(ROOT), stdout=subprocess.DEVNULL)
            for cmd in self._commands()
        ]
        t = wait_listening(self.port, self.procs)
        if self.name == "raw":
            wait_listening(self.events_port, self.procs)
        time.sleep(1.0 if self.procs_count == 1 else 2.0)  # let every process bind and settle
        return t

    def stop(self, grace: float = 20.0) -> None:
        """SIGTERM (graceful: aiusage sends Close with allowReconnect), then SIGKILL."""
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        end = time.monotonic() + grace
        for p in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(max(0.1, end - time.monotonic()))
            if p.poll() is None:
                p.kill()
                p.wait(10)
        self.procs = []

    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]


def loadtest_config(
    stack: Stack, a: argparse.Namespace, orgs: list[str], **kw: Any
) -> LoadTestConfig:
    dash, agent = mint_tokens(stack.data_dir, orgs, 24 * 3600)
    base: dict[str, Any] = dict(
        url=stack.url,
        events_url=stack.events_url,
        kind=stack.kind,
        connections=a.n,
        orgs=orgs,
        dashboard_tokens=dash,
        agent_tokens=agent,
        transport="ws",
        protocol=a.protocol,
        duration=a.duration,
        event_rate=a.event_rate,
        concurrency=a.concurrency,
        workers=a.client_procs,
        server_pids=stack.pids(),
        # Several aiusage processes share the port without a sticky proxy: WebSockets then
        # connect without negotiate (the JS client's skipNegotiation), as docs/deploy.md says.
        skip_negotiation=stack.name == "aiusage" and stack.procs_count > 1,
        label=f"{a.scenario} {stack.name} N={a.n}",
        quiet=a.quiet,
    )
    base.update(kw)
    return LoadTestConfig(**base)


def common_args(
    scenario: str, doc: str, *, n: int, orgs: int, duration: float, rate: float
) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--n", type=int, default=n, help=f"connections (default {n})")
    ap.add_argument("--orgs", type=int, default=orgs, help=f"organizations (default {orgs})")
    ap.add_argument(
        "--duration", type=float, default=duration, help=f"seconds (default {duration:g})"
    )
    ap.add_argument(
        "--event-rate", type=float, default=rate, help=f"agent events/s (default {rate:g})"
    )
    ap.add_argument(
        "--protocol",
        choices=("json", "messagepack"),
        default="json",
        help="SignalR protocol of the aiusage stack",
    )
    ap.add_argument("--stacks", default=",".join(STACKS), help="comma list of " + ", ".join(STACKS))
    ap.add_argument(
        "--procs",
        type=int,
        default=0,
        help="server processes per stack (default: 1, or N/15000 rounded up)",
    )
    ap.add_argument(
        "--concurrency", type=int, default=200, help="handshakes in flight per client process"
    )
    ap.add_argument(
        "--client-procs", type=int, default=0, help="load-client processes (default: N/12000)"
    )
    ap.add_argument("--quiet", action="store_true", help="no per-second progress lines")
    ap.add_argument("--tag", default="", help="suffix of the result file names")
    ap.set_defaults(scenario=scenario)
    return ap


def server_procs(a: argparse.Namespace) -> int:
    # A process may hold at most 20,000 descriptors on this machine: 15,000 connections each.
    return a.procs or max(1, -(-a.n // 15000))


def run_stacks(
    a: argparse.Namespace,
    body: Callable[[Stack, list[str]], Awaitable[dict[str, Any]]],
) -> dict[str, dict[str, Any]]:
    """Run ``body`` for every requested stack, one after the other, each on fresh servers."""
    orgs = org_ids(a.orgs)
    results: dict[str, dict[str, Any]] = {}
    for name in a.stacks.split(","):
        stack = Stack(name, procs_count=server_procs(a))
        stack.prepare(orgs)
        try:
            stack.start()
            print(
                f"== {a.scenario}: {name} ({stack.procs_count} server process(es), N={a.n})",
                file=sys.stderr,
                flush=True,
            )
            results[name] = _run(body(stack, orgs))
        except Exception as exc:  # keep the other stacks' results; record the failure
            results[name] = {"error": repr(exc)}
            print(f"!! {name}: {exc!r}", file=sys.stderr, flush=True)
        finally:
            stack.stop()
        time.sleep(2.0)
    return results


def _run(coro: Awaitable[dict[str, Any]]) -> dict[str, Any]:
    import uvloop

    async def wrap() -> dict[str, Any]:
        return await coro

    return uvloop.run(wrap())


async def standard(cfg: LoadTestConfig, **phase_kw: Any) -> dict[str, Any]:
    """The load tester's own phases (connect, idle, events, drain, stop)."""
    return await run_loadtest(cfg, **phase_kw)


def stamp() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")


def finish(
    a: argparse.Namespace,
    title: str,
    columns: list[tuple[str, Callable[[dict[str, Any]], Any]]],
    results: dict[str, dict[str, Any]],
    notes: list[str],
) -> Path:
    """Print the comparison table and write bench/results/<scenario>-<stamp>{.json,.md,/}."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = f"{a.scenario}-N{a.n}-{stamp()}{('-' + a.tag) if a.tag else ''}"
    out_dir = RESULTS / name
    for stack, rep in results.items():
        if "result" in rep:
            write_report(rep, out_dir / stack)
    header = "| stack | " + " | ".join(c for c, _ in columns) + " |"
    lines = [
        f"## {title}",
        "",
        f"{dt.datetime.now(dt.UTC).isoformat(timespec='seconds')}, {platform.node()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}. Command: "
        f"`{' '.join([os.path.relpath(sys.argv[0], ROOT), *sys.argv[1:]])}`",
        "",
        header,
        "|" + "---|" * (len(columns) + 1),
    ]
    for stack, rep in results.items():
        if "result" not in rep:
            lines.append(
                f"| {stack} | "
                + " | ".join(["error"] * len(columns))
                + f" |  <!-- {rep.get('error')} -->"
            )
            continue
        cells = []
        for _, fn in columns:
            try:
                v = fn(rep)
            except (KeyError, TypeError, ZeroDivisionError):
                v = None
            cells.append(_cell(v))
        lines.append(f"| {stack} | " + " | ".join(cells) + " |")
    lines += ["", *notes, "", f"Per-stack reports and plots: `bench/results/{name}/<stack>/`."]
    text = "\n".join(lines) + "\n"
    print(text)
    (RESULTS / f"{name}.md").write_text(text)
    slim = {k: {kk: vv for kk, vv in v.items() if kk != "timeline"} for k, v in results.items()}
    (RESULTS / f"{name}.json").write_text(
        json.dumps({"args": vars(a), "results": slim}, indent=2, default=str)
    )
    return RESULTS / f"{name}.md"


def _cell(v: Any) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:,.1f}" if abs(v) < 100 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def ratio(
    results: dict[str, dict[str, Any]],
    stack: str,
    other: str,
    fn: Callable[[dict[str, Any]], float],
) -> str:
    """``stack``'s figure over ``other``'s, for the notes."""
    try:
        a, b = fn(results[stack]), fn(results[other])
        return f"{a / b:.2f}x" if b else "n/a"
    except (KeyError, TypeError, ZeroDivisionError):
        return "n/a"


# Column helpers -----------------------------------------------------------------------------


def r(rep: dict[str, Any], *path: str) -> Any:
    cur: Any = rep["result"]
    for p in path:
        cur = cur[p]
    return cur


__all__ = [
    "Coordinator",
    "Stack",
    "common_args",
    "finish",
    "loadtest_config",
    "r",
    "ratio",
    "run_stacks",
    "standard",
]
