"""The desktop agent end to end (docs/agent.md).

A real ``aiusage serve`` process, an enrollment code from the CLI, ``aiusage agent enroll`` and
``aiusage agent run`` as subprocesses, and a process named like an AI tool (a copy of ``sleep``
called ``ollama``) started by the test. A dashboard client (pysignalr, Admin token) watches the
organization's group. The outage test kills the server while the agent has events to send,
restarts it, and checks that every event was stored exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.platform_procs import ROOT, Deployment, free_port, wait_until

pytestmark = pytest.mark.integration

ORG = "agentco"


def _fake_tool(tmp: Path) -> subprocess.Popen[bytes]:
    exe = tmp / "ollama"
    if not exe.exists():
        shutil.copy(shutil.which("sleep") or "/bin/sleep", exe)
    return subprocess.Popen([str(exe), "300"])


def _stop(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _enroll(dep: Deployment, base_url: str, home: Path) -> dict[str, Any]:
    code = dep.run_cli("enroll-code", "create", "--org", ORG).strip().split()[-1]
    env = dict(os.environ, AIUSAGE_AGENT_HOME=str(home))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "aiusage.cli",
            "agent",
            "enroll",
            "--server",
            base_url,
            "--code",
            code,
            "--name",
            "test-box",
        ],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return json.loads((home / "agent.json").read_text())


def _run_agent(home: Path, log: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ, AIUSAGE_AGENT_HOME=str(home))
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "aiusage.cli",
            "agent",
            "run",
            "--poll",
            "0.3",
            "--idle-minutes",
            "0.02",
            "--no-tray",
            "--max-seconds",
            "120",
        ],
        env=env,
        cwd=ROOT,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )


@pytest.fixture
def deployment(tmp_path):
    dep = Deployment(tmp_path / "data")
    try:
        dep.migrate()
        dep.create_org(ORG)
        yield dep
    finally:
        dep.close()


async def test_an_enrolled_agent_reports_an_ai_tool_process_live_to_the_dashboard(
    deployment, tmp_path
):
    from pysignalr.client import SignalRClient

    server = deployment.start_server()
    config = _enroll(deployment, server.base_url, tmp_path / "home")
    assert config["organization_id"] == ORG and config["token"]

    token = deployment.token("admin-1", ORG, "Admin")
    client = SignalRClient(
        f"{server.hub_url}?organizationId={ORG}",
        access_token_factory=lambda: token,
        headers={"Authorization": f"Bearer {token}"},
    )
    seen: list[tuple[str, dict[str, Any]]] = []
    opened = asyncio.Event()
    for name in ("SessionStarted", "AIDetected", "SessionEnded"):

        async def handler(args: list[Any], name: str = name) -> None:
            seen.append((name, args[0]))

        client.on(name, handler)

    async def on_open() -> None:
        opened.set()

    client.on_open(on_open)
    runner = asyncio.create_task(client.run())
    tool = agent = None
    try:
        await asyncio.wait_for(opened.wait(), 15)
        tool = _fake_tool(tmp_path)
        agent = _run_agent(tmp_path / "home", tmp_path / "agent.log")
        for _ in range(300):  # the live SessionStarted (<= 30 s)
            if any(n == "SessionStarted" for n, _ in seen):
                break
            await asyncio.sleep(0.1)
        started = [p for n, p in seen if n == "SessionStarted"]
        assert started, (tmp_path / "agent.log").read_text()
        assert started[0]["userId"] == config["user_id"]
        tool.kill()
        tool.wait()
        for _ in range(300):  # the tool vanishes -> AIDetected; idle -> SessionEnded
            if any(n == "SessionEnded" for n, _ in seen):
                break
            await asyncio.sleep(0.1)
        detected = [p for n, p in seen if n == "AIDetected"]
        assert [d["tool"] for d in detected] == ["Ollama"]
        ended = [p for n, p in seen if n == "SessionEnded"]
        assert ended and ended[0]["sessionId"] == started[0]["sessionId"]
    finally:
        if tool is not None and tool.poll() is None:
            tool.kill()
        if agent is not None:
            _stop(agent)
        runner.cancel()
        with contextlib.suppress(BaseException):
            await runner


def _stored(data_dir: Path) -> tuple[int, int, int]:
    db = sqlite3.connect(data_dir / "aiusage.db")
    try:
        sessions = db.execute(
            "SELECT COUNT(*) FROM ai_sessions WHERE org_id = ?", (ORG,)
        ).fetchone()[0]
        ended = db.execute(
            "SELECT COUNT(*) FROM ai_sessions WHERE org_id = ? AND end_time IS NOT NULL", (ORG,)
        ).fetchone()[0]
        detections = db.execute(
            "SELECT COUNT(*) FROM ai_detections WHERE org_id = ?", (ORG,)
        ).fetchone()[0]
        return sessions, ended, detections
    finally:
        db.close()


def test_a_server_outage_in_the_middle_loses_and_duplicates_nothing(deployment, tmp_path):
    port = free_port()
    server = deployment.start_server(port=port)
    home = tmp_path / "home"
    _enroll(deployment, server.base_url, home)
    tool = _fake_tool(tmp_path)
    agent = _run_agent(home, tmp_path / "agent.log")
    try:
        assert wait_until(lambda: _stored(deployment.data_dir)[0] == 1, 30), (
            tmp_path / "agent.log"
        ).read_text()
        server.stop()  # outage: the SessionStarted is stored; what follows must queue
        tool.kill()
        tool.wait()
        outbox = home / "outbox.db"

        def queued() -> int:
            db = sqlite3.connect(outbox)
            try:
                return int(db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])
            finally:
                db.close()

        # AIDetected and SessionEnded pile up in the durable outbox while the server is down.
        assert wait_until(lambda: queued() >= 2, 30)
        deployment.start_server(port=port)
        assert wait_until(lambda: queued() == 0, 60), (tmp_path / "agent.log").read_text()
        assert _stored(deployment.data_dir) == (1, 1, 1)
    finally:
        if tool.poll() is None:
            tool.kill()
        _stop(agent)
    # The agent's shutdown path sends nothing new (the session had already ended): still
    # exactly one of each.
    assert _stored(deployment.data_dir) == (1, 1, 1)


def test_a_revoked_device_token_is_refused(deployment, tmp_path):
    import httpx

    server = deployment.start_server()
    config = _enroll(deployment, server.base_url, tmp_path / "home")
    admin = deployment.token("admin-1", ORG, "Admin")
    headers = {"Authorization": f"Bearer {config['token']}"}
    event = {
        "eventId": "e-revoked-1",
        "type": "AIDetected",
        "occurredAt": "2026-11-26T09:00:00Z",
        "userId": config["user_id"],
        "tool": "Claude",
        "duration": 3,
    }
    with httpx.Client(base_url=server.base_url, timeout=10) as http:
        ok = http.post("/api/agent/events", json={"events": [event]}, headers=headers)
        assert ok.status_code == 200, ok.text
        revoked = http.post(
            f"/api/agents/{config['device_id']}/revoke",
            headers={"Authorization": f"Bearer {admin}"},
        )
        assert revoked.status_code == 200, revoked.text
        assert revoked.json()["revokedAt"]
        event["eventId"] = "e-revoked-2"
        refused = http.post("/api/agent/events", json={"events": [event]}, headers=headers)
        assert refused.status_code == 401
        assert http.post("/api/agent/token", headers=headers).status_code == 401
