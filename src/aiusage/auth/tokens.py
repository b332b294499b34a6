"""JWT validation (docs/spec/auth.md §9.6).

Order of checks, each failing with :class:`~aiusage.auth.errors.InvalidToken`:

1. shape: a compact JWS (three segments), bounded length, parseable header;
2. ``alg`` in the configured allow-list (RS256 only by default). This runs *before* any key
   is touched, so ``alg: none`` and HS256 tokens "signed" with the RSA public key as an HMAC
   secret (the classic key-confusion attack) never reach a signature routine;
3. a key for the header's ``kid`` from the key source (PEM, JWKS URL, built-in issuer);
4. the signature (PyJWT, with the one algorithm named in the header);
5. ``exp`` (required) and ``nbf`` against an injected clock, with a leeway of at most 30 s;
6. ``iss`` / ``aud`` when configured;
7. the claims the platform needs: ``sub``, ``org``, ``role`` (string or list).
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
import sys
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import jwt

from aiusage.auth.errors import InvalidToken, KeySourceError
from aiusage.auth.keys import KeySource
from aiusage.auth.principal import UserPrincipal

_log = logging.getLogger("aiusage.auth")

ASYMMETRIC_ALGORITHMS: Final = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
"""Algorithms that may be allowed at all. Shared-secret (HS*) and ``none`` are never allowed:
a verifier that holds only public keys must not accept MACs."""

MAX_LEEWAY: Final = 30.0
"""Upper bound of the clock-skew leeway, in seconds."""

MAX_TOKEN_LENGTH: Final = 16 * 1024
"""Longer strings are refused before parsing (cheap guard against oversized headers)."""


@dataclass(frozen=True, slots=True)
class TokenConfig:
    """What a valid token looks like.

    Attributes:
        key_source: Where public keys come from.
        algorithms: Allowed ``alg`` values (subset of :data:`ASYMMETRIC_ALGORITHMS`).
        issuer: Required ``iss`` when set.
        audience: Required ``aud`` (one of them when the token carries a list) when set.
        leeway: Clock-skew tolerance for ``exp``/``nbf``, 0..30 s.
        require_exp: Refuse tokens without ``exp`` (a token must not live forever).
        org_claim: Claim holding the organization id.
        role_claim: Claim holding the role(s).
    """

    key_source: KeySource
    algorithms: tuple[str, ...] = ("RS256",)
    issuer: str | None = None
    audience: str | None = None
    leeway: float = 10.0
    require_exp: bool = True
    org_claim: str = "org"
    role_claim: str = "role"

    def __post_init__(self) -> None:
        if not self.algorithms:
            raise ValueError("at least one algorithm must be allowed")
        bad = [a for a in self.algorithms if a not in ASYMMETRIC_ALGORITHMS]
        if bad:
            raise ValueError(f"algorithms not allowed for token verification: {bad}")
        if not 0 <= self.leeway <= MAX_LEEWAY:
            raise ValueError(f"leeway must be between 0 and {MAX_LEEWAY:g} seconds")


_JWT_REASONS: tuple[tuple[type[Exception], str], ...] = (
    (jwt.InvalidSignatureError, "bad signature"),
    (jwt.InvalidAudienceError, "wrong audience"),
    (jwt.InvalidIssuerError, "wrong issuer"),
    (jwt.InvalidKeyError, "key does not fit the algorithm"),
    (jwt.DecodeError, "malformed token"),
    # A ``sub`` or ``jti`` that is not a string: the token is malformed, not merely invalid.
    (jwt.exceptions.InvalidSubjectError, "malformed token"),
    (jwt.exceptions.InvalidJTIError, "malformed token"),
)


def _reason_for(exc: jwt.PyJWTError) -> str:
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return f"missing claim {exc.claim!r}"
    for cls, reason in _JWT_REASONS:
        if isinstance(exc, cls):
            return reason
    return f"invalid token ({type(exc).__name__})"


def _numeric_claim(payload: Mapping[str, Any], name: str) -> float | None:
    value = payload.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidToken(f"claim {name!r} is not a number")
    return float(value)


def _fits(alg: str, key: Any) -> bool:
    """Whether PyJWT's algorithm ``alg`` accepts ``key`` (an RSA key for RS*, an EC key for
    ES*...); an unknown algorithm fits nothing."""
    try:
        jwt.get_algorithm_by_name(alg).prepare_key(key)
    except (jwt.PyJWTError, NotImplementedError, TypeError, ValueError):
        return False
    return True


_BASE64URL: Final = re.compile(rb"[A-Za-z0-9_-]*")


def _unverified_header(token: str) -> dict[str, Any]:
    """The JOSE header of a token with two dots, read as PyJWT reads it (same padding and
    alphabet rules, a JSON object, a string ``kid``) but without decoding the payload and
    signature too: ``jwt.decode`` does that next, and PyJWT checks the alphabet one byte at a
    time in Python, which made reading the header twice most of a first verification.

    Raises:
        InvalidToken: ``malformed token``, wherever PyJWT's ``get_unverified_header`` raises.
    """
    segment = token.split(".", 1)[0].encode()
    stripped = segment.rstrip(b"=")
    padding = len(segment) - len(stripped)
    if (
        padding > 2
        or (padding and len(segment) % 4 != 0)
        or len(stripped) % 4 == 1
        or _BASE64URL.fullmatch(stripped) is None
    ):
        raise InvalidToken("malformed token")
    try:
        decoded = base64.urlsafe_b64decode(stripped + b"=" * (-len(stripped) % 4))
        # Only the canonical encoding is accepted (PyJWT re-encodes and compares).
        if base64.urlsafe_b64encode(decoded).rstrip(b"=") != stripped:
            raise ValueError("non-canonical base64url")
        header = json.loads(decoded)
    except (ValueError, RecursionError) as exc:
        raise InvalidToken("malformed token") from exc
    if not isinstance(header, dict) or ("kid" in header and not isinstance(header["kid"], str)):
        raise InvalidToken("malformed token")
    return header


_SHARED_ROLE_SETS: dict[frozenset[str], frozenset[str]] = {}
_MAX_SHARED_ROLE_SETS: Final = 64


def _compact_principal(
    payload: Mapping[str, Any], *, org_claim: str, role_claim: str
) -> UserPrincipal:
    """The principal of verified claims, sharing what every token of an instance repeats.

    A decoded token brings its own copy of every claim name and of the values all users share
    (issuer, audience, organization, role); interned, the verified-token cache and the
    connections built from it hold one of each instead of one per token, and one role set per
    role combination (a frozenset is 216 bytes): a cached token of the built-in issuer holds
    ~0.9 KB instead of ~1.8 KB. Interned strings are freed with their last reference.

    Raises:
        ValueError: A required claim is missing or malformed (see ``UserPrincipal``).
    """
    shared = ("iss", "aud", org_claim, role_claim)
    claims: dict[str, Any] = {}
    for name, value in payload.items():
        name = sys.intern(name)
        if name in shared:
            if type(value) is str:
                value = sys.intern(value)
            elif type(value) is list:
                value = [sys.intern(v) if type(v) is str else v for v in value]
        claims[name] = value
    principal = UserPrincipal.from_claims(claims, org_claim=org_claim, role_claim=role_claim)
    roles = _SHARED_ROLE_SETS.get(principal.roles)
    if roles is None:
        roles = principal.roles
        if len(_SHARED_ROLE_SETS) < _MAX_SHARED_ROLE_SETS:
            _SHARED_ROLE_SETS[roles] = roles
    # from_claims copied the mapping; keep that copy, not a third one.
    return UserPrincipal(principal.sub, principal.org, roles, principal.exp, principal.claims)


VERIFIED_CACHE_SIZE = 10_000
"""Tokens whose verified principal is remembered (least recently used ones are dropped)."""

VERIFIED_CACHE_TTL_S = 60.0
"""Seconds a verified token is trusted without checking its signature again: a key removed
from the JWKS (rotation, compromise) stops accepting tokens within this time."""


class TokenVerifier:
    """Validates bearer tokens and returns who they belong to.

    Several configurations may be given, one per trusted issuer (e.g. the built-in issuer
    for CLI and login tokens, plus an external identity provider). The token's *unverified*
    ``iss`` only selects which configuration to apply; that configuration then requires the
    signature of that issuer's keys and the same ``iss``, so the choice cannot be abused. A
    configuration without ``issuer`` is the fallback for tokens naming no known issuer.

    A token that verified is remembered for ``cache_ttl_s``: within that time only
    ``exp``/``nbf`` are checked again, not the RSA signature, which cost more than the rest of
    a small agent request. The key is a 128-bit BLAKE2b digest of the exact string (a token is
    ~1 KB; 10,000 connected dashboards would otherwise keep 10 MB of them): any change to the
    string is a different key, so a tampered token is never a hit.

    Args:
        config: The rules (see :class:`TokenConfig`), or several (one per issuer).
        clock: Returns the current Unix time (injected for tests).
        cache_size: Verified tokens remembered (0: none).
        cache_ttl_s: How long one is remembered.
    """

    __slots__ = (
        "_by_issuer",
        "_cache_size",
        "_cache_ttl",
        "_clock",
        "_configs",
        "_fallback",
        "_verified",
    )

    def __init__(
        self,
        config: TokenConfig | Sequence[TokenConfig],
        *,
        clock: Callable[[], float] = time.time,
        cache_size: int = VERIFIED_CACHE_SIZE,
        cache_ttl_s: float = VERIFIED_CACHE_TTL_S,
    ) -> None:
        configs = (config,) if isinstance(config, TokenConfig) else tuple(config)
        if not configs:
            raise ValueError("at least one TokenConfig is required")
        self._configs = configs
        self._by_issuer = {c.issuer: c for c in configs if c.issuer is not None}
        self._fallback = next((c for c in configs if c.issuer is None), None)
        self._clock = clock
        self._cache_size = cache_size
        self._cache_ttl = cache_ttl_s
        # digest of the token -> (signature verified at, nbf, leeway, principal); the
        # principal's exp is the token's.
        self._verified: OrderedDict[bytes, tuple[float, float | None, float, UserPrincipal]] = (
            OrderedDict()
        )

    @property
    def config(self) -> TokenConfig:
        """The (first) validation rules."""
        return self._configs[0]

    @property
    def configs(self) -> tuple[TokenConfig, ...]:
        """Every configuration, in the order given."""
        return self._configs

    def _select(self, token: str) -> TokenConfig:
        if len(self._configs) == 1:
            return self._configs[0]
        try:
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise InvalidToken("malformed token") from exc
        iss = unverified.get("iss")
        if isinstance(iss, str) and iss in self._by_issuer:
            return self._by_issuer[iss]
        if self._fallback is not None:
            return self._fallback
        raise InvalidToken("wrong issuer")

    async def verify(self, token: str) -> UserPrincipal:
        """Validate ``token`` and return its principal.

        Raises:
            InvalidToken: With a log-worthy reason; callers answer clients ``Unauthorized``.
        """
        if not isinstance(token, str) or not token:
            raise InvalidToken("empty token")
        if len(token) > MAX_TOKEN_LENGTH:
            raise InvalidToken("token too long")
        now = self._clock()
        key = hashlib.blake2b(token.encode(), digest_size=16).digest()
        hit = self._verified.get(key)
        if hit is not None:
            verified_at, nbf, leeway, principal = hit
            if 0 <= now - verified_at < self._cache_ttl:
                # The signature and claims of this exact string were verified moments ago;
                # only the time-dependent checks can have changed since.
                self._check_times(now, principal.exp, nbf, leeway)
                self._verified.move_to_end(key)
                return principal
            del self._verified[key]
        if token.count(".") != 2:
            raise InvalidToken("malformed token")
        header = _unverified_header(token)
        cfg = self._select(token)
        alg = header.get("alg")
        # The allow-list is enforced before any key is looked up, so "none" and HS*
        # (key confusion with the RSA public key as HMAC secret) never reach verification.
        if not isinstance(alg, str) or alg not in cfg.algorithms:
            raise InvalidToken(f"algorithm not allowed: {alg!r}")
        if "crit" in header:
            # RFC 7515 §4.1.11: we understand no extension, so any critical one is fatal.
            raise InvalidToken("unsupported critical header")
        kid = header.get("kid")  # a string or absent (_unverified_header)
        try:
            keys = await cfg.key_source.keys_for(kid)
        except KeySourceError as exc:
            raise InvalidToken(f"no verification key available: {exc}") from exc
        if not keys:
            raise InvalidToken(f"unknown kid {kid!r}")

        required = ["sub"]
        if cfg.issuer is not None:
            required.append("iss")
        if cfg.audience is not None:
            required.append("aud")
        options: Any = {
            "require": required,
            # exp/nbf/iat are checked below against the injected clock.
            "verify_exp": False,
            "verify_nbf": False,
            "verify_iat": False,
            "verify_aud": cfg.audience is not None,
            "verify_iss": cfg.issuer is not None,
        }
        payload: dict[str, Any] | None = None
        last_error: jwt.PyJWTError | None = None
        for candidate in keys:
            if not _fits(alg, candidate.key):
                # A key set may hold keys of several types under one kid (or none); PyJWT
                # raises TypeError for a key of the wrong type instead of refusing the token.
                continue
            try:
                payload = jwt.decode(
                    token,
                    candidate.key,
                    algorithms=[alg],
                    audience=cfg.audience,
                    issuer=cfg.issuer,
                    options=options,
                )
                break
            except jwt.InvalidSignatureError as exc:
                last_error = exc  # try the next candidate key
            except jwt.PyJWTError as exc:
                raise InvalidToken(_reason_for(exc)) from exc
        if payload is None:
            if last_error is None:
                raise InvalidToken("key does not fit the algorithm")
            raise InvalidToken(_reason_for(last_error)) from last_error

        exp = _numeric_claim(payload, "exp")
        if exp is None and cfg.require_exp:
            raise InvalidToken("missing claim 'exp'")
        nbf = _numeric_claim(payload, "nbf")
        self._check_times(now, exp, nbf, cfg.leeway)
        _numeric_claim(payload, "iat")
        try:
            principal = _compact_principal(
                payload, org_claim=cfg.org_claim, role_claim=cfg.role_claim
            )
        except ValueError as exc:
            raise InvalidToken(str(exc)) from exc
        if self._cache_size > 0:
            self._remember(key, (now, nbf, cfg.leeway, principal), now)
        return principal

    def _remember(
        self,
        key: bytes,
        entry: tuple[float, float | None, float, UserPrincipal],
        now: float,
    ) -> None:
        verified = self._verified
        verified[key] = entry
        if len(verified) > self._cache_size:
            verified.popitem(last=False)
        # Drop a few expired entries from the least recently used end, so tokens nobody
        # presents any more do not stay until the cache is full.
        for _ in range(4):
            if not verified or now - next(iter(verified.values()))[0] < self._cache_ttl:
                break
            verified.popitem(last=False)

    @staticmethod
    def _check_times(now: float, exp: float | None, nbf: float | None, leeway: float) -> None:
        if exp is not None and now > exp + leeway:
            raise InvalidToken("token expired")
        if nbf is not None and now + leeway < nbf:
            raise InvalidToken("token not yet valid (nbf)")
