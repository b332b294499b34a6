"""Scenario: soak, N connections (default 10,000) held for --duration seconds (default 600)
under light agent traffic (target: zero unexpected disconnects; memory flat).

    .venv/bin/python bench/scenarios/soak.py --n 10000 --duration 600
"""

from __future__ import annotations

from typing import Any

import _harness as h


def main() -> None:
    ap = h.common_args("soak", __doc__ or "", n=10_000, orgs=100, duration=600.0, rate=20.0)
    a = ap.parse_args()

    async def body(stack: h.Stack, orgs: list[str]) -> dict[str, Any]:
        return await h.standard(h.loadtest_config(stack, a, orgs), drain_limit=60.0)

    results = h.run_stacks(a, body)

    def rss_growth(rep: dict[str, Any]) -> float | None:
        rows = [x for x in rep["timeline"] if x["phase"] == "events" and x["server_rss_mb"]]
        if len(rows) < 4:
            return None
        return rows[-1]["server_rss_mb"] - rows[len(rows) // 4]["server_rss_mb"]

    cols = [
        ("connected", lambda rep: h.r(rep, "connections", "connected")),
        ("unexpected drops", lambda rep: h.r(rep, "connections", "unexpected_disconnects")),
        ("reconnects", lambda rep: h.r(rep, "connections", "reconnects")),
        ("events sent", lambda rep: h.r(rep, "events", "sent")),
        ("lost", lambda rep: h.r(rep, "delivery", "lost")),
        ("dup", lambda rep: h.r(rep, "delivery", "duplicates")),
        ("p50 ms", lambda rep: h.r(rep, "latency_ms", "p50")),
        ("p99 ms", lambda rep: h.r(rep, "latency_ms", "p99")),
        ("max ms", lambda rep: h.r(rep, "latency_ms", "max")),
        ("RSS idle MB", lambda rep: h.r(rep, "server", "rss_idle_mb")),
        ("RSS peak MB", lambda rep: h.r(rep, "server", "rss_peak_mb")),
        ("RSS growth last 3/4 MB", rss_growth),
    ]
    notes = [
        "Keep-alive as in production: clients ping every 15 s (SignalR), the servers ping on "
        "their own schedule; every ping is answered.",
        "Target: 10K connections held 10 minutes with zero unexpected disconnects.",
    ]
    h.finish(a, f"Soak, N={a.n}, {a.duration:g} s, {a.event_rate:g} events/s", cols, results, notes)


if __name__ == "__main__":
    main()
