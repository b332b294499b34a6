"""Building the token verifier from deployment settings (docs/spec/auth.md §9.6).

The built-in issuer is always trusted (``aiusage token issue`` and ``POST /api/auth/login``
mint its tokens); an external identity provider is added when a PEM public key file and/or a
JWKS URL is configured, with its own ``iss``/``aud`` rules.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from aiusage.auth.errors import KeySourceError
from aiusage.auth.issuer import BuiltinIssuer
from aiusage.auth.jwks import JwksKeySource
from aiusage.auth.keys import CombinedKeySource, KeySource, StaticKeySource
from aiusage.auth.tokens import TokenConfig, TokenVerifier


def build_verifier(
    builtin: BuiltinIssuer | None,
    *,
    jwt_issuer: str | None = None,
    jwt_audience: str | None = None,
    public_key_file: str | Path | None = None,
    jwks_url: str | None = None,
    algorithms: tuple[str, ...] = ("RS256",),
    leeway: float = 10.0,
    clock: Callable[[], float] = time.time,
) -> TokenVerifier:
    """A verifier trusting the built-in issuer and, if configured, an external one.

    Args:
        builtin: The data dir's issuer (None: do not trust it).
        jwt_issuer: Required ``iss`` of external tokens (None: not checked).
        jwt_audience: Required ``aud`` of external tokens (None: not checked).
        public_key_file: PEM file with the external issuer's public key(s).
        jwks_url: JWKS URL of the external issuer.
        algorithms: Allowed ``alg`` values for external tokens.
        leeway: Clock-skew tolerance in seconds (0..30).
        clock: Unix time source.

    Raises:
        KeySourceError: No key source at all, or an unreadable PEM file.
        ValueError: An invalid algorithm list or leeway.
    """
    configs: list[TokenConfig] = []
    if builtin is not None:
        configs.append(builtin.token_config(leeway=leeway))
    sources: list[KeySource] = []
    if public_key_file is not None:
        try:
            pem = Path(public_key_file).read_bytes()
        except OSError as exc:
            raise KeySourceError(f"cannot read {public_key_file}: {exc}") from exc
        sources.append(StaticKeySource.from_pem(pem))
    if jwks_url is not None:
        sources.append(JwksKeySource(jwks_url))
    if sources:
        source = sources[0] if len(sources) == 1 else CombinedKeySource(sources)
        configs.append(
            TokenConfig(
                source,
                algorithms=algorithms,
                issuer=jwt_issuer,
                audience=jwt_audience,
                leeway=leeway,
            )
        )
    if not configs:
        raise KeySourceError("no token key source: enable the built-in issuer or configure one")
    return TokenVerifier(configs, clock=clock)
