import httpx
import pytest
from fastapi import FastAPI

from aiusage.api.auth_routes import install_auth_routes, router
from aiusage.auth.issuer import BuiltinIssuer
from aiusage.auth.login import LoginService
from aiusage.auth.passwords import hash_password
from aiusage.auth.ratelimit import LoginRateLimiter
from aiusage.auth.tokens import TokenVerifier


class Users:
    def __init__(self, rows):
        self.rows = rows

    async def get_user_by_email(self, email):
        return self.rows.get(email)


class Clock:
    now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture(scope="module")
def issuer(tmp_path_factory):
    return BuiltinIssuer.load_or_create(tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="module")
def users():
    return Users({"ann@acme.io": ("u-ann", "acme", "Admin", hash_password("pw"), True)})


def make_client(issuer, users, clock=None):
    app = FastAPI()
    app.include_router(router)
    limiter = LoginRateLimiter(max_failures=2, window=60, clock=clock or Clock())
    install_auth_routes(app, login=LoginService(users, issuer, limiter), issuer=issuer)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


async def test_login_returns_token_expiry_and_user(issuer, users):
    async with make_client(issuer, users) as c:
        r = await c.post("/api/auth/login", json={"email": "ann@acme.io", "password": "pw"})
    assert r.status_code == 200
    body = r.json()
    assert body["user"] == {
        "id": "u-ann",
        "email": "ann@acme.io",
        "organizationId": "acme",
        "role": "Admin",
    }
    p = await TokenVerifier(issuer.token_config()).verify(body["token"])
    assert p.sub == "u-ann"
    from datetime import datetime

    assert datetime.fromisoformat(body["expiresAt"]).timestamp() == p.exp


async def test_bad_credentials_get_a_generic_401_then_429(issuer, users):
    async with make_client(issuer, users) as c:
        for email in ("ann@acme.io", "ghost@acme.io"):
            r = await c.post("/api/auth/login", json={"email": email, "password": "wrong"})
            assert r.status_code == 401 and r.json() == {"detail": "Invalid email or password"}
        r = await c.post("/api/auth/login", json={"email": "ann@acme.io", "password": "wrong"})
        assert r.status_code == 401
        r = await c.post("/api/auth/login", json={"email": "ann@acme.io", "password": "pw"})
        assert r.status_code == 429 and r.headers["retry-after"] == "60"
        assert "token" not in r.text


async def test_malformed_bodies_get_422(issuer, users):
    async with make_client(issuer, users) as c:
        assert (
            await c.post("/api/auth/login", json={"email": "", "password": "x"})
        ).status_code == 422
        assert (await c.post("/api/auth/login", json={"email": "a"})).status_code == 422


async def test_jwks_is_served_and_matches_the_issuer(issuer, users):
    async with make_client(issuer, users) as c:
        r = await c.get("/.well-known/jwks.json")
    assert r.status_code == 200 and r.json() == issuer.jwks()


async def test_endpoints_are_404_when_not_configured():
    app = FastAPI()
    app.include_router(router)
    install_auth_routes(app, login=None, issuer=None)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        assert (await c.get("/.well-known/jwks.json")).status_code == 404
        assert (
            await c.post("/api/auth/login", json={"email": "a", "password": "b"})
        ).status_code == 404
