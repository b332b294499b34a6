"""POST {path}/negotiate over a real socket (docs/spec/negotiate.md §1)."""

from __future__ import annotations

import httpx
import pytest

from hubserver.options import ConnectionOptions
from hubserver.transports.base import TransportType
from tests.hubserver.server.harness import make_endpoint, running_server


async def negotiate(
    port: int, query: str = "", method: str = "POST", path: str = "/hub/negotiate", **kw
) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.request(method, f"http://127.0.0.1:{port}{path}{query}", **kw)


async def test_v1_negotiate_returns_id_token_and_all_transports() -> None:
    async with running_server([make_endpoint()]) as server:
        r = await negotiate(server.port, "?negotiateVersion=1")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    doc = r.json()
    assert doc["negotiateVersion"] == 1
    assert len(doc["connectionId"]) == 22 and len(doc["connectionToken"]) == 22
    assert doc["connectionId"] != doc["connectionToken"]
    assert doc["availableTransports"] == [
        {"transport": "WebSockets", "transferFormats": ["Text", "Binary"]},
        {"transport": "ServerSentEvents", "transferFormats": ["Text"]},
        {"transport": "LongPolling", "transferFormats": ["Text", "Binary"]},
    ]
    assert "useStatefulReconnect" not in doc


async def test_v0_negotiate_has_no_token_and_ignores_body_and_user_query() -> None:
    async with running_server([make_endpoint()]) as server:
        r = await negotiate(
            server.port, "?room=1", content=b"{}", headers={"content-type": "application/json"}
        )
    doc = r.json()
    assert doc["negotiateVersion"] == 0 and "connectionToken" not in doc


async def test_higher_versions_are_answered_with_1_and_bad_versions_with_200_error() -> None:
    async with running_server([make_endpoint()]) as server:
        assert (await negotiate(server.port, "?negotiateVersion=7")).json()["negotiateVersion"] == 1
        r = await negotiate(server.port, "?NEGOTIATEVERSION=x")
        assert r.status_code == 200
        assert r.json() == {"error": "The client requested a non-integer protocol version."}


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
async def test_non_post_negotiate_is_405(method: str) -> None:
    async with running_server([make_endpoint()]) as server:
        r = await negotiate(server.port, method=method)
    assert r.status_code == 405 and r.headers["content-type"] == "text/plain"


async def test_transports_are_filtered_by_options() -> None:
    opts = ConnectionOptions(transports=TransportType.LONG_POLLING | TransportType.WEB_SOCKETS)
    async with running_server([make_endpoint(options=opts)]) as server:
        doc = (await negotiate(server.port)).json()
    assert [t["transport"] for t in doc["availableTransports"]] == ["WebSockets", "LongPolling"]


async def test_stateful_reconnect_only_when_requested_and_allowed() -> None:
    allowed = make_endpoint("/a", ConnectionOptions(allow_stateful_reconnects=True))
    denied = make_endpoint("/d")
    async with running_server([allowed, denied]) as server:
        on = await negotiate(
            server.port, "?negotiateVersion=1&UseStatefulReconnect=TRUE", path="/a/negotiate"
        )
        off = await negotiate(server.port, "?negotiateVersion=1", path="/a/negotiate")
        no = await negotiate(server.port, "?useStatefulReconnect=true", path="/d/negotiate")
    assert on.json()["useStatefulReconnect"] is True
    assert "useStatefulReconnect" not in off.json()
    assert "useStatefulReconnect" not in no.json()


async def test_trailing_slash_base_url_works() -> None:
    async with running_server([make_endpoint("/hub/")]) as server:
        assert (await negotiate(server.port, path="/hub/negotiate")).status_code == 200


async def test_max_connections_gives_503() -> None:
    async with running_server([make_endpoint(options=ConnectionOptions(max_connections=1))]) as s:
        assert (await negotiate(s.port)).status_code == 200
        r = await negotiate(s.port)
    assert r.status_code == 503
