"""Scale-out benchmark with real ``aiusage serve`` processes on one Redis.

    .venv/bin/python bench/bench_scaleout.py [--n 10000] [--clients 2] [--duration 5]
                                              [--latency-count 500] [--redis URL]

Prints two Markdown tables (one command, everything on 127.0.0.1, every phase bounded):

1. **Delivery latency**, official ``@microsoft/signalr`` clients (tests/conformance/scaleout.mjs):
   a sender invokes the hub's ``BroadcastDashboardUpdate`` ``--latency-count`` times (paced 5 ms)
   and receivers record ``receipt - t0`` (both in the Node process: one clock). Rows: one server
   with the in-memory lifetime manager (the single-server baseline); two servers on Redis with
   the receiver on the sender's server (local-first delivery) and on the other server
   (cross-server); extra latency = row minus baseline, at p50 and p99.
2. **Fan-out throughput, 1 vs 2 server processes** on Redis, the method of bench/fanout.py:
   ``--n`` WebSocket connections (bench/fanout_client.py processes, SignalR JSON handshake, token
   in ``access_token``) in one organization, split evenly over the processes; a write-only
   publisher (what ``aiusage worker`` uses) floods the organization group with the 200-byte
   payload for ``--duration`` s, keeping at most ``--window`` messages in flight ahead of the
   slowest server (a probe connection opened last on each server, so when it has message k,
   that server has written k to every connection); deliveries/s counted by the clients. Then
   10 paced rounds give the latency of one broadcast to all N.

On a 2-core machine the client processes compete with the servers for the same cores; the table
reports server CPU so the figures can be read with that in mind (docs/scaleout.md).
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
sys.path[:0] = [str(ROOT / "src"), str(ROOT), str(HERE)]

import _common  # noqa: E402
import websockets  # noqa: E402
from tests.support.platform_procs import (  # noqa: E402
    Deployment,
    NodeClients,
    Proc,
    percentile,
)

from hubserver import HubContext  # noqa: E402
from hubserver.lifetime.redis import RedisPublisher  # noqa: E402

ORG = "bench"
RS = "\x1e"


# --- 1. latency ---------------------------------------------------------------------------------


def ping_latencies(
    node: NodeClients, sender: str, receivers: list[str], count: int
) -> dict[str, list[float]]:
    probe = node.ping(sender, ORG, count, 5, timeout=60 + count * 0.1)
    got = node.wait_messages(
        count * (len(receivers) + 1),
        "DashboardUpdate",
        lambda r: r.args[0].get("probe") == probe,
        timeout=30,
    )
    return {name: [r.t - r.args[0]["t0"] for r in got if r.name == name] for name in receivers}


def latency_rows(d: Deployment, count: int) -> list[tuple[str, list[float]]]:
    rows: list[tuple[str, list[float]]] = []

    def token(sub: str) -> str:  # Admin: only Admin and SuperAdmin may broadcast
        return d.token(sub, ORG, "Admin")

    node = NodeClients()
    try:
        # The sender's paced 200 messages/s exceed the default inbound budget of one
        # connection (AIUSAGE_HUB_MAX_MESSAGES_PER_S, docs/deploy.md): lift it here.
        unbudgeted = {"AIUSAGE_HUB_MAX_MESSAGES_PER_S": "0"}
        single = d.start_server(AIUSAGE_REDIS_URL="", **unbudgeted)  # empty: in-memory
        url = f"{single.hub_url}?organizationId={ORG}"
        node.connect_many([("s-send", url, token("s1")), ("s-recv", url, token("s2"))])
        lat = ping_latencies(node, "s-send", ["s-recv"], count)
        rows.append(("1 server, in-memory (baseline)", lat["s-recv"]))
        node.close_connection("s-send")
        node.close_connection("s-recv")
        single.stop()

        s0 = d.start_server(wait=False, **unbudgeted)
        s1 = d.start_server(wait=False, **unbudgeted)
        d.wait_healthy(s0)
        d.wait_healthy(s1)
        u0, u1 = f"{s0.hub_url}?organizationId={ORG}", f"{s1.hub_url}?organizationId={ORG}"
        node.connect_many(
            [
                ("r-send", u0, token("r1")),
                ("r-local", u0, token("r2")),
                ("r-remote", u1, token("r3")),
            ]
        )
        lat = ping_latencies(node, "r-send", ["r-local", "r-remote"], count)
        rows.append(("2 servers on Redis, receiver on the sender's server", lat["r-local"]))
        rows.append(("2 servers on Redis, receiver on the other server", lat["r-remote"]))
        s0.stop()
        s1.stop()
    finally:
        node.close()
    return rows


# --- 2. fan-out throughput ----------------------------------------------------------------------


class Probe:
    """A raw SignalR JSON client over ``websockets`` counting ``m`` invocations."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.count = 0
        self.ws: Any = None
        self.task: asyncio.Task[None] | None = None
        self.changed = asyncio.Event()

    async def start(self) -> None:
        self.ws = await websockets.connect(self.url, max_size=None)
        await self.ws.send('{"protocol":"json","version":1}' + RS)
        reply = await asyncio.wait_for(self.ws.recv(), 10)
        if not str(reply).startswith("{}"):
            raise RuntimeError(f"handshake refused: {reply!r}")
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for frame in self.ws:
            text = frame if isinstance(frame, str) else frame.decode()
            self.count += text.count('"target":"m"')
            self.changed.set()

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
        if self.ws is not None:
            await self.ws.close()


