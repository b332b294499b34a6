"""Small checklist items of docs/spec/checklist.md §7 that no other test pins down (see
docs/compliance.md). Real sockets on 127.0.0.1 with the echo application of the server
harness; each test is quick.
"""

from __future__ import annotations

import httpx
import pytest

from tests.hubserver.server.harness import make_endpoint, running_server


def client_for(port: int) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5)


async def test_v1_transports_accept_only_the_secret_token_not_the_public_id() -> None:
    """Item 2 / docs/spec/negotiate.md §1.3: connections are indexed by token; the public id opens
    nothing."""
    async with running_server([make_endpoint()]) as s, client_for(s.port) as c:
        doc = (await c.post("/hub/negotiate?negotiateVersion=1")).json()
        assert doc["connectionId"] != doc["connectionToken"]
        by_id = await c.get(f"/hub?id={doc['connectionId']}")
        assert (by_id.status_code, by_id.text) == (404, "No Connection with that ID")
        posted = await c.post(f"/hub?id={doc['connectionId']}", content=b"x")
        assert posted.status_code == 404
        by_token = await c.get(f"/hub?id={doc['connectionToken']}")
        assert (by_token.status_code, by_token.content) == (200, b"")


@pytest.mark.parametrize(
    ("headers", "query"),
    [({"Authorization": "Bearer not-a-jwt"}, ""), ({}, "&access_token=garbage")],
    ids=["bearer-header", "access_token-query"],
)
async def test_an_unprotected_hub_ignores_invalid_tokens(headers, query) -> None:
    """Item 6: without an auth hook, a bad token must not be refused (pysignalr's tests)."""
    async with running_server([make_endpoint()]) as s, client_for(s.port) as c:
        negotiated = await c.post(f"/hub/negotiate?x=1{query}", headers=headers)
        assert negotiated.status_code == 200
        token = negotiated.json()["connectionId"]  # version 0: the id is the token
        url = f"/hub?id={token}{query}"
        first_poll = await c.get(url, headers=headers)
        assert (first_poll.status_code, first_poll.content) == (200, b"")
        sent = await c.post(url, content=b"hello", headers=headers)
        assert (sent.status_code, sent.content) == (200, b"")
        echoed = await c.get(url, headers=headers)
        assert (echoed.status_code, echoed.content) == (200, b"hello")


@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain;charset=UTF-8", "application/octet-stream", "application/json"],
)
async def test_transport_requests_ignore_user_query_cache_busters_and_content_types(
    content_type,
) -> None:
    """Item 4: user query parameters, LP's ``_=`` and any POST Content-Type are fine."""
    async with running_server([make_endpoint()]) as s, client_for(s.port) as c:
        negotiated = await c.post(
            "/hub/negotiate?room=1&negotiateVersion=1&unknown=x",
            headers={"Content-Type": "application/json"},
            content=b'{"ignored": true}',
        )
        token = negotiated.json()["connectionToken"]
        base = f"/hub?room=1&id={token}"
        assert (await c.get(f"{base}&_=1700000000000")).status_code == 200
        headers = {"Content-Type": content_type} if content_type else {}
        sent = await c.post(f"{base}&extra=1", content=b"payload", headers=headers)
        assert (sent.status_code, sent.content) == (200, b"")
        echoed = await c.get(f"{base}&_=1700000000001")
        assert (echoed.status_code, echoed.content) == (200, b"payload")


async def test_an_event_stream_request_without_id_is_400() -> None:
    """Item 11 / docs/spec/transports.md §2.1: SSE shares the dispatcher's 400 for a missing id."""
    async with running_server([make_endpoint()]) as s, client_for(s.port) as c:
        r = await c.get("/hub", headers={"Accept": "text/event-stream"})
    assert (r.status_code, r.text) == (400, "Connection ID required")


def test_defaults_are_the_aspnet_core_ones() -> None:
    """Items 13, 15, 16, 21, 23, 27: the defaults the checklist names
    (docs/spec/hub-protocol.md §3.6, §3.8, docs/spec/transports.md §2.4,
    docs/spec/stateful-reconnect.md §5)."""
    from hubserver.options import ConnectionOptions, HubOptions
    from hubserver.transports.base import TransportType

    hub = HubOptions()
    assert (hub.keep_alive_interval, hub.client_timeout_interval, hub.handshake_timeout) == (
        15.0,
        30.0,
        15.0,
    )
    assert hub.maximum_receive_message_size == 32 * 1024
    assert hub.stream_buffer_capacity == 10
    assert hub.maximum_parallel_invocations_per_client == 1
    assert hub.stateful_reconnect_buffer_size == 100_000
    conn = ConnectionOptions()
    assert (conn.long_poll_timeout, conn.disconnect_timeout) == (90.0, 15.0)
    assert conn.transports == TransportType.ALL
    assert conn.allow_stateful_reconnects is False
    assert conn.allowed_origins == ()  # same origin only by default
