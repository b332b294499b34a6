import httpx
import pytest
from fastapi import Depends, FastAPI

from aiusage.auth.deps import TenantScope, install_verifier, require_principal, require_tenant
from aiusage.auth.issuer import BuiltinIssuer
from aiusage.auth.tokens import TokenVerifier


@pytest.fixture(scope="module")
def issuer(tmp_path_factory):
    return BuiltinIssuer.load_or_create(tmp_path_factory.mktemp("keys"))


@pytest.fixture
def client(issuer):
    app = FastAPI()
    install_verifier(app, TokenVerifier(issuer.token_config()))

    @app.get("/any")
    async def any_user(p=Depends(require_principal())):
        return {"sub": p.sub}

    @app.get("/agents")
    async def agents(p=Depends(require_principal(roles={"Agent"}))):
        return {"sub": p.sub}

    @app.get("/tenant")
    async def tenant(
        scope: TenantScope = Depends(require_tenant(roles={"Admin", "Manager", "SuperAdmin"})),
    ):
        return {"org": scope.org_id}

    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


async def test_missing_and_invalid_tokens_get_401_with_a_bearer_challenge(client):
    for headers in ({}, bearer("junk"), {"Authorization": "Basic abc"}):
        r = await client.get("/any", headers=headers)
        assert r.status_code == 401
        assert r.json() == {"detail": "Unauthorized"}
        assert r.headers["www-authenticate"] == "Bearer"


async def test_a_valid_token_in_header_or_query_is_accepted(client, issuer):
    token = issuer.issue("u1", "o1", "Employee")
    assert (await client.get("/any", headers=bearer(token))).json() == {"sub": "u1"}
    assert (await client.get("/any", params={"access_token": token})).json() == {"sub": "u1"}


async def test_a_role_outside_the_policy_gets_403(client, issuer):
    r = await client.get("/agents", headers=bearer(issuer.issue("u1", "o1", "Admin")))
    assert r.status_code == 403 and r.json() == {"detail": "Forbidden"}
    assert (
        await client.get("/agents", headers=bearer(issuer.issue("a1", "o1", "Agent")))
    ).status_code == 200


async def test_tenant_defaults_to_the_token_org_and_refuses_other_orgs(client, issuer):
    token = issuer.issue("u1", "o1", "Manager")
    assert (await client.get("/tenant", headers=bearer(token))).json() == {"org": "o1"}
    assert (
        await client.get("/tenant", headers={**bearer(token), "X-Organization-Id": "o1"})
    ).json() == {"org": "o1"}
    r = await client.get("/tenant", headers={**bearer(token), "X-Organization-Id": "o2"})
    assert r.status_code == 403 and r.json() == {"detail": "Organization mismatch"}
    r = await client.get("/tenant", headers=bearer(token), params={"organizationId": "o2"})
    assert r.status_code == 403


async def test_super_admin_may_pick_any_org(client, issuer):
    token = issuer.issue("root", "platform", "SuperAdmin")
    r = await client.get("/tenant", headers={**bearer(token), "X-Organization-Id": "o2"})
    assert r.json() == {"org": "o2"}


async def test_no_installed_verifier_is_a_programming_error():
    app = FastAPI()

    @app.get("/any")
    async def any_user(p=Depends(require_principal())):
        return {}

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, raise_app_exceptions=True), base_url="http://t"
    ) as c:
        with pytest.raises(RuntimeError):
            await c.get("/any", headers=bearer("x"))
