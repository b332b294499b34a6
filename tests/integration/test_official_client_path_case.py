"""The official ``@microsoft/signalr`` client reaches a hub through a URL whose path differs
in case from the mapped one (ASP.NET routing ignores case; so does ``HubServer``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.test_official_clients import (
    ServerProcess,
    expected_steps,
    needs_node,
    run_node_client,
    start_server,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    proc = start_server("--path", "/hubs/conformance")
    try:
        yield proc
    finally:
        proc.stop()


@needs_node
@pytest.mark.parametrize(
    ("transport", "protocol"), [("WebSockets", "json"), ("LongPolling", "messagepack")]
)
def test_official_js_client_runs_its_scenario_at_an_upper_case_hub_url(
    server: ServerProcess, transport: str, protocol: str
) -> None:
    url = server.url.replace("/hubs/conformance", "/HUBS/Conformance")
    assert url != server.url
    result = run_node_client(url, transport, protocol)
    assert result["steps"] == expected_steps(transport, protocol), result["stderr"]
