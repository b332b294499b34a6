import base64
import gc
import json
import tracemalloc

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from aiusage.auth.errors import InvalidToken, KeySourceError
from aiusage.auth.keys import StaticKeySource, VerificationKey
from aiusage.auth.tokens import TokenConfig, TokenVerifier

NOW = 1_800_000_000


def claims(**over):
    base = {"sub": "u1", "org": "o1", "role": "Admin", "iat": NOW, "exp": NOW + 600}
    base.update(over)
    return {k: v for k, v in base.items() if v is not None}


@pytest.fixture
def verifier(rsa_key, clock):
    clock.now = NOW
    source = StaticKeySource([VerificationKey("k1", rsa_key.public_key())])
    return TokenVerifier(TokenConfig(source, issuer="iss", audience="aud"), clock=clock)


def sign(key, payload, alg="RS256", kid="k1"):
    headers = {"kid": kid} if kid else None
    return jwt.encode(payload, key, algorithm=alg, headers=headers)


async def test_a_valid_token_yields_its_principal(verifier, rsa_key):
    p = await verifier.verify(
        sign(rsa_key, claims(iss="iss", aud="aud", role=["Admin", "Manager"]))
    )
    assert (p.sub, p.org, p.roles, p.exp) == ("u1", "o1", {"Admin", "Manager"}, NOW + 600)


async def test_an_audience_list_containing_ours_is_accepted(verifier, rsa_key):
    p = await verifier.verify(sign(rsa_key, claims(iss="iss", aud=["x", "aud"])))
    assert p.sub == "u1"


async def reason(verifier, token):
    with pytest.raises(InvalidToken) as info:
        await verifier.verify(token)
    return info.value.reason


async def test_exp_is_required(verifier, rsa_key):
    assert (
        await reason(verifier, sign(rsa_key, claims(iss="iss", aud="aud", exp=None)))
        == "missing claim 'exp'"
    )


async def test_exp_is_optional_when_configured(rsa_key, clock):
    clock.now = NOW
    v = TokenVerifier(
        TokenConfig(StaticKeySource([rsa_key.public_key()]), require_exp=False), clock=clock
    )
    assert (await v.verify(sign(rsa_key, claims(exp=None), kid=None))).exp is None


async def test_expiry_honours_the_leeway_exactly(verifier, rsa_key, clock):
    token = sign(rsa_key, claims(iss="iss", aud="aud", exp=NOW - 10))
    assert (await verifier.verify(token)).sub == "u1"  # 10 s late: inside the default leeway
    clock.now = NOW + 0.5
    assert await reason(verifier, token) == "token expired"


async def test_nbf_honours_the_leeway(verifier, rsa_key):
    assert (
        await verifier.verify(sign(rsa_key, claims(iss="iss", aud="aud", nbf=NOW + 10)))
    ).sub == "u1"
    assert (
        await reason(verifier, sign(rsa_key, claims(iss="iss", aud="aud", nbf=NOW + 11)))
        == "token not yet valid (nbf)"
    )


@pytest.mark.parametrize("field", ["exp", "nbf", "iat"])
async def test_non_numeric_time_claims_are_refused(verifier, rsa_key, field):
    r = await reason(verifier, sign(rsa_key, claims(iss="iss", aud="aud", **{field: "soon"})))
    assert r == f"claim {field!r} is not a number"


async def test_issuer_and_audience_are_required_when_configured(verifier, rsa_key):
    assert await reason(verifier, sign(rsa_key, claims(aud="aud"))) == "missing claim 'iss'"
    assert await reason(verifier, sign(rsa_key, claims(iss="iss"))) == "missing claim 'aud'"
    assert await reason(verifier, sign(rsa_key, claims(iss="evil", aud="aud"))) == "wrong issuer"
    assert await reason(verifier, sign(rsa_key, claims(iss="iss", aud="other"))) == "wrong audience"


