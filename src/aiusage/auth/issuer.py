"""The built-in token issuer of the embedded default (docs/spec/auth.md §9.6).

On first start an RSA-2048 key pair is created in the data dir (``jwt-signing-key.pem``, mode
0600, written atomically so that several ``aiusage serve --workers N`` processes starting at
once agree on one key). Tokens are RS256 with ``kid`` = the RFC 7638 thumbprint of the public
key, which ``/.well-known/jwks.json`` publishes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import stat
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from aiusage.auth.errors import KeySourceError
from aiusage.auth.keys import StaticKeySource, VerificationKey, jwk_thumbprint, rsa_public_jwk
from aiusage.auth.principal import normalise_roles
from aiusage.auth.tokens import TokenConfig

_log = logging.getLogger("aiusage.auth.issuer")

KEY_FILE_NAME: Final = "jwt-signing-key.pem"
DEFAULT_ISSUER: Final = "aiusage"
DEFAULT_AUDIENCE: Final = "aiusage"
MAX_TTL: Final = 30 * 24 * 3600
"""Longest lifetime the issuer signs (30 days; agent tokens are long-lived, users' are not)."""


def _write_new_key(path: Path) -> None:
    """Create the key file unless it exists; the loser of a creation race keeps the winner's."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
            fh.flush()
            os.fsync(fh.fileno())
        # link() fails if the target exists: exactly one process publishes its key.
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


class BuiltinIssuer:
    """Signs tokens with the data dir's key.

    Args:
        private_key: The RSA signing key.
        issuer: ``iss`` claim written into tokens (and required by :meth:`token_config`).
        audience: ``aud`` claim written into tokens (and required by :meth:`token_config`).
        clock: Unix time source.
    """

    def __init__(
        self,
        private_key: rsa.RSAPrivateKey,
        *,
        issuer: str = DEFAULT_ISSUER,
        audience: str = DEFAULT_AUDIENCE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if private_key.key_size < 2048:
            raise KeySourceError("built-in issuer key must be at least 2048 bits")
        self._private = private_key
        self._public = private_key.public_key()
        self._kid = jwk_thumbprint(self._public)
        self.issuer = issuer
        self.audience = audience
        self._clock = clock

    @classmethod
    def load_or_create(
        cls,
        data_dir: str | os.PathLike[str],
        *,
        issuer: str = DEFAULT_ISSUER,
        audience: str = DEFAULT_AUDIENCE,
        clock: Callable[[], float] = time.time,
    ) -> BuiltinIssuer:
        """Load ``<data_dir>/jwt-signing-key.pem``, creating it (0600) on first start.

        Raises:
            KeySourceError: The file exists but is not an RSA private key.
        """
        directory = Path(data_dir)
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = directory / KEY_FILE_NAME
        if not path.exists():
            _write_new_key(path)
            _log.info("created built-in issuer signing key %s", path)
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            _log.warning("signing key %s is readable by others (mode %o); use 0600", path, mode)
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except (ValueError, TypeError) as exc:
            raise KeySourceError(f"unreadable signing key {path}: {exc}") from exc
        if not isinstance(key, rsa.RSAPrivateKey):
            raise KeySourceError(f"signing key {path} is not an RSA key")
        return cls(key, issuer=issuer, audience=audience, clock=clock)

    @property
    def kid(self) -> str:
        """Key id: RFC 7638 thumbprint of the public key."""
        assert self._kid is not None
        return self._kid

    @property
    def public_key(self) -> rsa.RSAPublicKey:
        """The verification key."""
        return self._public

    def public_key_pem(self) -> bytes:
        """The verification key as a PEM ``PUBLIC KEY`` block."""
        return self._public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def jwks(self) -> dict[str, Any]:
        """The JWKS document served at ``/.well-known/jwks.json``."""
        jwk: dict[str, Any] = dict(rsa_public_jwk(self._public))
        jwk.update({"kid": self.kid, "use": "sig", "alg": "RS256"})
        return {"keys": [jwk]}

    def key_source(self) -> StaticKeySource:
        """A key source holding this issuer's public key."""
        return StaticKeySource([VerificationKey(self.kid, self._public)])

    def token_config(self, **overrides: Any) -> TokenConfig:
        """A :class:`TokenConfig` accepting this issuer's tokens (``iss`` and ``aud`` checked)."""
        params: dict[str, Any] = {
            "key_source": self.key_source(),
            "issuer": self.issuer,
            "audience": self.audience,
        }
        params.update(overrides)
        return TokenConfig(**params)

    def issue_with_expiry(
        self,
        sub: str,
        org: str,
        role: str | Sequence[str],
        ttl: int = 3600,
        *,
        extra_claims: Mapping[str, Any] | None = None,
    ) -> tuple[str, int]:
        """Sign a token; returns it with its ``exp`` (Unix seconds).

        Raises:
            ValueError: Empty ``sub``/``org``/``role`` or a ``ttl`` outside 1 s..30 days.
        """
        if not sub or not org:
            raise ValueError("sub and org must be non-empty")
        roles = sorted(normalise_roles(role if isinstance(role, str) else list(role)))
        if not 1 <= ttl <= MAX_TTL:
            raise ValueError(f"ttl must be between 1 and {MAX_TTL} seconds")
        now = int(self._clock())
        exp = now + ttl
        claims: dict[str, Any] = dict(extra_claims or {})
        claims.update(
            {
                "iss": self.issuer,
                "aud": self.audience,
                "sub": sub,
                "org": org,
                "role": roles[0] if len(roles) == 1 else roles,
                "iat": now,
                "nbf": now,
                "exp": exp,
                "jti": secrets.token_urlsafe(16),
            }
        )
        token = jwt.encode(
            claims, self._private, algorithm="RS256", headers={"kid": self.kid, "typ": "JWT"}
        )
        return token, exp

    def issue(
        self,
        sub: str,
        org: str,
        role: str | Sequence[str],
        ttl: int = 3600,
        *,
        extra_claims: Mapping[str, Any] | None = None,
    ) -> str:
        """Sign a token for ``sub`` in ``org`` with ``role`` valid for ``ttl`` seconds."""
        return self.issue_with_expiry(sub, org, role, ttl, extra_claims=extra_claims)[0]
