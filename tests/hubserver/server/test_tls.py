"""TLS in HubServer (``ssl_context``): negotiate, long polling, Server-Sent Events and
WebSockets over ``https://``/``wss://`` with httpx and websockets trusting a test CA, the
official ``@microsoft/signalr`` client over every transport, the ASGI scopes' schemes, and
clear errors for certificate files that cannot be used."""

from __future__ import annotations

import asyncio
import json
import os
import ssl
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from hubserver.app import map_hub
from hubserver.server.tls import TlsConfigError, load_tls_context
from tests.hubserver.server.certs import CertFiles, make_certs
from tests.hubserver.server.harness import make_endpoint, running_server
from tests.integration.test_official_clients import (
    CONFORMANCE_DIR,
    NODE,
    NODE_TIMEOUT,
    expected_steps,
    needs_node,
)
from tests.support.conformance_hub import ConformanceHub

WAIT = 5.0


@pytest.fixture
def certs(tmp_path: Path) -> CertFiles:
    return make_certs(tmp_path)


def client_context(certs: CertFiles) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(certs.ca))


def scheme_app() -> Starlette:
    async def http_scheme(request: Any) -> JSONResponse:
        return JSONResponse({"scheme": request.scope["scheme"], "url": str(request.url)})

    async def ws_scheme(ws: WebSocket) -> None:
        await ws.accept()
        await ws.send_text(ws.scope["scheme"])
        await ws.close()

    return Starlette(routes=[Route("/scheme", http_scheme), WebSocketRoute("/ws", ws_scheme)])


async def test_every_transport_and_the_asgi_app_work_over_tls(certs: CertFiles) -> None:
    context = load_tls_context(certs.cert, certs.key)
    async with running_server(
        [make_endpoint()], scheme_app(), access_log=False, ssl_context=context
    ) as s:
        assert s.url == f"https://127.0.0.1:{s.port}"
        async with httpx.AsyncClient(
            base_url=s.url, verify=client_context(certs), timeout=WAIT
        ) as c:
            negotiate = await c.post("/hub/negotiate?negotiateVersion=1")
            assert negotiate.status_code == 200
            token = negotiate.json()["connectionToken"]
            # Long polling: first poll, send, data poll.
            assert (await c.get(f"/hub?id={token}")).status_code == 200
            assert (await c.post(f"/hub?id={token}", content=b"over tls")).status_code == 200
            assert (await c.get(f"/hub?id={token}")).content == b"over tls"
            # Server-Sent Events.
            token = (await c.post("/hub/negotiate?negotiateVersion=1")).json()["connectionToken"]
            async with c.stream(
                "GET", f"/hub?id={token}", headers={"accept": "text/event-stream"}
            ) as stream:
                lines = stream.aiter_lines()
                assert await asyncio.wait_for(anext(lines), WAIT) == ":"
                assert (await c.post(f"/hub?id={token}", content=b"sse")).status_code == 200
                assert await asyncio.wait_for(anext(lines), WAIT) == "data: sse"
            # The server knows it is https: its own origin is same-origin, http:// is not.
            own = {"origin": f"https://127.0.0.1:{s.port}"}
            assert (await c.post("/hub/negotiate", headers=own)).status_code == 200
            plain = {"origin": f"http://127.0.0.1:{s.port}"}
            assert (await c.post("/hub/negotiate", headers=plain)).status_code == 403
            # The ASGI application sees https.
            scheme = (await c.get("/scheme")).json()
            assert scheme == {"scheme": "https", "url": f"https://127.0.0.1:{s.port}/scheme"}
        # WebSockets: the hub endpoint and the ASGI application, over wss.
        wss = f"wss://127.0.0.1:{s.port}"
        async with websockets.connect(f"{wss}/hub", ssl=client_context(certs)) as ws:
            await ws.send(b"ping")
            assert await asyncio.wait_for(ws.recv(), WAIT) == "ping"
        async with websockets.connect(f"{wss}/ws", ssl=client_context(certs)) as ws:
            assert await asyncio.wait_for(ws.recv(), WAIT) == "wss"


