"""User lifecycle over REST (``/api/users``, ``/api/organization``) and the command line
(``aiusage user deactivate|activate|remove|set-role|set-team``, ``aiusage org set-seats|remove``):
Admin-only, tenant-scoped, the last active Admin protected (409), SuperAdmin reserved, and
each change effective at the caller's next request."""

import asyncio

import pytest

from aiusage.cli import main
from aiusage.store.database import Database
from aiusage.store.repositories import OrganizationRepository, UserRepository
from tests.security.rest_kit import BACKENDS, open_checked_platform


@pytest.fixture(params=BACKENDS)
async def platform(request, tmp_path):
    p = await open_checked_platform(tmp_path, request.param)
    users = UserRepository()
    async with p.db.write() as conn:
        await users.create(conn, "acme", email="ann@acme.test", role="Admin", user_id="ann")
        await users.create(conn, "acme", email=None, role="Manager", user_id="max")
        await users.create(conn, "acme", email=None, role="Employee", user_id="x")
        await users.create(conn, "globex", email=None, role="Admin", user_id="gus")
        await users.create(conn, "globex", email=None, role="Employee", user_id="x")
        await OrganizationRepository().create(conn, "platform", "Operators")
        await users.create(conn, "platform", email=None, role="SuperAdmin", user_id="root")
    try:
        yield p
    finally:
        await p.close()


def auth(p, sub, org, role="Admin", target=None):
    headers = p.auth(sub, org, role)
    if target is not None:
        headers["X-Organization-Id"] = target
    return headers


async def test_an_admin_lists_the_users_of_their_own_organization_only(platform):
    r = await platform.client.get("/api/users", headers=auth(platform, "ann", "acme"))
    assert r.status_code == 200
    items = r.json()["items"]
    assert [(u["id"], u["role"], u["active"], u["organizationId"]) for u in items] == [
        ("ann", "Admin", True, "acme"),
        ("max", "Manager", True, "acme"),
        ("x", "Employee", True, "acme"),
    ]
    r = await platform.client.get(
        "/api/users", headers=auth(platform, "ann", "acme", "Admin", "globex")
    )
    assert (r.status_code, r.json()) == (403, {"detail": "Organization mismatch"})
    r = await platform.client.get("/api/users", headers=auth(platform, "max", "acme", "Manager"))
    assert (r.status_code, r.json()) == (403, {"detail": "Forbidden"})
    r = await platform.client.get("/api/users")
    assert r.status_code == 401


async def test_patch_changes_role_active_and_team_and_takes_effect_at_once(platform):
    c, h = platform.client, auth(platform, "ann", "acme")
    r = await c.patch("/api/users/max", json={"team": "  Support "}, headers=h)
    assert r.status_code == 200 and r.json()["team"] == "Support"
    r = await c.patch("/api/users/max", json={"team": None}, headers=h)
    assert r.status_code == 200 and r.json()["team"] is None
    assert (
        await c.get("/api/sessions", headers=auth(platform, "max", "acme", "Manager"))
    ).status_code == 200
    r = await c.patch("/api/users/max", json={"role": "Employee"}, headers=h)
    assert r.status_code == 200 and r.json()["role"] == "Employee"
    r = await c.get("/api/sessions", headers=auth(platform, "max", "acme", "Manager"))
    assert (r.status_code, r.json()) == (403, {"detail": "Forbidden"})
    r = await c.patch("/api/users/max", json={"role": "Manager", "active": False}, headers=h)
    assert r.status_code == 200 and (r.json()["role"], r.json()["active"]) == ("Manager", False)
    r = await c.get("/api/sessions", headers=auth(platform, "max", "acme", "Manager"))
    assert (r.status_code, r.json()) == (403, {"detail": "Access revoked"})
    r = await c.patch("/api/users/max", json={"active": True}, headers=h)
    assert r.status_code == 200
    assert (
        await c.get("/api/sessions", headers=auth(platform, "max", "acme", "Manager"))
    ).status_code == 200


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({}, 422),
        ({"role": "Agent"}, 422),
        ({"role": "Owner"}, 422),
        ({"active": None}, 422),
        ({"team": "t" * 101}, 422),
        ({"email": "x@y.z"}, 422),
    ],
)
async def test_bad_patches_are_422(platform, body, status):
    r = await platform.client.patch(
        "/api/users/max", json=body, headers=auth(platform, "ann", "acme")
    )
    assert r.status_code == status, r.text


