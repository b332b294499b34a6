"""Benchmark: the fallback transports at scale on a real ``aiusage serve`` process.

N dashboards (default 5,000) of one organization hold Server-Sent Events or long-polling
connections to ``aiusage serve`` (SQLite store, AnalyticsHub with its JWT and access checks)
while agents POST events to ``/api/agent/events`` at ``deliveries / N`` events per second, so
the server pushes about ``--deliveries`` (default 10,000) tracked messages per second in total.
Measured per run: end-to-end delivery latency (the agent's send time carried in each pushed
event, same clock), REST ingestion latency (the agents' POSTs), deliveries/s, losses, server
CPU and the load clients' CPU (the same cores). WebSockets under the same load give the
same-run reference row; ``lp+log`` repeats long polling with the production access log on
(``AIUSAGE_ACCESS_LOG=1``, level INFO: routine polls log at DEBUG, so the row shows what the
log costs at this request rate).

    .venv/bin/python bench/bench_fallback_scale.py --n 5000 --reps 3
    .venv/bin/python bench/bench_fallback_scale.py --n 500 --reps 1 --duration 5   # quick check

Variants alternate within each repetition (sse, lp, ...; then again), each on a fresh server;
the table gives the median of the repetitions and every repetition's value. ``--py-spy PREFIX``
samples the server during the first repetition's event phase of each variant
(``PREFIX.<variant>.txt``, py-spy's raw format for flame graphs). Clients run in
``--client-procs`` processes (the coordinator of ``aiusage.loadtest``); loopback only.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "scenarios"))

import _harness as h  # noqa: E402

VARIANTS = {
    "sse": ("sse", {}),
    "lp": ("lp", {}),
    "ws": ("ws", {}),
    "lp+log": ("lp", {"AIUSAGE_ACCESS_LOG": "1", "AIUSAGE_LOG_LEVEL": "INFO"}),
    "sse+log": ("sse", {"AIUSAGE_ACCESS_LOG": "1", "AIUSAGE_LOG_LEVEL": "INFO"}),
}
TARGET_P99_MS = {"sse": 100.0, "lp": 250.0, "ws": 100.0}
TARGET_POST_P99_MS = 50.0


def _cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds used so far by ``pids`` (Linux ``/proc``; 0 elsewhere)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total


async def one_run(stack: h.Stack, a: argparse.Namespace, variant: str, spy: str | None) -> dict:
    """Connect, settle, drive events for ``duration`` s, drain; return the figures."""
    transport, _ = VARIANTS[variant]
    orgs = ["loadtest-0000"]
    cfg = h.loadtest_config(
        stack,
        a,
        orgs,
        transport=transport,
        protocol="json",
        event_rate=a.deliveries / a.n,
        duration=a.duration,
        workers=a.client_procs,
        label=f"fallback {variant} N={a.n}",
    )
    coord = h.Coordinator(cfg)
    await coord.measure_before()
    coord.start_sampler()
    profiler: subprocess.Popen[bytes] | None = None
    try:
        await coord.start_workers()
        await coord.wait_connected()
        await coord.measure_idle(3.0)
        if spy:
            profiler = subprocess.Popen(
                [
                    str(Path(sys.executable).parent / "py-spy"),
                    "record",
                    "--pid",
                    str(stack.pids()[0]),
                    "--format",
                    "raw",
                    "--rate",
                    "200",
                    "--duration",
                    str(int(a.duration)),
                    "--output",
                    f"{spy}.{variant}.txt",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        clients_before = _cpu_seconds([w.proc.pid for w in coord.workers])
        t_events = time.monotonic()
        await coord.drive_events()
        client_cpu = _cpu_seconds([w.proc.pid for w in coord.workers]) - clients_before
        client_cpu_pct = 100.0 * client_cpu / (time.monotonic() - t_events)
        await coord.drain(limit=15.0)
    finally:
        await coord.stop()
        if profiler is not None:
            profiler.wait(30)
    res = coord.result()
    lat, post = res["latency_ms"], res["events"]["post_latency_ms"]
    return {
        "variant": variant,
        "connected": res["connections"]["connected"],
        "drops": res["connections"]["unexpected_disconnects"],
        "events_per_s": res["events"]["rate_achieved_per_s"],
        "posts": res["events"]["posts"],
        "deliveries_per_s": res["delivery"]["tracked_per_s"],
        "lost": res["delivery"]["lost"],
        "dup": res["delivery"]["duplicates"],
        "p50_ms": lat["p50"],
        "p99_ms": lat["p99"],
        "post_p50_ms": post["p50"],
        "post_p99_ms": post["p99"],
        "cpu_pct": res["server"]["cpu_pct_mean_events"],
        "kb_per_conn": res["server"]["kb_per_conn_idle"],
        # The load clients share the 2 cores with the server: above ~100 % they compete.
        "client_cpu_pct": round(client_cpu_pct, 1),
        # Other work on this shared machine shows here (2 cores: above 2 the run competed).
        "loadavg_1m": round(os.getloadavg()[0], 1),
    }


def run_variant(a: argparse.Namespace, variant: str, spy: str | None) -> dict[str, Any]:
    """One variant on a fresh single-process server."""
    _, env = VARIANTS[variant]
    stack = h.Stack("aiusage", procs_count=1, env=dict(env))
    stack.prepare(["loadtest-0000"])
    try:
        stack.start()
        return h._run(one_run(stack, a, variant, spy))
    finally:
        stack.stop()
        time.sleep(2.0)


COLUMNS = [
    ("variant", "variant"),
    ("connected", "connected"),
    ("drops", "drops"),
    ("events/s", "events_per_s"),
    ("deliveries/s", "deliveries_per_s"),
    ("lost", "lost"),
    ("dup", "dup"),
    ("p50 ms", "p50_ms"),
    ("p99 ms", "p99_ms"),
    ("POST p50 ms", "post_p50_ms"),
    ("POST p99 ms", "post_p99_ms"),
    ("server CPU %", "cpu_pct"),
    ("client CPU %", "client_cpu_pct"),
    ("load avg", "loadavg_1m"),
]


def median_row(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Median per numeric column; the p99 cells also list every repetition."""
    row: dict[str, Any] = {"variant": runs[0]["variant"]}
    for _, key in COLUMNS[1:]:
        vals = [r[key] for r in runs if isinstance(r.get(key), int | float)]
        if not vals:
            row[key] = None
            continue
        med = statistics.median(vals)
        row[key] = round(med, 1) if isinstance(med, float) else med
        if key in ("p99_ms", "post_p99_ms") and len(vals) > 1:
            row[key] = f"{row[key]} ({', '.join(str(round(v, 1)) for v in vals)})"
    return row


