"""Backplane latency: cross-server delivery over a real Redis vs local delivery.

    .venv/bin/python bench/bench_backplane.py [--n 2000] [--redis redis://127.0.0.1:6379/0]

Prints one table. Every row sends ``--n`` group messages one at a time (paced, so nothing queues)
and measures, per message, the time from just before ``send_groups`` to the moment the receiving
sink's ``write_serialized`` runs (``time.monotonic``, which is system-wide on Linux, so it is
comparable across processes):

* ``in-memory, local``: InMemoryLifetimeManager, sink on the sender (the single-server baseline);
* ``redis, local sink``: RedisLifetimeManager, sink on the sender (local-first delivery, ADR 0003);
* ``redis, other manager (same process)``: sink on a second manager in the same event loop;
* ``redis, other process``: sink on a manager in a child process (two servers on one host).

Then a flood row: ``--flood`` messages sent 64 at a time to the child process, deliveries/s.
Channel prefixes are random, so the shared Redis can be used while others run tests.
Loops are bounded in count and time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from hubserver.lifetime.memory import InMemoryLifetimeManager  # noqa: E402
from hubserver.lifetime.redis import RedisLifetimeManager  # noqa: E402
from hubserver.protocol.registry import JSON  # noqa: E402
from hubserver.types import ConnectionId, GroupName  # noqa: E402

GROUP = GroupName("bench")
PACE_S = 0.002
WAIT_S = 2.0


class TimingSink:
    """A ConnectionSink that timestamps each delivery and decodes the sequence number."""

    __slots__ = ("arrived", "connection_id", "count", "done", "event", "user_id")

    def __init__(self, connection_id: str) -> None:
        self.connection_id = ConnectionId(connection_id)
        self.user_id = None
        self.arrived: dict[int, float] = {}
        self.count = 0
        self.event = asyncio.Event()
        self.done = asyncio.Event()

    def write_serialized(self, message: Any) -> None:
        now = time.monotonic()
        data = message.get(JSON)
        parsed, _ = JSON.parse(data)
        inv = parsed[0]
        if inv.target == "Done":
            self.done.set()
            return
        self.arrived[int(inv.arguments[0])] = now
        self.count += 1
        self.event.set()

    async def invoke_client(self, target: str, args: Any, timeout: float) -> Any:
        raise NotImplementedError


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))]


async def paced(sender: Any, sink: TimingSink | None, n: int) -> list[float]:
    """Send n messages one by one; return latencies (ms) measured at ``sink`` (if in-process)."""
    sent: dict[int, float] = {}
    for seq in range(n):
        if sink is not None:
            sink.event.clear()
        sent[seq] = time.monotonic()
        await sender.send_groups([GROUP], "Tick", [seq, sent[seq]])
        if sink is not None and seq not in sink.arrived:
            async with asyncio.timeout(WAIT_S):
                while seq not in sink.arrived:
                    sink.event.clear()
                    await sink.event.wait()
        await asyncio.sleep(PACE_S)
    if sink is None:
        return []
    return [(sink.arrived[s] - sent[s]) * 1000 for s in range(n) if s in sink.arrived]


def manager(url: str, prefix: str) -> RedisLifetimeManager:
    return RedisLifetimeManager(url, channel_prefix=prefix, hub_name="Bench", canary_interval=0)


async def receiver(url: str, prefix: str) -> None:
    """Child process: one sink in GROUP; print its arrival times as JSON when told 'Done'."""
    m = manager(url, prefix)
    await m.start()
    sink = TimingSink("child")
    await m.on_connected(sink)
    await m.add_to_group(sink.connection_id, GROUP)
    print("ready", flush=True)
    async with asyncio.timeout(600):
        await sink.done.wait()
    print(json.dumps({"arrived": sink.arrived, "count": sink.count}), flush=True)
    await m.stop()


async def main(args: argparse.Namespace) -> None:
    rows: list[tuple[str, list[float]]] = []
    n = args.n

    mem = InMemoryLifetimeManager()
    s0 = TimingSink("m0")
    await mem.on_connected(s0)
    await mem.add_to_group(s0.connection_id, GROUP)
    rows.append(("in-memory, local", await paced(mem, s0, n)))

    prefix = f"bench-{uuid.uuid4().hex}-"
    m1, m2 = manager(args.redis, prefix), manager(args.redis, prefix)
    await m1.start()
    await m2.start()
    local, remote = TimingSink("local"), TimingSink("remote")
    await m1.on_connected(local)
    await m2.on_connected(remote)
    await m1.add_to_group(local.connection_id, GROUP)
    await m2.add_to_group(remote.connection_id, GROUP)
    rows.append(("redis, local sink", await paced(m1, local, n)))
    # Fresh sinks per row so earlier arrivals don't count.
    remote.arrived.clear()
    rows.append(("redis, other manager (same process)", await paced(m1, remote, n)))
    await m2.stop()

    # Child process as "server B".
    prefix2 = f"bench-{uuid.uuid4().hex}-"
    child = subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--role",
            "receiver",
            "--redis",
            args.redis,
            "--prefix",
            prefix2,
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )
    try:
        assert child.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(child.stdout.readline), 20)
        assert line.strip() == "ready", line
        sender = manager(args.redis, prefix2)
        await sender.start()
        sent: dict[int, float] = {}
        for seq in range(n):
            sent[seq] = time.monotonic()
            await sender.send_groups([GROUP], "Tick", [seq, sent[seq]])
            await asyncio.sleep(PACE_S)
        # Flood: 64 concurrent sends at a time.
        flood_start = time.monotonic()
        base = n
        for batch in range(0, args.flood, 64):
            await asyncio.gather(
                *(
                    sender.send_groups([GROUP], "Tick", [base + batch + i, 0.0])
                    for i in range(min(64, args.flood - batch))
                )
            )
        await asyncio.sleep(0.5)
        await sender.send_groups([GROUP], "Done", [])
        out = await asyncio.wait_for(asyncio.to_thread(child.stdout.read), 60)
        report = json.loads(out.strip().splitlines()[-1])
        arrived = {int(k): v for k, v in report["arrived"].items()}
        rows.append(
            (
                "redis, other process",
                [(arrived[s] - sent[s]) * 1000 for s in range(n) if s in arrived],
            )
        )
        flood_arrivals = [v for k, v in arrived.items() if k >= base]
        flood_rate = (
            len(flood_arrivals) / (max(flood_arrivals) - flood_start) if flood_arrivals else 0.0
        )
        await sender.stop()
    finally:
        child.wait(30)
    await m1.stop()

    print(f"\nBackplane latency, {n} paced group messages per row (ms); Redis {args.redis}\n")
    print(f"| {'path':<38} | {'n':>5} | {'p50':>7} | {'p99':>7} | {'max':>7} |")
    print(f"|{'-' * 40}|{'-' * 7}|{'-' * 9}|{'-' * 9}|{'-' * 9}|")
    for name, xs in rows:
        print(
            f"| {name:<38} | {len(xs):>5} | {pct(xs, 50):>7.3f} | {pct(xs, 99):>7.3f} "
            f"| {max(xs):>7.3f} |"
        )
    print(
        f"\nflood to the other process: {len(flood_arrivals)}/{args.flood} delivered, "
        f"{flood_rate:,.0f} deliveries/s (sender: 64 concurrent sends at a time)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--flood", type=int, default=20000)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--role", default="main", choices=["main", "receiver"])
    parser.add_argument("--prefix", default="")
    ns = parser.parse_args()
    ns.n = max(10, min(ns.n, 100_000))
    ns.flood = max(0, min(ns.flood, 1_000_000))
    asyncio.run(receiver(ns.redis, ns.prefix) if ns.role == "receiver" else main(ns))
