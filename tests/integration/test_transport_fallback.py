"""Transport fallback of the official client behind a proxy that blocks transports.

docs/spec/transports.md §2.6: corporate proxies often refuse
WebSocket upgrades, and some also refuse/buffer event streams. The official ``@microsoft/signalr``
10.0.11 client with DEFAULT options walks negotiate's ``availableTransports`` in server order
(WebSockets, ServerSentEvents, LongPolling), re-negotiating after each failure. Here it runs in
Node (``tests/conformance/fallback.mjs``) against the conformance server in a subprocess,
through ``tests/support/blocking_proxy.py`` on 127.0.0.1:

* nothing blocked -> WebSockets (control: the proxy itself forces nothing);
* WebSocket upgrade answered 403, or dropped unanswered -> ServerSentEvents;
* WebSockets and SSE blocked -> LongPolling;

and on the transport it ends on, an invocation round-trips and a server push arrives.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.test_official_clients import (
    CONFORMANCE_DIR,
    NODE,
    ServerProcess,
    needs_node,
    start_server,
)
from tests.support.blocking_proxy import BlockingProxy

pytestmark = [pytest.mark.integration, needs_node]

NODE_TIMEOUT = 60.0

CLIENT_CLASS = {
    "WebSockets": "WebSocketTransport",
    "ServerSentEvents": "ServerSentEventsTransport",
    "LongPolling": "LongPollingTransport",
}


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    proc = start_server()
    try:
        yield proc
    finally:
        log = proc.stop()
        errors = [line for line in log.splitlines() if line.startswith(("ERROR:", "CRITICAL:"))]
        assert not errors, log


async def run_fallback_client(url: str) -> dict[str, Any]:
    assert NODE is not None
    process = await asyncio.create_subprocess_exec(
        NODE,
        "fallback.mjs",
        url,
        cwd=CONFORMANCE_DIR,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), NODE_TIMEOUT)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    result["stderr"] = err.decode()
    return result


def assert_works_on(result: dict[str, Any], transport: str) -> None:
    assert "error" not in result, result
    assert result["serverTransport"] == transport, result
    assert result["clientTransport"] == CLIENT_CLASS[transport], result
    assert result["echo"] == "through the proxy", result
    assert result["push"] == "pushed through the proxy", result
    assert result["state"] == "Disconnected", result


def proxied_url(proxy: BlockingProxy, server: ServerProcess) -> str:
    path = server.url.split(str(server.port), 1)[1]
    return f"http://127.0.0.1:{proxy.port}{path}"


async def test_an_open_proxy_lets_the_client_use_websockets(server):
    async with BlockingProxy(server.port) as proxy:
        result = await run_fallback_client(proxied_url(proxy, server))
    assert_works_on(result, "WebSockets")
    assert result["failedTransports"] == []
    assert proxy.stats.websocket_blocked == 0


@pytest.mark.parametrize("websocket_status", [403, 502, None], ids=["403", "502", "dropped"])
async def test_a_blocked_websocket_upgrade_falls_back_to_server_sent_events(
    server, websocket_status
):
    async with BlockingProxy(
        server.port, block_websockets=True, websocket_status=websocket_status
    ) as proxy:
        result = await run_fallback_client(proxied_url(proxy, server))
    assert_works_on(result, "ServerSentEvents")
    assert result["failedTransports"] == ["WebSockets"]
    assert proxy.stats.websocket_blocked == 1
    # After the failed upgrade the client negotiated again (a new connection) before SSE.
    negotiates = [line for line in proxy.stats.forwarded_lines if "/negotiate" in line]
    assert len(negotiates) == 2, proxy.stats.forwarded_lines


async def test_blocked_websockets_and_event_streams_fall_back_to_long_polling(server):
    async with BlockingProxy(server.port, block_websockets=True, block_sse=True) as proxy:
        result = await run_fallback_client(proxied_url(proxy, server))
    assert_works_on(result, "LongPolling")
    assert result["failedTransports"] == ["WebSockets", "ServerSentEvents"]
    assert proxy.stats.websocket_blocked == 1
    assert proxy.stats.sse_blocked == 1
    negotiates = [line for line in proxy.stats.forwarded_lines if "/negotiate" in line]
    assert len(negotiates) == 3, proxy.stats.forwarded_lines
    # Messages flowed over polls and sends, not over anything else.
    assert any(line.startswith("DELETE ") for line in proxy.stats.forwarded_lines)
