"""Transport benchmark: Server-Sent Events and long polling at N connections.

For each transport, on a fresh server process: server memory per connection (RSS growth from
the idle server to N connected clients, divided by N) and broadcast deliveries per second
(K broadcasts to all N, as fast as the server's backpressure allows, counted at the clients
until every copy arrived), with p50/p99 end-to-end latency. WebSockets can be added as the
reference row. One command, prints a table:

    .venv/bin/python bench/bench_transports.py --n 1000            # sse, lp (and ws reference)
    .venv/bin/python bench/bench_transports.py --n 200 --messages 10   # quick check

MessagePack vs JSON on the WebSocket fan-out is measured by bench/fanout.py (stacks hub-json,
hub-msgpack): ``.venv/bin/python bench/fanout.py --n 10000 --stacks hub-json,hub-msgpack``.

Server: this file with ``--serve`` -- hubserver's own HTTP server, a Hub without methods at
/hub, broadcasts through ``HubContext.clients.all.send`` (keep-alive pings out of the window),
plus a tiny control endpoint (``POST /ctl/flood``). Clients: the connections of
``aiusage.loadtest.client`` (raw asyncio SSE/LP/WS SignalR clients; every message carries a
marker, so losses and duplicates are counted), in this process. Client and server share the
machine's cores: on a 2-core box the client's parsing competes with the server, so numbers are
a lower bound for the server. Everything binds 127.0.0.1; the server is stopped by its pid.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import MutableMapping
from typing import Any

import psutil

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "src"))

from aiusage.loadtest import wire  # noqa: E402
from aiusage.loadtest.client import (  # noqa: E402
    ClientConfig,
    Runtime,
    http_call,
    make_conn,
    open_conn,
)

PAYLOAD_LEN = 200
"""Same message size as bench/fanout.py (bench/_common.py PAYLOAD_LEN)."""
RUN_ID = "tb"
BACKPRESSURE_BYTES = 65536


# --- server -----------------------------------------------------------------------------------


async def serve(port: int) -> None:
    """The benchmark server (``--serve``): hub at /hub, control at /ctl/."""
    from hubserver import Hub, HubOptions, HubServer, map_hub
    from hubserver.options import ConnectionOptions

    class BenchHub(Hub):
        """No methods: clients only receive."""

    mapped = map_hub(
        "/hub",
        BenchHub,
        hub_options=HubOptions(keep_alive_interval=3600.0),
        connection_options=ConnectionOptions(),
    )
    clients = mapped.hub_context.clients
    handler = mapped.handler

    def buffered() -> int:
        return max((c.buffered_bytes() for c in handler.local_connections()), default=0)

    async def flood(messages: int) -> dict[str, Any]:
        t0 = time.monotonic()
        for seq in range(1, messages + 1):  # loadtest SeqTracker numbers from 1
            marker = wire.make_marker(RUN_ID, seq, int(time.time() * 1e6))
            await clients.all.send("m", {"k": marker, "p": "x" * (PAYLOAD_LEN - 16 - len(marker))})
            # Backpressure like bench/servers/hub_bench.py: never queue more than 64 KB for
            # the slowest connection (for long polling: until its next poll takes it).
            while buffered() > BACKPRESSURE_BYTES:
                await asyncio.sleep(0.001)
        return {"sent": messages, "seconds": time.monotonic() - t0}

    async def ctl(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        query = dict(
            part.split("=", 1) for part in scope["query_string"].decode().split("&") if "=" in part
        )
        if scope["path"] == "/ctl/flood" and scope["method"] == "POST":
            body = await flood(int(query.get("messages", "10")))
        elif scope["path"] == "/ctl/count":
            body = {"connections": handler.connection_count()}
        else:
            body = {"error": "not found"}
        data = json.dumps(body).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200 if "error" not in body else 404,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": data})

    server = HubServer([mapped.endpoint], ctl, "127.0.0.1", port, access_log=False)
    await server.start()
    try:
        await asyncio.sleep(24 * 3600)
    finally:
        await server.stop(grace=1.0)


# --- driver -----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes], limit: float = 20.0) -> None:
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"server did not listen on {port}")


def rss_mb(pid: int) -> float:
    return float(psutil.Process(pid).memory_info().rss) / 2**20


async def measure(transport: str, a: argparse.Namespace) -> dict[str, Any]:
    """One transport on a fresh server: connect N, memory, flood, deliveries/s."""
    port = free_port()
    cmd = [sys.executable, os.path.abspath(__file__), "--serve", "--port", str(port)]
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "src"))
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    row: dict[str, Any] = {"transport": transport, "n": a.n, "protocol": a.protocol}
    rt: Runtime | None = None
    try:
        wait_port(port, proc)
        await asyncio.sleep(1.0)
        rss_idle = rss_mb(proc.pid)
        cfg = ClientConfig(
            host="127.0.0.1",
            port=port,
            path="/hub",
            transports=[transport],
            protocol=a.protocol,
            orgs=["o"],
            run_id=RUN_ID,
            count=a.n,
            concurrency=a.concurrency,
            reconnect=False,
        )
        rt = Runtime(cfg)
        rt.conns = [make_conn(rt, i) for i in range(a.n)]
        t0 = time.monotonic()
        opened = await asyncio.gather(*(open_conn(c, 3) for c in rt.conns))
        row["connected"] = sum(1 for c in rt.conns if c.ready)
        row["connect_s"] = round(time.monotonic() - t0, 2)
        if not all(opened):
            row["errors"] = rt.errors[:3]
        await asyncio.sleep(2.0)  # let the server settle (first polls, buffers)
        rss_connected = rss_mb(proc.pid)
        row["rss_idle_mb"] = round(rss_idle, 1)
        row["rss_connected_mb"] = round(rss_connected, 1)
        row["kb_per_conn"] = round((rss_connected - rss_idle) * 1024 / max(1, row["connected"]), 1)

        expected = a.messages * row["connected"]
        base_tracked = rt.tracked
        rt.take_interval()
        start = time.monotonic()
        flood = asyncio.ensure_future(
            http_call(
                "127.0.0.1",
                port,
                "POST",
                f"/ctl/flood?messages={a.messages}",
                {},
                limit_s=a.timeout,
            )
        )
        last_change, last_seen = start, base_tracked
        deadline = start + a.timeout
        while rt.tracked - base_tracked < expected and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
            if rt.tracked != last_seen:
                last_seen, last_change = rt.tracked, time.monotonic()
        status, body = await flood
        got = rt.tracked - base_tracked
        elapsed = max(1e-6, last_change - start)
        hist = rt.take_interval()
        row["messages"] = a.messages
        row["deliveries"] = got
        row["lost"] = expected - sum(c.tracker.distinct for c in rt.conns)
        row["duplicates"] = rt.duplicates
        row["deliveries_per_s"] = round(got / elapsed)
        row["flood_s"] = round(elapsed, 2)
        p50, p99 = hist.percentile_us(50), hist.percentile_us(99)
        row["p50_ms"] = round(p50 / 1000, 1) if p50 is not None else None
        row["p99_ms"] = round(p99 / 1000, 1) if p99 is not None else None
        row["rss_peak_mb"] = round(rss_mb(proc.pid), 1)
        row["server_flood"] = json.loads(body) if status == 200 else {"status": status}
        return row
    finally:
        if rt is not None:
            rt.stopping = True
            for c in rt.conns:
                c.close()
            for task in list(rt.background):
                task.cancel()
            await asyncio.sleep(0.1)
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


COLUMNS = [
    ("transport", "transport"),
    ("connected", "connected"),
    ("connect s", "connect_s"),
    ("KB/conn", "kb_per_conn"),
    ("RSS idle MB", "rss_idle_mb"),
    ("RSS N MB", "rss_connected_mb"),
    ("msgs", "messages"),
    ("deliveries", "deliveries"),
    ("lost", "lost"),
    ("dup", "duplicates"),
    ("deliveries/s", "deliveries_per_s"),
    ("p50 ms", "p50_ms"),
    ("p99 ms", "p99_ms"),
]


def table(rows: list[dict[str, Any]]) -> str:
    head = [name for name, _ in COLUMNS]
    cells = [[str(r.get(key, "")) for _, key in COLUMNS] for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(head)]
    lines = [" | ".join(h.ljust(w) for h, w in zip(head, widths, strict=True))]
    lines.append("-|-".join("-" * w for w in widths))
    lines += [" | ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, default=1000, help="connections (default 1000)")
    ap.add_argument(
        "--transports", default="sse,lp,ws", help="comma list of sse, lp, ws (default: all)"
    )
    ap.add_argument("--messages", type=int, default=20, help="broadcasts per run (default 20)")
    ap.add_argument(
        "--protocol",
        choices=("json", "messagepack"),
        default="json",
        help="hub protocol for lp/ws (SSE is JSON only)",
    )
    ap.add_argument("--concurrency", type=int, default=100, help="connects in flight")
    ap.add_argument("--timeout", type=float, default=120.0, help="max seconds per flood")
    ap.add_argument("--json", help="also write the rows to this JSON file")
    a = ap.parse_args()
    try:
        import uvloop
    except ImportError:  # pragma: no cover - pinned dependency
        uvloop = None  # type: ignore[assignment]
    if a.serve:
        (uvloop.run if uvloop else asyncio.run)(serve(a.port))
        return
    rows = []
    for transport in a.transports.split(","):
        if transport == "sse" and a.protocol != "json":
            print("skipping sse: JSON only (docs/spec/transports.md §2.3)", file=sys.stderr)
            continue
        print(f"[{transport}] N={a.n} ...", file=sys.stderr, flush=True)
        rows.append((uvloop.run if uvloop else asyncio.run)(measure(transport, a)))
    print(
        f"\nTransports, N={a.n}, {a.messages} broadcasts of {PAYLOAD_LEN} B, {a.protocol}, "
        f"client and server on this machine ({os.cpu_count()} cores)\n"
    )
    print(table(rows))
    for r in rows:
        if r.get("errors"):
            print(f"\n{r['transport']} connect errors: {r['errors']}")
    print("\nMessagePack vs JSON on WebSockets: bench/fanout.py --stacks hub-json,hub-msgpack")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