async def test_audience_is_not_checked_when_not_configured(rsa_key, clock):
    clock.now = NOW
    v = TokenVerifier(TokenConfig(StaticKeySource([rsa_key.public_key()])), clock=clock)
    assert (await v.verify(sign(rsa_key, claims(aud="anything"), kid=None))).org == "o1"


@pytest.mark.parametrize(
    ("missing", "expected"),
    [
        ("sub", "missing claim 'sub'"),
        ("org", "missing or empty 'org' claim"),
        ("role", "missing 'role' claim"),
    ],
)
async def test_platform_claims_are_required(verifier, rsa_key, missing, expected):
    assert (
        await reason(verifier, sign(rsa_key, claims(iss="iss", aud="aud", **{missing: None})))
        == expected
    )


async def test_a_token_signed_by_another_key_is_refused(verifier, other_rsa_key):
    assert (
        await reason(verifier, sign(other_rsa_key, claims(iss="iss", aud="aud"))) == "bad signature"
    )


async def test_the_next_key_is_tried_when_the_signature_does_not_match(
    rsa_key, other_rsa_key, clock
):
    clock.now = NOW
    v = TokenVerifier(
        TokenConfig(StaticKeySource([other_rsa_key.public_key(), rsa_key.public_key()])),
        clock=clock,
    )
    assert (await v.verify(sign(rsa_key, claims(), kid=None))).sub == "u1"


@pytest.mark.parametrize("token", ["", "abc", "a.b", "a.b.c.d", "!!!.###.$$$", "x" * 20000])
async def test_garbage_is_refused(verifier, token):
    with pytest.raises(InvalidToken):
        await verifier.verify(token)


async def test_algorithms_are_checked_against_the_allow_list_before_any_key_lookup(rsa_key, clock):
    class ExplodingSource:
        async def keys_for(self, kid):
            raise AssertionError("key source must not be consulted")

    v = TokenVerifier(TokenConfig(ExplodingSource()), clock=clock)
    for alg in ("HS256", "none", "RS512", "ES256"):
        header = base64.urlsafe_b64encode(json.dumps({"alg": alg}).encode()).rstrip(b"=").decode()
        body = base64.urlsafe_b64encode(json.dumps(claims()).encode()).rstrip(b"=").decode()
        with pytest.raises(InvalidToken) as info:
            await v.verify(f"{header}.{body}.sig")
        assert info.value.reason == f"algorithm not allowed: {alg!r}"


async def test_a_critical_header_is_refused(verifier, rsa_key):
    token = jwt.encode(
        claims(iss="iss", aud="aud"),
        rsa_key,
        algorithm="RS256",
        headers={"kid": "k1", "crit": ["exp"]},
    )
    # PyJWT already refuses unknown critical extensions while parsing the header.
    assert await reason(verifier, token) in {"malformed token", "unsupported critical header"}


async def test_a_key_source_failure_is_an_invalid_token(clock, rsa_key):
    class Down:
        async def keys_for(self, kid):
            raise KeySourceError("JWKS not available")

    v = TokenVerifier(TokenConfig(Down()), clock=clock)
    assert (await reason(v, sign(rsa_key, claims()))).startswith("no verification key available")


async def test_an_unknown_kid_is_refused(clock, rsa_key):
    class Empty:
        async def keys_for(self, kid):
            return []

    v = TokenVerifier(TokenConfig(Empty()), clock=clock)
    assert await reason(v, sign(rsa_key, claims(), kid="nope")) == "unknown kid 'nope'"


async def test_es256_works_when_allowed(ec_key, clock):
    clock.now = NOW
    v = TokenVerifier(
        TokenConfig(StaticKeySource([ec_key.public_key()]), algorithms=("ES256",)), clock=clock
    )
    assert (await v.verify(sign(ec_key, claims(), alg="ES256", kid=None))).sub == "u1"


@pytest.mark.parametrize("algs", [(), ("HS256",), ("RS256", "none")])
def test_symmetric_or_empty_algorithm_lists_cannot_be_configured(rsa_key, algs):
    with pytest.raises(ValueError):
        TokenConfig(StaticKeySource([rsa_key.public_key()]), algorithms=algs)


