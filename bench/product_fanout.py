"""Product-path fan-out: an Admin's ``BroadcastDashboardUpdate`` to N authenticated dashboards.

One ``aiusage serve`` process (SQLite, default settings) and N WebSocket connections of one
organization, each authenticated with a distinct user's JWT (the users exist in the store:
unknown users are refused). An Admin connection invokes ``BroadcastDashboardUpdate(orgId,
metrics)`` back to back for ``--duration`` seconds; the receivers count ``DashboardUpdate``
frames. Compared in the same run, with the same receiving client and accounting, against the
raw picows server (bench/servers/raw_picows.py) and python-socketio
(bench/servers/sio_fanout.py), both flooding from inside the server as in bench/fanout.py,
and optionally the engine alone (bench/servers/hub_bench.py). The raw server and the engine
alone send the Admin's DashboardUpdate (product_fanout_client.dashboard_update), so raw,
engine and aiusage write the same bytes per delivery (257-byte SignalR JSON frames; 193 for
MessagePack); python-socketio sends bench/fanout.py's 200-byte object in its own framing.

    flock /tmp/bench.lock .venv/bin/python bench/product_fanout.py --n 10000 --reps 3

Deliveries/s = broadcast frames received by all receivers / (last receipt - first send), so a
server that falls behind is charged for its backlog. KB/conn = the server's RSS growth from
before the receivers connect to 3 s after (median of 3 samples) / receivers connected. Stacks
run interleaved, repetition by repetition, in an order rotated by one stack each repetition,
each on a fresh server process; every process is stopped by its pid; everything binds
127.0.0.1; every phase is bounded in time. Besides deliveries/s, each run records the server's
write(2) calls and bytes per delivery, its context switches and the load processes' CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from fanout import free_port, rss_tree, settled_rss, touch, wait_files, wait_port  # noqa: E402
from product_fanout_client import ORG  # noqa: E402

PY = sys.executable
ADMIN = "bench-admin"
STACKS = ("raw", "python-socketio", "aiusage-json", "aiusage-msgpack")
OPTIONAL = ("hub-json", "hub-msgpack")
"""The engine alone (bench/servers/hub_bench.py: no authentication, no platform, flooding from
inside the server like the raw one), to tell what the platform costs from what SignalR does."""
PROTO = {
    "raw": "raw",
    "python-socketio": "socketio",
    "hub-json": "signalr-json",
    "hub-msgpack": "signalr-msgpack",
    "aiusage-json": "signalr-json",
    "aiusage-msgpack": "signalr-msgpack",
}


def user_id(i: int) -> str:
    return f"viewer-{i:05d}"


async def _create_users(data_dir: Path, n: int) -> None:
    from aiusage.settings import Settings
    from aiusage.store.database import Database
    from aiusage.store.repositories import OrganizationRepository, UserRepository

    settings = Settings.from_env().replace(data_dir=data_dir, database_url=None)
    db = Database(settings.resolved_database_url, schema=settings.database_schema)
    try:
        await db.migrate()
        users = UserRepository()
        async with db.write() as conn:
            await OrganizationRepository().create(conn, ORG, "Fan-out bench")
            await users.create(conn, ORG, email=None, role="Admin", user_id=ADMIN)
            for i in range(n):
                await users.create(conn, ORG, email=None, role="Manager", user_id=user_id(i))
    finally:
        await db.dispose()


def prepare(data_dir: Path, n: int) -> tuple[list[str], str]:
    """Create the organization, its Admin and ``n`` Manager users through the store's
    repositories (as ``aiusage org create`` / ``user create`` do) and mint one RS256 token each
    with the instance's issuer (as ``aiusage token issue`` does). Returns the receivers' request
    paths and the Admin's."""
    from aiusage.auth.issuer import BuiltinIssuer

    t0 = time.monotonic()
    asyncio.run(_create_users(data_dir, n))
    t1 = time.monotonic()
    issuer = BuiltinIssuer.load_or_create(data_dir)
    ttl = 24 * 3600
    tokens = [issuer.issue(user_id(i), ORG, "Manager", ttl) for i in range(n)]
    admin = issuer.issue(ADMIN, ORG, "Admin", ttl)
    print(
        f"setup: {n} users in {t1 - t0:.1f} s, {n + 1} tokens in {time.monotonic() - t1:.1f} s",
        file=sys.stderr,
    )
    hub = f"/hubs/analytics?organizationId={ORG}&access_token="
    return [hub + t for t in tokens], hub + admin


