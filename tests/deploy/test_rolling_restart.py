"""Rolling restart under agent traffic loses nothing.

Two aiusage processes behind nginx (deploy/nginx), official clients on every transport
connected to both, an agent posting batches through nginx. Process a gets SIGTERM: it must
stop accepting, send Close {allowReconnect: true}, drain and exit within its grace; clients
reconnect through nginx to b; a restarts; then the same for b. Finally every acknowledged
(2xx) agent event is in the sessions API and the dashboard snapshot. /metrics is scraped
during the load run."""

from __future__ import annotations

import shutil
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.deploy.nginx_kit import nginx_available
from tests.deploy.procs import LineReader
from tests.deploy.stack import (
    ORG,
    SHUTDOWN_GRACE_S,
    SIGNALR,
    Backend,
    Stack,
    node_command,
    node_env,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.postgres,
    pytest.mark.timeout(150),
    pytest.mark.skipif(not nginx_available(), reason="nginx not installed (scripts/install --dev)"),
    pytest.mark.skipif(
        shutil.which("node") is None or not SIGNALR.exists(),
        reason="needs node and tests/conformance/node_modules",
    ),
]

TRANSPORTS = ("WebSockets", "ServerSentEvents", "LongPolling")


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    deployment = Stack(tmp_path)
    try:
        deployment.start()
        yield deployment
    finally:
        deployment.close()


class Agent:
    """Posts SessionStarted batches through nginx at a modest rate; remembers what was
    acknowledged (2xx) and re-sends unacknowledged batches (events are idempotent)."""

    def __init__(self, base_url: str, token: str, interval: float = 0.1) -> None:
        self.base_url = base_url
        self.token = token
        self.interval = interval
        self.acked: set[str] = set()  # session ids
        self.statuses: dict[int, int] = {}
        self.errors = 0
        self._pending: list[dict[str, Any]] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _batch(self) -> list[dict[str, Any]]:
        now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        events = []
        for _ in range(3):
            sid = f"s-{uuid.uuid4().hex[:12]}"
            events.append(
                {
                    "eventId": f"e-{sid}",
                    "type": "SessionStarted",
                    "occurredAt": now,
                    "userId": f"user-{len(self.acked) % 7}",
                    "sessionId": sid,
                    "startTime": now,
                    "tool": "ChatGPT",
                    "deviceId": "dev-1",
                }
            )
        return events

    def _post_once(self, client: httpx.Client) -> bool:
        batch = self._pending or self._batch()
        self._pending = batch
        try:
            r = client.post(
                "/api/agent/events",
                json={"events": batch},
                headers={"Authorization": f"Bearer {self.token}"},
            )
        except httpx.HTTPError:
            self.errors += 1
            return False
        self.statuses[r.status_code] = self.statuses.get(r.status_code, 0) + 1
        if 200 <= r.status_code < 300:
            self.acked.update(e["sessionId"] for e in batch)
            self._pending = None
            return True
        return False

    def _run(self) -> None:
        with httpx.Client(base_url=self.base_url, timeout=10.0) as client:
            while not self._stop.is_set():
                self._post_once(client)
                self._stop.wait(self.interval)
            # Deliver the batch in flight at the end, like a real agent would (bounded).
            deadline = time.monotonic() + 15
            while self._pending is not None and time.monotonic() < deadline:
                if not self._post_once(client):
                    time.sleep(0.2)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)
        assert not self._thread.is_alive()


def sigterm_and_wait(stack: Stack, backend: Backend) -> float:
    """SIGTERM one process; returns how long it took to exit (asserts a clean exit)."""
    proc = backend.proc
    assert proc is not None
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(SHUTDOWN_GRACE_S + 10)
    took = time.monotonic() - started
    assert code == 0, backend.log_text()[-3000:]
    return took


def reconnected(reader: LineReader) -> int:
    return sum(1 for e in reader.drain() if e["event"] == "reconnected")


def settled(reader: LineReader) -> bool:
    events = reader.drain()
    started = sum(1 for e in events if e["event"] == "reconnecting")
    return started == sum(1 for e in events if e["event"] == "reconnected")


def wait_until(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.1)


def sum_metric(stack: Stack, name: str) -> float:
    return sum(stack.metrics(b).get(name, 0.0) for b in stack.backends)


