"""The revalidation sweep over the real store acts on every lifecycle change: deactivated,
removed and demoted users, and removed organizations, are closed at the next sweep (every
2 s: well inside the 5 s bound), and nobody else is."""

import pytest
from tests.security.kit import HubWorld, close_message, settle
from tests.support.database import make_database

from aiusage.auth.access_policy import AccessPolicy
from aiusage.auth.issuer import BuiltinIssuer
from aiusage.realtime.access import make_authenticate
from aiusage.realtime.revalidation import DEFAULT_INTERVAL, REVOKED, AccessRevalidator
from aiusage.realtime.store_access import StoreAccess
from aiusage.store.repositories import OrganizationRepository, UserRepository


@pytest.fixture
async def world(tmp_path, tmp_path_factory):
    db, _ = await make_database("sqlite", tmp_path, tmp_path_factory.getbasetemp())
    users = UserRepository()
    async with db.write() as conn:
        for org in ("acme", "umbrella"):
            await OrganizationRepository().create(conn, org, org.title())
        for user, role in (
            ("ann", "Admin"),
            ("dee", "Admin"),
            ("gone", "Manager"),
            ("mo", "Manager"),
        ):
            await users.create(conn, "acme", email=None, role=role, user_id=user)
        await users.create(conn, "umbrella", email=None, role="Admin", user_id="al")
    w = HubWorld(BuiltinIssuer.load_or_create(tmp_path / "keys"))
    store = StoreAccess(db, ttl=0)
    # The platform's wiring: one policy (unknown users refused) for connects.
    w.authenticate = make_authenticate(w.verifier, store, policy=AccessPolicy(store, cache_ttl=0))
    w.store, w.db = store, db
    try:
        yield w
    finally:
        await db.dispose()


def revoked(client):
    close = close_message(client)
    return close is not None and close.error == REVOKED and not close.allow_reconnect


async def test_every_lifecycle_change_is_closed_by_the_next_sweep(world):
    tokens = {
        "ann": ("acme", "Admin"),
        "dee": ("acme", "Admin"),
        "gone": ("acme", "Manager"),
        "mo": ("acme", "Manager"),
        "al": ("umbrella", "Admin"),
    }
    clients = {u: await world.connect(world.token(u, o, r)) for u, (o, r) in tokens.items()}
    reval = AccessRevalidator(world.handler, world.store)
    assert await reval.sweep() == 0
    users = UserRepository()
    async with world.db.write() as conn:
        await users.set_active(conn, "acme", "dee", False)
        await users.remove(conn, "acme", "gone")
        await users.set_role(conn, "acme", "mo", "Employee")
        await OrganizationRepository().remove(conn, "umbrella")
    assert await reval.sweep() == 4
    await settle()
    assert [u for u, c in clients.items() if revoked(c)] == ["dee", "gone", "mo", "al"]
    assert close_message(clients["ann"]) is None
    # And none of them may come back.
    for user, (org, role) in tokens.items():
        if user != "ann":
            status, _ = await world.refusal(world.token(user, org, role))
            assert status == 403


def test_the_sweep_period_is_within_the_bound():
    assert DEFAULT_INTERVAL <= 2.0
