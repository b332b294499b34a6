"""The Redis backplane behind Redis Sentinel: a master failover is ridden through.

Each test starts its own master, replica and sentinel on free loopback ports
(``tests/support/redis_procs.py``: quorum 1, ``down-after-milliseconds`` 1000) and points the
backplane at ``redis+sentinel://127.0.0.1:S/mymaster``. Then the master is SIGKILLed (a crash)
or handed over with ``SENTINEL FAILOVER`` (a planned switch), and the tests check what
docs/scaleout.md "Redis high availability" promises: readiness is false during the gap,
the subscription and the publisher follow the promoted replica, cross-server delivery resumes,
and every agent event the platform acknowledged is in the store.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from hubserver.lifetime.redis import STATE_CONNECTED, STATE_CONNECTING, RedisLifetimeManager
from tests.hubserver.lifetime.spec import FakeSink, eventually
from tests.support.platform_procs import (
    HAVE_NODE_CLIENT,
    Deployment,
    NodeClients,
    Proc,
    http_status,
    wait_until,
)
from tests.support.redis_procs import (
    HAVE_SENTINEL,
    SERVICE,
    SentinelGroup,
    assert_no_tracebacks,
    broadcast_reaches_both,
    start_two_servers,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not HAVE_SENTINEL,
        reason="redis-sentinel is not installed (scripts/install --dev installs it)",
    ),
    pytest.mark.timeout(90),
]

FAILOVER_TIMEOUT = 20.0


@pytest.fixture
def group(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SentinelGroup]:
    sentinels = SentinelGroup(tmp_path / "redis", tls=getattr(request, "param", "") == "tls")
    try:
        sentinels.start()
        yield sentinels
    finally:
        sentinels.stop()


def _wait_promoted(group: SentinelGroup) -> None:
    assert wait_until(lambda: group.master_port() == group.replica.port, FAILOVER_TIMEOUT, 0.05), (
        group.sentinel.log()[-3000:]
    )


# --- two backplanes in this process ---------------------------------------------------------


@pytest.fixture
async def pair(group: SentinelGroup) -> AsyncIterator[tuple[RedisLifetimeManager, ...]]:
    prefix = f"sentinel-{uuid.uuid4().hex}-"
    managers = tuple(
        RedisLifetimeManager(
            group.url,
            channel_prefix=prefix,
            hub_name="Hub",
            canary_interval=0,
            backoff_base=0.05,
            backoff_max=0.5,
            connect_timeout=2.0,
        )
        for _ in range(2)
    )
    try:
        for m in managers:
            await m.start()
        yield managers
    finally:
        for m in managers:
            await m.stop()


async def _delivers_both_ways(m1: RedisLifetimeManager, m2: RedisLifetimeManager, tag: str) -> None:
    a, b = FakeSink(f"a-{tag}"), FakeSink(f"b-{tag}")
    await m1.on_connected(a)
    await m2.on_connected(b)
    await m1.send_all("From1", [tag])
    await m2.send_all("From2", [tag])
    await eventually(lambda: ("From1", [tag]) in b.received(), within=5)
    await eventually(lambda: ("From2", [tag]) in a.received(), within=5)
    await m1.on_disconnected(a)
    await m2.on_disconnected(b)


@pytest.mark.parametrize("group", ["plain", "tls"], indirect=True)
async def test_backplanes_follow_the_master_when_it_crashes(
    group: SentinelGroup, pair: tuple[RedisLifetimeManager, RedisLifetimeManager]
) -> None:
    m1, m2 = pair
    assert m1.is_healthy() and m2.is_healthy()
    await _delivers_both_ways(m1, m2, "before")

    group.master.kill()
    # Both subscriptions lose their connection at once: not ready during the gap.
    await eventually(lambda: m2.stats()["state"] == STATE_CONNECTING, within=5)
    assert not m2.is_healthy()
    await m1.send_all("DuringGap", [])  # local delivery only; the remote part fails
    assert m1.stats()["publish_failures"] >= 1 and not m1.is_healthy()

    _wait_promoted(group)
    await eventually(
        lambda: all(m.stats()["state"] == STATE_CONNECTED for m in pair), within=FAILOVER_TIMEOUT
    )
    await _delivers_both_ways(m1, m2, "after")
    assert m1.is_healthy() and m2.is_healthy()
    assert m1.stats()["reconnects"] >= 1 and m2.stats()["reconnects"] >= 1
    assert await m1.check_canary() and await m2.check_canary()


async def test_a_planned_failover_moves_publisher_and_subscriptions_to_the_new_master(
    group: SentinelGroup, pair: tuple[RedisLifetimeManager, RedisLifetimeManager]
) -> None:
    m1, m2 = pair
    await _delivers_both_ways(m1, m2, "before")
    with contextlib.closing(group.sentinel.client()) as sentinel:
        assert sentinel.sentinel_failover(SERVICE)
    _wait_promoted(group)
    # The old master lives on as a replica. A publisher left on it would reach only the
    # subscribers there, so both the subscriptions and the PUBLISH path must have moved.
    with (
        contextlib.closing(group.master.client()) as old,
        contextlib.closing(group.replica.client()) as new,
    ):
        assert wait_until(
            lambda: old.info("replication")["role"] == "slave", FAILOVER_TIMEOUT, 0.05
        )
        await eventually(lambda: len(_ours(new, "pubsub")) == 2, within=10)
        await eventually(lambda: all(m.is_healthy() for m in pair), within=10)
        await _delivers_both_ways(m1, m2, "after")
        await m1.send_all("OnNewMaster", [])
        await m2.send_all("OnNewMaster", [])
        assert _ours(old, "pubsub") == []
        assert [c for c in _ours(old, "normal") if c["cmd"] == "publish"] == []
        assert [c for c in _ours(new, "normal") if c["cmd"] == "publish"] != []


def _ours(client: redis.Redis, kind: str) -> list[dict[str, Any]]:
    """Connections of ``kind`` from the backplanes (not the sentinel's, not this one)."""
    return [
        c
        for c in client.client_list(_type=kind)
        if not c.get("name", "").startswith("sentinel-") and c["cmd"] != "client|list"
    ]


# --- two aiusage serve processes, official clients, agents ---------------------------------


def _session_started(session_id: str) -> dict[str, object]:
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    return {
        "eventId": uuid.uuid4().hex,
        "type": "SessionStarted",
        "occurredAt": now,
        "userId": "employee",
        "sessionId": session_id,
        "startTime": now,
        "tool": "ChatGPT",
    }


class _Background:
    """A daemon thread running :meth:`_run` until :meth:`stop` (bounded join)."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        raise NotImplementedError

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def stop(self) -> None:
        """Ask the thread to stop and wait for it (at most 10 s)."""
        self._stop.set()
        self._thread.join(10)


class Agents(_Background):
    """Posts one SessionStarted at a time, alternating servers, until stopped (bounded count).

    Records the session ids the platform acknowledged (2xx) and every status seen.
    """

    def __init__(self, servers: list[Proc], token: str, limit: int = 600) -> None:
        super().__init__()
        self.servers = servers
        self.token = token
        self.limit = limit
        self.acknowledged: list[str] = []
        self.statuses: list[int] = []

    def _run(self) -> None:
        with httpx.Client(timeout=5.0) as client:
            for i in range(self.limit):
                if self._stop.is_set():
                    return
                server = self.servers[i % len(self.servers)]
                session = f"s-{i}-{uuid.uuid4().hex[:6]}"
                try:
                    response = client.post(
                        f"{server.base_url}/api/agent/events",
                        json={"events": [_session_started(session)]},
                        headers={"Authorization": f"Bearer {self.token}"},
                    )
                    status = response.status_code
                except httpx.HTTPError:
                    status = 0
                self.statuses.append(status)
                if 200 <= status < 300:
                    self.acknowledged.append(session)
                self._stop.wait(0.02)


class ReadinessWatch(_Background):
    """Records every ``/readyz`` status of each server until stopped (at most 60 s)."""

    def __init__(self, servers: list[Proc]) -> None:
        super().__init__()
        self.servers = servers
        self.seen: dict[str, list[int]] = {s.name: [] for s in servers}

    def _run(self) -> None:
        deadline = time.monotonic() + 60
        while not self._stop.is_set() and time.monotonic() < deadline:
            for server in self.servers:
                self.seen[server.name].append(http_status(f"{server.base_url}/readyz", 1.0)[0])
            self._stop.wait(0.05)


def _stored_sessions(data_dir: Path, org: str) -> set[str]:
    with contextlib.closing(sqlite3.connect(data_dir / "aiusage.db", timeout=10)) as db:
        rows = db.execute("SELECT id FROM ai_sessions WHERE org_id = ?", (org,)).fetchall()
    return {row[0] for row in rows}


@pytest.mark.skipif(not HAVE_NODE_CLIENT, reason="needs node and `npm ci` in tests/conformance")
def test_two_servers_ride_through_a_master_crash(group: SentinelGroup, tmp_path: Path) -> None:
    started = time.monotonic()
    deployment = Deployment(tmp_path / "data", redis_url=group.url)
    node = NodeClients()
    agents: Agents | None = None
    watch: ReadinessWatch | None = None
    try:
        servers = start_two_servers(deployment, node)
        assert broadcast_reaches_both(node, "c0", "before-0")
        assert broadcast_reaches_both(node, "c1", "before-1")

        agents = Agents(servers, deployment.token("agent", "orgA", "Agent"))
        agents.start()
        watch = ReadinessWatch(servers)
        watch.start()
        assert wait_until(lambda: len(agents.acknowledged) >= 5, 10)

        killed = time.monotonic()
        group.master.kill()
        _wait_promoted(group)
        promoted = time.monotonic()
        for server in servers:
            assert server.wait_ready_status(200, FAILOVER_TIMEOUT), server.log()[-3000:]
        recovered = time.monotonic()

        # Cross-server delivery resumes: hub broadcasts both ways, and an agent event posted
        # to one server reaches the dashboard on the other (the platform's publisher path).
        assert broadcast_reaches_both(node, "c0", "after-0")
        assert broadcast_reaches_both(node, "c1", "after-1")
        session = f"after-{uuid.uuid4().hex[:8]}"
        response = httpx.post(
            f"{servers[0].base_url}/api/agent/events",
            json={"events": [_session_started(session)]},
            headers={"Authorization": f"Bearer {deployment.token('agent', 'orgA', 'Agent')}"},
            timeout=10,
        )
        assert response.status_code == 200, response.text
        got = node.wait_messages(
            2, "SessionStarted", lambda r: r.args[0].get("sessionId") == session, timeout=5
        )
        assert sorted(r.name for r in got) == ["c0", "c1"]

        assert wait_until(lambda: len(agents.acknowledged) >= 10, 10)
        agents.stop()
        watch.stop()
        # Readiness said "not ready" during the gap on both servers, and is ready again.
        for server in servers:
            seen = watch.seen[server.name]
            assert 503 in seen and seen[-1] == 200, (server.name, seen)
        # Every event the platform acknowledged is stored, gap or not.
        stored = _stored_sessions(deployment.data_dir, "orgA")
        missing = [s for s in agents.acknowledged if s not in stored]
        assert missing == [], missing
        assert node.closed("c0") is None and node.closed("c1") is None
        assert_no_tracebacks(servers)
        print(
            f"\nmaster killed -> replica promoted {promoted - killed:.1f} s -> both servers "
            f"ready {recovered - killed:.1f} s; test {time.monotonic() - started:.1f} s; "
            f"{len(agents.acknowledged)} agent events acknowledged, all stored; "
            f"statuses seen {sorted(set(agents.statuses))}"
        )
    finally:
        if agents is not None:
            agents.stop()
        if watch is not None:
            watch.stop()
        node.close()
        deployment.close()