def test_a_rolling_restart_under_agent_traffic_loses_no_acknowledged_event(stack: Stack) -> None:
    cookies = stack.affinity_cookies(per_backend=len(TRANSPORTS))
    admin = stack.token("ann", "Admin")
    clients: dict[tuple[str, str], LineReader] = {}
    for backend in ("a", "b"):
        for i, transport in enumerate(TRANSPORTS):
            proc = subprocess.Popen(
                node_command(
                    {
                        "mode": "hold",
                        "url": stack.http_url + "/hubs/analytics",
                        "token": admin,
                        "transport": transport,
                        "org": ORG,
                        "seconds": 120,
                        "cookie": f"aiusage_affinity={cookies[backend][i]}",
                    }
                ),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
                env=node_env(),
                start_new_session=True,
            )
            stack.others.append(proc)
            clients[(backend, transport)] = LineReader(proc)
    for key, reader in clients.items():
        first = reader.wait_for(lambda e: e["event"] in ("started", "failed"), 30)
        assert first["event"] == "started", (key, first)

    agent = Agent(stack.http_url, stack.token("dev-1", "Agent"))
    agent.start()
    try:
        # -- /metrics during the load run (scraped per process, as Prometheus does) --------
        wait_until(lambda: len(agent.acked) >= 30, 20, "agent traffic flowing")
        wait_until(
            lambda: sum_metric(stack, "aiusage_dashboard_updates_total") > 0,
            10,
            "a DashboardUpdate pushed",
        )
        m = {b.name: stack.metrics(b) for b in stack.backends}
        total = {k: m["a"].get(k, 0.0) + m["b"].get(k, 0.0) for k in m["a"].keys() | m["b"].keys()}
        for transport in TRANSPORTS:
            key = f'aiusage_hub_connections{{transport="{transport}",protocol="json"}}'
            assert total[key] == 2, (key, total[key])
            assert m["a"][key] == 1 and m["b"][key] == 1
        assert total['aiusage_hub_org_connections{org="acme"}'] == 6
        assert total['aiusage_ingest_events_total{outcome="accepted"}'] >= 30
        assert total["aiusage_ingest_request_duration_seconds_count"] >= 10
        assert total['aiusage_ingest_requests_total{code="2xx"}'] >= 10
        assert total["aiusage_dashboard_staleness_seconds_count"] >= 1
        assert total['aiusage_hub_messages_total{direction="out"}'] >= 1
        for name in ("a", "b"):
            assert m[name]["aiusage_backplane_state"] == 2
            assert m[name]["aiusage_backplane_healthy"] == 1

        # -- rolling restart: a, then b -----------------------------------------------------
        for name in ("a", "b"):
            backend = next(b for b in stack.backends if b.name == name)
            before = {key: reconnected(r) for key, r in clients.items()}
            took = sigterm_and_wait(stack, backend)
            print(f"process {name} drained and exited in {took:.2f}s")
            assert took < SHUTDOWN_GRACE_S + 3, took
            # Its clients got Close {allowReconnect: true} (else the JS client closes for
            # good) and reconnected through nginx to the other process.
            for transport in TRANSPORTS:
                reader = clients[(name, transport)]
                wait_until(
                    lambda r=reader, k=(name, transport): reconnected(r) > before[k],
                    30,
                    f"{name}/{transport} reconnected",
                )
            stack.spawn(backend)
            stack.wait_ready(backend)
            # docs/deploy.md "Rolling restarts": ready, then `sleep 3` (> nginx's fail_timeout
            # of 2 s) before the next process, or nginx may still consider this one down when
            # that one goes and answer 502 (seen with 2.5 s on a loaded CI machine).
            time.sleep(3.0)
    finally:
        agent.stop()

    # A long-polling or SSE client that moved to the other process gets 404 when its own
    # process is back and the proxy hashes it there again, and reconnects once more
    # (docs/deploy.md "Graceful shutdown"): let those reconnects finish (the JS client's retry
    # delays are 0, 2, 10, 30 s) before checking that every client is connected.
    for key, reader in clients.items():
        wait_until(lambda r=reader: settled(r), 45, f"{key} reconnect settled")
    # Every client is still connected and never closed for good.
    for key, reader in clients.items():
        reader.proc.stdin.write("stop\n")
        reader.proc.stdin.flush()
    for key, reader in clients.items():
        summary = reader.wait_for(lambda e: e["event"] == "summary", 20)
        print(key, {k: summary[k] for k in ("reconnecting", "reconnected", "updates")})
        assert summary["closedBeforeStop"] == 0, (key, reader.events)
        assert summary["state"] == "Connected", (key, reader.events)
        assert summary["reconnected"] >= 1 and summary["reconnecting"] == summary["reconnected"]

    print(
        f"agent: {len(agent.acked)} sessions acknowledged, statuses {agent.statuses}, "
        f"transport errors {agent.errors}"
    )
    assert agent._pending is None, (agent.statuses, agent.errors)
    # nginx retried every batch that hit a stopping process on the other one (connection
    # refused before sending, or the idempotent-POST retry of aiusage-locations.conf).
    nginx_errors = stack.root / "nginx" / "logs" / "error.log"
    assert set(agent.statuses) == {200}, (
        agent.statuses,
        [line for line in nginx_errors.read_text().splitlines() if "[info]" not in line][-20:],
    )
    assert len(agent.acked) >= 60, (len(agent.acked), agent.statuses)

    # -- nothing acknowledged is missing ------------------------------------------------------
    with httpx.Client(
        base_url=stack.http_url, timeout=10.0, headers={"Authorization": f"Bearer {admin}"}
    ) as api:
        stored: set[str] = set()
        cursor = None
        for _ in range(100):
            params: dict[str, Any] = {"limit": 500}
            if cursor:
                params["cursor"] = cursor
            page = api.get("/api/sessions", params=params)
            assert page.status_code == 200, page.text
            body = page.json()
            stored.update(item["sessionId"] for item in body["items"])
            cursor = body["nextCursor"]
            if not cursor:
                break
        assert agent.acked - stored == set()
        dashboard = api.get("/api/dashboard")
        assert dashboard.status_code == 200, dashboard.text
        assert dashboard.json()["metrics"]["sessionsToday"] == len(stored) >= len(agent.acked)
