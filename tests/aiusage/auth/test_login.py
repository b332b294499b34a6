import pytest

from aiusage.auth.errors import InvalidCredentials, RateLimited
from aiusage.auth.issuer import BuiltinIssuer
from aiusage.auth.login import LoginService
from aiusage.auth.passwords import hash_password
from aiusage.auth.ratelimit import LoginRateLimiter
from aiusage.auth.tokens import TokenVerifier


class Users:
    def __init__(self):
        self.rows = {}
        self.lookups = []

    def add(self, email, user_id, org, role, password, active=True):
        self.rows[email] = (
            user_id,
            org,
            role,
            hash_password(password) if password else None,
            active,
        )

    async def get_user_by_email(self, email):
        self.lookups.append(email)
        return self.rows.get(email)


@pytest.fixture(scope="module")
def users():
    u = Users()
    u.add("ann@acme.io", "u-ann", "acme", "Admin", "pw-ann")
    u.add("old@acme.io", "u-old", "acme", "Manager", "pw-old", active=False)
    u.add("sso@acme.io", "u-sso", "acme", "Manager", None)
    return u


@pytest.fixture(scope="module")
def issuer(tmp_path_factory):
    return BuiltinIssuer.load_or_create(tmp_path_factory.mktemp("keys"))


async def test_good_credentials_yield_a_verifiable_token(users, issuer, clock):
    service = LoginService(users, issuer, LoginRateLimiter(clock=clock), token_ttl=900)
    result = await service.login("  Ann@Acme.io ", "pw-ann", "10.0.0.1")
    assert (result.user_id, result.org_id, result.role, result.email) == (
        "u-ann",
        "acme",
        "Admin",
        "ann@acme.io",
    )
    p = await TokenVerifier(issuer.token_config()).verify(result.token)
    assert (p.sub, p.org, p.roles, p.exp) == ("u-ann", "acme", {"Admin"}, result.expires_at)


@pytest.mark.parametrize(
    ("email", "password"),
    [
        ("ann@acme.io", "nope"),
        ("nobody@acme.io", "pw-ann"),
        ("old@acme.io", "pw-old"),
        ("sso@acme.io", "x"),
        ("ann@acme.io", "p" * 5000),
        ("", "x"),
    ],
)
async def test_every_failure_is_the_same_error(users, issuer, clock, email, password):
    service = LoginService(users, issuer, LoginRateLimiter(clock=clock))
    with pytest.raises(InvalidCredentials) as info:
        await service.login(email, password, "10.0.0.2")
    assert str(info.value) == "Invalid email or password"


async def test_repeated_failures_are_rate_limited_even_with_the_right_password(
    users, issuer, clock
):
    service = LoginService(users, issuer, LoginRateLimiter(max_failures=3, window=60, clock=clock))
    for _ in range(3):
        with pytest.raises(InvalidCredentials):
            await service.login("ann@acme.io", "bad", "10.0.0.3")
    lookups = len(users.lookups)
    with pytest.raises(RateLimited) as info:
        await service.login("ann@acme.io", "pw-ann", "10.0.0.3")
    assert info.value.retry_after == 60
    assert len(users.lookups) == lookups  # refused before touching the store
    clock.advance(60)
    assert (await service.login("ann@acme.io", "pw-ann", "10.0.0.3")).user_id == "u-ann"
