"""Unknown ``kid`` with a JWKS URL key source, against a real HTTP server on 127.0.0.1:
refused with 401, the JWKS is refetched once (key rotation), and refetching is rate-limited
so random ``kid`` values cannot hammer the identity provider."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from aiusage.auth.jwks import JwksKeySource
from aiusage.auth.keys import rsa_public_jwk
from aiusage.auth.tokens import TokenConfig, TokenVerifier
from aiusage.realtime.access import make_authenticate
from tests.security.kit import Directory, HubWorld
from tests.support.hub_client import FakeClock

NOW = 1_800_000_000


class IdP:
    """A tiny identity provider publishing a JWKS document."""

    def __init__(self):
        self.keys = {}
        self.requests = 0
        idp = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                idp.requests += 1
                body = json.dumps(
                    {
                        "keys": [
                            dict(rsa_public_jwk(k.public_key()), kid=kid, alg="RS256", use="sig")
                            for kid, k in idp.keys.items()
                        ]
                    }
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/.well-known/jwks.json"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)

    def token(self, kid, key=None, **over):
        claims = {
            "sub": "u1",
            "org": "acme",
            "role": "Admin",
            "iat": NOW,
            "exp": NOW + 600,
            "iss": "https://idp",
            "aud": "aiusage",
        }
        claims.update(over)
        return jwt.encode(claims, key or self.keys[kid], algorithm="RS256", headers={"kid": kid})


@pytest.fixture(scope="module")
def keys():
    return [rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(3)]


@pytest.fixture
async def idp():
    server = IdP()
    yield server
    server.close()


@pytest.fixture
async def setup(idp, keys):
    idp.keys = {"k1": keys[0]}
    mono = FakeClock()
    source = JwksKeySource(idp.url, clock=mono, min_refetch_interval=30, cache_ttl=300)
    verifier = TokenVerifier(
        TokenConfig(source, issuer="https://idp", audience="aiusage"), clock=lambda: NOW
    )
    directory = Directory()
    directory.org("acme")
    hook = make_authenticate(verifier, directory, cache_ttl=0)
    yield idp, source, hook, mono
    await source.aclose()


async def test_a_known_kid_connects(setup):
    idp, source, hook, _ = setup
    principal = await hook(HubWorld.request(idp.token("k1")))
    assert principal.user_id == "acme:u1" and idp.requests == 1


async def test_an_unknown_kid_is_401_and_refetches_at_most_once_per_interval(setup, keys):
    idp, source, hook, mono = setup
    await hook(HubWorld.request(idp.token("k1")))
    mono.advance(31)
    # First unknown kid: one refetch (maybe the IdP rotated); still unknown -> 401.
    for i in range(25):
        status, message = await _refusal(hook, idp.token(f"rogue-{i}", key=keys[2]))
        assert (status, message) == (401, "Unauthorized")
    assert idp.requests == 2  # the initial fetch + exactly one refetch for 25 unknown kids


async def test_a_rotated_key_is_picked_up_by_the_refetch(setup, keys):
    idp, source, hook, mono = setup
    await hook(HubWorld.request(idp.token("k1")))
    idp.keys["k2"] = keys[1]
    mono.advance(30)
    principal = await hook(HubWorld.request(idp.token("k2")))
    assert principal.user_id == "acme:u1" and idp.requests == 2


async def test_a_kid_that_names_a_real_key_but_is_signed_by_another_is_401(setup, keys):
    idp, source, hook, _ = setup
    assert await _refusal(hook, idp.token("k1", key=keys[2])) == (401, "Unauthorized")


async def _refusal(hook, token):
    from hubserver.errors import AuthenticationFailed

    try:
        await hook(HubWorld.request(token))
    except AuthenticationFailed as exc:
        return exc.status, exc.message
    raise AssertionError("accepted")
