import httpx
import pytest

from aiusage.auth.errors import KeySourceError
from aiusage.auth.jwks import JwksKeySource, parse_jwks
from aiusage.auth.keys import rsa_public_jwk

URL = "http://127.0.0.1:1/jwks.json"


class JwksServer:
    """What the IdP serves; counts requests."""

    def __init__(self, *keys):
        self.keys = list(keys)
        self.requests = 0
        self.status = 200

    def set(self, *keys):
        self.keys = list(keys)

    def handler(self, request):
        self.requests += 1
        if self.status != 200:
            return httpx.Response(self.status)
        return httpx.Response(200, json={"keys": self.keys})


def jwk(key, kid, **extra):
    d = dict(rsa_public_jwk(key.public_key()), kid=kid)
    d.update(extra)
    return d


@pytest.fixture
def make_source(clock):
    created = []

    def make(server, **kw):
        client = httpx.AsyncClient(transport=httpx.MockTransport(server.handler))
        src = JwksKeySource(URL, client=client, clock=clock, **kw)
        created.append(client)
        return src

    yield make


async def test_keys_are_fetched_once_and_cached(make_source, rsa_key):
    server = JwksServer(jwk(rsa_key, "a"))
    src = make_source(server)
    for _ in range(5):
        assert [k.kid for k in await src.keys_for("a")] == ["a"]
    assert server.requests == 1


async def test_an_unknown_kid_triggers_one_refetch_and_finds_a_rotated_key(
    make_source, clock, rsa_key, other_rsa_key
):
    server = JwksServer(jwk(rsa_key, "a"))
    src = make_source(server, min_refetch_interval=30)
    await src.keys_for("a")
    clock.advance(31)
    server.set(jwk(rsa_key, "a"), jwk(other_rsa_key, "b"))
    assert [k.kid for k in await src.keys_for("b")] == ["b"]
    assert server.requests == 2


async def test_refetching_for_unknown_kids_is_rate_limited(make_source, clock, rsa_key):
    server = JwksServer(jwk(rsa_key, "a"))
    src = make_source(server, min_refetch_interval=30)
    await src.keys_for("a")
    for i in range(50):
        assert await src.keys_for(f"random-{i}") == []
    assert server.requests == 1  # the first fetch happened just now: no refetch allowed yet
    clock.advance(30)
    assert await src.keys_for("still-unknown") == []
    assert await src.keys_for("again-unknown") == []
    assert server.requests == 2


async def test_a_stale_cache_is_refreshed(make_source, clock, rsa_key, other_rsa_key):
    server = JwksServer(jwk(rsa_key, "a"))
    src = make_source(server, cache_ttl=300, min_refetch_interval=30)
    await src.keys_for("a")
    server.set(jwk(other_rsa_key, "b"))
    clock.advance(301)
    assert await src.keys_for("a") == []  # key "a" was retired by the IdP
    assert server.requests == 2


async def test_a_failed_refresh_keeps_the_previous_keys(make_source, clock, rsa_key):
    server = JwksServer(jwk(rsa_key, "a"))
    src = make_source(server, cache_ttl=10, min_refetch_interval=5)
    await src.keys_for("a")
    server.status = 503
    clock.advance(11)
    assert [k.kid for k in await src.keys_for("a")] == ["a"]
    assert server.requests == 2


async def test_no_keys_ever_is_a_key_source_error_and_retries_are_rate_limited(make_source, clock):
    server = JwksServer()
    server.status = 500
    src = make_source(server, min_refetch_interval=30)
    with pytest.raises(KeySourceError):
        await src.keys_for("a")
    with pytest.raises(KeySourceError):
        await src.keys_for("a")
    assert server.requests == 1
    clock.advance(30)
    server.status = 200
    assert await src.keys_for("a") == []
    assert server.requests == 2


async def test_concurrent_lookups_share_one_fetch(make_source, rsa_key):
    import asyncio

    server = JwksServer(jwk(rsa_key, "a"))
    src = make_source(server)
    results = await asyncio.gather(*(src.keys_for("a") for _ in range(20)))
    assert all(len(r) == 1 for r in results)
    assert server.requests == 1


def test_parse_jwks_skips_encryption_private_symmetric_and_broken_keys(rsa_key):
    doc = {
        "keys": [
            jwk(rsa_key, "sig"),
            jwk(rsa_key, "enc", use="enc"),
            jwk(rsa_key, "priv", d="AAAA"),
            {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
            {"kty": "RSA", "kid": "broken", "n": "!!", "e": "AQAB"},
            "not a dict",
        ]
    }
    assert [k.kid for k in parse_jwks(doc)] == ["sig"]


def test_parse_jwks_needs_a_keys_array():
    with pytest.raises(KeySourceError):
        parse_jwks({"nokeys": []})


async def test_kid_none_gets_every_key(make_source, rsa_key, other_rsa_key):
    server = JwksServer(jwk(rsa_key, "a"), jwk(other_rsa_key, "b"))
    src = make_source(server)
    assert {k.kid for k in await src.keys_for(None)} == {"a", "b"}