def cpu_seconds(procs: list[psutil.Process]) -> float:
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


async def flood(
    publisher: RedisPublisher, probes: list[Probe], duration: float, window: int
) -> tuple[int, float, float]:
    """Publish for ``duration`` s with at most ``window`` messages ahead of the slowest probe.
    Returns (messages, wall start, seconds until the probes had everything)."""
    group = HubContext(publisher).clients.group(f"org:{ORG}")
    base = [p.count for p in probes]
    sent = 0
    t0_wall = time.time()
    t0 = time.monotonic()
    deadline = t0 + duration
    while time.monotonic() < deadline:
        while sent - min(p.count - b for p, b in zip(probes, base, strict=True)) >= window:
            for p in probes:
                p.changed.clear()
            waits = [asyncio.ensure_future(p.changed.wait()) for p in probes]
            done, pending = await asyncio.wait(
                waits, timeout=10, return_when=asyncio.FIRST_COMPLETED
            )
            for w in pending:
                w.cancel()
            if not done:
                raise RuntimeError("servers stopped delivering during the flood")
            if time.monotonic() > deadline + 30:
                raise RuntimeError("flood did not drain")
        sent += 1
        await group.send("m", _common.make_obj("F", sent))
    end = time.monotonic() + 60
    while any(p.count - b < sent for p, b in zip(probes, base, strict=True)):
        if time.monotonic() > end:
            break
        await asyncio.sleep(0.005)
    return sent, t0_wall, time.monotonic() - t0


async def fanout_row(
    d: Deployment, servers: int, n: int, clients: int, duration: float, window: int, timeout: float
) -> dict[str, Any]:
    procs: list[Proc] = [d.start_server(wait=False) for _ in range(servers)]
    workers: list[subprocess.Popen[bytes]] = []
    ctl = tempfile.mkdtemp(prefix=f"scaleout-{servers}-")
    probes: list[Probe] = []
    publisher = RedisPublisher(d.redis_url, channel_prefix=d.channel_prefix)
    try:
        for p in procs:
            d.wait_healthy(p)
        ps = [psutil.Process(p.proc.pid) for p in procs]
        token = d.token("bench-dashboard", ORG, "Manager", ttl=24 * 3600)
        path = f"/hubs/analytics?organizationId={ORG}&access_token={token}"
        per = n // clients
        for i in range(clients):
            target = procs[i % servers]
            workers.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        str(HERE / "fanout_client.py"),
                        "--port",
                        str(target.port),
                        "--path",
                        path,
                        "--count",
                        str(per),
                        "--proto",
                        "signalr-json",
                        "--ctl",
                        ctl,
                        "--id",
                        str(i),
                        "--src",
                        f"127.0.0.{i + 2}",
                        "--max-seconds",
                        str(timeout),
                    ],
                    cwd=HERE,
                )
            )
        t_connect = time.monotonic()
        ready = await asyncio.to_thread(
            _wait_files, ctl, [f"client-{i}-ready.json" for i in range(clients)], timeout
        )
        connect_s = time.monotonic() - t_connect
        connected = sum(r["connected"] for r in ready)
        for p in procs:
            probe = Probe(f"ws://127.0.0.1:{p.port}{path}")
            await probe.start()
            probes.append(probe)
        await publisher.start()
        if not await publisher.wait_ready(5):
            raise RuntimeError("publisher could not reach Redis")
        await asyncio.sleep(1.0)
        cpu0 = cpu_seconds(ps)
        sent, t0_wall, flood_s = await flood(publisher, probes, duration, window)
        cpu = (cpu_seconds(ps) - cpu0) / flood_s
        _common.write_file(ctl, "snap", {})
        counts = await asyncio.to_thread(
            _wait_files, ctl, [f"client-{i}-flood.json" for i in range(clients)], 90
        )
        delivered = sum(c["messages"] for c in counts)
        last = max(c["last_rx"] for c in counts)
        dps = delivered / (last - t0_wall) if last > t0_wall else 0.0
        group = HubContext(publisher).clients.group(f"org:{ORG}")
        for seq in range(10):
            await asyncio.sleep(0.3)
            await group.send("m", _common.make_obj("P", seq))
        await asyncio.sleep(1.0)
        _common.write_file(ctl, "stop", {})
        final = await asyncio.to_thread(
            _wait_files, ctl, [f"client-{i}-final.json" for i in range(clients)], 60
        )
        lat = [c["lat"].get("P", {}) for c in final]
        return {
            "servers": servers,
            "n": n,
            "connected": connected,
            "connect_s": connect_s,
            "sent": sent,
            "deliveries": delivered,
            "expected": sent * connected,
            "dps": dps,
            "server_cpu_pct": cpu * 100,
            "paced_p50_ms": max((x.get("p50_ms", 0) for x in lat), default=0),
            "paced_p99_ms": max((x.get("p99_ms", 0) for x in lat), default=0),
        }
    finally:
        for probe in probes:
            await probe.stop()
        await publisher.stop()
        for w in workers:
            w.kill()
        for w in workers:
            w.wait(10)
        for p in procs:
            p.stop()
        shutil.rmtree(ctl, ignore_errors=True)


