"""The negotiate-flood attack against a real ``aiusage serve``: one organization negotiates
as many connections as the whole process allows and never opens a transport. Its
negotiations count toward its own share (AIUSAGE_MAX_ORG_SHARE of AIUSAGE_MAX_CONNECTIONS),
so another organization still connects; the unused ones expire after 15 s as before."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import websockets

from tests.support.platform_procs import Deployment, Proc

pytestmark = pytest.mark.integration

MAX_CONNECTIONS = 60
SHARE = MAX_CONNECTIONS // 2  # AIUSAGE_MAX_ORG_SHARE defaults to 0.5
RS = "\x1e"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Deployment, Proc]]:
    deployment = Deployment(tmp_path / "data", redis_url="")
    try:
        deployment.migrate()
        for org, user in (("org-a", "mallory"), ("org-b", "bob")):
            deployment.create_org(org)
            deployment.run_cli("user", "create", "--org", org, "--id", user, "--role", "Admin")
        proc = deployment.start_server(AIUSAGE_MAX_CONNECTIONS=str(MAX_CONNECTIONS))
        yield deployment, proc
    finally:
        deployment.close()


async def negotiate(http: httpx.AsyncClient, token: str) -> httpx.Response:
    return await http.post(
        "/hubs/analytics/negotiate?negotiateVersion=1",
        headers={"Authorization": f"Bearer {token}"},
    )


async def open_hub(proc: Proc, token: str, connection_token: str) -> str:
    url = f"ws://127.0.0.1:{proc.port}/hubs/analytics?id={connection_token}&access_token={token}"
    async with websockets.connect(url) as ws:
        await ws.send('{"protocol":"json","version":1}' + RS)
        return str(await asyncio.wait_for(ws.recv(), 10))


async def test_a_negotiate_flood_by_one_tenant_leaves_room_for_the_others(
    served: tuple[Deployment, Proc],
) -> None:
    deployment, proc = served
    mallory = deployment.token("mallory", "org-a", "Admin")
    bob = deployment.token("bob", "org-b", "Admin")
    async with httpx.AsyncClient(base_url=proc.base_url, timeout=10.0) as http:
        flood = [await negotiate(http, mallory) for _ in range(MAX_CONNECTIONS)]
        statuses = [r.status_code for r in flood]
        assert statuses == [200] * SHARE + [503] * (MAX_CONNECTIONS - SHARE)
        assert flood[-1].text == f"Organization connection limit reached ({SHARE})"

        # The other tenant negotiates and completes a real WebSocket connection.
        answer = await negotiate(http, bob)
        assert answer.status_code == 200
        assert await open_hub(proc, bob, answer.json()["connectionToken"]) == "{}" + RS

        # The attacker's unused negotiations expire after the disconnect timeout (15 s).
        deadline = time.monotonic() + 25.0
        again = await negotiate(http, mallory)
        while again.status_code == 503 and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
            again = await negotiate(http, mallory)
        assert again.status_code == 200
    assert proc.alive()
    assert proc.error_lines() == []
