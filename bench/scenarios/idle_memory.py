"""Scenario: idle memory at 10K / 20K / 50K connections (target: <= 16 KB per
connection; 50K in <= 1 GB RSS summed over the server processes).

    .venv/bin/python bench/scenarios/idle_memory.py --n 10000
    .venv/bin/python bench/scenarios/idle_memory.py --n 20000            # 2 server processes
    .venv/bin/python bench/scenarios/idle_memory.py --n 50000            # 4 server processes

N connections (WebSockets) are opened and held with no traffic but the protocol's keep-alive
(SignalR clients Ping every 15 s, as the JS client does: a SignalR server closes a client that
stays silent for 30 s after its first Ping); server RSS (every process of the stack, psutil) is
sampled before, and 3 s after the last connection (median of 3). Above
15,000 connections each stack runs several processes on one port (SO_REUSEPORT; aiusage shares
groups through Redis), because a process may hold at most 20,000 descriptors here.
"""

from __future__ import annotations

from typing import Any

import _harness as h


def main() -> None:
    ap = h.common_args("idle", __doc__ or "", n=10_000, orgs=100, duration=10.0, rate=0.0)
    a = ap.parse_args()

    async def body(stack: h.Stack, orgs: list[str]) -> dict[str, Any]:
        # Keep-alive on (the default 15 s): with it off, a 50K connect phase longer than 30 s
        # had the server time out the clients connected first (client timeout,
        # docs/spec/hub-protocol.md §3.6).
        cfg = h.loadtest_config(stack, a, orgs, event_rate=0.0)
        return await h.standard(cfg)

    results = h.run_stacks(a, body)
    kb = lambda rep: h.r(rep, "server", "kb_per_conn_idle")  # noqa: E731
    cols = [
        ("server procs", lambda rep: rep["config"].get("server_procs", h.server_procs(a))),
        ("connected", lambda rep: h.r(rep, "connections", "connected")),
        ("failed", lambda rep: h.r(rep, "connections", "failed")),
        ("RSS before MB", lambda rep: h.r(rep, "server", "rss_before_mb")),
        ("RSS idle MB", lambda rep: h.r(rep, "server", "rss_idle_mb")),
        ("KB/conn", kb),
        ("connect s", lambda rep: h.r(rep, "connections", "connect_s")),
        ("connects/s", lambda rep: h.r(rep, "connections", "connect_rate_per_s")),
        ("unexpected drops", lambda rep: h.r(rep, "connections", "unexpected_disconnects")),
    ]
    notes = [
        "Target: aiusage <= 16 KB per idle connection; 50K connections <= 1 GB RSS summed over "
        "the server processes. RSS excludes kernel socket memory.",
        "aiusage KB/conn vs python-socketio: "
        f"{h.ratio(results, 'aiusage', 'python-socketio', kb)}, "
        f"vs raw: {h.ratio(results, 'aiusage', 'raw', kb)}.",
    ]
    h.finish(a, f"Idle connections, N={a.n}", cols, results, notes)


if __name__ == "__main__":
    main()