def _wait_files(ctl: str, names: list[str], limit: float) -> list[dict[str, Any]]:
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if all(os.path.exists(os.path.join(ctl, n)) for n in names):
            time.sleep(0.05)
            out = []
            for n in names:
                with open(os.path.join(ctl, n)) as f:
                    out.append(json.load(f))
            return out
        time.sleep(0.1)
    raise TimeoutError(f"waiting for {names}")


# --- main ---------------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--n", type=int, default=10000, help="fan-out connections (total)")
    ap.add_argument(
        "--clients", type=int, default=2, help="fan-out client processes (a multiple of 2)"
    )
    ap.add_argument("--duration", type=float, default=5.0, help="flood seconds")
    ap.add_argument("--window", type=int, default=32, help="messages in flight in the flood")
    ap.add_argument("--latency-count", type=int, default=500, help="paced messages per row")
    ap.add_argument("--reps", type=int, default=1, help="fan-out repetitions (median)")
    ap.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    ap.add_argument("--timeout", type=float, default=300.0, help="bound of each phase (s)")
    ap.add_argument("--skip-latency", action="store_true")
    ap.add_argument("--skip-fanout", action="store_true")
    ap.add_argument("--json", help="append raw results (JSON lines) to this file")
    a = ap.parse_args()
    if a.clients % 2:
        ap.error("--clients must be a multiple of 2 (clients are split over the servers)")
    a.latency_count = max(10, min(a.latency_count, 5000))

    work = Path(tempfile.mkdtemp(prefix="bench-scaleout-"))
    d = Deployment(work / "data", redis_url=a.redis)
    started = time.time()
    try:
        d.create_org(ORG)
        print(
            f"Scale-out benchmark, {dt.date.today()}, {platform.node()} {os.cpu_count()} cores, "
            f"Python {platform.python_version()}, Redis {a.redis}"
        )
        if not a.skip_latency:
            rows = latency_rows(d, a.latency_count)
            base50 = percentile(rows[0][1], 50)
            base99 = percentile(rows[0][1], 99)
            print(
                f"\nDelivery latency, official JS client, {a.latency_count} messages per row "
                "(ms; extra = minus the 1-server baseline)"
            )
            print("| setup | received | p50 | p99 | max | extra p50 | extra p99 |")
            print("|---|---|---|---|---|---|---|")
            for label, values in rows:
                p50, p99 = percentile(values, 50), percentile(values, 99)
                print(
                    f"| {label} | {len(values)}/{a.latency_count} | {p50:.2f} | {p99:.2f} | "
                    f"{max(values):.2f} | {p50 - base50:+.2f} | {p99 - base99:+.2f} |"
                )
                if a.json:
                    with open(a.json, "a") as f:
                        f.write(
                            json.dumps({"latency": label, "p50": p50, "p99": p99, "n": len(values)})
                            + "\n"
                        )
        if not a.skip_fanout:
            results: dict[int, list[dict[str, Any]]] = {1: [], 2: []}
            for _ in range(a.reps):
                for servers in (1, 2):  # interleaved so machine noise spreads over both
                    r = asyncio.run(
                        fanout_row(d, servers, a.n, a.clients, a.duration, a.window, a.timeout)
                    )
                    results[servers].append(r)
                    print(json.dumps(r), file=sys.stderr)
                    if a.json:
                        with open(a.json, "a") as f:
                            f.write(json.dumps(r) + "\n")

            def med(s: int, k: str) -> float:
                return float(statistics.median(r[k] for r in results[s]))

            print(
                f"\nFan-out on Redis, N={a.n} connections, {a.clients} client processes, "
                f"{a.duration:.0f} s flood, {a.reps} rep(s) (median)"
            )
            print(
                "| server processes | connected | deliveries/s | x 1 process | delivered | "
                "1-msg fan-out p50 / p99 ms | server CPU % (sum) | connect s |"
            )
            print("|---|---|---|---|---|---|---|---|")
            for s in (1, 2):
                delivered = med(s, "deliveries") / max(med(s, "expected"), 1)
                print(
                    f"| {s} | {med(s, 'connected'):.0f} | {med(s, 'dps'):,.0f} | "
                    f"{med(s, 'dps') / max(med(1, 'dps'), 1):.2f} | {delivered:.3f} | "
                    f"{med(s, 'paced_p50_ms'):.0f} / {med(s, 'paced_p99_ms'):.0f} | "
                    f"{med(s, 'server_cpu_pct'):.0f} | {med(s, 'connect_s'):.1f} |"
                )
        print(f"\n(total {time.time() - started:.0f} s)")
    finally:
        d.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
