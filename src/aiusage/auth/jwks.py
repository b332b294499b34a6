"""A JWKS URL as a key source: fetched with httpx, cached, refetched on an unknown ``kid``.

Refetch policy (cached, refetched on an unknown kid, refetches rate-limited):

* the document is cached for ``cache_ttl`` seconds, after which the next lookup refreshes it;
* a ``kid`` missing from the cache triggers a refetch (the issuer may have rotated keys), but at
  most one fetch per ``min_refetch_interval``: a flood of tokens with random ``kid`` values
  cannot turn us into an amplifier against the identity provider;
* concurrent lookups share one in-flight fetch (a lock);
* a failed refresh keeps the previous keys (an IdP blip must not log everybody out); only when
  no key was ever obtained does the lookup fail with :class:`KeySourceError`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from aiusage.auth.errors import KeySourceError
from aiusage.auth.keys import VerificationKey

# httpx is imported on the first JWKS fetch: a process without an external identity provider
# (the default) never loads it, ~20 MB of RSS per server process.
if TYPE_CHECKING:
    import httpx

_PUBLIC_KEY_TYPES = (rsa.RSAPublicKey, ec.EllipticCurvePublicKey, ed25519.Ed25519PublicKey)

_log = logging.getLogger("aiusage.auth.jwks")

MAX_JWKS_BYTES = 256 * 1024
"""A JWKS document bigger than this is refused (a handful of keys is a few KB)."""


def parse_jwks(document: Mapping[str, Any]) -> list[VerificationKey]:
    """The usable signature keys of a JWKS document (RFC 7517 §5).

    Keys marked ``use: enc``, private or unsupported keys are skipped; a key that claims an
    ``alg`` keeps it in PyJWT's sense (checked again against the verifier's allow-list).

    Raises:
        KeySourceError: The document has no ``keys`` array.
    """
    raw_keys = document.get("keys")
    if not isinstance(raw_keys, list):
        raise KeySourceError("JWKS document has no 'keys' array")
    keys: list[VerificationKey] = []
    for entry in raw_keys:
        if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
            continue
        if "d" in entry:  # a private key published by mistake: refuse to use it
            continue
        try:
            jwk = jwt.PyJWK(entry)
        except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError) as exc:
            _log.warning("skipping unusable JWKS key kid=%r: %s", entry.get("kid"), exc)
            continue
        key: object = jwk.key
        if not isinstance(key, _PUBLIC_KEY_TYPES):
            continue  # symmetric ("oct") or private keys are never verification keys here
        kid = entry.get("kid")
        keys.append(VerificationKey(kid if isinstance(kid, str) else None, key))
    return keys


class JwksKeySource:
    """Keys from a JWKS URL.

    Args:
        url: The JWKS document (e.g. ``https://idp.example/.well-known/jwks.json``).
        client: The httpx client to use (tests pass one with a transport they own); one is
            created, and closed by :meth:`aclose`, when omitted.
        clock: Monotonic time source (injected for tests).
        cache_ttl: Seconds a fetched document is trusted before it is refreshed.
        min_refetch_interval: Minimum seconds between two fetches, whatever triggers them.
        timeout: Per-request timeout in seconds.
    """

    def __init__(
        self,
        url: str,
        *,
        client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.monotonic,
        cache_ttl: float = 300.0,
        min_refetch_interval: float = 30.0,
        timeout: float = 5.0,
    ) -> None:
        self._url = url
        # Created lazily (inside the event loop) when not given.
        self._client = client
        self._own_client = False
        self._timeout = timeout
        self._clock = clock
        self._cache_ttl = cache_ttl
        self._min_refetch = min_refetch_interval
        self._keys: list[VerificationKey] | None = None
        self._fetched_at: float | None = None  # last successful fetch
        self._attempted_at: float | None = None  # last attempt, successful or not
        self._lock = asyncio.Lock()
        self.fetch_count = 0
        """Number of HTTP fetches made (observability and tests)."""

    async def aclose(self) -> None:
        """Close the HTTP client if this source created it."""
        if self._own_client and self._client is not None:
            await self._client.aclose()
            self._client = None

    def _may_fetch(self, now: float) -> bool:
        return self._attempted_at is None or now - self._attempted_at >= self._min_refetch

    def _lookup(self, kid: str | None) -> list[VerificationKey]:
        keys = self._keys or []
        if kid is None:
            return list(keys)
        return [k for k in keys if k.kid == kid]

    async def keys_for(self, kid: str | None) -> Sequence[VerificationKey]:
        """See :meth:`aiusage.auth.keys.KeySource.keys_for`."""
        now = self._clock()
        stale = self._fetched_at is None or now - self._fetched_at >= self._cache_ttl
        found = self._lookup(kid)
        if found and not stale:
            return found
        async with self._lock:
            # Another task may have refreshed while we waited for the lock.
            now = self._clock()
            stale = self._fetched_at is None or now - self._fetched_at >= self._cache_ttl
            found = self._lookup(kid)
            if (found and not stale) or not self._may_fetch(now):
                if self._keys is None:
                    raise KeySourceError("JWKS not available (fetch failed recently)")
                return found
            await self._refresh(now)
            if self._keys is None:
                raise KeySourceError("JWKS not available")
            return self._lookup(kid)

    async def _refresh(self, now: float) -> None:
        import httpx

        self._attempted_at = now
        self.fetch_count += 1
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self._timeout)
            self._own_client = True
        try:
            response = await self._client.get(self._url, headers={"Accept": "application/json"})
            response.raise_for_status()
            if len(response.content) > MAX_JWKS_BYTES:
                raise KeySourceError("JWKS document too large")
            document = response.json()
            if not isinstance(document, dict):
                raise KeySourceError("JWKS document is not an object")
            keys = parse_jwks(document)
        except (httpx.HTTPError, ValueError, KeySourceError) as exc:
            # Keep serving the previous keys: a blip at the IdP must not reject every user.
            _log.warning("JWKS fetch from %s failed: %s", self._url, exc)
            return
        self._keys = keys
        self._fetched_at = now
