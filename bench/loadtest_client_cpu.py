"""Client CPU per delivery of ``aiusage loadtest``, this tree against another source tree.

Starts one ``aiusage serve`` (this tree, SQLite in a temporary data dir) on 127.0.0.1, then runs
the same small scenarios with the load tester of each side, alternating sides, and measures the
CPU time of the load tester's worker processes (psutil, polled every 0.1 s; the coordinator and
its agent-event driver are left out) divided by the messages they received. Each run is paired
with the same run without events (start-up, connect, close), whose CPU is subtracted for the
marginal cost of a delivery. The other side is
any checkout's ``src`` (e.g. ``git archive <commit> src | tar -x -C /tmp/before``):

    .venv/bin/python bench/loadtest_client_cpu.py --before-src /tmp/before/src --reps 2

Prints a Markdown table (median over repetitions) and one line per run. Every run is bounded
(``--duration`` of traffic, a 300 s limit per run); the server is stopped by its pid.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time

import psutil
from loadtest_vs_bench import loadtest_cmd, start_serve, stop

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCENARIOS = {
    # name: (transport, protocol)
    "ws-json": ("ws", "json"),
    "ws-msgpack": ("ws", "messagepack"),
    "sse": ("sse", "json"),
    "lp": ("lp", "json"),
}


def run_one(
    src: str, port: int, data: str, args: argparse.Namespace, name: str, rate: float
) -> dict:
    transport, protocol = SCENARIOS[name]
    env = dict(os.environ, PYTHONPATH=src)
    cmd = loadtest_cmd(port, data, args.n, transport, protocol, rate, args.duration)
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.DEVNULL, cwd="/tmp")
        parent = psutil.Process(proc.pid)
        cpu: dict[int, float] = {}
        end = time.monotonic() + 300
        while proc.poll() is None and time.monotonic() < end:
            try:
                for child in parent.children(recursive=True):
                    try:
                        if "aiusage.loadtest.worker" in " ".join(child.cmdline()):
                            t = child.cpu_times()
                            cpu[child.pid] = t.user + t.system
                    except psutil.Error:
                        pass
            except psutil.Error:
                pass
            time.sleep(0.1)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
            raise RuntimeError(f"{name}: load test did not end within 300 s")
        out.seek(0)
        result = json.loads(out.read())
    d = result["delivery"]
    received = d["all_pushed_messages"]
    return {
        "scenario": name,
        "cpu_s": sum(cpu.values()),
        "deliveries": received,
        "lost": d["lost"],
        "us_per_delivery": 1e6 * sum(cpu.values()) / max(1, received),
        "p99_ms": result["latency_ms"].get("p99"),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--before-src", required=True, help="the other side's src directory")
    ap.add_argument("--scenarios", default=",".join(SCENARIOS))
    ap.add_argument("--n", type=int, default=1000, help="connections (one organization)")
    ap.add_argument("--event-rate", type=float, default=30.0)
    ap.add_argument("--duration", type=float, default=8.0)
    ap.add_argument("--reps", type=int, default=2)
    args = ap.parse_args()
    sides = {"before": os.path.abspath(args.before_src), "after": os.path.join(ROOT, "src")}
    names = args.scenarios.split(",")
    rows: dict[tuple[str, str], list[dict]] = {}
    with tempfile.TemporaryDirectory() as data:
        server, port = start_serve(data)
        try:
            for rep in range(args.reps):
                for name in names:
                    # Alternate which side goes first, so drift on the machine hits both.
                    order = ["before", "after"] if rep % 2 == 0 else ["after", "before"]
                    for side in order:
                        idle = run_one(sides[side], port, data, args, name, 0.0)
                        r = run_one(sides[side], port, data, args, name, args.event_rate)
                        # The same run without events: start-up, connect and close cost.
                        r["idle_cpu_s"] = idle["cpu_s"]
                        r["marginal_us"] = (
                            1e6 * (r["cpu_s"] - idle["cpu_s"]) / max(1, r["deliveries"])
                        )
                        rows.setdefault((name, side), []).append(r)
                        print(f"# rep {rep} {side:6} {json.dumps(r)}", flush=True)
        finally:
            stop(server)
    print(
        f"\nN = {args.n} connections, 1 organization, {args.event_rate:g} events/s for "
        f"{args.duration:g} s, median of {args.reps}\n"
    )
    print(
        "| scenario | µs CPU/delivery before | after | after/before | marginal µs before "
        "| after | after/before | idle-run CPU s before | after | lost |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name in names:

        def med(side: str, key: str, name: str = name) -> float:
            return statistics.median(r[key] for r in rows[(name, side)])

        b, a = med("before", "us_per_delivery"), med("after", "us_per_delivery")
        mb, ma = med("before", "marginal_us"), med("after", "marginal_us")
        ib, ia = med("before", "idle_cpu_s"), med("after", "idle_cpu_s")
        lost = sum(r["lost"] for side in ("before", "after") for r in rows[(name, side)])
        print(
            f"| {name} | {b:.2f} | {a:.2f} | {a / b:.2f} | {mb:.2f} | {ma:.2f} | {ma / mb:.2f} "
            f"| {ib:.2f} | {ia:.2f} | {lost} |"
        )


if __name__ == "__main__":
    main()
