"""Every authenticated REST request checks the store, as hub connects do: a deactivated,
removed, unknown or demoted user, a canceled subscription and a removed organization are
refused at the next request with the statuses of docs/security.md; agents keep their own
checks, and a removed organization gets a clear 4xx everywhere (never 500).

The whole REST platform runs in process over a real store (SQLite, and PostgreSQL in the
integration run) with the real access policy; its caches are off so that "the next request"
is exact (the 1 s cache is covered by tests/aiusage/auth/test_access_policy.py)."""

from datetime import UTC, datetime, timedelta

import pytest

from aiusage.auth.access_policy import AccessPolicy
from aiusage.auth.deps import install_access_policy
from aiusage.store.repositories import AgentRepository, OrganizationRepository, UserRepository
from tests.aiusage.api.p2b_support import iso
from tests.security.rest_kit import BACKENDS, open_checked_platform

DASHBOARD_ROUTES = [
    ("GET", "/api/sessions", None),
    ("GET", "/api/dashboard", None),
    ("GET", "/api/alerts", None),
    ("GET", "/api/agents", None),
    ("POST", "/api/agent/enrollment-codes", {}),
]


@pytest.fixture(params=BACKENDS)
async def platform(request, tmp_path):
    p = await open_checked_platform(tmp_path, request.param)
    users = UserRepository()
    async with p.db.write() as conn:
        await users.create(conn, "acme", email=None, role="Admin", user_id="ann")
        await users.create(conn, "acme", email=None, role="Admin", user_id="bob")
        await users.create(conn, "acme", email=None, role="Manager", user_id="max")
        await users.create(conn, "globex", email=None, role="Admin", user_id="gus")
    try:
        yield p
    finally:
        await p.close()


async def call(p, method, path, sub, org, role="Admin", body=None, headers=None):
    return await p.client.request(
        method, path, json=body, headers={**p.auth(sub, org, role), **(headers or {})}
    )


async def export(p):
    now = datetime.now(UTC)
    body = {"from": iso(now - timedelta(days=1)), "to": iso(now), "format": "csv"}
    return await call(p, "POST", "/api/exports", "ann", "acme", body=body)


async def refused_everywhere(p, sub, org, role, status, detail):
    for method, path, body in DASHBOARD_ROUTES:
        r = await call(p, method, path, sub, org, role, body)
        assert (r.status_code, r.json()) == (status, {"detail": detail}), (path, r.text)


async def test_an_active_member_is_served(platform):
    for method, path, body in DASHBOARD_ROUTES:
        r = await call(platform, method, path, "ann", "acme", "Admin", body)
        assert r.status_code in (200, 201), (path, r.text)


async def test_a_deactivated_user_is_refused_at_the_next_request(platform):
    assert (await call(platform, "GET", "/api/sessions", "bob", "acme")).status_code == 200
    async with platform.db.write() as conn:
        await UserRepository().set_active(conn, "acme", "bob", False)
    await refused_everywhere(platform, "bob", "acme", "Admin", 403, "Access revoked")


async def test_a_removed_user_is_refused_at_the_next_request(platform):
    async with platform.db.write() as conn:
        await UserRepository().remove(conn, "acme", "bob")
    await refused_everywhere(platform, "bob", "acme", "Admin", 403, "Access revoked")


async def test_a_token_of_a_subject_the_store_never_knew_is_refused(platform):
    await refused_everywhere(platform, "mallory", "acme", "Admin", 403, "Access revoked")


async def test_a_demoted_user_is_refused_by_the_stores_role_not_the_tokens(platform):
    async with platform.db.write() as conn:
        await UserRepository().set_role(conn, "acme", "max", "Employee")
    # The token still says Admin: the store's Employee decides.
    await refused_everywhere(platform, "max", "acme", "Admin", 403, "Forbidden")


async def test_a_manager_token_upgraded_to_admin_is_held_to_the_stores_manager(platform):
    r = await call(platform, "POST", "/api/agent/enrollment-codes", "max", "acme", "Admin", {})
    assert (r.status_code, r.json()) == (403, {"detail": "Forbidden"})  # Admin-only route
    r = await call(platform, "GET", "/api/sessions", "max", "acme", "Admin")
    assert r.status_code == 200  # a Manager may read sessions


