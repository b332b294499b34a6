"""The official ``@microsoft/signalr`` client sees the ASP.NET texts for server streams that
fail before their first item (invocation failure) and after one (streaming failure), with
detailed errors, over every transport and both protocols."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from hubserver.app import map_hub
from hubserver.options import HubOptions
from tests.hubserver.hub.test_handler_stream_failures import StreamingHub
from tests.hubserver.server.harness import running_server
from tests.integration.test_official_clients import CONFORMANCE_DIR, NODE, NODE_TIMEOUT, needs_node

pytestmark = pytest.mark.integration

INVOKE = "An unexpected error occurred invoking '{}' on the server. "
TARGETS = ["StreamThrowException", "AwaitedThrow", "ThrowBeforeFirstItem", "ThrowAfterFirstItem"]


async def run_client(url: str, transport: str, protocol: str) -> dict[str, Any]:
    assert NODE is not None
    # Asynchronous: the server under test runs on this event loop.
    process = await asyncio.create_subprocess_exec(
        NODE,
        "stream_failure.mjs",
        url,
        transport,
        protocol,
        *TARGETS,
        cwd=CONFORMANCE_DIR,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), NODE_TIMEOUT)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode == 0, err.decode()
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return result


@needs_node
@pytest.mark.parametrize(
    ("transport", "protocol"),
    [
        ("WebSockets", "json"),
        ("WebSockets", "messagepack"),
        ("ServerSentEvents", "json"),
        ("LongPolling", "json"),
        ("LongPolling", "messagepack"),
    ],
)
async def test_official_js_client_gets_the_aspnet_texts_for_failing_streams(
    transport: str, protocol: str
) -> None:
    mapped = map_hub("/streams", StreamingHub, hub_options=HubOptions(detailed_errors=True))
    async with running_server([mapped.endpoint], access_log=False) as s:
        result = await run_client(f"http://127.0.0.1:{s.port}/streams", transport, protocol)
        await mapped.stop(timeout=1)
    detail = "InvalidOperationException: An error occurred."
    assert result == {
        "StreamThrowException": {
            "items": [],
            "error": INVOKE.format("StreamThrowException") + detail,
        },
        "AwaitedThrow": {"items": [], "error": INVOKE.format("AwaitedThrow") + detail},
        "ThrowBeforeFirstItem": {
            "items": [],
            "error": "An error occurred on the server while streaming results. " + detail,
        },
        "ThrowAfterFirstItem": {
            "items": [1],
            "error": "An error occurred on the server while streaming results. " + detail,
        },
    }
