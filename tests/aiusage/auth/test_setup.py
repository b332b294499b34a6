import jwt
import pytest

from aiusage.auth.errors import InvalidToken, KeySourceError
from aiusage.auth.issuer import BuiltinIssuer
from aiusage.auth.keys import CombinedKeySource, StaticKeySource
from aiusage.auth.setup import build_verifier
from aiusage.auth.tokens import TokenConfig, TokenVerifier

NOW = 1_800_000_000


@pytest.fixture
def builtin(tmp_path):
    return BuiltinIssuer.load_or_create(tmp_path, clock=lambda: NOW)


def external_token(key, **over):
    claims = {
        "iss": "https://idp",
        "aud": "api",
        "sub": "x1",
        "org": "o9",
        "role": "Manager",
        "exp": NOW + 60,
    }
    claims.update(over)
    return jwt.encode(claims, key, algorithm="RS256")


def pem_file(tmp_path, key):
    from cryptography.hazmat.primitives import serialization

    path = tmp_path / "idp.pem"
    path.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return path


async def test_builtin_and_external_issuers_are_both_trusted(tmp_path, builtin, rsa_key):
    v = build_verifier(
        builtin,
        jwt_issuer="https://idp",
        jwt_audience="api",
        public_key_file=pem_file(tmp_path, rsa_key),
        clock=lambda: NOW,
    )
    assert (await v.verify(builtin.issue("u1", "o1", "Admin"))).sub == "u1"
    assert (await v.verify(external_token(rsa_key))).sub == "x1"


async def test_an_issuer_cannot_borrow_the_other_issuers_rules(tmp_path, builtin, rsa_key):
    v = build_verifier(
        builtin,
        jwt_issuer="https://idp",
        jwt_audience="api",
        public_key_file=pem_file(tmp_path, rsa_key),
        clock=lambda: NOW,
    )
    # Signed by the external IdP but claiming to be the built-in issuer: checked with the
    # built-in key, so the signature fails.
    with pytest.raises(InvalidToken) as info:
        await v.verify(external_token(rsa_key, iss="aiusage", aud="aiusage"))
    assert info.value.reason == "bad signature"
    with pytest.raises(InvalidToken) as info:
        await v.verify(external_token(rsa_key, iss="https://other"))
    assert info.value.reason == "wrong issuer"


async def test_an_external_issuer_without_iss_rule_is_the_fallback(tmp_path, builtin, rsa_key):
    v = build_verifier(builtin, public_key_file=pem_file(tmp_path, rsa_key), clock=lambda: NOW)
    assert (await v.verify(external_token(rsa_key, iss="anything", aud="whatever"))).org == "o9"


def test_no_source_at_all_is_an_error():
    with pytest.raises(KeySourceError):
        build_verifier(None)


def test_an_unreadable_pem_file_is_an_error(tmp_path):
    with pytest.raises(KeySourceError):
        build_verifier(None, public_key_file=tmp_path / "missing.pem")


def test_jwks_url_builds_a_jwks_source(builtin):
    v = build_verifier(builtin, jwks_url="http://127.0.0.1:9/jwks.json", jwt_issuer="https://idp")
    assert len(v.configs) == 2 and type(v.configs[1].key_source).__name__ == "JwksKeySource"


def test_a_verifier_needs_a_config():
    with pytest.raises(ValueError):
        TokenVerifier([])


async def test_combined_sources_merge_and_tolerate_one_failure(rsa_key, other_rsa_key):
    class Down:
        async def keys_for(self, kid):
            raise KeySourceError("down")

    combined = CombinedKeySource([Down(), StaticKeySource([rsa_key.public_key()])])
    assert len(await combined.keys_for(None)) == 1
    with pytest.raises(KeySourceError):
        await CombinedKeySource([Down(), Down()]).keys_for(None)
    v = TokenVerifier(
        TokenConfig(
            CombinedKeySource(
                [
                    StaticKeySource([other_rsa_key.public_key()]),
                    StaticKeySource([rsa_key.public_key()]),
                ]
            )
        ),
        clock=lambda: NOW,
    )
    assert (await v.verify(external_token(rsa_key))).sub == "x1"
