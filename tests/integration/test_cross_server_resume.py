"""A stateful connection resumes on the OTHER server (docs/spec/stateful-reconnect.md §5.4).

Two hub servers on one real Redis, official ``@microsoft/signalr`` clients with
``withStatefulReconnect()`` (``tests/conformance/handover.mjs``) behind a proxy whose upstream
is switched from one server to the other before the WebSockets are cut (no close frame). The
clients reconnect with the same token to the other server, which claims the connections from
their owner: every numbered broadcast, published by either server before, during and after
the move, arrives exactly once and in order, with the same connection id, and no client ever
falls back to a new connection. When the owner is gone, the resume is refused (404) and the
clients start over with a new connection, as without stateful reconnect.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from hubserver.app import MappedHub, map_hub
from hubserver.lifetime.redis import RedisLifetimeManager
from hubserver.options import ConnectionOptions
from hubserver.server.server import HubServer
from tests.integration.test_compliance_gaps import NodeScenario
from tests.integration.test_official_clients import CONFORMANCE_DIR, NODE, needs_node
from tests.support.blocking_proxy import BlockingProxy
from tests.support.conformance_hub import ConformanceHub

pytestmark = [pytest.mark.integration, needs_node, pytest.mark.timeout(90)]

PATH = "/conformance"
CLIENTS = 8
EVENTS = 600


@dataclass
class Server:
    mapped: MappedHub
    http: HubServer

    @property
    def lifetime(self) -> RedisLifetimeManager:
        lifetime = self.mapped.lifetime
        assert isinstance(lifetime, RedisLifetimeManager)
        return lifetime

    async def broadcast(self, n: int) -> None:
        await self.mapped.hub_context.clients.all.send("Seq", n)


@pytest.fixture
async def servers() -> AsyncIterator[list[Server]]:
    prefix = f"resume-it-{uuid.uuid4().hex}"
    started: list[Server] = []
    for _ in range(2):
        lifetime = RedisLifetimeManager(
            "redis://127.0.0.1:6379/0", channel_prefix=prefix, hub_name="Conformance"
        )
        mapped = map_hub(
            PATH,
            ConformanceHub,
            lifetime=lifetime,
            connection_options=ConnectionOptions(allow_stateful_reconnects=True),
        )
        await mapped.start()
        assert await lifetime.wait_ready(5.0)
        http = HubServer([mapped.endpoint], port=0, access_log=False)
        await http.start()
        started.append(Server(mapped, http))
    try:
        yield started
    finally:
        for server in started:
            await server.http.stop(grace=1.0)
            await server.mapped.lifetime.stop()


class Clients(NodeScenario):
    """``node handover.mjs``: JSON lines, then a report on request."""

    async def report(self) -> list[dict[str, Any]]:
        assert self.process.stdin is not None
        self.process.stdin.write(b"report\n")
        await self.process.stdin.drain()
        event = await self.next_event()
        assert event["event"] == "result"
        clients: list[dict[str, Any]] = event["clients"]
        return clients


@pytest.fixture
async def node_clients() -> AsyncIterator[Any]:
    started: list[asyncio.subprocess.Process] = []

    async def run(url: str, protocol: str) -> Clients:
        assert NODE is not None
        process = await asyncio.create_subprocess_exec(
            NODE,
            "handover.mjs",
            url,
            str(CLIENTS),
            protocol,
            "Seq",
            cwd=CONFORMANCE_DIR,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            limit=64 * 1024 * 1024,
        )
        started.append(process)
        return Clients(process)

    try:
        yield run
    finally:
        for process in started:
            if process.returncode is None:
                process.kill()
            await process.wait()


async def wait_for(condition: Any, within: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not condition():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def connected(
    owner: Server, proxy: BlockingProxy, node_clients: Any, protocol: str
) -> tuple[Clients, dict[str, Any]]:
    """The Node clients, connected through ``proxy`` to ``owner``, and their ready event."""
    clients: Clients = await node_clients(f"http://127.0.0.1:{proxy.port}{PATH}", protocol)
    ready = await clients.next_event()
    assert ready["event"] == "ready"
    await wait_for(lambda: owner.lifetime.local_connection_count() == CLIENTS)
    return clients, ready


@pytest.mark.parametrize("protocol", ["json", "messagepack"])
async def test_connections_move_between_servers_and_get_every_broadcast_once(
    servers: list[Server], node_clients: Any, protocol: str
) -> None:
    a, b = servers
    async with BlockingProxy(a.http.port) as proxy:
        clients, ready = await connected(a, proxy, node_clients, protocol)

        async def move(to: Server, handovers: int) -> None:
            proxy.upstream = ("127.0.0.1", to.http.port)
            assert proxy.cut_upgraded() == CLIENTS
            await wait_for(lambda: to.lifetime.stats()["handovers_in"] == handovers)

        for n in range(EVENTS):
            # Both servers publish, before, during and after each move.
            await (a if n % 2 else b).broadcast(n)
            if n == 200:
                await move(b, CLIENTS)
            elif n == 400:
                await move(a, CLIENTS)
            await asyncio.sleep(0.002)
        await asyncio.sleep(0.5)
        # Back where they started, and nothing left behind on the other server.
        assert a.lifetime.local_connection_count() == CLIENTS
        assert b.lifetime.local_connection_count() == 0
        assert b.mapped.endpoint.connection_count() == 0
        result = await clients.report()
    assert [c["id"] for c in result] == ready["ids"]
    for client in result:
        assert client["restarts"] == 0, client["id"]
        assert client["values"] == list(range(EVENTS)), client["id"]
    assert a.lifetime.stats()["handovers_out"] == CLIENTS
    assert b.lifetime.stats()["handovers_out"] == CLIENTS


async def test_when_the_owner_is_gone_the_resume_is_refused_and_clients_start_over(
    servers: list[Server], node_clients: Any
) -> None:
    a, b = servers
    async with BlockingProxy(a.http.port) as proxy:
        clients, ready = await connected(a, proxy, node_clients, "json")
        # The owner dies: nobody answers for its connections any more.
        await a.lifetime.stop()
        proxy.upstream = ("127.0.0.1", b.http.port)
        assert proxy.cut_upgraded() == CLIENTS
        await a.http.stop(grace=0)
        await wait_for(lambda: b.lifetime.local_connection_count() == CLIENTS)
        await b.broadcast(1)
        await asyncio.sleep(0.3)
        result = await clients.report()
    assert b.lifetime.stats()["handovers_in"] == 0
    for client, old_id in zip(result, ready["ids"], strict=True):
        assert client["restarts"] == 1
        assert client["id"] != old_id  # a new connection: negotiated from scratch
        assert client["values"] == [1]


async def test_a_stopping_server_parks_its_stateful_connections_until_another_claims_them(
    servers: list[Server], node_clients: Any
) -> None:
    a, b = servers
    async with BlockingProxy(a.http.port) as proxy:
        clients, ready = await connected(a, proxy, node_clients, "json")
        proxy.upstream = ("127.0.0.1", b.http.port)
        loop = asyncio.get_running_loop()
        await b.broadcast(0)
        started = loop.time()
        # A graceful stop: no Close for stateful connections, the sockets drop, the clients
        # come back (through the proxy) to b, which claims them; a exits once all are gone.
        stopping = asyncio.create_task(a.http.stop(grace=10.0))
        for n in range(1, 200):
            await b.broadcast(n)
            await asyncio.sleep(0.002)
        await stopping
        took = loop.time() - started
        await asyncio.sleep(0.3)
        result = await clients.report()
    print("resume gaps ms", sorted(g for c in result for g in c["resumeGapsMs"]), took)
    assert took < 5.0, took  # well before the grace: every connection was handed over
    assert b.lifetime.stats()["handovers_in"] == CLIENTS
    assert [c["id"] for c in result] == ready["ids"]
    for client in result:
        assert client["restarts"] == 0
        assert client["values"] == list(range(200))
