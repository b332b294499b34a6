"""Login guessing is bounded per account across addresses, not only per address: with the
documented defaults (docs/security.md "Login": 5 failures per e-mail and address, 50 per
address, 20 per e-mail from any address, in 5 minutes), a botnet of addresses trying one
account gets 429 with ``Retry-After`` once 20 guesses failed, even for the right password,
while other accounts are unaffected. Real route over HTTP (ASGI), fake clock."""

import httpx
import pytest
from fastapi import FastAPI

from aiusage.api.auth_routes import install_auth_routes, router
from aiusage.auth.issuer import BuiltinIssuer
from aiusage.auth.login import LoginService
from aiusage.auth.passwords import hash_password
from aiusage.auth.ratelimit import LoginRateLimiter
from tests.support.hub_client import FakeClock


class Users:
    def __init__(self, rows):
        self.rows = rows

    async def get_user_by_email(self, email):
        return self.rows.get(email)


@pytest.fixture(scope="module")
def issuer(tmp_path_factory):
    return BuiltinIssuer.load_or_create(tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="module")
def users():
    return Users(
        {
            "ann@acme.io": ("ann", "acme", "Admin", hash_password("right-pw"), True),
            "bob@acme.io": ("bob", "acme", "Admin", hash_password("bob-pw"), True),
        }
    )


@pytest.fixture
def app(issuer, users):
    clock = FakeClock()
    application = FastAPI()
    application.include_router(router)
    install_auth_routes(
        application, login=LoginService(users, issuer, LoginRateLimiter(clock=clock)), issuer=issuer
    )
    return application, clock


async def attempt(app, ip, email, password):
    transport = httpx.ASGITransport(app=app, client=(ip, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        return await c.post("/api/auth/login", json={"email": email, "password": password})


async def test_one_account_guessed_from_many_addresses_is_limited(app):
    application, clock = app
    for i in range(20):  # 20 addresses, one wrong guess each: below every per-address limit
        r = await attempt(application, f"198.51.100.{i}", "ann@acme.io", f"guess-{i}")
        assert r.status_code == 401
        clock.now += 1
    r = await attempt(application, "203.0.113.7", "ANN@acme.io ", "right-pw")
    assert r.status_code == 429 and r.json() == {"detail": "Too many login attempts"}
    assert r.headers["retry-after"] == "280"  # first failure at t, now t + 20: 300 - 20
    # Another account, from the same fresh address, is not affected.
    assert (await attempt(application, "203.0.113.7", "bob@acme.io", "bob-pw")).status_code == 200
    # Once the window has passed, the right password works again.
    clock.now += 300
    assert (await attempt(application, "203.0.113.7", "ann@acme.io", "right-pw")).status_code == 200


async def test_the_per_address_limits_still_hold(app):
    application, _ = app
    for _ in range(5):
        r = await attempt(application, "192.0.2.1", "ann@acme.io", "wrong")
        assert r.status_code == 401
    r = await attempt(application, "192.0.2.1", "ann@acme.io", "right-pw")
    assert r.status_code == 429 and r.headers["retry-after"] == "300"
    # The same account from another address is still allowed (5 < 20 account failures).
    assert (await attempt(application, "192.0.2.2", "ann@acme.io", "right-pw")).status_code == 200


def test_the_documented_thresholds_are_the_defaults():
    limiter = LoginRateLimiter()
    assert (limiter._pair.limit, limiter._ip.limit, limiter._account.limit) == (5, 50, 20)
    assert limiter._account.window == 300.0
