"""The official client through nginx (deploy/nginx, rendered) in front of two
aiusage processes sharing Redis, over WebSockets, SSE and long polling, plain and TLS."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.deploy.nginx_kit import nginx_available
from tests.deploy.procs import LineReader
from tests.deploy.stack import ORG, SIGNALR, Stack, node_command, node_env

pytestmark = [
    pytest.mark.integration,
    pytest.mark.postgres,
    pytest.mark.timeout(120),
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


def test_every_transport_works_through_nginx_plain_and_over_tls(stack: Stack) -> None:
    cookies = stack.affinity_cookies(per_backend=1)
    token = stack.token("ann", "Admin")
    hub = "/hubs/analytics"
    # A listener pinned to backend a sees every broadcast, also those made on b (Redis).
    listener = LineReader(
        subprocess.Popen(
            node_command(
                {
                    "mode": "hold",
                    "url": stack.http_url + hub,
                    "token": token,
                    "transport": "WebSockets",
                    "org": ORG,
                    "seconds": 80,
                    "cookie": f"aiusage_affinity={cookies['a'][0]}",
                }
            ),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=node_env(),
            start_new_session=True,
        )
    )
    stack.others.append(listener.proc)
    assert listener.wait_for(lambda e: e["event"] in ("started", "failed"), 20)["event"] == (
        "started"
    )

    cases = []
    for i, (base, transport) in enumerate(
        (base, t) for base in (stack.http_url, stack.https_url) for t in TRANSPORTS
    ):
        backend = "ab"[i % 2]
        cases.append(
            (
                (base.split(":")[0], transport, backend),
                {
                    "mode": "check",
                    "url": base + hub,
                    "token": token,
                    "transport": transport,
                    "org": ORG,
                    "cookie": f"aiusage_affinity={cookies[backend][0]}",
                },
            )
        )
    procs = [
        subprocess.Popen(
            node_command(cfg),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=node_env(),
            start_new_session=True,
        )
        for _, cfg in cases
    ]
    stack.others.extend(procs)
    results = {}
    for (key, _), proc in zip(cases, procs, strict=True):
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, (key, out, err)
        results[key] = json.loads(out.strip().splitlines()[-1])

    for key, result in results.items():
        assert result.get("error") is None, (key, result)
        assert result["started"] and result["received"], (key, result)
        assert result["snapshotOrg"] == ORG, (key, result)

    listener.proc.stdin.write("stop\n")
    listener.proc.stdin.flush()
    summary = listener.wait_for(lambda e: e["event"] == "summary", 20)
    # Six broadcasts, half of them made by clients on backend b: all reached a's listener.
    assert summary["updates"] >= len(cases), summary
    assert summary["closedBeforeStop"] == 0, summary

    # Both processes served hub connections through nginx (affinity spread them).
    opened = {
        b.name: stack.metrics(b)["aiusage_hub_connections_opened_total"] for b in stack.backends
    }
    assert opened["a"] >= 4 and opened["b"] >= 3, opened


def test_nginx_forwards_the_request_id_and_serves_ready_and_metrics_locally(stack: Stack) -> None:
    with httpx.Client(base_url=stack.https_url, verify=False, timeout=5.0) as client:
        ready = client.get("/readyz", headers={"X-Request-ID": "ops-check-1"})
        assert ready.status_code == 200
        assert ready.json() == {"status": "ready", "database": "ok", "backplane": "ok"}
        assert ready.headers["x-request-id"] == "ops-check-1"
        metrics = client.get("/metrics")
        assert metrics.status_code == 200  # 127.0.0.1 is allowed by the locations file
        assert "aiusage_backplane_state 2" in metrics.text
        # SSE through nginx: the stream's first bytes arrive at once (no proxy buffering).
        token = stack.token("ann", "Admin")
        negotiate = client.post(
            "/hubs/analytics/negotiate?negotiateVersion=1",
            headers={"Authorization": f"Bearer {token}"},
        )
        assert negotiate.status_code == 200
        conn_token = negotiate.json()["connectionToken"]
        with client.stream(
            "GET",
            "/hubs/analytics",
            params={"id": conn_token},
            headers={"Accept": "text/event-stream", "Authorization": f"Bearer {token}"},
        ) as sse:
            assert sse.status_code == 200
            assert sse.headers["content-type"].startswith("text/event-stream")
            first = next(sse.iter_raw())
            assert first.startswith(b":")
    assert len(stack.served_by("ops-check-1")) == 1
    logs = "".join(b.log_text() for b in stack.backends)
    assert token not in logs and token.split(".")[2] not in logs
    # AIUSAGE_LOG_FORMAT=json: every log line is one JSON object carrying the request id.
    records = [json.loads(line) for line in logs.splitlines() if line.startswith("{")]
    assert records and all({"ts", "level", "logger", "message"} <= r.keys() for r in records)
    ours = [r for r in records if r.get("request_id") == "ops-check-1"]
    assert ours and ours[0]["logger"] == "hubserver.access"
