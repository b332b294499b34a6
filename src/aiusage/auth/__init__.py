"""Identity: JWT validation, key sources, the built-in issuer, passwords and login.

Modules (import what you need; nothing is re-exported here so that importing one piece does
not pull in FastAPI or argon2):

* :mod:`~aiusage.auth.tokens` - :class:`TokenVerifier`, :class:`TokenConfig` (RS256 allow-list,
  exp/nbf with bounded leeway, iss/aud, required ``sub``/``org``/``role``);
* :mod:`~aiusage.auth.keys`, :mod:`~aiusage.auth.jwks` - PEM, JWKS URL and combined key sources;
* :mod:`~aiusage.auth.issuer` - :class:`BuiltinIssuer` (RSA-2048 key in the data dir, JWKS);
* :mod:`~aiusage.auth.setup` - :func:`build_verifier` from deployment settings;
* :mod:`~aiusage.auth.principal` - :class:`UserPrincipal` and the role names;
* :mod:`~aiusage.auth.passwords`, :mod:`~aiusage.auth.ratelimit`, :mod:`~aiusage.auth.login` -
  argon2 hashes, login throttling, :class:`LoginService` over a :class:`UserLookup` port;
* :mod:`~aiusage.auth.http`, :mod:`~aiusage.auth.deps` - bearer extraction and FastAPI
  dependencies (401/403, tenant scope);
* :mod:`~aiusage.auth.errors` - the exception tree.
"""
