"""Forged, stale and incomplete tokens are refused with 401, and a
refused client never becomes a connection that could receive a tenant's messages.

Each case goes through the AnalyticsHub's real authentication hook; the verifier's reason
(logged, never sent) is asserted too, so a case cannot pass for the wrong reason.
"""

import base64
import hashlib
import hmac
import json

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from aiusage.auth.errors import InvalidToken
from aiusage.realtime.hub import org_group
from tests.security.kit import invocations, settle

NOW = 1_800_000_000


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64json(obj) -> str:
    return b64(json.dumps(obj, separators=(",", ":")).encode())


def good_claims(**over):
    claims = {
        "iss": "aiusage",
        "aud": "aiusage",
        "sub": "mallory",
        "org": "acme",
        "role": "Admin",
        "iat": NOW,
        "exp": NOW + 600,
    }
    claims.update(over)
    return {k: v for k, v in claims.items() if v is not None}


async def assert_refused_401(world, token, reason):
    """401 Unauthorized at the hook, the expected log reason, and nothing delivered."""
    victim = await world.connect(world.token("ann", "acme", "Admin"))
    before = {c.connection_id for c in world.handler.local_connections()}
    assert await world.refusal(token) == (401, "Unauthorized")
    assert await world.refusal(token, via_query=True) == (401, "Unauthorized")
    with pytest.raises(InvalidToken) as info:
        await world.verifier.verify(token)
    assert info.value.reason == reason
    # The tenant's traffic still reaches exactly the connections that were there before.
    await world.handler.hub_context.clients.group(org_group("acme")).send(
        "SessionStarted", {"sessionId": "s1"}
    )
    await settle()
    assert {c.connection_id for c in world.handler.local_connections()} == before
    assert [m.arguments for m in invocations(victim, "SessionStarted")] == [[{"sessionId": "s1"}]]


async def test_alg_none_is_refused(world):
    token = f"{b64json({'alg': 'none', 'typ': 'JWT'})}.{b64json(good_claims())}."
    await assert_refused_401(world, token, "algorithm not allowed: 'none'")


async def test_hs256_signed_with_the_rsa_public_key_is_refused(world):
    # The classic key-confusion attack: the attacker knows the public key (it is published
    # in the JWKS) and uses its PEM bytes as an HMAC secret.
    pem = world.issuer.public_key_pem()
    header = b64json({"alg": "HS256", "typ": "JWT", "kid": world.issuer.kid})
    body = b64json(good_claims())
    sig = hmac.new(pem, f"{header}.{body}".encode(), hashlib.sha256).digest()
    token = f"{header}.{body}.{b64(sig)}"
    await assert_refused_401(world, token, "algorithm not allowed: 'HS256'")


async def test_an_expired_token_is_refused(world):
    token = world.token("mallory", "acme", "Admin", ttl=60)
    world.wall.advance(60 + 10 + 1)  # past exp and past the 10 s leeway
    await assert_refused_401(world, token, "token expired")


async def test_a_token_not_yet_valid_is_refused(world):
    token = jwt.encode(
        good_claims(nbf=NOW + 3600),
        world.issuer._private,
        algorithm="RS256",
        headers={"kid": world.issuer.kid},
    )
    world.wall.now = NOW
    await assert_refused_401(world, token, "token not yet valid (nbf)")


async def test_a_wrong_issuer_is_refused(world):
    world.wall.now = NOW
    token = jwt.encode(
        good_claims(iss="https://evil.example"), world.issuer._private, algorithm="RS256"
    )
    await assert_refused_401(world, token, "wrong issuer")


async def test_a_wrong_audience_is_refused(world):
    world.wall.now = NOW
    token = jwt.encode(good_claims(aud="another-service"), world.issuer._private, algorithm="RS256")
    await assert_refused_401(world, token, "wrong audience")


async def test_a_tampered_payload_is_refused(world):
    header, _body, sig = world.token("mallory", "globex", "Manager").split(".")
    claims = good_claims(org="acme", role="SuperAdmin", exp=int(world.wall.now) + 600)
    forged = f"{header}.{b64json(claims)}.{sig}"
    await assert_refused_401(world, forged, "bad signature")


async def test_a_token_from_another_key_is_refused(world):
    rogue = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    world.wall.now = NOW
    token = jwt.encode(good_claims(), rogue, algorithm="RS256", headers={"kid": world.issuer.kid})
    await assert_refused_401(world, token, "bad signature")


@pytest.mark.parametrize(
    ("missing", "reason"),
    [
        ("sub", "missing claim 'sub'"),
        ("org", "missing or empty 'org' claim"),
        ("role", "missing 'role' claim"),
        ("exp", "missing claim 'exp'"),
    ],
)
async def test_missing_claims_are_refused(world, missing, reason):
    world.wall.now = NOW
    token = jwt.encode(
        good_claims(**{missing: None}),
        world.issuer._private,
        algorithm="RS256",
        headers={"kid": world.issuer.kid},
    )
    await assert_refused_401(world, token, reason)


async def test_no_token_at_all_is_refused(world):
    assert await world.refusal(None) == (401, "Unauthorized")


async def test_a_malformed_bearer_value_is_refused(world):
    await assert_refused_401(world, "not-a-jwt", "malformed token")


def test_the_public_key_really_is_what_the_attacker_would_use(world):
    # Guard for the key-confusion case: the PEM used as HMAC secret is the published key.
    published = jwt.PyJWK(world.issuer.jwks()["keys"][0]).key
    assert (
        published.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        == world.issuer.public_key_pem()
    )