def table(rows: list[dict[str, Any]]) -> str:
    head = [name for name, _ in COLUMNS]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        lines.append("| " + " | ".join(str(r.get(k, "")) for _, k in COLUMNS) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--n", type=int, default=5000, help="dashboards (default 5000)")
    ap.add_argument("--variants", default="sse,lp,ws", help="comma list of " + ", ".join(VARIANTS))
    ap.add_argument(
        "--deliveries", type=float, default=10_000.0, help="tracked pushes/s in total (10,000)"
    )
    ap.add_argument("--duration", type=float, default=20.0, help="event phase seconds (20)")
    ap.add_argument("--reps", type=int, default=3, help="repetitions (3)")
    ap.add_argument("--client-procs", type=int, default=2, help="load-client processes (2)")
    ap.add_argument("--concurrency", type=int, default=200, help="connects in flight per client")
    ap.add_argument("--py-spy", dest="py_spy", help="profile the first repetition to PREFIX.*")
    ap.add_argument("--json", help="also write every run to this JSON file")
    ap.set_defaults(quiet=True, protocol="json", scenario="fallback", event_rate=0.0)
    a = ap.parse_args()
    variants = a.variants.split(",")
    runs: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
    for rep in range(a.reps):
        for v in variants:
            print(f"[rep {rep + 1}/{a.reps}] {v} N={a.n} ...", file=sys.stderr, flush=True)
            try:
                row = run_variant(a, v, a.py_spy if rep == 0 else None)
            except Exception as exc:  # keep the other runs
                print(f"!! {v}: {exc!r}", file=sys.stderr, flush=True)
                continue
            print(f"   {json.dumps(row)}", file=sys.stderr, flush=True)
            runs[v].append(row)
    rows = [median_row(rs) for rs in runs.values() if rs]
    print(
        f"\nFallback transports, N={a.n} dashboards of one organization, "
        f"{a.deliveries:,.0f} deliveries/s asked ({a.deliveries / a.n:g} agent events/s), "
        f"{a.duration:g} s, median of {a.reps}; {os.cpu_count()} cores, client and server on "
        f"this machine\n"
    )
    print(table(rows))
    print(
        f"\nTargets: delivery p99 <= {TARGET_P99_MS['sse']:g} ms (SSE), "
        f"<= {TARGET_P99_MS['lp']:g} ms (long polling); REST POST p99 <= "
        f"{TARGET_POST_P99_MS:g} ms while it runs."
    )
    if a.json:
        Path(a.json).write_text(json.dumps(runs, indent=2))


if __name__ == "__main__":
    main()