def server_cmd(stack: str, port: int, ctl: str, data_dir: Path) -> list[str]:
    # The flooding servers send the DashboardUpdate the Admin broadcasts through aiusage, so
    # every stack writes the same bytes per delivery (SignalR JSON for raw).
    if stack == "raw":
        server = "raw_picows.py"
    elif stack.startswith("hub-"):
        server = "hub_bench.py"
    else:
        server = ""
    if server:
        return [
            *(PY, str(HERE / "servers" / server), "--port", str(port), "--ctl", ctl),
            *("--payload", "dashboard"),
        ]
    if stack == "python-socketio":
        return [
            PY,
            str(HERE / "servers" / "sio_fanout.py"),
            "--port",
            str(port),
            "--ctl",
            ctl,
            "--org",
            ORG,
        ]
    return [PY, "-m", "aiusage.cli", "serve", "--port", str(port), "--data-dir", str(data_dir)]


def receiver_paths(stack: str, n: int, hub_paths: list[str]) -> list[str]:
    if stack == "raw":
        return ["/"] * n
    if stack == "python-socketio":
        return [f"/socket.io/?EIO=4&transport=websocket&org={ORG}"] * n
    if stack.startswith("hub-"):
        return ["/hub"] * n
    return hub_paths


def run_one(
    stack: str,
    a: argparse.Namespace,
    data_dir: Path,
    hub_paths: list[str],
    admin_path: str,
) -> dict[str, Any]:
    ctl = tempfile.mkdtemp(prefix=f"product-fanout-{stack}-")
    port = free_port()
    procs: list[subprocess.Popen[bytes]] = []
    client = str(HERE / "product_fanout_client.py")
    common = ["--port", str(port), "--ctl", ctl, "--max-seconds", str(a.timeout)]
    env = dict(os.environ, PYTHONPATH=a.src)
    log = open(os.path.join(ctl, "server.log"), "wb")  # closed in finally
    try:
        srv = subprocess.Popen(
            server_cmd(stack, port, ctl, data_dir), cwd=ROOT, env=env, stdout=log, stderr=log
        )
        procs.append(srv)
        wait_port(port, 60)
        time.sleep(1.0)
        sp = psutil.Process(srv.pid)
        paths_file = os.path.join(ctl, "paths.json")
        with open(paths_file, "w") as f:
            json.dump(receiver_paths(stack, a.n, hub_paths), f)
        if stack.startswith("aiusage"):
            procs.append(
                subprocess.Popen(
                    [
                        *(PY, client, "--role", "admin", *common, "--src", "127.0.0.250"),
                        *("--admin-path", admin_path, "--org", ORG, "--window", str(a.window)),
                    ],
                    cwd=HERE,
                )
            )
            wait_files(ctl, ["admin-ready.json"], 60)
            time.sleep(0.5)
        before = rss_tree(sp)
        per = -(-a.n // a.clients)
        for i in range(a.clients):
            src = f"127.0.0.{2 * i + 2},127.0.0.{2 * i + 3}"
            procs.append(
                subprocess.Popen(
                    [
                        *(PY, client, "--role", "receivers", *common, "--id", str(i)),
                        *("--src", src, "--paths", paths_file),
                        *("--first", str(i * per), "--count", str(per), "--proto", PROTO[stack]),
                        *("--concurrency", str(a.concurrency)),
                    ],
                    cwd=HERE,
                )
            )
        t0 = time.monotonic()
        ready = wait_files(ctl, [f"client-{i}-ready.json" for i in range(a.clients)], a.timeout)
        connect_s = time.monotonic() - t0
        connected = sum(r["connected"] for r in ready)
        failed = sum(r["failed"] for r in ready)
        after = settled_rss(sp)
        spy = None
        if a.py_spy:
            out = f"{a.py_spy}-{stack}-{int(time.time())}"
            spy = subprocess.Popen(
                [
                    *(str(ROOT / ".venv" / "bin" / "py-spy"), "record", "--pid", str(srv.pid)),
                    *("--duration", str(int(a.duration) + 1), "--rate", "200", "--format", "raw"),
                    *("--output", out + ".txt"),
                    # py-spy cannot take native stacks without pausing the process.
                    *(("--native",) if a.py_spy_native else ("--nonblocking",)),
                ],
                stdout=subprocess.DEVNULL,
            )
            time.sleep(1.0)
        cpu0, io0, cs0 = sp.cpu_times(), sp.io_counters(), sp.num_ctx_switches()
        loaders = [psutil.Process(p.pid) for p in procs[1:]]
        load0 = [lp.cpu_times() for lp in loaders]
        touch(ctl, "go", {"duration": a.duration})
        (flood,) = wait_files(ctl, ["flood.json"], a.duration + 120)
        cpu1, io1, cs1 = sp.cpu_times(), sp.io_counters(), sp.num_ctx_switches()
        load1 = [lp.cpu_times() for lp in loaders]
        touch(ctl, "snap")
        cf = wait_files(ctl, [f"client-{i}-flood.json" for i in range(a.clients)], 120)
        if spy is not None:
            spy.wait(30)
        msgs = sum(c["messages"] for c in cf)
        last = max(c["last_rx"] for c in cf)
        dps = msgs / (last - flood["t0_wall"]) if last > flood["t0_wall"] else 0.0
        cpu_s = cpu1.user + cpu1.system - cpu0.user - cpu0.system
        return {
            "stack": stack,
            "n": a.n,
            "connected": connected,
            "failed": failed,
            "closed_during_run": sum(c["closed"] for c in cf),
            "connect_s": round(connect_s, 2),
            "rss_before_mb": before / 2**20,
            "rss_after_mb": after / 2**20,
            "kb_per_conn": (after - before) / 1024 / max(connected, 1),
            "rounds": flood["rounds"],
            "flood_s": flood["flood_s"],
            "broadcasts_per_s": flood["rounds"] / max(flood["flood_s"], 1e-9),
            "deliveries": msgs,
            "expected": flood["rounds"] * connected,
            "delivered_ratio": msgs / max(flood["rounds"] * connected, 1),
            "frame_size": [c["frame_size"] for c in cf],
            "remainder_bytes": [c["remainder_bytes"] for c in cf],
            "dps": dps,
            "server_cpu_pct": 100 * cpu_s / max(flood["flood_s"], 1e-9),
            "dps_per_cpu_s": msgs / max(cpu_s, 1e-9),
            # write(2)/writev(2) calls and bytes the server made during the flood, per
            # delivery: what the socket layer costs is mostly one syscall per write.
            "writes_per_delivery": (io1.write_count - io0.write_count) / max(msgs, 1),
            "bytes_per_delivery": (io1.write_chars - io0.write_chars) / max(msgs, 1),
            "reads_during_flood": io1.read_count - io0.read_count,
            "ctx_switches": (cs1.voluntary + cs1.involuntary) - (cs0.voluntary + cs0.involuntary),
            # CPU % of each load process (the Admin first for aiusage, then the receivers):
            # on a small machine they compete with the server for the same cores.
            "load_cpu_pct": [
                round(100 * (b.user + b.system - a.user - a.system) / max(flood["flood_s"], 1e-9))
                for a, b in zip(load0, load1, strict=True)
            ],
        }
    finally:
        for p in reversed(procs):
            p.kill()
        for p in procs:
            p.wait(10)
        log.close()
        if a.keep_logs:
            print(f"logs kept in {ctl}", file=sys.stderr)
        else:
            shutil.rmtree(ctl, ignore_errors=True)


def table(results: dict[str, list[dict[str, Any]]], a: argparse.Namespace) -> str:
    def med(s: str, k: str) -> float:
        return statistics.median(r[k] for r in results[s])

    have = [s for s in results if results[s]]
    raw = med("raw", "dps") if "raw" in have else None
    sio = med("python-socketio", "dps") if "python-socketio" in have else None
    lines = [
        f"Product-path fan-out, N={a.n}, median of {a.reps}, "
        f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, nproc {os.cpu_count()}, "
        f"Linux {platform.release()}, Python {platform.python_version()}",
        "",
        "| server | protocol | connected | deliveries/s | \u00d7 picows | \u00d7 python-socketio | "
        "deliveries per server CPU-s | broadcasts/s | delivered | KB/conn idle | server CPU % | "
        "runs (deliveries/s) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in have:
        server, _, proto = s.partition("-") if s.startswith(("aiusage", "hub-")) else (s, "", "")
        server = "hubserver alone (hub_bench)" if server == "hub" else server
        proto = {"json": "SignalR JSON", "msgpack": "SignalR MessagePack"}.get(proto, "")
        proto = proto or ("Socket.IO" if s == "python-socketio" else "WebSocket")
        runs = ", ".join(f"{r['dps']:,.0f}" for r in results[s])
        lines.append(
            f"| {server} | {proto} | {med(s, 'connected'):,.0f} | {med(s, 'dps'):,.0f} | "
            + (f"{med(s, 'dps') / raw:.2f}" if raw else "-")
            + " | "
            + (f"{med(s, 'dps') / sio:.1f}" if sio else "-")
            + f" | {med(s, 'dps_per_cpu_s'):,.0f} | {med(s, 'broadcasts_per_s'):.1f} | "
            f"{med(s, 'delivered_ratio'):.3f} | "
            f"{med(s, 'kb_per_conn'):.1f} | {med(s, 'server_cpu_pct'):.0f} | {runs} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--n", type=int, default=10_000, help="receiving connections")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument(
        "--stacks", default=",".join(STACKS), help="comma list of " + ", ".join(STACKS + OPTIONAL)
    )
    ap.add_argument("--clients", type=int, default=2, help="receiving client processes")
    ap.add_argument("--concurrency", type=int, default=200, help="handshakes in flight each")
    ap.add_argument("--duration", type=float, default=5.0, help="flood seconds")
    ap.add_argument("--window", type=int, default=2, help="Admin invocations outstanding")
    ap.add_argument("--timeout", type=float, default=300.0, help="bound of every phase, s")
    ap.add_argument("--py-spy", help="record the server during each flood to PREFIX-*")
    ap.add_argument("--py-spy-native", action="store_true", help="py-spy --native")
    ap.add_argument("--keep-logs", action="store_true", help="keep each run's control dir")
    ap.add_argument("--tag", default="", help="suffix of the result file name")
    ap.add_argument(
        "--src",
        default=str(ROOT / "src"),
        help="source tree aiusage runs from (e.g. a snapshot, to compare two versions)",
    )
    a = ap.parse_args()
    a.src = os.path.abspath(a.src)
    sys.path.insert(0, a.src)
    stacks = a.stacks.split(",")
    stamp = dt.datetime.now(dt.UTC)
    name = f"{stamp:%Y%m%d}-product_fanout-N{a.n}-{stamp:%H%M%S}{'-' + a.tag if a.tag else ''}"
    out = ROOT / "bench" / "results" / f"{name}.json"
    data_dir = Path(tempfile.mkdtemp(prefix="product-fanout-data-"))
    results: dict[str, list[dict[str, Any]]] = {s: [] for s in stacks}
    try:
        hub_paths, admin_path = (
            prepare(data_dir, a.n) if any(s.startswith("aiusage") for s in stacks) else ([], "")
        )
        for rep in range(a.reps):
            # Interleaved so the machine's noise spreads over the stacks, and rotated so that no
            # stack always runs right after the same one (the first aiusage stack of each
            # repetition used to be JSON, every time).
            shift = rep % len(stacks)
            for s in stacks[shift:] + stacks[:shift]:
                r = run_one(s, a, data_dir, hub_paths, admin_path)
                r["rep"] = rep
                results[s].append(r)
                print(json.dumps(r), file=sys.stderr, flush=True)
                out.write_text(
                    json.dumps({"args": vars(a), "argv": sys.argv, "results": results}, indent=1)
                )
                time.sleep(1)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    text = table(results, a)
    command = " ".join([os.path.relpath(sys.argv[0], ROOT), *sys.argv[1:]])
    print(f"{text}\n\nCommand: `{command}`; raw results: {os.path.relpath(out, ROOT)}")
    out.write_text(
        json.dumps({"args": vars(a), "argv": sys.argv, "table": text, "results": results}, indent=1)
    )


if __name__ == "__main__":
    main()
