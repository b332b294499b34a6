"""The load tester's figures against the benchmarks' for the scenarios both cover, one table.

Per repetition, alternating the two sides so drift on the shared machine hits both:

* bench side: ``bench/fanout.py --stacks hub-json`` (its own byte-counting client, the hub
  engine's bench server broadcasting through ``clients.all``) for WebSocket fan-out
  throughput, the latency of one broadcast to all N and the connect time;
  ``bench/bench_transports.py --transports sse,lp`` for Server-Sent Events and long polling.
* load-tester side: ``aiusage loadtest`` against ``aiusage serve`` (SQLite, one organization of
  N dashboards, agent events through ``POST /api/agent/events``): a paced run (latency), and a
  saturating run per transport (deliveries/s).

    .venv/bin/python bench/loadtest_vs_bench.py --n 2000 --reps 2

Wrap it in ``flock /tmp/bench.lock`` on a machine shared with other benchmarks. Prints one
Markdown table (medians) and the raw figures as JSON lines; every step is bounded in time.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PY = sys.executable
ENV = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "src"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bench_fanout(n: int) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile(suffix=".jsonl") as out:
        cmd = [PY, "fanout.py", "--n", str(n), "--stacks", "hub-json", "--reps", "1"]
        cmd += ["--json", out.name]
        subprocess.run(cmd, cwd=HERE, env=ENV, capture_output=True, timeout=600, check=True)
        (row,) = [json.loads(line) for line in open(out.name) if line.strip()]
    return row


def bench_transports(n: int) -> dict[str, dict[str, Any]]:
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        cmd = [PY, "bench_transports.py", "--n", str(n), "--transports", "sse,lp"]
        cmd += ["--json", out.name]
        subprocess.run(cmd, cwd=HERE, env=ENV, capture_output=True, timeout=600, check=True)
        rows = json.load(open(out.name))
    return {r["transport"]: r for r in rows}


def start_serve(data: str) -> tuple[subprocess.Popen[bytes], int]:
    """``aiusage serve`` of this tree on a free loopback port, SQLite in ``data``."""
    port = free_port()
    env = dict(ENV, AIUSAGE_ACCESS_LOG="0", AIUSAGE_LOG_LEVEL="WARNING")
    cmd = [PY, "-m", "aiusage.cli", "serve", "--port", str(port), "--data-dir", data]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    end = time.monotonic() + 60
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return proc, port
        except OSError:
            time.sleep(0.1)
    stop(proc)
    raise RuntimeError("aiusage serve did not start")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def loadtest_cmd(
    port: int, data: str, n: int, transport: str, protocol: str, rate: float, duration: float
) -> list[str]:
    """``aiusage loadtest`` on one organization of ``n`` dashboards (created if missing)."""
    return [
        *(PY, "-m", "aiusage.cli", "loadtest", "--url"),
        *(f"http://127.0.0.1:{port}/hubs/analytics", "--connections", str(n), "--orgs", "1"),
        *("--transport", transport, "--protocol", protocol, "--event-rate", str(rate)),
        *("--duration", str(duration), "--data-dir", data, "--create-orgs", "--quiet"),
    ]


class Serve:
    """One ``aiusage serve`` (fresh data dir) for the load-tester runs of a repetition."""

    def __init__(self) -> None:
        self.dir = tempfile.TemporaryDirectory()
        self.proc, self.port = start_serve(self.dir.name)

    def loadtest(self, n: int, transport: str, rate: float, duration: float, *extra: str) -> dict:
        cmd = loadtest_cmd(self.port, self.dir.name, n, transport, "json", rate, duration)
        cmd += ["--server-pid", str(self.proc.pid), *extra]
        done = subprocess.run(cmd, env=ENV, capture_output=True, timeout=600)
        if done.returncode not in (0, 3):
            raise RuntimeError(done.stderr.decode()[-2000:])
        return dict(json.loads(done.stdout))

    def close(self) -> None:
        stop(self.proc)
        self.dir.cleanup()


def loadtest_side(a: argparse.Namespace) -> dict[str, Any]:
    serve = Serve()
    try:
        paced = serve.loadtest(a.n, "ws", a.paced_rate, a.duration, "--skip-negotiation")
        out: dict[str, Any] = {"ws-paced": paced}
        for transport in ("ws", "sse", "lp"):
            out[f"{transport}-flood"] = serve.loadtest(
                a.n, transport, a.flood_rate, a.duration, "--workers", str(a.workers)
            )
        return out
    finally:
        serve.close()


def lt(rep: dict[str, Any], run: str, *path: str) -> float:
    v: Any = rep[run]
    for key in path:
        v = v[key]
    return float(v)


ROWS = [
    # scenario, bench figure (from the bench side), load-tester figure, unit
    (
        "WebSocket fan-out, deliveries/s",
        lambda b: b["fanout"]["dps"],
        lambda t: lt(t, "ws-flood", "delivery", "deliveries_per_s"),
    ),
    (
        "WebSocket 1-message fan-out to all N, p50 ms",
        lambda b: b["fanout"]["paced_p50_ms"],
        lambda t: lt(t, "ws-paced", "latency_ms", "p50"),
    ),
    (
        "WebSocket 1-message fan-out to all N, p99 ms",
        lambda b: b["fanout"]["paced_p99_ms"],
        lambda t: lt(t, "ws-paced", "latency_ms", "p99"),
    ),
    (
        "SSE, deliveries/s",
        lambda b: b["transports"]["sse"]["deliveries_per_s"],
        lambda t: lt(t, "sse-flood", "delivery", "deliveries_per_s"),
    ),
    (
        "long polling, deliveries/s",
        lambda b: b["transports"]["lp"]["deliveries_per_s"],
        lambda t: lt(t, "lp-flood", "delivery", "deliveries_per_s"),
    ),
    (
        "SSE connect N, s",
        lambda b: b["transports"]["sse"]["connect_s"],
        lambda t: lt(t, "sse-flood", "connections", "connect_s"),
    ),
    (
        "long polling connect N, s",
        lambda b: b["transports"]["lp"]["connect_s"],
        lambda t: lt(t, "lp-flood", "connections", "connect_s"),
    ),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--paced-rate", type=float, default=3.0, help="events/s of the paced run")
    ap.add_argument("--flood-rate", type=float, default=100.0, help="events/s, saturating")
    ap.add_argument("--duration", type=float, default=10.0, help="seconds of agent traffic")
    ap.add_argument("--workers", type=int, default=2, help="load-tester client processes")
    a = ap.parse_args()
    bench: list[dict[str, Any]] = []
    tester: list[dict[str, Any]] = []
    for rep in range(a.reps):
        for side in ("bench", "loadtest") if rep % 2 == 0 else ("loadtest", "bench"):
            t0 = time.time()
            if side == "bench":
                bench.append({"fanout": bench_fanout(a.n), "transports": bench_transports(a.n)})
                print(json.dumps({"rep": rep, "side": side, **bench[-1]}), flush=True)
            else:
                tester.append(loadtest_side(a))
                slim = {
                    k: v["delivery"]
                    | {"lat": v["latency_ms"], "post_ms": v["events"]["post_latency_ms"]}
                    | {"connect_s": v["connections"]["connect_s"]}
                    for k, v in tester[-1].items()
                }
                print(json.dumps({"rep": rep, "side": side, **slim}), flush=True)
            print(f"# rep {rep} {side} {time.time() - t0:.0f} s", file=sys.stderr, flush=True)
    post = statistics.median(lt(x, "ws-paced", "events", "post_latency_ms", "p50") for x in tester)
    print(f"\nN = {a.n}, median of {a.reps}; load tester's paced POST p50 {post:.1f} ms\n")
    print("| scenario | bench | loadtest | loadtest / bench |")
    print("|---|---|---|---|")
    for name, fb, ft in ROWS:
        b = statistics.median(fb(x) for x in bench)
        t = statistics.median(ft(x) for x in tester)
        print(f"| {name} | {b:,.1f} | {t:,.1f} | {t / b:.2f} |")


if __name__ == "__main__":
    main()
