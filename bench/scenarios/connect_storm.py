"""Scenario: connect storm. N clients (default 10,000) are connected; the server is restarted
(SIGTERM: aiusage closes every connection with allowReconnect, then exits; a new process
starts) and every client reconnects at once (SignalR: negotiate, JWT check, WebSocket,
handshake). Target: the storm of 10,000 distinct users completes in <= 6 s.

    .venv/bin/python bench/scenarios/connect_storm.py --n 10000

storm s = time from the new server accepting connections until the last client is back;
clients retry with a jittered back-off capped at 2 s, up to --concurrency handshakes in
flight per client process.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import _harness as h


def main() -> None:
    ap = h.common_args("storm", __doc__ or "", n=10_000, orgs=100, duration=0.0, rate=0.0)
    ap.set_defaults(concurrency=1000)
    ap.add_argument("--wait", type=float, default=120.0, help="max seconds for the storm")
    a = ap.parse_args()

    async def body(stack: h.Stack, orgs: list[str]) -> dict[str, Any]:
        # Clients keep pinging every 15 s as the JS client does: the server closes a connection
        # it has heard nothing from for 30 s (ClientTimeoutInterval), so silent clients would be
        # closed during any phase longer than that and reconnect once more.
        cfg = h.loadtest_config(stack, a, orgs, event_rate=0.0, duration=1.0)
        coord = h.Coordinator(cfg)
        await coord.measure_before()
        coord.start_sampler()
        storm: dict[str, Any] = {}
        try:
            await coord.start_workers()
            await coord.wait_connected()
            connected = coord._sum("open")
            coord.phase = "restart"
            t_stop = time.time()
            await asyncio.to_thread(stack.stop)
            t_down = time.time()
            t_listen = await asyncio.to_thread(stack.start)
            coord.monitor = type(coord.monitor)(stack.port, stack.pids())
            coord.phase = "storm"
            deadline = time.monotonic() + a.wait
            while time.monotonic() < deadline:
                await asyncio.sleep(0.25)
                if coord._sum("open") >= connected and coord._sum("reconnects") >= connected:
                    break
            last = max(float(w.last.get("last_reconnect_at", 0.0)) for w in coord.workers)
            storm = {
                "connected_before": connected,
                "reconnected": coord._sum("reconnects"),
                "open_after": coord._sum("open"),
                "reconnect_failed": coord._sum("reconnect_failed"),
                "stop_s": round(t_down - t_stop, 2),
                "storm_s": round(last - t_listen, 2) if last else None,
                "storm_rate_per_s": round(coord._sum("reconnects") / (last - t_listen), 1)
                if last > t_listen
                else None,
            }
        finally:
            await coord.stop()
        rep = coord.report()
        rep["storm"] = storm
        return rep

    results = h.run_stacks(a, body)
    cols = [
        ("connected before", lambda rep: rep["storm"]["connected_before"]),
        ("reconnected", lambda rep: rep["storm"]["reconnected"]),
        ("open after", lambda rep: rep["storm"]["open_after"]),
        ("gave up", lambda rep: rep["storm"]["reconnect_failed"]),
        ("shutdown s", lambda rep: rep["storm"]["stop_s"]),
        ("storm s", lambda rep: rep["storm"]["storm_s"]),
        ("reconnects/s", lambda rep: rep["storm"]["storm_rate_per_s"]),
        ("initial connect s", lambda rep: h.r(rep, "connections", "connect_s")),
    ]
    notes = [
        "Target: a 10K storm of distinct users (negotiate, JWT check, WebSocket, handshake)"
        " completes in <= 6 s."
    ]
    h.finish(a, f"Connect storm after a server restart, N={a.n}", cols, results, notes)


if __name__ == "__main__":
    main()
