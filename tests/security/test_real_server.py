"""The official JS client connects to a real server with a token from
``aiusage token issue`` and is refused with the right status for each bad case; plus the raw
HTTP statuses of negotiate and transport requests. Real sockets on 127.0.0.1 (integration)."""

import asyncio
import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from aiusage.auth.issuer import BuiltinIssuer
from aiusage.auth.tokens import TokenVerifier
from aiusage.realtime.hub import AnalyticsHub, AnalyticsHubActivator, make_authenticate
from hubserver.connections.endpoint import ConnectionEndpoint
from hubserver.hub.handler import HubConnectionHandler
from hubserver.lifetime.memory import InMemoryLifetimeManager
from hubserver.server.server import HubServer
from tests.security.kit import Directory, Snapshots

pytestmark = pytest.mark.integration

HERE = Path(__file__).parent
SIGNALR = HERE.parent / "conformance" / "node_modules" / "@microsoft" / "signalr"


def cli_token(data_dir, sub, org, role, ttl=600):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "aiusage.cli",
            "token",
            "issue",
            "--sub",
            sub,
            "--org",
            org,
            "--role",
            role,
            "--ttl",
            str(ttl),
            "--data-dir",
            str(data_dir),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return out.stdout.strip()


@pytest.fixture
async def server(tmp_path):
    issuer = BuiltinIssuer.load_or_create(tmp_path)
    directory = Directory()
    directory.org("acme", "active")
    directory.org("globex", "active")
    directory.org("initech", "canceled")
    hook = make_authenticate(TokenVerifier(issuer.token_config()), directory)
    handler = HubConnectionHandler(
        AnalyticsHub,
        InMemoryLifetimeManager(),
        activator=AnalyticsHubActivator(Snapshots(), directory),
    )
    endpoint = ConnectionEndpoint("/hubs/analytics", handler.create_application, authenticate=hook)
    srv = HubServer([endpoint], None, "127.0.0.1", 0, access_log=True)
    await srv.start()
    try:
        yield srv, tmp_path, handler
    finally:
        await srv.stop(grace=1.0)
        await endpoint.stop()


async def test_negotiate_statuses_for_each_bad_case(server, caplog):
    srv, data_dir, _ = server
    good = cli_token(data_dir, "ann", "acme", "Admin")
    cases = [
        ({}, {}, 401, "Unauthorized"),
        ({"Authorization": "Bearer junk"}, {}, 401, "Unauthorized"),
        (
            {"Authorization": f"Bearer {cli_token(data_dir, 'eve', 'acme', 'Employee')}"},
            {},
            403,
            "Forbidden",
        ),
        (
            {"Authorization": f"Bearer {good}", "X-Organization-Id": "globex"},
            {},
            403,
            "Organization mismatch",
        ),
        ({}, {"access_token": good, "organizationId": "globex"}, 403, "Organization mismatch"),
        (
            {"Authorization": f"Bearer {cli_token(data_dir, 'ivan', 'initech', 'Admin')}"},
            {},
            403,
            "Subscription inactive: canceled",
        ),
        ({"Authorization": f"Bearer {good}"}, {}, 200, None),
        ({}, {"access_token": good}, 200, None),
    ]
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{srv.port}") as client:
        for headers, params, status, body in cases:
            r = await client.post(
                "/hubs/analytics/negotiate",
                params={"negotiateVersion": "1", **params},
                headers=headers,
            )
            assert r.status_code == status, (headers, params, r.text)
            if body is not None:
                assert r.text == body
            if status == 401:
                assert r.headers["www-authenticate"] == "Bearer"
        # A negotiated connection id is useless without a token on the transport request.
        r = await client.post(
            "/hubs/analytics/negotiate",
            params={"negotiateVersion": "1"},
            headers={"Authorization": f"Bearer {good}"},
        )
        token = r.json()["connectionToken"]
        r = await client.get(
            "/hubs/analytics", params={"id": token}, headers={"Accept": "text/event-stream"}
        )
        assert r.status_code == 401
    assert good not in caplog.text and good.split(".")[2] not in caplog.text


