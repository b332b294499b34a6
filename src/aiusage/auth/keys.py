"""Verification-key sources for :class:`~aiusage.auth.tokens.TokenVerifier`.

A key source answers "which public keys may have signed a token whose header says ``kid``?".
Three implementations exist: :class:`StaticKeySource` (PEM files, the built-in issuer) here,
and :class:`~aiusage.auth.jwks.JwksKeySource` (a JWKS URL, fetched and cached).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from aiusage.auth.errors import KeySourceError

PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey
"""Public key types a token may be verified with (never a shared secret)."""

_PUBLIC_KEY_TYPES = (rsa.RSAPublicKey, ec.EllipticCurvePublicKey, ed25519.Ed25519PublicKey)


@dataclass(frozen=True, slots=True)
class VerificationKey:
    """A public key and the key id it is published under (None when it has none)."""

    kid: str | None
    key: PublicKey


class KeySource(Protocol):
    """Where verification keys come from."""

    async def keys_for(self, kid: str | None) -> Sequence[VerificationKey]:
        """Candidate keys for a token header's ``kid`` (empty: unknown key id).

        Raises:
            KeySourceError: No keys can be obtained at all.
        """
        ...


def _b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8 or 1, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def rsa_public_jwk(key: rsa.RSAPublicKey) -> dict[str, str]:
    """The JWK members of an RSA public key (RFC 7518 §6.3.1): ``kty``, ``n``, ``e``."""
    numbers = key.public_numbers()
    return {"kty": "RSA", "n": _b64url_uint(numbers.n), "e": _b64url_uint(numbers.e)}


def jwk_thumbprint(key: PublicKey) -> str | None:
    """RFC 7638 JWK thumbprint (SHA-256, base64url) of an RSA key; None for other key types.

    RFC 7638 §3.2: the required members only, in lexicographic order, no whitespace.
    """
    if not isinstance(key, rsa.RSAPublicKey):
        return None
    members = rsa_public_jwk(key)
    canonical = json.dumps(
        {"e": members["e"], "kty": "RSA", "n": members["n"]}, separators=(",", ":"), sort_keys=True
    )
    digest = hashlib.sha256(canonical.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def load_public_keys_pem(data: bytes) -> list[PublicKey]:
    """Every public key in a PEM bundle (``-----BEGIN PUBLIC KEY-----`` blocks).

    Raises:
        KeySourceError: No usable public key, or a block that does not parse.
    """
    keys: list[PublicKey] = []
    marker = b"-----BEGIN "
    blocks = [marker + part for part in data.split(marker)[1:]]
    for block in blocks:
        try:
            key = serialization.load_pem_public_key(block)
        except ValueError as exc:
            raise KeySourceError(f"unreadable PEM public key: {exc}") from exc
        if not isinstance(key, _PUBLIC_KEY_TYPES):
            raise KeySourceError(f"unsupported public key type {type(key).__name__}")
        keys.append(key)
    if not keys:
        raise KeySourceError("no PEM public key found")
    return keys


class StaticKeySource:
    """A fixed set of public keys (PEM configuration, built-in issuer).

    Keys given as :class:`VerificationKey` with a ``kid`` are *published* under that id (the
    built-in issuer's RFC 7638 thumbprint, a JWKS entry): when every key of the set has one, a
    token naming any other ``kid`` is refused, as a JWKS key source refuses it. Bare PEM keys
    have no published id (an external issuer picks its own ``kid`` values, which we cannot
    compute from the key): a token whose ``kid`` does not match a thumbprint is then tried
    against every key (there are few). A token without a ``kid`` is tried against every key.
    """

    __slots__ = ("_by_kid", "_keys", "_strict_kids")

    def __init__(self, keys: Iterable[PublicKey | VerificationKey]) -> None:
        given = tuple(keys)
        self._keys: tuple[VerificationKey, ...] = tuple(
            k if isinstance(k, VerificationKey) else VerificationKey(jwk_thumbprint(k), k)
            for k in given
        )
        if not self._keys:
            raise KeySourceError("no verification keys configured")
        self._by_kid = {k.kid: k for k in self._keys if k.kid is not None}
        self._strict_kids = all(isinstance(k, VerificationKey) and k.kid for k in given)

    @classmethod
    def from_pem(cls, data: bytes) -> StaticKeySource:
        """Keys from a PEM bundle (one or more public keys)."""
        return cls(load_public_keys_pem(data))

    @property
    def keys(self) -> tuple[VerificationKey, ...]:
        """The configured keys."""
        return self._keys

    async def keys_for(self, kid: str | None) -> Sequence[VerificationKey]:
        """See :meth:`KeySource.keys_for`."""
        if kid is not None and kid in self._by_kid:
            return (self._by_kid[kid],)
        if kid is not None and self._strict_kids:
            return ()  # a published key set does not have this kid: unknown key
        return self._keys


class CombinedKeySource:
    """Several sources behind one (e.g. a PEM file and a JWKS URL of the same issuer).

    A failing source is skipped as long as another one answers; only when every source fails
    does the lookup fail.
    """

    __slots__ = ("_sources",)

    def __init__(self, sources: Iterable[KeySource]) -> None:
        self._sources = tuple(sources)
        if not self._sources:
            raise KeySourceError("no key sources configured")

    async def keys_for(self, kid: str | None) -> Sequence[VerificationKey]:
        """See :meth:`KeySource.keys_for`."""
        found: list[VerificationKey] = []
        errors: list[KeySourceError] = []
        for source in self._sources:
            try:
                found.extend(await source.keys_for(kid))
            except KeySourceError as exc:
                errors.append(exc)
        if not found and len(errors) == len(self._sources):
            raise errors[0]
        return found