async def test_the_last_active_admin_cannot_leave_the_organization_adminless(platform):
    c, h = platform.client, auth(platform, "ann", "acme")
    for method, body in (
        ("PATCH", {"role": "Manager"}),
        ("PATCH", {"active": False}),
        ("DELETE", None),
    ):
        r = await c.request(method, "/api/users/ann", json=body, headers=h)
        assert r.status_code == 409, r.text
        assert r.json()["code"] == "conflict" and "last active Admin" in r.json()["detail"]
    # With a second Admin, the first may step down (and is then refused at once).
    assert (await c.patch("/api/users/max", json={"role": "Admin"}, headers=h)).status_code == 200
    assert (await c.patch("/api/users/ann", json={"role": "Manager"}, headers=h)).status_code == 200
    r = await c.get("/api/users", headers=h)
    assert (r.status_code, r.json()) == (403, {"detail": "Forbidden"})


async def test_delete_removes_the_user_and_their_tokens_stop_working(platform):
    c, h = platform.client, auth(platform, "ann", "acme")
    assert (
        await c.get("/api/alerts", headers=auth(platform, "max", "acme", "Manager"))
    ).status_code == 200
    r = await c.delete("/api/users/max", headers=h)
    assert r.status_code == 204 and r.content == b""
    r = await c.get("/api/alerts", headers=auth(platform, "max", "acme", "Manager"))
    assert (r.status_code, r.json()) == (403, {"detail": "Access revoked"})
    r = await c.delete("/api/users/max", headers=h)
    assert r.status_code == 404


async def test_an_admin_cannot_touch_another_tenants_user_of_the_same_id(platform):
    c, h = platform.client, auth(platform, "ann", "acme")
    assert (await c.delete("/api/users/gus", headers=h)).status_code == 404
    assert (await c.delete("/api/users/x", headers=h)).status_code == 204  # acme's x only
    async with platform.db.read() as conn:
        assert await UserRepository().get(conn, "globex", "x") is not None
        assert await UserRepository().get(conn, "acme", "x") is None


async def test_only_a_super_admin_grants_or_changes_super_admin(platform):
    c = platform.client
    r = await c.patch(
        "/api/users/max", json={"role": "SuperAdmin"}, headers=auth(platform, "ann", "acme")
    )
    assert (r.status_code, r.json()["detail"]) == (403, "only a SuperAdmin may change a SuperAdmin")
    root = auth(platform, "root", "platform", "SuperAdmin", "acme")
    r = await c.patch("/api/users/max", json={"role": "SuperAdmin"}, headers=root)
    assert r.status_code == 200 and r.json()["role"] == "SuperAdmin"
    r = await c.delete("/api/users/max", headers=auth(platform, "ann", "acme"))
    assert r.status_code == 403
    r = await c.get("/api/users", headers=root)
    assert r.status_code == 200 and {u["id"] for u in r.json()["items"]} == {"ann", "max", "x"}


async def test_organization_seats_are_admin_settable(platform):
    c = platform.client
    r = await c.get("/api/organization", headers=auth(platform, "max", "acme", "Manager"))
    assert r.status_code == 200 and r.json()["seats"] is None and r.json()["id"] == "acme"
    r = await c.patch(
        "/api/organization", json={"seats": 40}, headers=auth(platform, "ann", "acme")
    )
    assert r.status_code == 200 and r.json()["seats"] == 40
    r = await c.patch(
        "/api/organization", json={"seats": 41}, headers=auth(platform, "max", "acme", "Manager")
    )
    assert (r.status_code, r.json()) == (403, {"detail": "Forbidden"})
    for bad in ({"seats": 0}, {"seats": "many"}, {}, {"name": "x"}):
        r = await c.patch("/api/organization", json=bad, headers=auth(platform, "ann", "acme"))
        assert r.status_code == 422, bad
    r = await c.patch(
        "/api/organization", json={"seats": None}, headers=auth(platform, "ann", "acme")
    )
    assert r.status_code == 200 and r.json()["seats"] is None
    root = auth(platform, "root", "platform", "SuperAdmin", "globex")
    r = await c.patch("/api/organization", json={"seats": 7}, headers=root)
    assert r.status_code == 200 and (r.json()["id"], r.json()["seats"]) == ("globex", 7)