def run_js(cfg):
    proc = subprocess.run(
        ["node", str(HERE / "js_auth_client.cjs"), json.dumps(cfg)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(
    shutil.which("node") is None or not SIGNALR.exists(),
    reason="needs node and tests/conformance/node_modules",
)
@pytest.mark.parametrize("transport", ["WebSockets", "ServerSentEvents", "LongPolling"])
async def test_official_js_client_with_a_cli_token(server, transport, caplog):
    caplog.set_level(logging.DEBUG)
    srv, data_dir, _ = server
    url = f"http://127.0.0.1:{srv.port}/hubs/analytics"
    base = {"url": url, "transport": transport, "ownOrg": "acme", "foreignOrg": "globex"}
    loop = asyncio.get_running_loop()

    async def js(**cfg):
        return await loop.run_in_executor(None, run_js, {**base, **cfg})

    good = cli_token(data_dir, "ann", "acme", "Admin")
    ok = await js(token=good, orgHeader="acme")
    assert ok["started"] is True
    assert ok["snapshot"] == {"metrics": {"organizationId": "acme"}, "trends": {}}
    assert ok["crossOrg"] == (
        "An unexpected error occurred invoking 'BroadcastDashboardUpdate' on the server. "
        "HubException: Forbidden"
    )
    assert ok["received"] == [{"tag": "js"}]

    refused = {
        "Unauthorized: Status code '401'": dict(token="not-a-token"),
        "Forbidden: Status code '403'": dict(token=cli_token(data_dir, "eve", "acme", "Employee")),
        "Organization mismatch: Status code '403'": dict(
            token=cli_token(data_dir, "ann", "acme", "Admin"), orgHeader="globex"
        ),
        "Subscription inactive: canceled: Status code '403'": dict(
            token=cli_token(data_dir, "ivan", "initech", "Manager")
        ),
    }
    if transport != "WebSockets":
        results = await asyncio.gather(*(js(**cfg) for cfg in refused.values()))
    else:
        results = [await js(**cfg) for cfg in refused.values()]
    for expected, result in zip(refused, results, strict=True):
        assert result["started"] is False
        assert (
            result["error"] == f"Failed to complete negotiation with the server: Error: {expected}"
        )


async def test_long_polling_requests_are_reauthorized_every_time(server):
    srv, data_dir, handler = server
    directory = handler.activator.access_checker
    good = cli_token(data_dir, "ann", "acme", "Admin")
    auth = {"Authorization": f"Bearer {good}"}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{srv.port}", timeout=10) as client:
        r = await client.post(
            "/hubs/analytics/negotiate", params={"negotiateVersion": "1"}, headers=auth
        )
        conn = r.json()["connectionToken"]
        r = await client.get("/hubs/analytics", params={"id": conn}, headers=auth)
        # first poll starts the transport (docs/spec/transports.md §2.4)
        assert r.status_code == 200
        r = await client.post(
            "/hubs/analytics",
            params={"id": conn},
            headers=auth,
            content=b'{"protocol":"json","version":1}\x1e',
        )
        assert r.status_code == 200
        r = await client.get("/hubs/analytics", params={"id": conn}, headers=auth)
        assert r.status_code == 200 and r.content.startswith(b"{}\x1e")
        directory.org("acme", "canceled")
        await asyncio.sleep(1.05)  # past the hook's 1 s lookup cache
        r = await client.get("/hubs/analytics", params={"id": conn}, headers=auth)
        assert r.status_code == 403 and r.text == "Subscription inactive: canceled"
        r = await client.post(
            "/hubs/analytics", params={"id": conn}, headers=auth, content=b'{"type":6}\x1e'
        )
        assert r.status_code == 403


async def test_another_tenants_valid_token_cannot_drive_a_connection(server):
    # The connection token is a secret, but even a leaked one is useless to another user:
    # every transport request must carry a token of the user who negotiated (engine rule).
    srv, data_dir, handler = server
    ann = {"Authorization": f"Bearer {cli_token(data_dir, 'ann', 'acme', 'Admin')}"}
    gus = {"Authorization": f"Bearer {cli_token(data_dir, 'gus', 'globex', 'Admin')}"}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{srv.port}", timeout=10) as client:
        r = await client.post(
            "/hubs/analytics/negotiate", params={"negotiateVersion": "1"}, headers=ann
        )
        conn = r.json()["connectionToken"]
        r = await client.get("/hubs/analytics", params={"id": conn}, headers=gus)
        assert r.status_code == 403
        r = await client.post(
            "/hubs/analytics",
            params={"id": conn},
            headers=gus,
            content=b'{"protocol":"json","version":1}\x1e',
        )
        assert r.status_code == 403
    assert handler.local_connections() == []
