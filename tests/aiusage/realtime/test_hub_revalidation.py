"""Lifetime of trust: a canceled subscription or a removed/demoted user closes the
open connections within 5 s ("Access revoked", no reconnect); a store outage closes nothing."""

import asyncio

import pytest
from tests.security.kit import HubWorld, close_message, invocations, settle

from aiusage.auth.issuer import BuiltinIssuer
from aiusage.realtime.hub import org_group
from aiusage.realtime.revalidation import REVOKED, AccessRevalidator


@pytest.fixture(scope="module")
def key(tmp_path_factory):
    return BuiltinIssuer.load_or_create(tmp_path_factory.mktemp("k"))._private


@pytest.fixture
def world(key):
    w = HubWorld(BuiltinIssuer(key))
    w.directory.org("acme")
    w.directory.org("globex")
    return w


def revoked(client):
    close = close_message(client)
    return close is not None and close.error == REVOKED and not close.allow_reconnect


async def test_a_canceled_subscription_closes_that_orgs_connections_only(world):
    a1 = await world.connect(world.token("ann", "acme", "Admin"))
    a2 = await world.connect(world.token("max", "acme", "Manager"))
    g1 = await world.connect(world.token("gus", "globex", "Admin"))
    reval = AccessRevalidator(world.handler, world.directory)
    assert await reval.sweep() == 0
    world.directory.org("acme", "canceled")
    assert await reval.sweep() == 2
    await settle()
    assert revoked(a1) and revoked(a2) and close_message(g1) is None
    assert [c.connection_id for c in world.handler.local_connections()] == [g1.connection_id]
    await world.handler.hub_context.clients.group(org_group("acme")).send("SessionStarted", {})
    await settle()
    assert invocations(a1) == [] and reval.revoked_total == 2


async def test_removed_and_demoted_users_are_closed(world):
    for user, role in (("ann", "Admin"), ("max", "Manager"), ("kim", "Admin")):
        world.directory.member("acme", user, role)
    ann = await world.connect(world.token("ann", "acme", "Admin"))
    mx = await world.connect(world.token("max", "acme", "Manager"))
    kim = await world.connect(world.token("kim", "acme", "Admin"))
    reval = AccessRevalidator(world.handler, world.directory)
    world.directory.member("acme", "ann", None)  # removed
    world.directory.member("acme", "max", "Employee")  # demoted
    world.directory.member("acme", "kim", "Manager")  # demoted but still a dashboard role
    assert await reval.sweep() == 2
    await settle()
    assert revoked(ann) and revoked(mx) and close_message(kim) is None


async def test_super_admins_do_not_depend_on_a_subscription(world):
    world.directory.org("platform", "canceled")
    root = await world.connect(world.token("root", "platform", "SuperAdmin"))
    assert await AccessRevalidator(world.handler, world.directory).sweep() == 0
    assert close_message(root) is None


async def test_a_store_outage_keeps_connections_open(world):
    client = await world.connect(world.token("ann", "acme", "Admin"))
    world.directory.org("acme", "canceled")
    world.directory.fail = True
    reval = AccessRevalidator(world.handler, world.directory)
    assert await reval.sweep() == 0
    world.directory.fail = False
    assert await reval.sweep() == 1
    await settle()
    assert revoked(client)


async def test_a_sweep_makes_two_bulk_lookups_whatever_the_number_of_orgs(world):
    for org in ("acme", "globex", "initech"):
        world.directory.org(org)
        world.directory.member(org, "ann", "Admin")
        for _ in range(3):
            await world.connect(world.token("ann", org, "Admin"))
            await world.connect(world.token("max", org, "Manager"))  # no known-user claim
    world.directory.calls = 0
    assert await AccessRevalidator(world.handler, world.directory).sweep() == 0
    assert world.directory.calls == 2  # the three statuses + the known memberships


async def test_the_background_loop_revokes_within_5_seconds(world):
    client = await world.connect(world.token("ann", "acme", "Admin"))
    reval = AccessRevalidator(world.handler, world.directory, interval=0.02)
    reval.start()
    try:
        await asyncio.sleep(0.05)
        assert close_message(client) is None
        world.directory.org("acme", "past_due")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 5.0
        while not revoked(client):
            assert loop.time() < deadline, "not revoked within 5 s"
            await asyncio.sleep(0.01)
    finally:
        await reval.stop()


async def test_the_default_interval_leaves_room_for_the_5_second_bound(world):
    sleeps = []

    async def fake_sleep(seconds):
        sleeps.append(seconds)
        if len(sleeps) >= 3:
            raise asyncio.CancelledError

    reval = AccessRevalidator(world.handler, world.directory, sleep=fake_sleep)
    with pytest.raises(asyncio.CancelledError):
        await reval.run()
    assert sleeps == [2.0, 2.0, 2.0]