async def test_the_endpoints_are_documented_in_openapi(platform):
    paths = (await platform.client.get("/openapi.json")).json()["paths"]
    assert set(paths["/api/users"]) == {"get"}
    assert set(paths["/api/users/{user_id}"]) == {"patch", "delete"}
    assert set(paths["/api/organization"]) == {"get", "patch"}
    assert "409" in paths["/api/users/{user_id}"]["patch"]["responses"]


# -- command line ---------------------------------------------------------------------------


def cli(data_dir, *args):
    return main([*args, "--data-dir", str(data_dir)])


@pytest.fixture
async def store(tmp_path, monkeypatch):
    monkeypatch.delenv("AIUSAGE_DATABASE_URL", raising=False)
    monkeypatch.delenv("AIUSAGE_DATABASE_SCHEMA", raising=False)
    assert (
        await asyncio.to_thread(cli, tmp_path, "org", "create", "--id", "acme", "--name", "A") == 0
    )
    for uid, role in (("ann", "Admin"), ("max", "Manager")):
        code = await asyncio.to_thread(
            cli, tmp_path, "user", "create", "--org", "acme", "--id", uid, "--role", role
        )
        assert code == 0
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'aiusage.db'}")
    try:
        yield tmp_path, db
    finally:
        await db.dispose()


async def member(db, uid):
    async with db.read() as conn:
        return await UserRepository().get(conn, "acme", uid)


async def test_cli_lifecycle_commands(store, capsys):
    data, db = store
    run = lambda *a: asyncio.to_thread(cli, data, *a)  # noqa: E731
    assert await run("user", "set-team", "max", "--org", "acme", "--team", "Ops") == 0
    assert (await member(db, "max")).team == "Ops"
    assert await run("user", "set-team", "max", "--org", "acme", "--clear") == 0
    assert (await member(db, "max")).team is None
    assert await run("user", "set-role", "max", "--org", "acme", "--role", "Employee") == 0
    assert (await member(db, "max")).role == "Employee"
    assert await run("user", "deactivate", "max", "--org", "acme") == 0
    assert (await member(db, "max")).active is False
    assert await run("user", "activate", "max", "--org", "acme") == 0
    assert (await member(db, "max")).active is True
    assert await run("user", "remove", "max", "--org", "acme") == 0
    assert await member(db, "max") is None
    capsys.readouterr()
    assert await run("user", "remove", "max", "--org", "acme") == 1
    assert "does not exist" in capsys.readouterr().err


async def test_cli_refuses_to_leave_an_organization_without_an_admin_unless_forced(store, capsys):
    data, db = store
    run = lambda *a: asyncio.to_thread(cli, data, *a)  # noqa: E731
    for args in (
        ("user", "deactivate", "ann", "--org", "acme"),
        ("user", "remove", "ann", "--org", "acme"),
        ("user", "set-role", "ann", "--org", "acme", "--role", "Manager"),
    ):
        capsys.readouterr()
        assert await run(*args) == 1
        assert "last active Admin" in capsys.readouterr().err
    assert (await member(db, "ann")).active is True
    assert await run("user", "deactivate", "ann", "--org", "acme", "--force") == 0
    assert (await member(db, "ann")).active is False


async def test_cli_org_seats_and_remove(store, capsys):
    data, db = store
    run = lambda *a: asyncio.to_thread(cli, data, *a)  # noqa: E731
    assert await run("org", "set-seats", "acme", "25") == 0
    async with db.read() as conn:
        assert (await OrganizationRepository().get(conn, "acme")).seats == 25
    assert await run("org", "set-seats", "acme", "--clear") == 0
    async with db.read() as conn:
        assert (await OrganizationRepository().get(conn, "acme")).seats is None
    capsys.readouterr()
    assert await run("org", "set-seats", "acme", "0") == 1
    assert "seats must be" in capsys.readouterr().err
    assert await run("org", "remove", "acme", "--yes") == 0
    async with db.read() as conn:
        assert await OrganizationRepository().get(conn, "acme") is None
        assert await UserRepository().list(conn, "acme") == []
    assert await run("org", "remove", "acme", "--yes") == 1