@pytest.mark.parametrize("leeway", [-1, 30.5, 60])
def test_leeway_is_bounded_to_30_seconds(rsa_key, leeway):
    with pytest.raises(ValueError):
        TokenConfig(StaticKeySource([rsa_key.public_key()]), leeway=leeway)


def test_default_leeway_is_10_seconds_and_rs256_only(rsa_key):
    cfg = TokenConfig(StaticKeySource([rsa_key.public_key()]))
    assert cfg.leeway == 10 and cfg.algorithms == ("RS256",)


def test_pem_helper_round_trip(rsa_key):
    pem = rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert StaticKeySource.from_pem(pem).keys[0].kid is not None


class _CountingKeys:
    """A key source whose keys can be removed (rotation) and whose lookups are counted."""

    def __init__(self, key):
        self.keys = [VerificationKey("k1", key.public_key())]
        self.lookups = 0

    async def keys_for(self, kid):
        self.lookups += 1
        return [k for k in self.keys if k.kid == kid]


async def test_a_verified_token_is_remembered_for_the_cache_ttl_only(rsa_key, clock):
    clock.now = NOW
    keys = _CountingKeys(rsa_key)
    v = TokenVerifier(TokenConfig(keys), clock=clock, cache_ttl_s=60)
    token = sign(rsa_key, claims())
    for _ in range(3):
        assert (await v.verify(token)).sub == "u1"
    assert keys.lookups == 1  # the signature was checked once
    clock.now = NOW + 60
    assert (await v.verify(token)).sub == "u1"
    assert keys.lookups == 2


async def test_a_removed_key_stops_accepting_remembered_tokens_after_the_ttl(rsa_key, clock):
    clock.now = NOW
    keys = _CountingKeys(rsa_key)
    v = TokenVerifier(TokenConfig(keys), clock=clock, cache_ttl_s=60)
    token = sign(rsa_key, claims())
    await v.verify(token)
    keys.keys = []  # the issuer rotated k1 out
    clock.now = NOW + 59
    assert (await v.verify(token)).sub == "u1"  # documented window
    clock.now = NOW + 60
    assert await reason(v, token) == "unknown kid 'k1'"


async def test_a_tampered_copy_of_a_remembered_token_is_verified_and_refused(rsa_key, clock):
    clock.now = NOW
    v = TokenVerifier(TokenConfig(_CountingKeys(rsa_key)), clock=clock)
    token = sign(rsa_key, claims())
    await v.verify(token)
    head, body, sig = token.split(".")
    forged = base64.urlsafe_b64encode(json.dumps(claims(role="SuperAdmin")).encode())
    assert await reason(v, f"{head}.{forged.decode().rstrip('=')}.{sig}") == "bad signature"


async def test_the_cache_is_bounded_and_can_be_switched_off(rsa_key, clock):
    clock.now = NOW
    keys = _CountingKeys(rsa_key)
    v = TokenVerifier(TokenConfig(keys), clock=clock, cache_size=2)
    tokens = [sign(rsa_key, claims(sub=f"u{i}")) for i in range(3)]
    for t in tokens:
        await v.verify(t)
    await v.verify(tokens[0])  # evicted by the third: verified again
    assert keys.lookups == 4
    off = TokenVerifier(TokenConfig(keys), clock=clock, cache_size=0)
    await off.verify(tokens[1])
    await off.verify(tokens[1])
    assert keys.lookups == 6


async def test_tokens_nobody_presents_any_more_leave_the_cache(rsa_key, clock):
    clock.now = NOW
    v = TokenVerifier(TokenConfig(_CountingKeys(rsa_key)), clock=clock, cache_ttl_s=60)
    for i in range(3):
        await v.verify(sign(rsa_key, claims(sub=f"u{i}")))
    assert len(v._verified) == 3
    clock.now = NOW + 61
    await v.verify(sign(rsa_key, claims(sub="late", exp=NOW + 600)))
    assert len(v._verified) == 1  # the three expired entries were dropped on the way
    zero = TokenVerifier(TokenConfig(_CountingKeys(rsa_key)), clock=clock, cache_ttl_s=0)
    assert (await zero.verify(sign(rsa_key, claims(sub="z")))).sub == "z"
    assert len(zero._verified) == 0


