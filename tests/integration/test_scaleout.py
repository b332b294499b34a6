"""Several real ``aiusage serve`` processes on one Redis backplane and one database.

Three servers on distinct 127.0.0.1 ports share a data dir (built-in issuer key, exports), one
database (the SQLite WAL file in the data dir, and again on a fresh PostgreSQL schema) and one
Redis under a channel prefix unique to the run. The clients are the official
``@microsoft/signalr`` client (``tests/conformance/scaleout.mjs``), spread over the servers and
over WebSockets / SSE / long polling and JSON / MessagePack, connecting with tokens of the
built-in issuer and the ``organizationId`` query parameter.

Negative assertions ("nobody else got it") use a *fence*: a later message over the same path
(one publisher connection, or a server whose publish was awaited before the next step), which
Redis delivers after the earlier one; once every client holds the fence, everything sent before
it has been delivered, so the exact recipient sets can be compared without sleeping.

The Redis stop/start test runs its own redis-server on a free port (the shared 6379 is never
stopped). Run: ``.venv/bin/pytest tests/integration/test_scaleout.py -m integration -q -s``
(``-s`` prints the latency figures).
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from hubserver import HubContext
from hubserver.lifetime.redis import RedisPublisher
from tests.support.platform_procs import (
    HAVE_NODE_CLIENT,
    HAVE_REDIS_SERVER,
    Deployment,
    NodeClients,
    Proc,
    RedisServer,
    http_status,
    percentile,
    wait_until,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not HAVE_NODE_CLIENT, reason="needs node and `npm ci` in tests/conformance"),
]

ORGS = ("orgA", "orgB", "orgL")
P99_BUDGET_MS = 50.0


class Cluster:
    """Three servers of one deployment."""

    def __init__(self, deployment: Deployment, servers: list[Proc]) -> None:
        self.deployment = deployment
        self.servers = servers

    def url(self, server: int, org: str) -> str:
        """Hub URL of server ``server`` selecting organization ``org``."""
        return f"{self.servers[server].hub_url}?organizationId={org}"


@pytest.fixture(
    scope="module",
    params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
)
def cluster(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    deployment = Deployment(
        tmp_path_factory.mktemp(f"scaleout-{request.param}"), database=request.param
    )
    try:
        deployment.migrate()
        for org in ORGS:
            deployment.create_org(org)
        servers = [deployment.start_server(wait=False) for _ in range(3)]
        for server in servers:
            deployment.wait_healthy(server)
        yield Cluster(deployment, servers)
        for server in servers:
            assert server.alive(), server.log()[-3000:]
            assert not server.error_lines(), server.log()[-3000:]
    finally:
        deployment.close()


@pytest.fixture
def clients() -> Iterator[NodeClients]:
    node = NodeClients()
    try:
        yield node
    finally:
        node.close()


def uniq(name: str) -> str:
    """A user id unique to this test (user channels are shared by the module's cluster)."""
    return f"{name}-{uuid.uuid4().hex[:8]}"


def recipients(clients: NodeClients, method: str, tag: str) -> list[str]:
    """Sorted names of the clients that received ``method`` with payload ``{"tag": tag}``
    (with repetitions, so a duplicate delivery shows)."""
    return sorted(
        r.name
        for r in clients.messages(method)
        if r.args and isinstance(r.args[0], dict) and r.args[0].get("tag") == tag
    )


def test_every_server_is_ready_on_the_shared_backplane_and_database(cluster: Cluster) -> None:
    for server in cluster.servers:
        status, body = http_status(f"{server.base_url}/readyz")
        assert status == 200, body
        assert '"backplane":"ok"' in body.replace(" ", "")


async def test_sends_from_a_publisher_reach_exactly_the_targeted_clients_on_every_server(
    cluster: Cluster, clients: NodeClients
) -> None:
    # The worker's write-only publisher (what `aiusage worker` uses) targets clients spread
    # over three servers with every kind of send (docs/spec/backplane.md §6.2 channels).
    deployment = cluster.deployment
    users = {n: uniq(n) for n in ("ua1", "ua2", "ua3", "ub1", "ub2")}
    layout = {
        # name: (server, org, user, transport, protocol)
        "a1": (0, "orgA", users["ua1"], "WebSockets", "json"),
        "a2": (1, "orgA", users["ua2"], "WebSockets", "messagepack"),
        "a3": (2, "orgA", users["ua3"], "ServerSentEvents", "json"),
        "a1b": (2, "orgA", users["ua1"], "LongPolling", "json"),
        "b1": (1, "orgB", users["ub1"], "LongPolling", "messagepack"),
        "b2": (2, "orgB", users["ub2"], "WebSockets", "json"),
    }
    ids = clients.connect_many(
        [
            (n, cluster.url(s, org), deployment.token(u, org, "Manager"))
            for n, (s, org, u, _, _) in layout.items()
        ],
        transport=lambda n: layout[n][3],
        protocol=lambda n: layout[n][4],
    )
    publisher = RedisPublisher(deployment.redis_url, channel_prefix=deployment.channel_prefix)
    await publisher.start()
    try:
        assert await publisher.wait_ready(5.0)
        hub = HubContext(publisher)
        c = hub.clients
        await c.all.send("Probe", {"tag": "all"})
        await c.group("org:orgA").send("Probe", {"tag": "groupA"})
        # User groups and user ids are tenant-scoped: "user:{org}:{id}", "{org}:{id}".
        await c.groups(["org:orgB", f"user:orgA:{users['ua2']}"]).send("Probe", {"tag": "groups"})
        await c.group_except("org:orgA", [ids["a3"]]).send("Probe", {"tag": "groupExcept"})
        await c.user(f"orgA:{users['ua1']}").send("Probe", {"tag": "user"})
        await c.users([f"orgA:{users['ua2']}", f"orgB:{users['ub2']}"]).send(
            "Probe", {"tag": "users"}
        )
        await c.all_except([ids["a2"], ids["b1"]]).send("Probe", {"tag": "allExcept"})
        await c.client(ids["b2"]).send("Probe", {"tag": "client"})
        await c.clients([ids["a1"], ids["a3"]]).send("Probe", {"tag": "clients"})
        await c.all.send("Probe", {"tag": "fence"})
    finally:
        await publisher.stop()

    everyone = sorted(layout)
    fenced = clients.wait_messages(
        len(everyone), "Probe", where=lambda r: r.args[0].get("tag") == "fence"
    )
    assert sorted(r.name for r in fenced) == everyone
    expected = {
        "all": everyone,
        "groupA": ["a1", "a1b", "a2", "a3"],
        "groups": ["a2", "b1", "b2"],
        "groupExcept": ["a1", "a1b", "a2"],
        "user": ["a1", "a1b"],
        "users": ["a2", "b2"],
        "allExcept": ["a1", "a1b", "a3", "b2"],
        "client": ["b2"],
        "clients": ["a1", "a3"],
    }
    assert {tag: recipients(clients, "Probe", tag) for tag in expected} == expected
    # Per client, messages arrive in publish order (one publisher connection,
    # docs/spec/backplane.md §6).
    order = list(expected) + ["fence"]
    for name in everyone:
        tags = [r.args[0]["tag"] for r in clients.messages("Probe") if r.name == name]
        assert tags == [t for t in order if name in expected.get(t, everyone)]


def test_a_hub_call_on_one_server_reaches_its_organization_on_every_server_and_no_other(
    cluster: Cluster, clients: NodeClients
) -> None:
    d = cluster.deployment
    clients.connect_many(
        [
            ("a0", cluster.url(0, "orgA"), d.token(uniq("a0"), "orgA", "Admin")),
            ("a1", cluster.url(1, "orgA"), d.token(uniq("a1"), "orgA", "Manager")),
            ("a2", cluster.url(2, "orgA"), d.token(uniq("a2"), "orgA", "Manager")),
            ("b1", cluster.url(1, "orgB"), d.token(uniq("b1"), "orgB", "Admin")),
            ("b2", cluster.url(2, "orgB"), d.token(uniq("b2"), "orgB", "Manager")),
        ],
        transport=lambda n: "ServerSentEvents" if n == "a2" else "WebSockets",
    )

    clients.invoke("a0", "BroadcastDashboardUpdate", "orgA", {"tag": "fromA"})
    # Tenant isolation: a caller cannot target another organization, whatever server it uses.
    with pytest.raises(RuntimeError, match="Forbidden"):
        clients.invoke("b1", "BroadcastDashboardUpdate", "orgA", {"tag": "intrusion"})
    clients.invoke("b1", "BroadcastDashboardUpdate", "orgB", {"tag": "fromB"})

    clients.wait_messages(3, "DashboardUpdate", lambda r: r.args[0].get("tag") == "fromA")
    clients.wait_messages(2, "DashboardUpdate", lambda r: r.args[0].get("tag") == "fromB")
    assert recipients(clients, "DashboardUpdate", "fromA") == ["a0", "a1", "a2"]
    assert recipients(clients, "DashboardUpdate", "fromB") == ["b1", "b2"]
    assert recipients(clients, "DashboardUpdate", "intrusion") == []


def _post_events(server: Proc, token: str, events: list[dict[str, Any]]) -> dict[str, Any]:
    response = httpx.post(
        f"{server.base_url}/api/agent/events",
        json={"events": events},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _session_started(session_id: str, user_id: str) -> dict[str, Any]:
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    return {
        "eventId": uuid.uuid4().hex,
        "type": "SessionStarted",
        "occurredAt": now,
        "userId": user_id,
        "sessionId": session_id,
        "startTime": now,
        "tool": "ChatGPT",
    }


def test_agent_events_posted_to_one_server_reach_that_organizations_dashboards_on_the_others(
    cluster: Cluster, clients: NodeClients
) -> None:
    d = cluster.deployment
    clients.connect_many(
        [
            ("a1", cluster.url(1, "orgA"), d.token(uniq("a1"), "orgA", "Manager")),
            ("a2", cluster.url(2, "orgA"), d.token(uniq("a2"), "orgA", "Admin")),
            ("b1", cluster.url(1, "orgB"), d.token(uniq("b1"), "orgB", "Manager")),
            ("b2", cluster.url(2, "orgB"), d.token(uniq("b2"), "orgB", "Admin")),
        ],
        transport=lambda n: {"a1": "LongPolling", "b1": "ServerSentEvents"}.get(n, "WebSockets"),
        protocol=lambda n: "messagepack" if n == "a2" else "json",
    )
    session_a, session_b = uniq("sess-a"), uniq("sess-b")

    body = _post_events(
        cluster.servers[0],
        d.token("agent-a", "orgA", "Agent"),
        [_session_started(session_a, "employee-a")],
    )
    assert body == {"accepted": 1, "duplicates": 0}
    got_a = clients.wait_messages(
        2, "SessionStarted", lambda r: r.args[0].get("sessionId") == session_a
    )
    assert sorted(r.name for r in got_a) == ["a1", "a2"]
    assert all(r.args[0]["organizationId"] == "orgA" for r in got_a)

    # The other tenant's event, posted to another server, later than orgA's on every path:
    # when orgB's dashboards have it, anything misrouted from orgA would already be there.
    _post_events(
        cluster.servers[1],
        d.token("agent-b", "orgB", "Agent"),
        [_session_started(session_b, "employee-b")],
    )
    got_b = clients.wait_messages(
        2, "SessionStarted", lambda r: r.args[0].get("sessionId") == session_b
    )
    assert sorted(r.name for r in got_b) == ["b1", "b2"]
    for name, org in (("a1", "orgA"), ("a2", "orgA"), ("b1", "orgB"), ("b2", "orgB")):
        seen = [r for r in clients.messages() if r.name == name]
        foreign = [
            r
            for r in seen
            if r.args
            and isinstance(r.args[0], dict)
            and r.args[0].get("organizationId") not in (None, org)
        ]
        assert foreign == [], (name, foreign)


async def test_an_export_finished_by_an_aiusage_worker_reaches_its_user_on_every_server(
    cluster: Cluster, clients: NodeClients
) -> None:
    from aiusage.exports.service import ExportService
    from aiusage.exports.signing import UrlSigner
    from aiusage.store.database import Database

    d = cluster.deployment
    owner, other = uniq("owner"), uniq("other")
    clients.connect_many(
        [
            ("owner1", cluster.url(1, "orgA"), d.token(owner, "orgA", "Admin")),
            ("owner2", cluster.url(2, "orgA"), d.token(owner, "orgA", "Admin")),
            ("other0", cluster.url(0, "orgA"), d.token(other, "orgA", "Manager")),
        ]
    )
    worker = d.start_worker()
    env = d.env()
    db = Database(
        env.get("AIUSAGE_DATABASE_URL")
        or f"sqlite+aiosqlite:///{(d.data_dir / 'aiusage.db').resolve()}",
        schema=env.get("AIUSAGE_DATABASE_SCHEMA"),
    )
    # Jobs queued without running them here (run_in_process=False): only the worker runs them.
    queue = ExportService(
        db, d.data_dir, UrlSigner.load_or_create(d.data_dir), None, run_in_process=False
    )
    try:
        end = datetime.now(UTC)
        first = await queue.create("orgA", owner, end - timedelta(days=1), end, "csv")

        def job_ids(name: str) -> list[str]:
            return [
                r.args[0]["jobId"]
                for r in clients.messages("ExportCompleted", lambda r: r.name == name)
            ]

        await asyncio.to_thread(
            wait_until, lambda: bool(job_ids("owner1") and job_ids("owner2")), 20.0
        )
        second = await queue.create("orgA", other, end - timedelta(days=1), end, "jsonl")
        await asyncio.to_thread(wait_until, lambda: bool(job_ids("other0")), 20.0)
    finally:
        await queue.aclose()
        await db.dispose()
        worker.stop()
    assert job_ids("owner1") == [first["id"]]
    assert job_ids("owner2") == [first["id"]]
    assert job_ids("other0") == [second["id"]]
    assert not worker.error_lines(), worker.log()[-3000:]


async def test_cross_server_delivery_from_a_server_and_a_worker_stays_under_50ms_p99(
    cluster: Cluster, clients: NodeClients
) -> None:
    d = cluster.deployment
    target_user = uniq("lat")
    clients.connect_many(
        [
            ("sender", cluster.url(0, "orgL"), d.token(uniq("snd"), "orgL", "Admin")),
            ("local", cluster.url(0, "orgL"), d.token(uniq("loc"), "orgL", "Manager")),
            ("remote1", cluster.url(1, "orgL"), d.token(target_user, "orgL", "Manager")),
            ("remote2", cluster.url(2, "orgL"), d.token(uniq("r2"), "orgL", "Manager")),
        ],
        protocol=lambda n: "messagepack" if n == "remote2" else "json",
    )
    count = 150

    # Server A -> organization group: a client on A invokes the seed's hub method.
    probe = await asyncio.to_thread(clients.ping, "sender", "orgL", count, 4)
    got = await asyncio.to_thread(
        clients.wait_messages,
        4 * count,
        "DashboardUpdate",
        lambda r: r.args[0].get("probe") == probe,
    )

    def latencies(names: tuple[str, ...], tag: str, items: list[Any]) -> list[float]:
        return [r.t - r.args[0][tag] for r in items if r.name in names]

    local = latencies(("local",), "t0", got)
    remote = latencies(("remote1", "remote2"), "t0", got)
    assert len(local) == count and len(remote) == 2 * count  # nothing lost

    # A worker (write-only publisher) -> group and user, received on other servers.
    publisher = RedisPublisher(d.redis_url, channel_prefix=d.channel_prefix)
    await publisher.start()
    try:
        assert await publisher.wait_ready(5.0)
        hub = HubContext(publisher)
        for seq in range(count):
            await hub.clients.group("org:orgL").send(
                "Probe", {"tag": "wg", "seq": seq, "t0": time.time() * 1000}
            )
            await hub.clients.user(f"orgL:{target_user}").send(
                "Probe", {"tag": "wu", "seq": seq, "t0": time.time() * 1000}
            )
            await asyncio.sleep(0.004)
    finally:
        await publisher.stop()
    worker_msgs = await asyncio.to_thread(
        clients.wait_messages, 5 * count, "Probe", lambda r: r.args[0].get("tag") in ("wg", "wu")
    )
    worker_group = latencies(
        ("remote1", "remote2"), "t0", [r for r in worker_msgs if r.args[0]["tag"] == "wg"]
    )
    worker_user = latencies(
        ("remote1",), "t0", [r for r in worker_msgs if r.args[0]["tag"] == "wu"]
    )
    assert len(worker_group) == 2 * count and len(worker_user) == count

    rows = {
        "server A -> group, client on A": local,
        "server A -> group, clients on B/C": remote,
        "worker -> group, clients on B/C": worker_group,
        "worker -> user, client on B": worker_user,
    }
    for label, values in rows.items():
        print(
            f"\n{label}: n={len(values)} p50={percentile(values, 50):.2f} ms "
            f"p99={percentile(values, 99):.2f} ms max={max(values):.2f} ms",
            end="",
        )
    for label, values in list(rows.items())[1:]:
        assert percentile(values, 99) < P99_BUDGET_MS, label


# --- Redis stop/start with real processes -----------------------------------------------------


def _metric(server: Proc, name: str) -> float:
    """Sum of the samples of metric ``name`` in ``/metrics`` (0 when absent)."""
    status, body = http_status(f"{server.base_url}/metrics")
    assert status == 200, body
    total = 0.0
    for line in body.splitlines():
        m = re.match(rf"^{re.escape(name)}(?:\{{[^}}]*\}})? ([0-9.eE+-]+)$", line)
        if m:
            total += float(m.group(1))
    return total


@pytest.mark.skipif(not HAVE_REDIS_SERVER, reason="redis-server is not installed")
def test_stopping_redis_keeps_servers_serving_locally_and_delivery_resumes_after_restart(
    tmp_path: Path,
) -> None:
    redis = RedisServer()
    redis.start()
    deployment = Deployment(tmp_path / "data", redis_url=redis.url)
    node = NodeClients()
    try:
        deployment.migrate()
        deployment.create_org("orgA")
        servers = [deployment.start_server(wait=False) for _ in range(2)]
        for server in servers:
            deployment.wait_healthy(server)
        s0, s1 = servers
        url0 = f"{s0.hub_url}?organizationId=orgA"
        url1 = f"{s1.hub_url}?organizationId=orgA"
        node.connect_many(
            [
                ("c0", url0, deployment.token("u0", "orgA", "Admin")),
                ("c1", url1, deployment.token("u1", "orgA", "Admin")),
            ]
        )

        def broadcast(sender: str, tag: str, receivers: int) -> list[str]:
            node.invoke(sender, "BroadcastDashboardUpdate", "orgA", {"tag": tag})
            node.wait_messages(
                receivers, "DashboardUpdate", lambda r: r.args[0].get("tag") == tag, timeout=5
            )
            return recipients(node, "DashboardUpdate", tag)

        assert broadcast("c0", "before", 2) == ["c0", "c1"]

        redis.stop()
        # Readiness reports the backplane down on every server; liveness stays green.
        for server in servers:
            assert server.wait_ready_status(503, 10)
            status, body = http_status(f"{server.base_url}/readyz")
            assert '"backplane":"down"' in body.replace(" ", ""), body
            assert http_status(f"{server.base_url}/healthz")[0] == 200
        assert _metric(s0, "aiusage_backplane_healthy") == 0

        # Local clients are still served: hub calls, local broadcasts, a new connection, and
        # agent ingestion (stored; pushed to the local dashboards).
        assert broadcast("c0", "during", 1) == ["c0"]
        node.connect("c1b", url1, deployment.token("u2", "orgA", "Admin"))  # broadcasts later
        assert broadcast("c1", "during1", 2) == ["c1", "c1b"]
        _post_events(
            s0,
            deployment.token("agent", "orgA", "Agent"),
            [_session_started("s-outage", "employee")],
        )
        got = node.wait_messages(
            1, "SessionStarted", lambda r: r.args[0].get("sessionId") == "s-outage", timeout=5
        )
        assert [r.name for r in got] == ["c0"]
        assert _metric(s0, "aiusage_backplane_publish_failures_total") >= 1

        redis.start()  # same port
        for server in servers:
            assert server.wait_ready_status(200, 15)
        # Both directions deliver again, including the connection made during the outage.
        assert broadcast("c0", "after", 3) == ["c0", "c1", "c1b"]
        assert broadcast("c1b", "after1", 3) == ["c0", "c1", "c1b"]
        assert _metric(s0, "aiusage_backplane_reconnects_total") >= 1
        for server in servers:
            assert server.alive(), server.log()[-3000:]
            assert not [
                line for line in server.log().splitlines() if line.startswith("Traceback")
            ], server.log()[-3000:]
        assert node.closed("c0") is None and node.closed("c1") is None
    finally:
        node.close()
        deployment.close()
        redis.stop()
