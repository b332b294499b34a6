"""Fan-out benchmark: N WebSocket connections in one group on one server process.

Prints, per stack, server RSS per idle connection, broadcast deliveries per second (flood),
and the latency of one broadcast to all N (paced rounds, p50/p99 over probe connections),
with the raw picows reference measured in the same run and the ratio to it.

    .venv/bin/python bench/fanout.py --n 10000 --reps 2

Stacks: raw (picows, frame built once, no SignalR), hub-json, hub-msgpack (our hub with the
official protocols). Everything runs on 127.0.0.1; every phase is bounded in time.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import psutil

HERE = os.path.dirname(os.path.abspath(__file__))
PY = sys.executable

STACKS = {
    "raw": (["servers/raw_picows.py"], "raw", "/"),
    "hub-json": (["servers/hub_bench.py"], "signalr-json", "/hub"),
    "hub-msgpack": (["servers/hub_bench.py"], "signalr-msgpack", "/hub"),
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, limit: float = 20.0) -> None:
    end = time.monotonic() + limit
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"server did not listen on {port}")


def wait_files(ctl: str, names: list[str], limit: float) -> list[dict]:
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if all(os.path.exists(os.path.join(ctl, n)) for n in names):
            time.sleep(0.05)
            out = []
            for n in names:
                with open(os.path.join(ctl, n)) as f:
                    out.append(json.load(f))
            return out
        err = os.path.join(ctl, "error.json")
        if os.path.exists(err):
            raise RuntimeError(open(err).read())
        time.sleep(0.1)
    raise TimeoutError(f"waiting for {names}")


def touch(ctl: str, name: str, obj: dict | None = None) -> None:
    with open(os.path.join(ctl, name + ".tmp"), "w") as f:
        json.dump(obj or {}, f)
    os.replace(os.path.join(ctl, name + ".tmp"), os.path.join(ctl, name))


def rss_tree(p: psutil.Process) -> int:
    return p.memory_info().rss + sum(c.memory_info().rss for c in p.children(recursive=True))


def settled_rss(p: psutil.Process) -> float:
    """RSS of ``p`` and its children 3 s after the last connection: median of 3 samples."""
    time.sleep(3)
    samples = []
    for _ in range(3):
        samples.append(rss_tree(p))
        time.sleep(0.3)
    return statistics.median(samples)


def run_one(stack: str, n: int, clients: int, duration: float, timeout: float) -> dict:
    script, proto, path = STACKS[stack]
    ctl = tempfile.mkdtemp(prefix=f"fanout-{stack}-")
    port = free_port()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        srv = subprocess.Popen(
            [PY, os.path.join(HERE, script[0]), "--port", str(port), "--ctl", ctl], cwd=HERE
        )
        procs.append(srv)
        wait_port(port)
        time.sleep(0.5)
        sp = psutil.Process(srv.pid)
        before = rss_tree(sp)
        per = n // clients
        srcs = [f"127.0.0.{i + 2}" for i in range(clients)]
        for i in range(clients):
            procs.append(
                subprocess.Popen(
                    [
                        PY,
                        os.path.join(HERE, "fanout_client.py"),
                        "--port",
                        str(port),
                        "--path",
                        path,
                        "--count",
                        str(per),
                        "--proto",
                        proto,
                        "--ctl",
                        ctl,
                        "--id",
                        str(i),
                        "--src",
                        srcs[i],
                        "--max-seconds",
                        str(timeout),
                    ],
                    cwd=HERE,
                )
            )
        t0 = time.monotonic()
        ready = wait_files(ctl, [f"client-{i}-ready.json" for i in range(clients)], timeout)
        connect_s = time.monotonic() - t0
        connected = sum(r["connected"] for r in ready)
        failed = sum(r["failed"] for r in ready)
        after = settled_rss(sp)
        kb_per_conn = (after - before) / 1024 / max(connected, 1)
        cpu0 = sp.cpu_times()
        touch(ctl, "go", {"duration": duration})
        (flood,) = wait_files(ctl, ["flood.json"], duration + 90)
        cpu1 = sp.cpu_times()
        touch(ctl, "snap")
        cf = wait_files(ctl, [f"client-{i}-flood.json" for i in range(clients)], 90)
        msgs = sum(c["messages"] for c in cf)
        last = max(c["last_rx"] for c in cf)
        dps = msgs / (last - flood["t0_wall"]) if last > flood["t0_wall"] else 0.0
        expected = flood["rounds"] * connected
        touch(ctl, "paced_go", {"rounds": 10, "interval": 0.3})
        wait_files(ctl, ["result.json"], 60)
        touch(ctl, "stop")
        cfin = wait_files(ctl, [f"client-{i}-final.json" for i in range(clients)], 60)
        lat_p = [c["lat"].get("P", {}) for c in cfin]
        p50 = max((x.get("p50_ms", 0) for x in lat_p), default=0)
        p99 = max((x.get("p99_ms", 0) for x in lat_p), default=0)
        flood_cpu = (cpu1.user + cpu1.system - cpu0.user - cpu0.system) / max(
            flood["flood_s"], 1e-9
        )
        return {
            "stack": stack,
            "n": n,
            "connected": connected,
            "failed": failed,
            "connect_s": round(connect_s, 2),
            "rss_before_mb": before / 2**20,
            "rss_after_mb": after / 2**20,
            "kb_per_conn": kb_per_conn,
            "deliveries": msgs,
            "expected": expected,
            "delivered_ratio": msgs / max(expected, 1),
            "dps": dps,
            "paced_p50_ms": p50,
            "paced_p99_ms": p99,
            "server_cpu_pct": flood_cpu * 100,
        }
    finally:
        for p in reversed(procs):
            p.kill()
        for p in procs:
            p.wait(10)
        shutil.rmtree(ctl, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--stacks", default="raw,hub-json,hub-msgpack")
    ap.add_argument("--clients", type=int, default=2, help="client processes")
    ap.add_argument("--duration", type=float, default=5.0, help="flood seconds")
    ap.add_argument("--timeout", type=float, default=300.0)
    ap.add_argument("--json", help="append raw results (JSON lines) to this file")
    ap.add_argument("--summarize", help="only print the table of a --json file")
    a = ap.parse_args()
    if a.summarize:
        loaded: dict[str, list[dict]] = {}
        with open(a.summarize) as f:
            for line in f:
                row = json.loads(line)
                loaded.setdefault(row["stack"], []).append(row)
        print_table(
            loaded,
            list(loaded),
            loaded[next(iter(loaded))][0]["n"],
            max(r["rep"] for rows in loaded.values() for r in rows) + 1,
        )
        return
    stacks = a.stacks.split(",")
    results: dict[str, list[dict]] = {s: [] for s in stacks}
    for rep in range(a.reps):
        for s in stacks:  # interleaved so machine noise spreads over stacks
            r = run_one(s, a.n, a.clients, a.duration, a.timeout)
            r["rep"] = rep
            results[s].append(r)
            print(json.dumps(r), file=sys.stderr)
            if a.json:
                with open(a.json, "a") as f:
                    f.write(json.dumps(r) + "\n")
            time.sleep(1)

    def med(s: str, k: str) -> float:
        return statistics.median(r[k] for r in results[s])

    print_table(results, stacks, a.n, a.reps)


def print_table(results: dict[str, list[dict]], stacks: list[str], n: int, reps: int) -> None:
    """The Markdown table of medians (also used with ``--summarize``)."""

    def med(s: str, k: str) -> float:
        return statistics.median(r[k] for r in results[s])

    # Deliveries per second of server CPU: on 2 shared cores the load client often sets the
    # pace, so this per-CPU efficiency is the steadier comparison; both are printed.
    for rows in results.values():
        for r in rows:
            r["dps_per_cpu"] = r["dps"] / max(r["server_cpu_pct"] / 100.0, 1e-9)
    raw_dps = med("raw", "dps") if "raw" in results else None
    raw_eff = med("raw", "dps_per_cpu") if "raw" in results else None
    print(
        f"\nFan-out, N={n}, {reps} reps (median), {dt.date.today()}, "
        f"{platform.node()} {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(
        "| stack | connected | KB/conn idle | deliveries/s | x raw | deliveries per server "
        "CPU-second | x raw | delivered | 1-msg fan-out p50 / p99 ms | server CPU % | connect s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for s in stacks:
        ratio = f"{med(s, 'dps') / raw_dps:.2f}" if raw_dps else "-"
        eff = f"{med(s, 'dps_per_cpu') / raw_eff:.2f}" if raw_eff else "-"
        print(
            f"| {s} | {med(s, 'connected'):.0f} | {med(s, 'kb_per_conn'):.1f} | "
            f"{med(s, 'dps'):,.0f} | {ratio} | {med(s, 'dps_per_cpu'):,.0f} | {eff} | "
            f"{med(s, 'delivered_ratio'):.3f} | "
            f"{med(s, 'paced_p50_ms'):.0f} / {med(s, 'paced_p99_ms'):.0f} | "
            f"{med(s, 'server_cpu_pct'):.0f} | {med(s, 'connect_s'):.1f} |"
        )


if __name__ == "__main__":
    main()