def _with_header(token: str, header_segment: str) -> str:
    return ".".join([header_segment, *token.split(".")[1:]])


@pytest.mark.parametrize(
    "segment",
    [
        "e30!",  # outside the base64url alphabet
        "e30===",  # more than two padding characters
        "e3=",  # padding on a segment whose length is not a multiple of 4
        "e",  # a length that is 1 modulo 4
        "e31",  # not the canonical encoding of its bytes
        base64.urlsafe_b64encode(b"[1]").decode().rstrip("="),  # JSON, not an object
        base64.urlsafe_b64encode(b'{"alg":"RS256","kid":7}').decode().rstrip("="),
        base64.urlsafe_b64encode(b'{"alg":"RS256","kid":null}').decode().rstrip("="),
    ],
)
async def test_header_segments_pyjwt_refuses_are_malformed(verifier, rsa_key, segment):
    with pytest.raises(jwt.PyJWTError):
        jwt.get_unverified_header(_with_header(sign(rsa_key, claims()), segment))
    token = _with_header(sign(rsa_key, claims(iss="iss", aud="aud")), segment)
    assert await reason(verifier, token) == "malformed token"


async def test_a_padded_header_segment_is_read_as_pyjwt_reads_it(verifier, rsa_key):
    # Padding changes the signing input, so the signature no longer matches: the header was
    # accepted as PyJWT accepts it and the token fails at the signature, not as malformed.
    token = sign(rsa_key, claims(iss="iss", aud="aud"))
    header = token.split(".")[0]
    padded = header + "=" * (-len(header) % 4)
    assert padded != header
    jwt.get_unverified_header(_with_header(token, padded))
    assert await reason(verifier, _with_header(token, padded)) == "bad signature"


async def test_a_remembered_token_is_refused_once_it_expires(rsa_key, clock):
    clock.now = NOW
    keys = _CountingKeys(rsa_key)
    v = TokenVerifier(TokenConfig(keys, leeway=5), clock=clock, cache_ttl_s=60)
    token = sign(rsa_key, claims(exp=NOW + 30, nbf=NOW + 20))
    clock.now = NOW + 20
    assert (await v.verify(token)).exp == NOW + 30
    clock.now = NOW + 35
    assert (await v.verify(token)).sub == "u1"  # within the leeway, from the cache
    clock.now = NOW + 35.5
    assert await reason(v, token) == "token expired"
    assert keys.lookups == 1


async def test_principals_share_claim_names_common_values_and_role_sets(rsa_key, clock):
    # Each dashboard's verified token stays in the cache for a minute: what every token of an
    # instance repeats is held once, what identifies a user once per token.
    clock.now = NOW
    v = TokenVerifier(TokenConfig(_CountingKeys(rsa_key)), clock=clock)
    first, second = [
        await v.verify(
            sign(rsa_key, claims(sub=f"user-{i}", iss="issuer", aud="aud", jti=f"id-{i}"))
        )
        for i in range(2)
    ]
    assert first.claims == claims(sub="user-0", iss="issuer", aud="aud", jti="id-0")
    for a, b in zip(first.claims, second.claims, strict=True):
        assert a is b
    for name in ("iss", "aud", "org", "role"):
        assert first.claims[name] is second.claims[name]
    assert first.roles is second.roles and first.roles == {"Admin"}
    assert first.sub == "user-0" and second.sub == "user-1"


async def test_a_role_list_keeps_its_order_and_shares_its_strings(rsa_key, clock):
    clock.now = NOW
    v = TokenVerifier(TokenConfig(_CountingKeys(rsa_key)), clock=clock)
    first, second = [
        await v.verify(sign(rsa_key, claims(sub=f"u{i}", role=["Manager", "Admin"])))
        for i in range(2)
    ]
    assert first.claims["role"] == ["Manager", "Admin"]
    assert first.claims["role"][0] is second.claims["role"][0]
    assert first.roles is second.roles


