"""The operator settings reach the engine, and /metrics is served by the app."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
import websockets
from starlette.testclient import TestClient

from aiusage.errors import ConfigurationError
from aiusage.platform import Platform
from aiusage.settings import Settings
from aiusage.store.repositories import OrganizationRepository, UserRepository


def test_limit_and_log_settings_are_read_from_the_environment():
    settings = Settings.from_env(
        {
            "AIUSAGE_MAX_CONNECTIONS": "5000",
            "AIUSAGE_MAX_ORG_CONNECTIONS": "200",
            "AIUSAGE_MAX_MESSAGE_BYTES": "65536",
            "AIUSAGE_MAX_OUTGOING_BUFFER": "1048576",
            "AIUSAGE_LOG_FORMAT": "JSON",
            "AIUSAGE_METRICS_TOP_ORGS": "5",
        }
    )
    assert (settings.max_connections, settings.max_org_connections) == (5000, 200)
    assert (settings.max_message_bytes, settings.max_outgoing_buffer) == (65536, 1048576)
    assert (settings.log_format, settings.metrics_top_orgs) == ("json", 5)
    defaults = Settings.from_env({})
    assert defaults.max_connections is None and defaults.max_org_connections is None


@pytest.mark.parametrize(
    "name,value",
    [
        ("AIUSAGE_MAX_CONNECTIONS", "0"),
        ("AIUSAGE_MAX_ORG_CONNECTIONS", "-1"),
        ("AIUSAGE_MAX_MESSAGE_BYTES", "10"),
        ("AIUSAGE_MAX_OUTGOING_BUFFER", "1000"),
        ("AIUSAGE_LOG_FORMAT", "xml"),
        ("AIUSAGE_MAX_CONNECTIONS", "many"),
    ],
)
def test_unusable_limit_settings_are_refused(name, value):
    with pytest.raises(ConfigurationError):
        Settings.from_env({name: value})


async def test_the_platform_applies_the_limits_and_serves_metrics(tmp_path: Path):
    settings = Settings(
        data_dir=tmp_path,
        port=0,
        max_connections=3,
        max_org_connections=2,
        max_message_bytes=4096,
        max_outgoing_buffer=128 * 1024,
        metrics_top_orgs=7,
        web_dir=tmp_path / "no-dashboard",
    )
    platform = await Platform.create(settings)
    try:
        endpoint, handler = platform.hub.endpoint, platform.hub.handler
        assert endpoint.options.max_connections == 3
        assert handler.options.maximum_receive_message_size == 4096
        assert handler.options.max_outgoing_buffer == 128 * 1024
        assert platform.metrics is not None and platform.metrics.org_tracker is not None
        assert platform.metrics.org_tracker.limit == 2
        assert platform.metrics.top_orgs == 7
        with TestClient(platform.api) as client:
            response = client.get("/metrics", headers={"X-Request-ID": "wiring-1"})
            ready = client.get("/readyz")
        assert response.status_code == 200
        assert response.headers["x-request-id"] == "wiring-1"
        assert "aiusage_hub_connections_limit 3\n" in response.text
        assert "aiusage_hub_org_connections_limit 2\n" in response.text
        assert 'aiusage_backplane_info{kind="InMemoryLifetimeManager"} 1' in response.text
        assert ready.json() == {"status": "ready", "database": "ok", "backplane": "ok"}
    finally:
        await platform.stop()


@pytest.mark.integration
async def test_a_full_organization_gets_a_clear_503_from_the_real_server(tmp_path: Path):
    settings = Settings(
        data_dir=tmp_path, port=0, max_org_connections=1, web_dir=tmp_path / "no-dashboard"
    )
    platform = await Platform.create(settings)
    try:
        async with platform.db.write() as conn:
            await OrganizationRepository().create(conn, "acme", "Acme")
            await OrganizationRepository().create(conn, "globex", "Globex")
            # Dashboards are store users: tokens of unknown subjects are refused.
            for org, user in (("acme", "ann"), ("globex", "gus")):
                await UserRepository().create(conn, org, email=None, role="Admin", user_id=user)
        await platform.start()
        ann = platform.issuer.issue("ann", "acme", "Admin")
        ws_url = f"ws://127.0.0.1:{platform.port}/hubs/analytics?access_token={ann}"
        async with websockets.connect(ws_url) as first:  # skipNegotiation connection
            await first.send('{"protocol":"json","version":1}\x1e')
            assert await first.recv() == "{}\x1e"
            async with httpx.AsyncClient(base_url=platform.base_url) as http:
                for _ in range(50):  # on_connected runs just after the handshake response
                    if platform.metrics and platform.metrics.org_tracker.count("acme") == 1:
                        break
                    await asyncio.sleep(0.02)
                refused = await http.post(
                    "/hubs/analytics/negotiate?negotiateVersion=1",
                    headers={"Authorization": f"Bearer {ann}"},
                )
                assert refused.status_code == 503
                assert refused.text == "Organization connection limit reached (1)"
                with pytest.raises(websockets.InvalidStatus) as info:
                    async with websockets.connect(ws_url):
                        pass
                assert info.value.response.status_code == 503
                other = platform.issuer.issue("gus", "globex", "Admin")
                ok = await http.post(
                    "/hubs/analytics/negotiate?negotiateVersion=1",
                    headers={"Authorization": f"Bearer {other}"},
                )
                assert ok.status_code == 200
                metrics = (await http.get("/metrics")).text
        assert "aiusage_hub_org_limit_refusals_total 2\n" in metrics
        assert 'aiusage_hub_org_connections{org="acme"} 1\n' in metrics
    finally:
        await platform.stop(grace=1.0)
