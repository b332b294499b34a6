from aiusage.realtime.store_access import StoreAccess
from aiusage.store.database import Database
from aiusage.store.repositories import OrganizationRepository, UserRepository


async def test_store_access_answers_subscription_role_and_login_lookups(db: Database) -> None:
    async with db.write() as conn:
        await OrganizationRepository().create(conn, "acme", "Acme", subscription_status="trialing")
        user = await UserRepository().create(
            conn, "acme", email="boss@acme.test", role="Manager", password_hash="$argon2id$x"
        )
    access = StoreAccess(db)
    assert await access.subscription_status("acme") == "trialing"
    assert await access.subscription_status("ghost") is None
    assert await access.user_role("acme", user.id) == "Manager"
    assert await access.user_role("other", user.id) is None
    assert await access.get_user_by_email("boss@acme.test") == (
        user.id,
        "acme",
        "Manager",
        "$argon2id$x",
        True,
    )
    assert await access.get_user_by_email("nobody@acme.test") is None


async def test_bulk_lookups_read_fresh_answers_and_refresh_the_cache(db: Database) -> None:
    clock = [0.0]
    orgs = OrganizationRepository()
    users = UserRepository()
    async with db.write() as conn:
        for i in range(3):
            await orgs.create(conn, f"o{i}", f"O{i}")
            await users.create(conn, f"o{i}", email=f"a@o{i}.test", role="Admin", user_id="ann")
        await users.create(conn, "o0", email="m@o0.test", role="Manager", user_id="max")
    access = StoreAccess(db, ttl=10.0, clock=lambda: clock[0])
    assert await access.subscription_status("o1") == "active"  # cached for 10 s
    assert await access.user_role("o0", "max") == "Manager"
    async with db.write() as conn:
        await orgs.set_subscription(conn, "o1", "canceled")
        await users.set_active(conn, "o0", "max", False)
    # A bulk lookup (the revalidation sweep) is not served from the cache ...
    assert await access.subscription_statuses({"o0", "o1", "o2", "ghost"}) == {
        "o0": "active",
        "o1": "canceled",
        "o2": "active",
        "ghost": None,
    }
    assert await access.user_roles({("o0", "ann"), ("o0", "max"), ("o2", "ann"), ("o9", "x")}) == {
        ("o0", "ann"): "Admin",
        ("o0", "max"): None,
        ("o2", "ann"): "Admin",
        ("o9", "x"): None,
    }
    # ... and what it read replaces the cached answers of single lookups.
    assert await access.subscription_status("o1") == "canceled"
    assert await access.user_role("o0", "max") is None


async def test_bulk_lookups_span_more_organizations_than_one_in_list(db: Database) -> None:
    async with db.write() as conn:
        for i in range(1203):
            await OrganizationRepository().create(conn, f"org{i:04d}", "x")
    statuses = await StoreAccess(db).subscription_statuses({f"org{i:04d}" for i in range(1203)})
    assert len(statuses) == 1203 and set(statuses.values()) == {"active"}
