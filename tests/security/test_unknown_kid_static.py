"""Unknown ``kid`` values are refused when the key set has kids, for every key source: the
JWKS URL source already did (test_jwks_unknown_kid.py); the built-in issuer's key set
(published under its RFC 7638 thumbprint) now does too, on REST and on the hub. Bare PEM
keys publish no kid, so an external issuer's own kid values still verify against them."""

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from aiusage.auth.errors import InvalidToken
from aiusage.auth.keys import StaticKeySource
from aiusage.auth.tokens import TokenConfig, TokenVerifier

NOW = 1_800_000_000


def claims(**over):
    base = {
        "iss": "aiusage",
        "aud": "aiusage",
        "sub": "ann",
        "org": "acme",
        "role": "Admin",
        "iat": NOW,
        "exp": NOW + 600,
    }
    base.update(over)
    return base


def sign(issuer, headers):
    return jwt.encode(claims(), issuer._private, algorithm="RS256", headers=headers)


async def test_the_real_key_under_a_kid_the_key_set_does_not_have_is_401(world):
    issuer = world.issuer
    verifier = TokenVerifier(issuer.token_config(), clock=lambda: NOW)
    with pytest.raises(InvalidToken, match="unknown kid"):
        await verifier.verify(sign(issuer, {"kid": "rogue"}))
    assert (await verifier.verify(sign(issuer, {"kid": issuer.kid}))).sub == "ann"
    # No kid at all: still checked against the key (RFC 7515 makes kid optional).
    assert (await verifier.verify(sign(issuer, {}))).sub == "ann"


async def test_the_hub_refuses_an_unknown_kid_with_401(world):
    token = jwt.encode(
        claims(iat=int(world.wall.now), exp=int(world.wall.now) + 600),
        world.issuer._private,
        algorithm="RS256",
        headers={"kid": "rogue"},
    )
    assert await world.refusal(token) == (401, "Unauthorized")


async def test_bare_pem_keys_accept_an_external_issuers_kid(world):
    pem = world.issuer._private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    verifier = TokenVerifier(
        TokenConfig(StaticKeySource.from_pem(pem), issuer="aiusage", audience="aiusage"),
        clock=lambda: NOW,
    )
    assert (await verifier.verify(sign(world.issuer, {"kid": "idp-key-7"}))).sub == "ann"