async def test_a_canceled_subscription_is_refused(platform):
    async with platform.db.write() as conn:
        await OrganizationRepository().set_subscription(conn, "acme", "canceled")
    await refused_everywhere(
        platform, "ann", "acme", "Admin", 403, "Subscription inactive: canceled"
    )


async def test_a_removed_organization_is_refused_with_a_clear_403(platform):
    async with platform.db.write() as conn:
        await OrganizationRepository().remove(conn, "acme")
    await refused_everywhere(platform, "ann", "acme", "Admin", 403, "Unknown organization")
    r = await export(platform)
    assert (r.status_code, r.json()) == (403, {"detail": "Unknown organization"})
    # The other tenant is untouched.
    assert (await call(platform, "GET", "/api/sessions", "gus", "globex")).status_code == 200


async def test_an_export_racing_an_organization_removal_is_a_403_not_a_500(platform):
    # Without the policy (its cache may still say "exists"), the store's foreign key answers.
    install_access_policy(platform.app, None)
    async with platform.db.write() as conn:
        await OrganizationRepository().remove(conn, "acme")
    r = await export(platform)
    assert (r.status_code, r.json()["detail"]) == (403, "Unknown organization")


def batch(n=1):
    now = datetime.now(UTC)
    return {
        "events": [
            {
                "eventId": f"e-{i}-{now.timestamp()}",
                "type": "SessionStarted",
                "occurredAt": iso(now),
                "userId": "emp-1",
                "sessionId": f"s-{i}",
                "startTime": iso(now - timedelta(seconds=5)),
                "tool": "ChatGPT",
            }
            for i in range(n)
        ]
    }


async def test_agents_keep_their_own_checks_and_a_removed_organization_is_refused(platform):
    r = await call(platform, "POST", "/api/agent/events", "dev-1", "acme", "Agent", batch())
    assert r.status_code == 200, r.text
    async with platform.db.write() as conn:
        await AgentRepository().revoke(conn, "acme", "dev-1")
    r = await call(platform, "POST", "/api/agent/events", "dev-1", "acme", "Agent", batch())
    assert r.status_code == 401  # revoked device, as before
    async with platform.db.write() as conn:
        await OrganizationRepository().remove(conn, "acme")
    for _ in range(3):  # at once (inside the ingestion's status cache) and after it
        r = await call(platform, "POST", "/api/agent/events", "dev-2", "acme", "Agent", batch())
        assert r.status_code == 403, r.text
    async with platform.db.read() as conn:
        assert await OrganizationRepository().get(conn, "acme") is None


async def test_super_admin_rules_are_unchanged_and_a_missing_target_is_refused(platform):
    async with platform.db.write() as conn:
        await OrganizationRepository().create(conn, "platform", "Operators")
        await UserRepository().create(
            conn, "platform", email=None, role="SuperAdmin", user_id="root"
        )
        await OrganizationRepository().set_subscription(conn, "platform", "canceled")
    # Exempt from the subscription of its own organization, may target any organization...
    r = await call(platform, "GET", "/api/sessions", "root", "platform", "SuperAdmin")
    assert r.status_code == 200
    r = await call(
        platform,
        "GET",
        "/api/sessions",
        "root",
        "platform",
        "SuperAdmin",
        headers={"X-Organization-Id": "acme"},
    )
    assert r.status_code == 200
    # ...that exists.
    r = await call(
        platform,
        "GET",
        "/api/sessions?organizationId=nowhere",
        "root",
        "platform",
        "SuperAdmin",
    )
    assert (r.status_code, r.json()) == (403, {"detail": "Unknown organization"})
    # A SuperAdmin token of a user the store now holds as Admin is an Admin.
    async with platform.db.write() as conn:
        await UserRepository().set_role(conn, "platform", "root", "Admin")
    r = await call(platform, "GET", "/api/sessions", "root", "platform", "SuperAdmin")
    assert (r.status_code, r.json()) == (403, {"detail": "Subscription inactive: canceled"})


class _Down:
    async def subscription_status(self, org_id):
        raise ConnectionError("database down")

    async def user_role(self, org_id, user_id):
        raise ConnectionError("database down")


async def test_an_unreachable_store_is_a_503_not_a_yes(platform):
    install_access_policy(platform.app, AccessPolicy(_Down(), cache_ttl=0))
    r = await call(platform, "GET", "/api/sessions", "ann", "acme")
    assert (r.status_code, r.json()) == (503, {"detail": "Service Unavailable"})
