"""Report files: JSON, Markdown summary and the two PNG plots."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aiusage.loadtest.report import markdown, write_report


def sample_report(lost: int = 0) -> dict[str, Any]:
    timeline = [
        {
            "t": float(i),
            "phase": "events" if i > 2 else "idle",
            "open": 200,
            "deliveries_per_s": 100.0 * i,
            "tracked_per_s": 90.0 * i,
            "events_per_s": 10.0,
            "latency_ms": {"count": 5, "mean": 2.0, "p50": 1.5, "p95": 3.0, "p99": 4.0, "max": 5.0}
            if i > 2
            else {"count": 0, "mean": None, "p50": None, "p95": None, "p99": None, "max": None},
            "server_rss_mb": 100.0 + i,
            "server_cpu_pct": 20.0,
            "disconnects": 0,
        }
        for i in range(1, 8)
    ]
    lat = {"count": 900, "mean": 2.0, "p50": 1.5, "p95": 3.0, "p99": 4.0, "max": 5.0}
    return {
        "config": {
            "url": "http://127.0.0.1:1/hubs/analytics",
            "kind": "signalr",
            "label": "unit",
            "connections": 200,
            "orgs": 2,
            "transport": "mix",
            "protocol": "messagepack",
            "duration_s": 5.0,
            "event_rate": 10.0,
            "workers": 1,
            "sources_per_worker": 2,
            "concurrency": 200,
            "run_id": "abc123",
            "started_at": "2026-11-26T00:00:00+00:00",
        },
        "result": {
            "connections": {
                "requested": 200,
                "connected": 200,
                "failed": 0,
                "connect_s": 1.0,
                "connect_rate_per_s": 200.0,
                "unexpected_disconnects": 0,
                "reconnects": 0,
                "reconnect_failed": 0,
                "transports": {"ws": 67, "sse": 67, "lp": 66},
            },
            "events": {
                "sent": 50,
                "failed": 0,
                "posts": 50,
                "rate_achieved_per_s": 10.0,
                "post_latency_ms": lat,
                "errors": [],
            },
            "delivery": {
                "expected": 5000,
                "received": 5000 - lost,
                "lost": lost,
                "duplicates": 0,
                "all_pushed_messages": 5100,
                "tracked_per_s": 1000.0,
                "deliveries_per_s": 1020.0,
                "peak_deliveries_per_s": 700.0,
            },
            "latency_ms": lat,
            "server": {
                "source": "psutil",
                "rss_before_mb": 100.0,
                "rss_idle_mb": 102.0,
                "rss_peak_mb": 107.0,
                "kb_per_conn_idle": 10.2,
                "cpu_pct_mean_events": 20.0,
            },
            "errors": ["ws connection lost: boom"],
        },
        "timeline": timeline,
    }


def test_write_report_produces_json_markdown_and_png_files(tmp_path: Path) -> None:
    paths = write_report(sample_report(), tmp_path / "out")
    assert json.loads(paths["json"].read_text())["config"]["run_id"] == "abc123"
    for key in ("latency_png", "connections_png"):
        data = paths[key].read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        assert len(data) > 5000
    assert "| lost / duplicated | 0 / 0 |" in paths["markdown"].read_text()


def test_markdown_reports_losses_errors_and_the_sse_json_note() -> None:
    text = markdown(sample_report(lost=12))
    assert "| lost / duplicated | 12 / 0 |" in text
    assert "5,000 / 4,988" in text
    assert "ws connection lost: boom" in text
    assert "SSE carries Text only" in text
    assert "10.2 KB" in text
