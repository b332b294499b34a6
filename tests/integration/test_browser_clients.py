"""The official client's BROWSER build in headless Chromium, once per transport, plus CORS.

The client matrix: ``@microsoft/signalr`` 10.0.11's ``dist/browser/signalr.min.js``
(and ``signalr-protocol-msgpack.min.js``), unmodified, loaded by
``tests/conformance/browser/index.html`` and driven by ``tests/conformance/browser.mjs``
(playwright-core 1.65.1 with the system Chromium, no browser download). The conformance hub
server runs in a subprocess on 127.0.0.1 and also serves the page (same origin). Per case the
page connects with exactly one transport, invokes, receives a push and stops.

CORS (docs/spec/transports.md §2.7, checklist items 6/11-14 in a browser): a page served from
``http://127.0.0.2:<port>`` -- another origin, allowed through ``ConnectionOptions.allowed_origins``
(``--allowed-origin``) -- works with credentials (the client's default), and a page from
``http://127.0.0.3:<port>``, not allowed, cannot even negotiate.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.test_official_clients import (
    CONFORMANCE_DIR,
    NODE,
    ServerProcess,
    needs_node,
    start_server,
)
from tests.support.static_pages import serve_in_thread

CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
needs_browser = pytest.mark.skipif(
    not CHROMIUM.exists() or not (CONFORMANCE_DIR / "node_modules" / "playwright-core").is_dir(),
    reason="needs Chromium and playwright-core (`npm ci` in tests/conformance)",
)
pytestmark = [pytest.mark.integration, pytest.mark.browser, needs_node, needs_browser]

DRIVER_TIMEOUT = 80.0

SAME_ORIGIN_CASES = [
    ("WebSockets", "json"),
    ("WebSockets", "messagepack"),
    ("ServerSentEvents", "json"),
    ("LongPolling", "json"),
    ("LongPolling", "messagepack"),
]


class BrowserRun:
    """One Chromium run over every case; results keyed by case name."""

    def __init__(self, server: ServerProcess, allowed: str, refused: str) -> None:
        self.server = server
        self.allowed_origin = allowed
        self.refused_origin = refused
        cases: dict[str, dict[str, str]] = {}
        own_page = f"http://127.0.0.1:{server.port}/browser/index.html"
        for transport, protocol in SAME_ORIGIN_CASES:
            cases[f"{transport}-{protocol}"] = _case(own_page, server.url, transport, protocol)
        cases["cross-origin-allowed"] = _case(
            f"{allowed}/browser/index.html", server.url, "LongPolling", "json"
        )
        cases["cross-origin-allowed-websockets"] = _case(
            f"{allowed}/browser/index.html", server.url, "WebSockets", "json"
        )
        cases["cross-origin-refused"] = _case(
            f"{refused}/browser/index.html", server.url, "WebSockets", "json"
        )
        assert NODE is not None
        done = subprocess.run(
            [NODE, "browser.mjs", json.dumps(list(cases.values()))],
            cwd=CONFORMANCE_DIR,
            capture_output=True,
            text=True,
            timeout=DRIVER_TIMEOUT,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        results = json.loads(done.stdout.strip().splitlines()[-1])["results"]
        self.results: dict[str, dict[str, Any]] = dict(zip(cases, results, strict=True))
        self.stderr = done.stderr


def _case(page: str, hub: str, transport: str, protocol: str) -> dict[str, str]:
    return {"page": page, "hub": hub, "transport": transport, "protocol": protocol}


@pytest.fixture(scope="module")
def browser_run() -> Iterator[BrowserRun]:
    with serve_in_thread("127.0.0.2") as allowed, serve_in_thread("127.0.0.3") as refused:
        server = start_server("--static", "--allowed-origin", allowed)
        try:
            yield BrowserRun(server, allowed, refused)
        finally:
            log = server.stop()
            errors = [line for line in log.splitlines() if line.startswith(("ERROR:", "CRITICAL:"))]
            assert not errors, log


def assert_full_scenario(result: dict[str, Any], transport: str, protocol: str) -> None:
    assert "error" not in result, result
    assert result == {
        **result,
        "started": True,
        "welcomeMatchesId": True,
        "serverTransport": transport,
        "serverProtocol": protocol,
        "echo": "from the browser ✓",
        "sum": 5,
        "push": "pushed to the browser",
        "state": "Disconnected",
        "clientErrors": [],
    }


@pytest.mark.parametrize(("transport", "protocol"), SAME_ORIGIN_CASES)
def test_the_browser_client_connects_invokes_receives_and_stops(browser_run, transport, protocol):
    result = browser_run.results[f"{transport}-{protocol}"]
    assert_full_scenario(result, transport, protocol)
    assert result["origin"] == f"http://127.0.0.1:{browser_run.server.port}"


@pytest.mark.parametrize(
    ("case", "transport"),
    [("cross-origin-allowed", "LongPolling"), ("cross-origin-allowed-websockets", "WebSockets")],
)
def test_a_page_from_an_allowed_other_origin_works_with_credentials(browser_run, case, transport):
    result = browser_run.results[case]
    assert result["origin"] == browser_run.allowed_origin
    assert_full_scenario(result, transport, "json")


def test_a_page_from_an_origin_not_allowed_cannot_negotiate(browser_run):
    result = browser_run.results["cross-origin-refused"]
    assert result["origin"] == browser_run.refused_origin
    assert result.get("started") is None, result
    # The browser hides the server's answer from the page: fetch fails as a CORS error.
    assert result["error"].startswith(
        "Failed to complete negotiation with the server: TypeError: Failed to fetch"
    ), result
    assert result["state"] == "Disconnected"


def test_the_server_itself_refuses_the_origin_that_is_not_allowed(browser_run):
    """Not just the browser's CORS check: the server answers 403 and no CORS headers."""
    url = f"{browser_run.server.url}/negotiate?negotiateVersion=1"
    with httpx.Client(timeout=5.0) as client:
        refused = client.post(url, headers={"Origin": browser_run.refused_origin})
        allowed = client.post(url, headers={"Origin": browser_run.allowed_origin})
        preflight = client.options(
            url,
            headers={
                "Origin": browser_run.allowed_origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "x-requested-with, x-signalr-user-agent",
            },
        )
    assert refused.status_code == 403
    assert "access-control-allow-origin" not in refused.headers
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == browser_run.allowed_origin
    assert allowed.headers["access-control-allow-credentials"] == "true"
    assert preflight.status_code in (200, 204)
    assert preflight.headers["access-control-allow-origin"] == browser_run.allowed_origin
