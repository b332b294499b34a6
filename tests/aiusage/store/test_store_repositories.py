from datetime import UTC, datetime, timedelta

import pytest

from aiusage.errors import Conflict, NotFound, ValidationError
from aiusage.store.database import Database
from aiusage.store.repositories import (
    AgentRepository,
    OrganizationRepository,
    SessionRepository,
    UserRepository,
    decode_cursor,
    encode_cursor,
)

T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)


async def test_organizations_are_created_listed_and_change_subscription(db: Database) -> None:
    repo = OrganizationRepository()
    async with db.write() as conn:
        await repo.create(
            conn, "acme", "Acme", subscription_status="trialing", approved_tools=["ChatGPT"], now=T0
        )
        await repo.set_subscription(conn, "acme", "canceled")
    async with db.read() as conn:
        org = await repo.get(conn, "acme")
        assert await repo.subscription_status(conn, "nope") is None
    assert org is not None
    assert (org.name, org.subscription_status, org.approved_tools) == (
        "Acme",
        "canceled",
        ("ChatGPT",),
    )


async def test_duplicate_or_invalid_organizations_are_refused(db: Database) -> None:
    repo = OrganizationRepository()
    async with db.write() as conn:
        await repo.create(conn, "acme", "Acme")
        with pytest.raises(Conflict):
            await repo.create(conn, "acme", "Again")
        with pytest.raises(ValidationError):
            await repo.create(conn, "bad id", "Bad")
        with pytest.raises(ValidationError):
            await repo.set_subscription(conn, "acme", "free")
        with pytest.raises(NotFound):
            await repo.set_subscription(conn, "ghost", "active")
    async with db.read() as conn:
        assert [o.id for o in await repo.list(conn)] == ["acme"]


async def test_users_have_unique_emails_and_roles_of_active_users_only(db: Database) -> None:
    orgs, repo = OrganizationRepository(), UserRepository()
    async with db.write() as conn:
        await orgs.create(conn, "acme", "Acme")
        await orgs.create(conn, "other", "Other")
        alice = await repo.create(
            conn, "acme", email="Alice@Example.com", role="Admin", password_hash="h"
        )
        with pytest.raises(Conflict):
            await repo.create(conn, "other", email="alice@example.com", role="Manager")
        with pytest.raises(NotFound):
            await repo.create(conn, "ghost", email="g@example.com", role="Admin")
        with pytest.raises(ValidationError):
            await repo.create(conn, "acme", email="b@example.com", role="admin")
    async with db.read() as conn:
        found = await repo.get_by_email(conn, "ALICE@example.com")
        assert found is not None and found.id == alice.id and found.email == "alice@example.com"
        assert await repo.role_of(conn, "acme", alice.id) == "Admin"
        assert await repo.role_of(conn, "other", alice.id) is None
    async with db.write() as conn:
        await repo.set_active(conn, "acme", alice.id, False)
    async with db.read() as conn:
        assert await repo.role_of(conn, "acme", alice.id) is None


async def test_enrollment_codes_work_once_and_expire(db: Database) -> None:
    orgs, agents = OrganizationRepository(), AgentRepository()
    async with db.write() as conn:
        await orgs.create(conn, "acme", "Acme")
        code = await agents.create_enrollment_code(conn, "acme", ttl=timedelta(minutes=5), now=T0)
        stale = await agents.create_enrollment_code(conn, "acme", ttl=timedelta(minutes=5), now=T0)
    async with db.write() as conn:
        enrollment = await agents.redeem_enrollment_code(
            conn, code, device_name="laptop", now=T0 + timedelta(minutes=1)
        )
    assert enrollment.org_id == "acme"
    with pytest.raises(NotFound):
        async with db.write() as conn:
            await agents.redeem_enrollment_code(conn, code, now=T0 + timedelta(minutes=2))
    with pytest.raises(NotFound):
        async with db.write() as conn:
            await agents.redeem_enrollment_code(conn, stale, now=T0 + timedelta(minutes=6))
    async with db.write() as conn:
        agent = await agents.get(conn, "acme", enrollment.device_id)
        assert agent is not None and agent.name == "laptop" and agent.revoked_at is None
        await agents.revoke(conn, "acme", enrollment.device_id, now=T0)
        assert await agents.is_revoked(conn, "acme", enrollment.device_id)


def test_cursors_round_trip_and_garbage_is_refused() -> None:
    assert decode_cursor(encode_cursor(T0, "s-1")) == (T0, "s-1")
    for garbage in ("", "abc", "W10", encode_cursor(T0, "x")[:-3]):
        with pytest.raises(ValidationError):
            decode_cursor(garbage)


async def test_session_pages_are_newest_first_and_limit_is_checked(db: Database) -> None:
    repo = SessionRepository()
    async with db.read() as conn:
        page = await repo.page(conn, "acme")
        assert page.items == () and page.next_cursor is None
        with pytest.raises(ValidationError):
            await repo.page(conn, "acme", limit=501)
