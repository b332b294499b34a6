"""FastAPI dependencies: who is calling, may they, and for which organization.

Composition (``api.app.create_api``) stores the verifier once with :func:`install_verifier`;
routes then declare ``principal: UserPrincipal = Depends(require_principal(roles=...))`` or
``scope: TenantScope = Depends(require_tenant(roles=...))``.

Answers follow docs/spec/negotiate.md §1.5 / RFC 6750: no or bad token -> 401 ``Unauthorized``
with ``WWW-Authenticate: Bearer``; valid token but the policy refuses -> 403.

When the composition root installs an :class:`~aiusage.auth.access_policy.AccessPolicy`
(:func:`install_access_policy`; ``aiusage serve`` always does), every request is also checked
against the store, exactly as hub connects are: the user exists and is active, the store's
role is allowed for the route, the organization exists and its subscription is
active/trialing. Refusals are 403 with the policy's message (``Access revoked``, ``Unknown
organization``, ``Subscription inactive: canceled``, ``Forbidden``), 503 when the store
cannot answer (docs/security.md). Without a policy (router tests) the token alone decides.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from fastapi import HTTPException, Request

from aiusage.auth.access_policy import AccessPolicy, AccessRefused
from aiusage.auth.errors import UNAUTHORIZED, InvalidToken
from aiusage.auth.http import bearer_token
from aiusage.auth.principal import UserPrincipal
from aiusage.auth.tokens import TokenVerifier

_log = logging.getLogger("aiusage.auth")

VERIFIER_STATE_KEY = "token_verifier"
"""Attribute of ``app.state`` holding the :class:`TokenVerifier`."""

POLICY_STATE_KEY = "access_policy"
"""Attribute of ``app.state`` holding the :class:`AccessPolicy` (absent: token only)."""

ORGANIZATION_HEADER = "x-organization-id"
ORGANIZATION_QUERY = "organizationId"


def install_verifier(app: Any, verifier: TokenVerifier) -> None:
    """Make ``verifier`` available to the dependencies of ``app`` (a FastAPI/Starlette app)."""
    setattr(app.state, VERIFIER_STATE_KEY, verifier)


def install_access_policy(app: Any, policy: AccessPolicy | None) -> None:
    """Check every authenticated request of ``app`` against the store through ``policy``."""
    setattr(app.state, POLICY_STATE_KEY, policy)


def _unauthorized() -> HTTPException:
    return HTTPException(401, UNAUTHORIZED, headers={"WWW-Authenticate": "Bearer"})


def requested_organization(headers: Any, query: Any) -> str | None:
    """The organization a request asks for: ``X-Organization-Id`` header, else the
    ``organizationId`` query parameter (docs/spec/auth.md §9.5), else None."""
    value = headers.get(ORGANIZATION_HEADER) or query.get(ORGANIZATION_QUERY)
    return value if isinstance(value, str) and value else None


async def authenticate_request(request: Request) -> UserPrincipal:
    """The request's principal.

    Raises:
        HTTPException: 401 when the token is missing or invalid (reason logged, not sent).
    """
    verifier = getattr(request.app.state, VERIFIER_STATE_KEY, None)
    if not isinstance(verifier, TokenVerifier):
        raise RuntimeError("no TokenVerifier installed: call aiusage.auth.deps.install_verifier")
    token = bearer_token(request.headers, request.query_params)
    if token is None:
        raise _unauthorized()
    try:
        return await verifier.verify(token)
    except InvalidToken as exc:
        _log.info("rejected token on %s %s: %s", request.method, request.url.path, exc.reason)
        raise _unauthorized() from None


def require_principal(
    roles: Iterable[str] | None = None,
) -> Callable[[Request], Awaitable[UserPrincipal]]:
    """A dependency returning the caller's principal, requiring one of ``roles`` if given.

    Returns 401 for a missing/invalid token and 403 ``Forbidden`` for a role outside ``roles``.
    """
    allowed = frozenset(roles) if roles is not None else None

    async def dependency(request: Request) -> UserPrincipal:
        principal = await authenticate_request(request)
        if allowed is not None and not principal.has_any_role(allowed):
            raise HTTPException(403, "Forbidden")
        requested = requested_organization(request.headers, request.query_params)
        return await _decide(request, principal, allowed, requested)

    return dependency


async def _decide(
    request: Request, principal: UserPrincipal, allowed: frozenset[str] | None, target: str | None
) -> UserPrincipal:
    """The principal the store lets act (its role replaced by the store's), or HTTP 403/503."""
    policy = getattr(request.app.state, POLICY_STATE_KEY, None)
    if not isinstance(policy, AccessPolicy):
        return principal
    try:
        acting, _ = await policy.decide(principal, allowed, target)
    except AccessRefused as exc:
        if exc.status >= 500:
            _log.warning("access lookup failed on %s: %s", request.url.path, exc.__cause__)
        else:
            _log.info(
                "refused %s of %s on %s: %s",
                principal.sub,
                principal.org,
                request.url.path,
                exc.message,
            )
        raise HTTPException(exc.status, exc.message) from None
    return acting


@dataclass(frozen=True, slots=True)
class TenantScope:
    """A principal and the one organization this request acts on."""

    principal: UserPrincipal
    org_id: str


def resolve_organization(principal: UserPrincipal, requested: str | None) -> str:
    """The organization a request acts on, enforcing the tenant rule.

    No explicit request means the token's own ``org``. An explicit one must equal it, except
    for SuperAdmin (seed "Tenant Isolation": hub methods and APIs verify the user belongs to
    the target org).

    Raises:
        HTTPException: 403 ``Organization mismatch``.
    """
    if requested is None:
        return principal.org
    if not principal.can_access_org(requested):
        raise HTTPException(403, "Organization mismatch")
    return requested


def require_tenant(
    roles: Iterable[str] | None = None,
) -> Callable[[Request], Awaitable[TenantScope]]:
    """Like :func:`require_principal`, and resolves the target organization."""
    principal_dep = require_principal(roles)

    async def dependency(request: Request) -> TenantScope:
        principal = await principal_dep(request)
        requested = requested_organization(request.headers, request.query_params)
        return TenantScope(principal, resolve_organization(principal, requested))

    return dependency
