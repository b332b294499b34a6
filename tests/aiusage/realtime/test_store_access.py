"""StoreAccess: status and membership read per organization, cached briefly, the organizations
missing from the cache read together."""

import asyncio

import pytest
from tests.support.database import make_database
from tests.support.hub_client import FakeClock

from aiusage.realtime.store_access import StoreAccess, _TtlMap
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


def _count_reads(access):
    """Wrap the batched read: the organizations of each read, in order."""
    reads = []
    original = access._reads._read

    async def counting(org_ids):
        reads.append(sorted(org_ids))
        await asyncio.sleep(0)  # let the other askers pile up behind this read
        return await original(org_ids)

    access._reads._read = counting
    return reads


async def test_roles_come_from_one_query_per_organization_shared_by_concurrent_askers(store):
    db = store
    await _seed(db)
    clock = FakeClock()
    access = StoreAccess(db, ttl=1.0, clock=clock)
    reads = _count_reads(access)
    answers = await asyncio.gather(
        *(access.user_role("acme", user) for user in ["ann", "bob", "ann", "zed"] * 50)
    )
    assert reads == [["acme"]]
    assert answers[:4] == ["Admin", None, "Admin", None]
    assert await access.user_role("acme", "ann") == "Admin"  # cached
    assert await access.subscription_status("acme") == "active"  # read with the roles
    assert reads == [["acme"]]


async def test_a_storm_of_distinct_organizations_costs_a_few_reads_not_one_each(store):
    db = store
    orgs = [f"org{i:04d}" for i in range(600)]
    async with db.write() as conn:
        for org in orgs:
            await OrganizationRepository().create(conn, org, org)
            await UserRepository().create(
                conn, org, email=f"u@{org}.test", role="Employee", user_id=f"u-{org}"
            )
    access = StoreAccess(db, ttl=1.0, clock=FakeClock())
    reads = _count_reads(access)

    async def connect(org):
        # What the access policy asks for every hub connect.
        return await access.user_role(org, f"u-{org}"), await access.subscription_status(org)

    answers = await asyncio.gather(*(connect(org) for org in orgs))
    assert answers == [("Employee", "active")] * len(orgs)
    assert reads == [orgs]  # every miss of one loop pass went into the same read
    assert await access.user_role("missing", "u") is None
    assert await access.subscription_status("missing") is None
    assert reads == [orgs, ["missing"]]


async def test_askers_arriving_during_a_read_share_the_next_one(store):
    db = store
    await _seed(db)
    access = StoreAccess(db, ttl=1.0, clock=FakeClock())
    reads = []
    gate = asyncio.Event()
    original = access._reads._read

    async def gated(org_ids):
        reads.append(sorted(org_ids))
        await gate.wait()
        return await original(org_ids)

    access._reads._read = gated
    first = asyncio.ensure_future(access.user_role("acme", "ann"))
    while not reads:
        await asyncio.sleep(0)
    later = [asyncio.ensure_future(access.subscription_status(org)) for org in ("b", "c", "b")]
    await asyncio.sleep(0)
    assert reads == [["acme"]]  # one read in flight; the others wait for the next
    gate.set()
    assert await first == "Admin"
    assert await asyncio.gather(*later) == [None, None, None]
    assert reads == [["acme"], ["b", "c"]]


async def test_a_failed_read_fails_its_askers_and_the_next_miss_reads_again(store):
    db = store
    await _seed(db)
    access = StoreAccess(db, ttl=1.0, clock=FakeClock())
    original = access._reads._read
    failing = True

    async def flaky(org_ids):
        if failing:
            raise OSError("store down")
        return await original(org_ids)

    access._reads._read = flaky
    results = await asyncio.gather(
        access.user_role("acme", "ann"), access.subscription_status("acme"), return_exceptions=True
    )
    assert [type(r) for r in results] == [OSError, OSError]
    failing = False
    assert await access.user_role("acme", "ann") == "Admin"


async def test_a_cancelled_asker_does_not_cancel_the_read_of_the_others(store):
    db = store
    await _seed(db)
    access = StoreAccess(db, ttl=1.0, clock=FakeClock())
    gate = asyncio.Event()
    original = access._reads._read

    async def gated(org_ids):
        await gate.wait()
        return await original(org_ids)

    access._reads._read = gated
    impatient = asyncio.ensure_future(access.user_role("acme", "ann"))
    patient = asyncio.ensure_future(access.user_role("acme", "ann"))
    await asyncio.sleep(0)
    impatient.cancel()
    gate.set()
    assert await patient == "Admin"
    assert impatient.cancelled()


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


def test_a_full_cache_drops_expired_answers_before_fresh_ones():
    clock = FakeClock()
    cache: _TtlMap[str] = _TtlMap(1.0, clock, max_entries=4)
    cache.put("old1", "a")
    cache.put("old2", "b")
    clock.advance(1.5)
    cache.put("new1", "c")
    cache.put("new2", "d")
    cache.put("new3", "e")  # full: the two expired answers go, the fresh ones stay
    assert [cache.fresh(k) for k in ("old1", "old2")] == [None, None]
    assert [hit and hit[1] for k in ("new1", "new2", "new3") if (hit := cache.fresh(k))] == [
        "c",
        "d",
        "e",
    ]


def test_an_answer_is_as_old_as_the_read_that_got_it():
    clock = FakeClock()
    cache: _TtlMap[str] = _TtlMap(1.0, clock)
    started = clock()
    clock.advance(0.75)  # a slow read
    cache.put("acme", "active", started)
    assert cache.fresh("acme") is not None
    clock.advance(0.25)
    assert cache.fresh("acme") is None
