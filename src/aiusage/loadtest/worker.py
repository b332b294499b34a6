"""One load-test worker process: ``python -m aiusage.loadtest.worker``.

Protocol with the coordinator (one JSON object per line):

* stdin, first line: the :class:`~aiusage.loadtest.client.ClientConfig`; later lines:
  ``{"cmd": "stop"}`` (close everything, send the final report, exit).
* stdout: ``{"kind": "progress", ...}`` every ``progress_interval_s`` (latency histogram of that
  interval, cumulative counters), ``{"kind": "connected", ...}`` once the initial connect phase
  is over, and ``{"kind": "final", ...}`` (per-organization sequence accounting) at the end.

A worker holds at most ``count`` connections (the coordinator keeps that under 15,000 so a
process stays below this machine's 20,000-descriptor hard limit) and exits on its own after
``max_seconds``.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

from aiusage.loadtest.client import ClientConfig, Runtime, make_conn, open_conn


def _emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def progress(rt: Runtime, kind: str = "progress") -> dict[str, Any]:
    """Cumulative counters plus the latency histogram since the previous line."""
    hist = rt.take_interval()
    return {
        "kind": kind,
        "t": time.time(),
        "open": rt.open,
        "connect_failed": rt.connect_failed,
        "disconnects": rt.disconnects,
        "reconnects": rt.reconnects,
        "reconnect_failed": rt.reconnect_failed,
        "last_reconnect_at": rt.last_reconnect_at,
        "deliveries": rt.deliveries,
        "tracked": rt.tracked,
        "duplicates": rt.duplicates,
        "server_pings": rt.server_pings,
        "closes_received": rt.closes_received,
        "hist": hist.to_json(),
        "errors": list(rt.errors),
    }


def final(rt: Runtime, ever_ready: set[int]) -> dict[str, Any]:
    """Per-organization accounting: connections that were open when events started, the sum
    of distinct sequence numbers they received and their duplicates."""
    orgs: dict[str, list[int]] = {}
    transports: dict[str, int] = {}
    for c in rt.conns:
        if c.index not in ever_ready:
            continue
        row = orgs.setdefault(c.org, [0, 0, 0])
        row[0] += 1
        row[1] += c.tracker.distinct
        row[2] += c.tracker.duplicates
        transports[c.transport_name] = transports.get(c.transport_name, 0) + 1
    out = progress(rt, "final")
    out["orgs"] = orgs
    out["transports"] = transports
    out["total"] = rt.total.to_json()
    return out


async def _keepalive(rt: Runtime) -> None:
    """One timer for all connections (no per-connection task): Ping what has been quiet."""
    interval = rt.cfg.keepalive_s
    if interval <= 0:
        return
    while not rt.stopping:
        await asyncio.sleep(1.0)
        now = time.monotonic()
        for c in rt.conns:
            if c.ready and now - c.last_sent >= interval and c.transport_name != "lp":
                c.last_sent = now
                c.send_ping()


async def _reporter(rt: Runtime) -> None:
    while not rt.stopping:
        await asyncio.sleep(rt.cfg.progress_interval_s)
        if not rt.stopping:
            _emit(progress(rt))


async def _commands(reader: asyncio.StreamReader) -> str:
    line = await reader.readline()
    if not line:
        return "eof"
    try:
        return str(json.loads(line).get("cmd", "stop"))
    except ValueError:
        return "stop"


async def run(cfg: ClientConfig, commands: asyncio.StreamReader | None) -> dict[str, Any]:
    """Open the connections, report, wait for ``stop`` (or ``max_seconds``), close."""
    rt = Runtime(cfg)
    deadline = time.monotonic() + cfg.max_seconds
    rt.conns = [make_conn(rt, cfg.first_index + i) for i in range(cfg.count)]
    reporter = asyncio.get_running_loop().create_task(_reporter(rt))
    keepalive = asyncio.get_running_loop().create_task(_keepalive(rt))
    t0 = time.monotonic()
    results = await asyncio.gather(*(open_conn(c, cfg.connect_attempts) for c in rt.conns))
    rt.connect_failed = sum(1 for ok in results if not ok)
    ever_ready = {c.index for c, ok in zip(rt.conns, results, strict=True) if ok}
    connected = progress(rt, "connected")
    connected["connect_s"] = time.monotonic() - t0
    _emit(connected)
    try:
        if commands is not None:
            while True:
                cmd = await asyncio.wait_for(
                    _commands(commands), max(0.1, deadline - time.monotonic())
                )
                if cmd in ("stop", "eof"):
                    break
        else:
            await asyncio.sleep(max(0.0, deadline - time.monotonic()))
    except TimeoutError:
        rt.error("worker: max_seconds reached")
    out = final(rt, ever_ready)
    rt.stopping = True
    for c in rt.conns:
        c.close()
    reporter.cancel()
    keepalive.cancel()
    for task in list(rt.background):
        task.cancel()
    await asyncio.sleep(0.05)
    return out


async def _main() -> None:
    loop = asyncio.get_running_loop()
    # The config carries one token per organization (1,000 orgs: about 1 MB on one line).
    reader = asyncio.StreamReader(limit=64 * 1024 * 1024)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    first = await reader.readline()
    cfg = ClientConfig.from_json(json.loads(first))
    _emit(await run(cfg, reader))


def main() -> None:
    """Entry point of the worker process (uvloop when available)."""
    try:
        import uvloop

        uvloop.run(_main())
    except ImportError:  # pragma: no cover - uvloop is a pinned dependency
        asyncio.run(_main())


if __name__ == "__main__":
    main()
