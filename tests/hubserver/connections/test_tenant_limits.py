"""Per-tenant connection limit of the registry (ConnectionOptions.tenant_of /
max_tenant_connections): negotiated-but-unused connections count toward their tenant's share
and expire with the disconnect timeout, so one tenant cannot take every slot."""

from __future__ import annotations

import json

from hubserver.connections.context import HttpRequestInfo, Principal
from hubserver.connections.endpoint import ConnectionEndpoint
from hubserver.options import ConnectionOptions
from tests.hubserver.server.harness import make_endpoint
from tests.hubserver.transports.fakes import FakeExchange
from tests.support.hub_client import FakeClock

FULL = b"Tenant connection limit reached (3)"


async def auth(request: HttpRequestInfo) -> Principal | None:
    user, _, tenant = request.headers["x-user"].partition("@")
    return Principal(user_id=user, claims={"tenant": tenant} if tenant else {})


def tenant_of(principal: Principal) -> str | None:
    tenant = principal.claims.get("tenant")
    return tenant if isinstance(tenant, str) else None


def endpoint(clock: FakeClock, **options: object) -> ConnectionEndpoint:
    opts = ConnectionOptions(
        max_connections=6, tenant_of=tenant_of, max_tenant_connections=3, **options
    )
    return make_endpoint(options=opts, authenticate=auth, clock=clock)


async def negotiate(ep: ConnectionEndpoint, user: str) -> FakeExchange:
    ex = FakeExchange()
    request = HttpRequestInfo("POST", "/hub/negotiate", {"negotiateVersion": "1"}, {"x-user": user})
    await ep.handle(request, b"", ex, negotiate=True)
    return ex


async def test_negotiated_connections_count_toward_their_tenant() -> None:
    clock = FakeClock()
    ep = endpoint(clock)
    try:
        statuses = [(await negotiate(ep, f"a{i}@acme")).status for i in range(3)]
        assert statuses == [200, 200, 200]
        refused = await negotiate(ep, "a9@acme")
        assert (refused.status, refused.body) == (503, FULL)
        assert ep.manager.tenant_count("acme") == 3
        # Another tenant still gets in: the global pool of 6 was not exhausted by acme.
        assert (await negotiate(ep, "g1@globex")).status == 200
        assert ep.manager.tenant_count("globex") == 1
        # Principals without a tenant are limited only by max_connections.
        assert [(await negotiate(ep, f"op{i}")).status for i in range(2)] == [200, 200]
        assert (await negotiate(ep, "op9")).status == 503  # global limit (6) reached
    finally:
        await ep.stop()


async def test_unused_negotiations_expire_and_free_the_tenants_share() -> None:
    clock = FakeClock()
    ep = endpoint(clock)
    try:
        for i in range(3):
            await negotiate(ep, f"a{i}@acme")
        assert (await negotiate(ep, "a9@acme")).status == 503
        clock.advance(15.0)  # ConnectionOptions.disconnect_timeout
        assert ep.manager.sweep() == 3
        assert ep.manager.tenant_count("acme") == 0
        ok = await negotiate(ep, "a9@acme")
        assert ok.status == 200
        assert json.loads(ok.body)["connectionToken"]
    finally:
        await ep.stop()


async def test_a_skip_negotiation_websocket_counts_and_is_refused_too() -> None:
    clock = FakeClock()
    ep = endpoint(clock, tenant_limit_text="Org full ({limit})")
    try:
        for i in range(3):
            await negotiate(ep, f"a{i}@acme")
        ex = FakeExchange()
        upgrade = HttpRequestInfo(
            "GET",
            "/hub",
            {},
            {
                "x-user": "a9@acme",
                "upgrade": "websocket",
                "sec-websocket-version": "13",
                "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
            },
        )
        await ep.handle(upgrade, b"", ex, negotiate=False)
        assert (ex.status, ex.body) == (503, b"Org full (3)")
        assert len(ep.connections()) == 3
    finally:
        await ep.stop()


async def test_disposed_connections_release_their_tenant_slot() -> None:
    clock = FakeClock()
    ep = endpoint(clock)
    try:
        for i in range(3):
            await negotiate(ep, f"a{i}@acme")
        ep.connections()[0].abort()
        assert ep.manager.tenant_count("acme") == 2
        assert (await negotiate(ep, "a9@acme")).status == 200
        for ctx in ep.connections():
            ctx.abort()
        assert ep.manager.tenant_count("acme") == 0
    finally:
        await ep.stop()
