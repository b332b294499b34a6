"""A small real load test against ``aiusage serve`` on 127.0.0.1: every transport, both
protocols, zero lost messages, and the report files."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    port = free_port()
    data = tmp_path / "data"
    env = dict(os.environ, AIUSAGE_ACCESS_LOG="0", AIUSAGE_LOG_LEVEL="WARNING")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "aiusage.cli",
            "serve",
            "--port",
            str(port),
            "--data-dir",
            str(data),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                if proc.poll() is not None:
                    raise RuntimeError(proc.stderr.read().decode() if proc.stderr else "died")
                time.sleep(0.1)
        yield port, data
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("protocol", ["json", "messagepack"])
def test_small_mixed_load_test_loses_nothing_and_writes_the_report(
    server: tuple[int, Path], tmp_path: Path, protocol: str
) -> None:
    port, data = server
    report_dir = tmp_path / f"report-{protocol}"
    cmd = [
        sys.executable,
        "-m",
        "aiusage.cli",
        "loadtest",
        "--url",
        f"http://127.0.0.1:{port}/hubs/analytics",
        "--connections",
        "200",
        "--orgs",
        "4",
        "--transport",
        "mix",
        "--protocol",
        protocol,
        "--duration",
        "5",
        "--event-rate",
        "20",
        "--data-dir",
        str(data),
        "--create-orgs",
        "--report",
        str(report_dir),
        "--quiet",
    ]
    done = subprocess.run(cmd, capture_output=True, timeout=100)
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    report = json.loads((report_dir / "report.json").read_text())
    r = report["result"]
    assert r["connections"]["connected"] == 200
    assert r["connections"]["transports"] == {"ws": 67, "sse": 67, "lp": 66}
    assert r["connections"]["unexpected_disconnects"] == 0
    assert r["events"]["sent"] >= 80 and r["events"]["failed"] == 0
    d = r["delivery"]
    assert d["expected"] > 0
    assert d["lost"] == 0 and d["duplicates"] == 0
    assert d["received"] == d["expected"]
    assert r["latency_ms"]["count"] == d["received"] + d["duplicates"]
    assert r["server"]["source"] == "psutil" and r["server"]["rss_idle_mb"] > 0
    for name in ("summary.md", "latency.png", "connections.png"):
        assert (report_dir / name).stat().st_size > 0
