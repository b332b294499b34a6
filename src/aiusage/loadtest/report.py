"""Report files of a load test: ``report.json`` (everything), ``summary.md`` (a table in the
style of Azure SignalR's published per-unit capacity tables) and PNG plots
(``latency.png``: p50/p99/max per second; ``connections.png``: open connections, deliveries/s
and server RSS over time). matplotlib runs on the Agg backend (no display needed)."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any


def _fmt(v: Any, unit: str = "") -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:,.1f}{unit}"
    if isinstance(v, int):
        return f"{v:,}{unit}"
    return f"{v}{unit}"


def markdown(report: dict[str, Any]) -> str:
    """The Markdown summary of one report."""
    c = report["config"]
    r = report["result"]
    conn = r["connections"]
    ev = r["events"]
    d = r["delivery"]
    lat = r["latency_ms"]
    srv = r["server"]
    transports = ", ".join(f"{k} {v:,}" for k, v in sorted(conn["transports"].items())) or "-"
    if c["protocol"] == "messagepack" and conn["transports"].get("sse"):
        transports += " (SSE carries Text only: its connections use JSON)"
    lines = [
        f"# Load test {c.get('label') or c['run_id']}",
        "",
        f"{c['started_at']} on {platform.node()} ({os.cpu_count()} cores, Python "
        f"{platform.python_version()}); target `{c['url']}` ({c['kind']}), "
        f"{c['connections']:,} connections over {c['orgs']:,} organizations, transport "
        f"{c['transport']}, protocol {c['protocol']}, {c['duration_s']:g} s at "
        f"{c['event_rate']:g} events/s, {c['workers']} client processes.",
        "",
        "| metric | value |",
        "|---|---|",
        f"| connections held | {_fmt(conn['connected'])} of {_fmt(conn['requested'])} "
        f"({_fmt(conn['failed'])} failed) |",
        f"| transports | {transports} |",
        f"| connect time / rate | {_fmt(conn['connect_s'], ' s')} / "
        f"{_fmt(conn['connect_rate_per_s'], ' conn/s')} |",
        f"| unexpected disconnects / reconnects | {_fmt(conn['unexpected_disconnects'])} / "
        f"{_fmt(conn['reconnects'])} |",
        f"| agent events sent (failed) | {_fmt(ev['sent'])} ({_fmt(ev['failed'])}), "
        f"{_fmt(ev['rate_achieved_per_s'])}/s achieved |",
        f"| messages expected / received | {_fmt(d['expected'])} / {_fmt(d['received'])} |",
        f"| lost / duplicated | {_fmt(d['lost'])} / {_fmt(d['duplicates'])} |",
        f"| tracked deliveries/s (mean, peak all messages) | {_fmt(d['tracked_per_s'])} / "
        f"{_fmt(d['peak_deliveries_per_s'])} |",
        f"| end-to-end latency p50 / p95 / p99 / max | {_fmt(lat['p50'])} / {_fmt(lat['p95'])} / "
        f"{_fmt(lat['p99'])} / {_fmt(lat['max'])} ms |",
        f"| REST POST latency p50 / p99 | {_fmt(ev['post_latency_ms']['p50'])} / "
        f"{_fmt(ev['post_latency_ms']['p99'])} ms |",
        f"| server RSS before / idle / peak | {_fmt(srv['rss_before_mb'])} / "
        f"{_fmt(srv['rss_idle_mb'])} / {_fmt(srv['rss_peak_mb'])} MB ({srv['source']}) |",
        f"| server memory per idle connection | {_fmt(srv['kb_per_conn_idle'], ' KB')} |",
        f"| server CPU during events (mean) | {_fmt(srv['cpu_pct_mean_events'], ' %')} |",
        "",
        "Latency = receipt time minus the time the load tester stamped into the event just "
        "before POSTing it (same machine, same clock): REST ingestion, commit, fan-out and "
        "client parsing included. Every pushed message is measured (log histogram, 1% buckets).",
    ]
    if r["errors"]:
        lines += ["", "First errors:", ""] + [f"- `{e}`" for e in r["errors"][:10]]
    if ev["errors"]:
        lines += ["", "Event POST errors:", ""] + [f"- `{e}`" for e in ev["errors"][:5]]
    return "\n".join(lines) + "\n"


def plot(report: dict[str, Any], out: Path) -> list[Path]:
    """Write ``latency.png`` and ``connections.png``; return their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tl = report["timeline"]
    t = [row["t"] for row in tl]
    files = []

    fig, ax = plt.subplots(figsize=(9, 4.5))
    for key, style in (("p50", "-"), ("p99", "--"), ("max", ":")):
        xs = [row["t"] for row in tl if row["latency_ms"].get(key) is not None]
        ys = [row["latency_ms"][key] for row in tl if row["latency_ms"].get(key) is not None]
        ax.plot(xs, ys, style, label=key)
    ax.set_xlabel("time since start (s)")
    ax.set_ylabel("end-to-end latency (ms)")
    ax.set_title(
        f"Latency per second - {report['config'].get('label') or report['config']['run_id']}"
    )
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path = out / "latency.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    files.append(path)

    fig, ax = plt.subplots(figsize=(9, 4.5))
    ax.plot(t, [row["open"] for row in tl], label="open connections", color="tab:blue")
    ax.set_xlabel("time since start (s)")
    ax.set_ylabel("open connections")
    ax.grid(True, alpha=0.3)
    ax2 = ax.twinx()
    ax2.plot(t, [row["deliveries_per_s"] for row in tl], label="deliveries/s", color="tab:orange")
    rss = [row["server_rss_mb"] for row in tl]
    if any(v is not None for v in rss):
        ax2.plot(
            t,
            [v if v is not None else float("nan") for v in rss],
            ":",
            label="server RSS MB",
            color="tab:green",
        )
    ax2.set_ylabel("deliveries/s, server RSS (MB)")
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, loc="upper left")
    ax.set_title("Connections over time")
    fig.tight_layout()
    path = out / "connections.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    files.append(path)
    return files


def write_report(report: dict[str, Any], directory: str | os.PathLike[str]) -> dict[str, Path]:
    """Write ``report.json``, ``summary.md`` and the plots into ``directory`` (created)."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "report.json", "markdown": out / "summary.md"}
    paths["json"].write_text(json.dumps(report, indent=2, default=str))
    paths["markdown"].write_text(markdown(report))
    latency, connections = plot(report, out)
    paths["latency_png"] = latency
    paths["connections_png"] = connections
    return paths
