"""StoreAccess: membership read per organization, cached briefly, one query per flight."""

import asyncio

import pytest
from tests.support.database import make_database
from tests.support.hub_client import FakeClock

from aiusage.realtime.store_access import StoreAccess, _SingleFlight
from aiusage.store.repositories import OrganizationRepository, UserRepository


@pytest.fixture
async def store(tmp_path, tmp_path_factory):
    db, _ = await make_database("sqlite", tmp_path, tmp_path_factory.getbasetemp())
    try:
        yield db
    finally:
        await db.dispose()


async def _seed(db):
    async with db.write() as conn:
        await OrganizationRepository().create(conn, "acme", "Acme")
        await UserRepository().create(
            conn, "acme", email="ann@acme.test", role="Admin", user_id="ann"
        )


async def test_roles_come_from_one_query_per_organization_shared_by_concurrent_askers(store):
    db = store
    await _seed(db)
    clock = FakeClock()
    access = StoreAccess(db, ttl=1.0, clock=clock)
    queries = 0
    original = access._users.active_roles

    async def counting(conn, org_id):
        nonlocal queries
        queries += 1
        await asyncio.sleep(0.01)  # let the other askers pile up on the same flight
        return await original(conn, org_id)

    access._users.active_roles = counting
    answers = await asyncio.gather(
        *(access.user_role("acme", user) for user in ["ann", "bob", "ann", "zed"] * 50)
    )
    assert queries == 1
    assert answers[:4] == ["Admin", None, "Admin", None]
    assert await access.user_role("acme", "ann") == "Admin" and queries == 1  # cached


async def test_a_demotion_is_seen_once_the_ttl_has_passed(store):
    db = store
    await _seed(db)
    clock = FakeClock()
    access = StoreAccess(db, ttl=1.0, clock=clock)
    assert await access.user_role("acme", "ann") == "Admin"
    async with db.write() as conn:
        await UserRepository().set_role(conn, "acme", "ann", "Employee")
    assert await access.user_role("acme", "ann") == "Admin"  # within the TTL
    clock.advance(1.0)
    assert await access.user_role("acme", "ann") == "Employee"
    async with db.write() as conn:
        await OrganizationRepository().set_subscription(conn, "acme", "canceled")
    clock.advance(1.0)
    assert await access.subscription_status("acme") == "canceled"


async def test_a_full_cache_drops_expired_answers_before_fresh_ones():
    clock = FakeClock()
    cache: _SingleFlight[str] = _SingleFlight(1.0, clock, max_entries=4)
    cache.put("old1", "a")
    cache.put("old2", "b")
    clock.advance(1.5)
    cache.put("new1", "c")
    cache.put("new2", "d")
    cache.put("new3", "e")  # full: the two expired answers go, the fresh ones stay

    async def never() -> str:
        raise AssertionError("a fresh answer must come from the cache")

    assert [await cache.get(k, never) for k in ("new1", "new2", "new3")] == ["c", "d", "e"]
