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
