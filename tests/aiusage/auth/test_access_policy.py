"""AccessPolicy: the one decision of REST and hub (auth/access_policy.py): the rule table,
the store role replacing the token's, and the ~1 s cache that keeps hot paths off the store."""

import asyncio

import pytest
from tests.security.kit import Directory
from tests.support.hub_client import FakeClock

from aiusage.auth.access_policy import AccessPolicy, AccessRefused, TtlCache
from aiusage.auth.principal import DASHBOARD_ROLES, UserPrincipal


def who(sub="ann", org="acme", *roles):
    return UserPrincipal(sub=sub, org=org, roles=frozenset(roles or ("Admin",)))


@pytest.fixture
def directory():
    d = Directory()
    d.org("acme", "active")
    d.org("initech", "past_due")
    d.member("acme", "ann", "Admin")
    d.member("acme", "max", "Manager")
    return d


async def refusal(policy, user, roles=DASHBOARD_ROLES, target=None):
    with pytest.raises(AccessRefused) as info:
        await policy.decide(user, roles, target)
    return info.value.status, info.value.message


async def test_the_rule_table(directory):
    policy = AccessPolicy(directory, cache_ttl=0)
    acting, role = await policy.decide(who(), DASHBOARD_ROLES)
    assert (acting.roles, role) == ({"Admin"}, "Admin")
    assert await refusal(policy, who("eve", "acme", "Employee")) == (403, "Forbidden")
    assert await refusal(policy, who("nobody")) == (403, "Access revoked")
    assert await refusal(policy, who("ann", "gone")) == (403, "Unknown organization")
    assert await refusal(policy, who("ann", "initech")) == (403, "Subscription inactive: past_due")
    # The token says Admin; the store says Manager: an Admin-only route refuses.
    assert await refusal(policy, who("max", "acme", "Admin"), {"Admin"}) == (403, "Forbidden")
    acting, _ = await policy.decide(who("max", "acme", "Admin"), DASHBOARD_ROLES)
    assert acting.roles == {"Manager"} and acting.claims["role"] == "Manager"


async def test_unknown_subjects_pass_only_when_records_are_not_required(directory):
    relaxed = AccessPolicy(directory, require_user_record=False, cache_ttl=0)
    acting, role = await relaxed.decide(who("op"), DASHBOARD_ROLES)
    assert role is None and acting.roles == {"Admin"}
    directory.member("acme", "op", "Employee")  # a known user is always checked
    assert await refusal(relaxed, who("op")) == (403, "Forbidden")


async def test_agents_are_left_to_the_ingestion_checks(directory):
    policy = AccessPolicy(directory, cache_ttl=0)
    agent = who("dev-1", "gone", "Agent")
    assert await policy.decide(agent, {"Agent"}) == (agent, None)
    assert directory.calls == 0


async def test_super_admin_is_exempt_from_subscription_but_not_from_the_store(directory):
    directory.member("initech", "root", "SuperAdmin")
    policy = AccessPolicy(directory, cache_ttl=0)
    root = who("root", "initech", "SuperAdmin")
    assert (await policy.decide(root, DASHBOARD_ROLES, "acme"))[1] == "SuperAdmin"
    assert await refusal(policy, root, DASHBOARD_ROLES, "nowhere") == (403, "Unknown organization")
    directory.member("initech", "root", "Admin")
    assert await refusal(policy, root) == (403, "Subscription inactive: past_due")


async def test_a_store_outage_is_503(directory):
    directory.fail = True
    assert await refusal(AccessPolicy(directory, cache_ttl=0), who()) == (
        503,
        "Service Unavailable",
    )


async def test_answers_are_cached_for_about_a_second(directory):
    clock = FakeClock()
    policy = AccessPolicy(directory, cache_ttl=1.0, clock=clock)
    await policy.decide(who(), DASHBOARD_ROLES)
    calls = directory.calls
    for _ in range(100):
        await policy.decide(who(), DASHBOARD_ROLES)
    assert directory.calls == calls  # hot path: no store round trip per request
    directory.member("acme", "ann", None)
    clock.advance(0.9)
    await policy.decide(who(), DASHBOARD_ROLES)
    clock.advance(0.2)
    assert await refusal(policy, who()) == (403, "Access revoked")


async def test_an_answer_past_half_its_life_is_reloaded_in_the_background(directory):
    clock = FakeClock()
    policy = AccessPolicy(directory, cache_ttl=1.0, clock=clock)
    await policy.decide(who(), DASHBOARD_ROLES)
    calls = directory.calls
    directory.member("acme", "ann", None)
    clock.advance(0.6)
    # Still within the TTL: answered from the cache at once, while one reload starts.
    acting, _ = await policy.decide(who(), DASHBOARD_ROLES)
    assert acting.roles == {"Admin"}
    for _ in range(3):
        await asyncio.sleep(0)
    assert directory.calls == calls + 2  # role and subscription, once each
    clock.advance(0.3)  # 0.9 s after the first answer, 0.3 s after the reload
    assert await refusal(policy, who()) == (403, "Access revoked")
    assert directory.calls == calls + 2


async def test_a_failed_background_reload_surfaces_only_once_the_answer_expires(directory):
    clock = FakeClock()
    policy = AccessPolicy(directory, cache_ttl=1.0, clock=clock)
    await policy.decide(who(), DASHBOARD_ROLES)
    directory.fail = True
    clock.advance(0.6)
    await policy.decide(who(), DASHBOARD_ROLES)  # cached answer; the reload fails quietly
    for _ in range(3):
        await asyncio.sleep(0)
    clock.advance(0.5)
    assert await refusal(policy, who()) == (503, "Service Unavailable")


async def test_concurrent_misses_share_one_load():
    class Slow(Directory):
        async def user_role(self, org_id, user_id):
            await asyncio.sleep(0.01)
            return await super().user_role(org_id, user_id)

    slow = Slow()
    slow.org("acme", "active")
    slow.member("acme", "ann", "Admin")
    policy = AccessPolicy(slow, cache_ttl=1.0, clock=FakeClock())
    answers = await asyncio.gather(*(policy.decide(who(), DASHBOARD_ROLES) for _ in range(50)))
    assert all(a.roles == {"Admin"} for a, _ in answers)
    assert slow.calls == 2  # one role load, one subscription load


async def test_a_full_cache_drops_expired_answers_before_fresh_ones():
    clock = FakeClock()
    cache = TtlCache(1.0, clock, max_entries=3)
    loads: list[str] = []

    def loader(value):
        async def load():
            loads.append(value)
            return value

        return load

    await cache.get("old", loader("a"))
    clock.advance(1.5)
    await cache.get("new1", loader("b"))
    await cache.get("new2", loader("c"))
    await cache.get("new3", loader("d"))  # full: the expired answer goes
    assert await cache.get("new1", loader("x")) == "b" and loads == ["a", "b", "c", "d"]