async def test_a_client_that_does_not_trust_the_certificate_is_refused(certs: CertFiles) -> None:
    context = load_tls_context(certs.cert, certs.key)
    async with running_server([make_endpoint()], access_log=False, ssl_context=context) as s:
        async with httpx.AsyncClient(timeout=WAIT) as c:
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await c.post(f"{s.url}/hub/negotiate")
        # Plain HTTP to the TLS port is not served as HTTP.
        async with httpx.AsyncClient(timeout=WAIT) as c:
            with pytest.raises(httpx.HTTPError):
                await c.post(f"http://127.0.0.1:{s.port}/hub/negotiate")


@pytest.mark.integration
@needs_node
@pytest.mark.parametrize("transport", ["WebSockets", "ServerSentEvents", "LongPolling"])
async def test_the_official_js_client_runs_its_scenario_over_https(
    certs: CertFiles, transport: str
) -> None:
    mapped = map_hub("/conformance", ConformanceHub)
    context = load_tls_context(certs.cert, certs.key)
    await mapped.start()
    try:
        async with running_server([mapped.endpoint], access_log=False, ssl_context=context) as s:
            assert NODE is not None
            env = dict(os.environ, NODE_EXTRA_CA_CERTS=str(certs.ca))
            env.pop("NODE_TLS_REJECT_UNAUTHORIZED", None)  # the CA must really be checked
            proc = await asyncio.create_subprocess_exec(
                NODE,
                "client.mjs",
                f"{s.url}/conformance",
                transport,
                "json",
                cwd=CONFORMANCE_DIR,
                env=env,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            try:
                out, err = await asyncio.wait_for(proc.communicate(), NODE_TIMEOUT)
            finally:
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()
    finally:
        await mapped.stop()
    assert proc.returncode == 0, err.decode()
    result = json.loads(out.decode().strip().splitlines()[-1])
    assert result["steps"] == expected_steps(transport, "json"), err.decode()


# --- configuration errors ------------------------------------------------------------------


def test_missing_files_are_named(certs: CertFiles, tmp_path: Path) -> None:
    with pytest.raises(TlsConfigError, match=r"certificate file not found: .*nope\.pem"):
        load_tls_context(tmp_path / "nope.pem", certs.key)
    with pytest.raises(TlsConfigError, match=r"key file not found: .*nokey\.pem"):
        load_tls_context(certs.cert, tmp_path / "nokey.pem")
    with pytest.raises(TlsConfigError, match="is a directory"):
        load_tls_context(tmp_path, certs.key)


def test_an_unreadable_key_is_named(certs: CertFiles, monkeypatch: pytest.MonkeyPatch) -> None:
    # chmod 0 does not stop root (CI runs as root), so the read itself is made to refuse.
    real_read = Path.read_bytes

    def read_bytes(self: Path) -> bytes:
        if self == certs.key:
            raise PermissionError(13, "Permission denied", str(self))
        return real_read(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    with pytest.raises(TlsConfigError, match="key file is not readable"):
        load_tls_context(certs.cert, certs.key)


def test_files_that_are_not_pem_are_named(certs: CertFiles) -> None:
    with pytest.raises(TlsConfigError, match="holds no PEM certificate"):
        load_tls_context(certs.key, certs.key)
    with pytest.raises(TlsConfigError, match="holds no PEM private key"):
        load_tls_context(certs.cert, certs.cert)


def test_a_key_of_another_certificate_is_a_mismatch(certs: CertFiles, tmp_path: Path) -> None:
    other = make_certs(tmp_path, prefix="other")
    with pytest.raises(TlsConfigError, match="does not belong to the certificate"):
        load_tls_context(certs.cert, other.key)


def test_the_context_speaks_http_1_1_over_tls_1_2_or_newer(certs: CertFiles) -> None:
    context = load_tls_context(certs.cert, certs.key)
    assert context.minimum_version is ssl.TLSVersion.TLSv1_2