async def test_the_cache_holds_well_under_a_kilobyte_per_token(rsa_key, clock):
    clock.now = NOW
    v = TokenVerifier(TokenConfig(_CountingKeys(rsa_key)), clock=clock)
    tokens = [
        sign(rsa_key, claims(sub=f"viewer-{i:05d}", iss="aiusage", aud="aiusage", jti=f"{i:022d}"))
        for i in range(200)
    ]
    await v.verify(tokens[0])
    v._verified.clear()
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for token in tokens:
            await v.verify(token)
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(v._verified) == len(tokens)
    # About 0.9 KB with every claim name and shared value copied per token, ~1.8 KB before.
    assert held / len(tokens) < 1100


def _segments(token: str) -> list[str]:
    return token.split(".")


@pytest.mark.parametrize("which", [1, 2])
@pytest.mark.parametrize("change", ["+", "=", "===", "a", "abc="])
async def test_payload_and_signature_segments_pyjwt_refuses_are_malformed(
    verifier, rsa_key, which, change
):
    parts = _segments(sign(rsa_key, claims(iss="iss", aud="aud")))
    parts[which] = parts[which] + change if len(change) < 4 else change
    assert await reason(verifier, ".".join(parts)) in ("malformed token", "bad signature")
    with pytest.raises(jwt.PyJWTError):
        jwt.decode(
            ".".join(parts),
            rsa_key.public_key(),
            algorithms=["RS256"],
            audience="aud",
            issuer="iss",
            options={"verify_exp": False},
        )


async def test_a_payload_that_is_not_a_json_object_is_malformed(verifier, rsa_key):
    token = jwt.api_jws.encode(b"[1, 2]", rsa_key, algorithm="RS256", headers={"kid": "k1"})
    assert await reason(verifier, token) == "malformed token"


async def test_an_unencoded_payload_header_is_malformed(verifier, rsa_key):
    token = sign(rsa_key, claims(iss="iss", aud="aud"))
    header = base64.urlsafe_b64encode(
        json.dumps({"alg": "RS256", "kid": "k1", "b64": False}).encode()
    ).rstrip(b"=")
    assert await reason(verifier, _with_header(token, header.decode())) == "malformed token"


@pytest.mark.parametrize(
    ("over", "expected"),
    [
        ({"iss": "other"}, "wrong issuer"),
        ({"iss": ["iss"]}, "wrong issuer"),
        ({"aud": "other"}, "wrong audience"),
        ({"aud": ["x", 1]}, "wrong audience"),
        ({"aud": {"aud": 1}}, "wrong audience"),
        ({"sub": 5}, "malformed token"),
        ({"jti": 5}, "malformed token"),
    ],
)
async def test_claims_jwt_decode_refuses_are_refused(verifier, rsa_key, over, expected):
    payload = claims(iss="iss", aud="aud")
    payload.update(over)
    # Signed as raw JSON: jwt.encode itself refuses some of these claims.
    token = jwt.api_jws.encode(
        json.dumps(payload).encode(), rsa_key, algorithm="RS256", headers={"kid": "k1"}
    )
    assert await reason(verifier, token) == expected


async def test_a_key_of_another_type_does_not_fit_the_algorithm(ec_key, clock):
    clock.now = NOW
    v = TokenVerifier(
        TokenConfig(StaticKeySource([VerificationKey("k1", ec_key.public_key())])), clock=clock
    )
    assert await reason(v, sign(ec_key, claims(), alg="ES256")) == "algorithm not allowed: 'ES256'"
    # An RS256 token whose kid names an EC key: no key can verify it.
    from cryptography.hazmat.primitives.asymmetric import rsa

    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert await reason(v, sign(rsa_key, claims())) == "key does not fit the algorithm"
