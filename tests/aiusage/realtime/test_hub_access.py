"""The AnalyticsHub authentication hook (realtime/access.py) beyond the security suite:
token sources, claim normalisation, caching, and what is logged."""

import logging

import pytest
from tests.security.kit import HubWorld
from tests.support.hub_client import FakeClock

from aiusage.auth.issuer import BuiltinIssuer
from aiusage.realtime.access import (
    KNOWN_USER_CLAIM,
    make_authenticate,
    principal_of,
    subscription_refusal,
)
from hubserver import AuthenticationFailed, HttpRequestInfo


@pytest.fixture(scope="module")
def key(tmp_path_factory):
    return BuiltinIssuer.load_or_create(tmp_path_factory.mktemp("k"))._private


@pytest.fixture
def world(key):
    w = HubWorld(BuiltinIssuer(key))
    w.directory.org("acme")
    return w


async def test_the_principal_carries_sub_claims_and_expiry(world):
    token = world.token("ann", "acme", "Admin", ttl=900)
    p = await world.authenticate(world.request(token))
    assert p.user_id == "acme:ann" and p.expires_at == world.wall.now + 900
    assert principal_of(p).org == "acme" and principal_of(p).roles == {"Admin"}
    assert KNOWN_USER_CLAIM not in p.claims


async def test_the_access_token_query_parameter_works(world):
    p = await world.authenticate(
        world.request(world.token("ann", "acme", "Manager"), via_query=True)
    )
    assert p.user_id == "acme:ann"  # tenant-scoped: Clients.User never crosses orgs


async def test_a_known_user_is_marked_for_revalidation(world):
    world.directory.member("acme", "ann", "Admin")
    p = await world.authenticate(world.request(world.token("ann", "acme", "Admin")))
    assert p.claims[KNOWN_USER_CLAIM] == "Admin"


async def test_lookups_are_cached_briefly_across_requests(world):
    mono = FakeClock()
    hook = make_authenticate(world.verifier, world.directory, cache_ttl=1.0, clock=mono)
    request = world.request(world.token("ann", "acme", "Admin"))
    await hook(request)
    calls = world.directory.calls
    await hook(request)
    assert world.directory.calls == calls  # long polling: no store round trip per poll
    mono.advance(1.0)
    world.directory.org("acme", "canceled")
    from hubserver.errors import AuthenticationFailed

    with pytest.raises(AuthenticationFailed) as info:
        await hook(request)
    assert info.value.status == 403 and info.value.message == "Subscription inactive: canceled"


async def test_refusals_are_logged_with_a_reason_but_never_the_token(world, caplog):
    token = world.token("ann", "acme", "Admin", ttl=1)
    world.wall.advance(100)
    with caplog.at_level(logging.DEBUG):
        assert await world.refusal(token) == (401, "Unauthorized")
        assert await world.refusal(token, via_query=True) == (401, "Unauthorized")
    assert "token expired" in caplog.text
    assert token not in caplog.text and token.split(".")[2] not in caplog.text


def test_subscription_refusal_texts():
    assert subscription_refusal("active") is None and subscription_refusal("trialing") is None
    assert subscription_refusal("canceled") == "Subscription inactive: canceled"
    assert subscription_refusal(None) == "Unknown organization"


async def test_a_token_cannot_set_the_store_role_marker_itself(world):
    token = world.issuer.issue("ann", "acme", "Admin", extra_claims={KNOWN_USER_CLAIM: "Admin"})
    p = await world.authenticate(world.request(token))
    assert KNOWN_USER_CLAIM not in p.claims


async def test_a_store_outage_is_503_not_a_refusal(world):
    world.directory.fail = True
    assert await world.refusal(world.token("ann", "acme", "Admin")) == (503, "Service Unavailable")


def _poll(token: str, connection_id: str) -> HttpRequestInfo:
    return HttpRequestInfo(
        "GET",
        "/hubs/analytics",
        {"id": connection_id, "organizationId": "acme"},
        {"authorization": f"Bearer {token}"},
    )


async def test_a_poll_of_a_connection_reuses_its_principal_but_rechecks_access(world):
    world.directory.member("acme", "ann", "Admin")
    token = world.token("ann", "acme", "Admin")
    first = await world.authenticate(_poll(token, "c1"))
    assert await world.authenticate(_poll(token, "c1")) is first  # nothing rebuilt per poll
    assert await world.authenticate(_poll(token, "c2")) is not first  # per connection
    calls = world.directory.calls
    world.directory.member("acme", "ann", "Manager")  # demoted: a new principal
    demoted = await world.authenticate(_poll(token, "c1"))
    assert world.directory.calls > calls  # the access check ran (cache_ttl=0 here)
    assert demoted is not first and principal_of(demoted).roles == {"Manager"}
    world.directory.member("acme", "ann", "Employee")  # no dashboard role: refused at once
    with pytest.raises(AuthenticationFailed) as info:
        await world.authenticate(_poll(token, "c1"))
    assert (info.value.status, info.value.message) == (403, "Forbidden")
    world.directory.member("acme", "ann", "Admin")
    await world.authenticate(_poll(token, "c1"))
    world.directory.org("acme", "canceled")
    with pytest.raises(AuthenticationFailed) as info:
        await world.authenticate(_poll(token, "c1"))
    assert (info.value.status, info.value.message) == (403, "Subscription inactive: canceled")


async def test_a_poll_with_another_token_never_gets_the_kept_principal(world):
    ann = await world.authenticate(_poll(world.token("ann", "acme", "Admin"), "c1"))
    bob = await world.authenticate(_poll(world.token("bob", "acme", "Admin"), "c1"))
    assert bob.user_id == "acme:bob" and ann.user_id == "acme:ann"
    token = world.token("ann", "acme", "Admin", ttl=5)
    await world.authenticate(_poll(token, "c1"))
    world.wall.advance(100)  # expired: refused although its principal was kept
    assert await world.refusal(token) == (401, "Unauthorized")
    with pytest.raises(AuthenticationFailed):
        await world.authenticate(_poll(token, "c1"))
