import os
import stat
import threading

import jwt
import pytest

from aiusage.auth.errors import KeySourceError
from aiusage.auth.issuer import KEY_FILE_NAME, BuiltinIssuer
from aiusage.auth.keys import jwk_thumbprint
from aiusage.auth.tokens import TokenVerifier


def test_first_start_creates_a_0600_rsa_2048_key(tmp_path):
    issuer = BuiltinIssuer.load_or_create(tmp_path / "data")
    path = tmp_path / "data" / KEY_FILE_NAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert issuer.public_key.key_size == 2048
    assert [p.name for p in (tmp_path / "data").iterdir()] == [KEY_FILE_NAME]  # no temp leftovers


def test_the_key_survives_restarts(tmp_path):
    a = BuiltinIssuer.load_or_create(tmp_path)
    b = BuiltinIssuer.load_or_create(tmp_path)
    assert a.kid == b.kid


def test_concurrent_first_starts_agree_on_one_key(tmp_path):
    kids, errors = [], []

    def start():
        try:
            kids.append(BuiltinIssuer.load_or_create(tmp_path).kid)
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors and len(set(kids)) == 1 and len(kids) == 4


def test_kid_is_the_rfc_7638_thumbprint_and_jwks_publishes_it(tmp_path):
    issuer = BuiltinIssuer.load_or_create(tmp_path)
    assert issuer.kid == jwk_thumbprint(issuer.public_key)
    (key,) = issuer.jwks()["keys"]
    assert (
        key["kid"] == issuer.kid
        and key["alg"] == "RS256"
        and key["use"] == "sig"
        and key["kty"] == "RSA"
    )
    assert "d" not in key
    assert jwt.PyJWK(key).key.public_numbers() == issuer.public_key.public_numbers()


async def test_issued_tokens_verify_with_the_issuer_config(tmp_path):
    now = [1_800_000_000.0]
    issuer = BuiltinIssuer.load_or_create(tmp_path, clock=lambda: now[0])
    token, exp = issuer.issue_with_expiry("u1", "o1", "Manager", ttl=120)
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "RS256" and header["kid"] == issuer.kid
    verifier = TokenVerifier(issuer.token_config(), clock=lambda: now[0])
    p = await verifier.verify(token)
    assert (p.sub, p.org, p.roles, p.exp) == ("u1", "o1", {"Manager"}, exp)
    assert exp == 1_800_000_120
    assert p.claims["iss"] == "aiusage" and p.claims["aud"] == "aiusage"


async def test_several_roles_are_written_as_a_list(tmp_path):
    issuer = BuiltinIssuer.load_or_create(tmp_path)
    claims = jwt.decode(
        issuer.issue("u", "o", ["Manager", "Admin"]), options={"verify_signature": False}
    )
    assert claims["role"] == ["Admin", "Manager"]


@pytest.mark.parametrize(
    ("sub", "org", "role", "ttl"),
    [
        ("", "o", "Admin", 60),
        ("u", "", "Admin", 60),
        ("u", "o", [], 60),
        ("u", "o", "Admin", 0),
        ("u", "o", "Admin", 10**9),
    ],
)
def test_bad_issue_arguments_are_refused(tmp_path, sub, org, role, ttl):
    issuer = BuiltinIssuer.load_or_create(tmp_path)
    with pytest.raises(ValueError):
        issuer.issue(sub, org, role, ttl)


def test_a_corrupt_key_file_is_reported(tmp_path):
    (tmp_path / KEY_FILE_NAME).write_bytes(b"garbage")
    os.chmod(tmp_path / KEY_FILE_NAME, 0o600)
    with pytest.raises(KeySourceError):
        BuiltinIssuer.load_or_create(tmp_path)


def test_a_world_readable_key_is_warned_about(tmp_path, caplog):
    BuiltinIssuer.load_or_create(tmp_path)
    os.chmod(tmp_path / KEY_FILE_NAME, 0o644)
    BuiltinIssuer.load_or_create(tmp_path)
    assert "readable by others" in caplog.text


def test_the_public_key_pem_loads_into_a_static_source(tmp_path):
    from aiusage.auth.keys import StaticKeySource

    issuer = BuiltinIssuer.load_or_create(tmp_path)
    assert StaticKeySource.from_pem(issuer.public_key_pem()).keys[0].kid == issuer.kid
