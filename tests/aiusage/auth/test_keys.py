import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from aiusage.auth.errors import KeySourceError
from aiusage.auth.keys import StaticKeySource, VerificationKey, jwk_thumbprint, load_public_keys_pem


def _b64int(s):
    import base64

    return int.from_bytes(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)), "big")


def test_thumbprint_matches_the_rfc_7638_section_3_1_example():
    n = (
        "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECP"
        "ebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY"
        "368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0f"
        "M4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
    )
    key = rsa.RSAPublicNumbers(_b64int("AQAB"), _b64int(n)).public_key()
    assert jwk_thumbprint(key) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def test_thumbprint_is_none_for_non_rsa_keys(ec_key):
    assert jwk_thumbprint(ec_key.public_key()) is None


def _pem(key):
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def test_a_pem_bundle_yields_every_public_key(rsa_key, other_rsa_key):
    keys = load_public_keys_pem(_pem(rsa_key) + b"\n" + _pem(other_rsa_key))
    assert [k.public_numbers() for k in keys] == [
        rsa_key.public_key().public_numbers(),
        other_rsa_key.public_key().public_numbers(),
    ]


@pytest.mark.parametrize(
    "data", [b"", b"not a pem", b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"]
)
def test_unusable_pem_is_a_key_source_error(data):
    with pytest.raises(KeySourceError):
        load_public_keys_pem(data)


async def test_static_source_picks_the_key_by_thumbprint_else_tries_all(rsa_key, other_rsa_key):
    source = StaticKeySource.from_pem(_pem(rsa_key) + _pem(other_rsa_key))
    kid = jwk_thumbprint(other_rsa_key.public_key())
    picked = await source.keys_for(kid)
    assert [k.kid for k in picked] == [kid]
    assert len(await source.keys_for(None)) == 2
    assert len(await source.keys_for("some-external-kid")) == 2


def test_static_source_needs_at_least_one_key():
    with pytest.raises(KeySourceError):
        StaticKeySource([])


async def test_explicit_kids_are_kept(rsa_key):
    source = StaticKeySource([VerificationKey("k1", rsa_key.public_key())])
    assert [k.kid for k in await source.keys_for("k1")] == ["k1"]
