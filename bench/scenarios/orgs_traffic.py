"""Scenario: 1,000 organizations x 10 dashboards under agent traffic (R events/s spread
round-robin over the organizations; each event reaches its organization's 10 dashboards).

    .venv/bin/python bench/scenarios/orgs_traffic.py --n 10000 --orgs 1000 \\
        --event-rate 100 --duration 60
"""

from __future__ import annotations

from typing import Any

import _harness as h


def main() -> None:
    ap = h.common_args("orgs", __doc__ or "", n=10_000, orgs=1_000, duration=60.0, rate=100.0)
    a = ap.parse_args()

    async def body(stack: h.Stack, orgs: list[str]) -> dict[str, Any]:
        return await h.standard(h.loadtest_config(stack, a, orgs), drain_limit=60.0)

    results = h.run_stacks(a, body)
    cols = [
        ("connected", lambda rep: h.r(rep, "connections", "connected")),
        ("events/s achieved", lambda rep: h.r(rep, "events", "rate_achieved_per_s")),
        ("POST p99 ms", lambda rep: h.r(rep, "events", "post_latency_ms", "p99")),
        ("deliveries/s", lambda rep: h.r(rep, "delivery", "tracked_per_s")),
        ("lost", lambda rep: h.r(rep, "delivery", "lost")),
        ("dup", lambda rep: h.r(rep, "delivery", "duplicates")),
        ("p50 ms", lambda rep: h.r(rep, "latency_ms", "p50")),
        ("p99 ms", lambda rep: h.r(rep, "latency_ms", "p99")),
        ("max ms", lambda rep: h.r(rep, "latency_ms", "max")),
        ("server CPU %", lambda rep: h.r(rep, "server", "cpu_pct_mean_events")),
        ("peak RSS MB", lambda rep: h.r(rep, "server", "rss_peak_mb")),
        ("drops", lambda rep: h.r(rep, "connections", "unexpected_disconnects")),
    ]
    notes = [
        f"{a.orgs} organizations x {a.n // max(a.orgs, 1)} dashboards; every event is one "
        "organization's (tenant isolation: nobody else receives it).",
        "aiusage also pushes DashboardUpdate (at most 1/s per organization) and UserJoined; they "
        "are counted in all_pushed_messages, not in deliveries/s.",
    ]
    h.finish(
        a,
        f"{a.orgs} organizations x {a.n // max(a.orgs, 1)} dashboards, {a.event_rate:g} events/s",
        cols,
        results,
        notes,
    )


if __name__ == "__main__":
    main()
