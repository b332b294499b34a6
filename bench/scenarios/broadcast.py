"""Scenario: one organization, N dashboards (default 10,000), agent events at R/s, every event
fanned out to all N (target: deliveries/s >= 0.8 x the raw reference and >= 10 x
python-socketio, in the same run).

    .venv/bin/python bench/scenarios/broadcast.py --n 10000 --event-rate 20 --duration 20

Deliveries/s = distinct tracked messages received / time from the first event until the last
delivery (so a server that falls behind is charged for its backlog). R x N above a stack's
capacity saturates it; the latency columns then show the queueing.
"""

from __future__ import annotations

from typing import Any

import _harness as h


def main() -> None:
    ap = h.common_args("broadcast", __doc__ or "", n=10_000, orgs=1, duration=20.0, rate=20.0)
    ap.add_argument("--drain", type=float, default=120.0, help="max seconds to wait for backlog")
    a = ap.parse_args()

    async def body(stack: h.Stack, orgs: list[str]) -> dict[str, Any]:
        return await h.standard(h.loadtest_config(stack, a, orgs[:1]), drain_limit=a.drain)

    results = h.run_stacks(a, body)
    dps = lambda rep: h.r(rep, "delivery", "tracked_per_s")  # noqa: E731
    cols = [
        ("connected", lambda rep: h.r(rep, "connections", "connected")),
        ("events sent", lambda rep: h.r(rep, "events", "sent")),
        ("deliveries/s", dps),
        ("lost", lambda rep: h.r(rep, "delivery", "lost")),
        ("dup", lambda rep: h.r(rep, "delivery", "duplicates")),
        ("p50 ms", lambda rep: h.r(rep, "latency_ms", "p50")),
        ("p95 ms", lambda rep: h.r(rep, "latency_ms", "p95")),
        ("p99 ms", lambda rep: h.r(rep, "latency_ms", "p99")),
        ("max ms", lambda rep: h.r(rep, "latency_ms", "max")),
        ("server CPU %", lambda rep: h.r(rep, "server", "cpu_pct_mean_events")),
        ("peak RSS MB", lambda rep: h.r(rep, "server", "rss_peak_mb")),
    ]
    notes = [
        f"aiusage deliveries/s = {h.ratio(results, 'aiusage', 'raw', dps)} of raw "
        "(target >= 0.8x), "
        f"{h.ratio(results, 'aiusage', 'python-socketio', dps)} of python-socketio "
        "(target >= 10x).",
        "Lost, for a stack that saturates: messages still queued when --drain ran out "
        "(raise --drain, or lower --event-rate, to tell backlog from loss).",
        "aiusage events go through POST /api/agent/events (validation, SQLite commit, publish); "
        "the comparison servers only decode and emit, so latency includes more work for aiusage.",
    ]
    h.finish(
        a, f"One-organization broadcast, N={a.n}, {a.event_rate:g} events/s", cols, results, notes
    )


if __name__ == "__main__":
    main()
