"""Who may connect to the AnalyticsHub (docs/spec/auth.md §9.5).

:func:`make_authenticate` builds the endpoint's authentication hook. The engine calls it on
negotiate and on every transport request (WebSocket upgrade, SSE GET, long-polling GET/POST/
DELETE), so a revoked token or a canceled subscription also stops long-polling clients at
their next request. Outcomes:

=========================================================  ======  ==============================
situation                                                  status  body
=========================================================  ======  ==============================
no token / invalid token (any reason, logged server-side)  401     ``Unauthorized``
role not Admin, Manager or SuperAdmin                      403     ``Forbidden``
``X-Organization-Id`` / ``organizationId`` != token org    403     ``Organization mismatch``
organization unknown                                       403     ``Unknown organization``
subscription not active/trialing                           403     ``Subscription inactive: <s>``
store role (demoted user) not Admin/Manager/SuperAdmin     403     ``Forbidden``
user removed/deactivated; unknown if records are required 403     ``Access revoked``
store unreachable                                          503     ``Service Unavailable``
=========================================================  ======  ==============================

SuperAdmin is exempt from the organization match and from the subscription check: platform
operators act across tenants.

The decision itself is :class:`aiusage.auth.access_policy.AccessPolicy`, the same one every
REST route goes through (docs/security.md "One access decision"); this module adds what is
specific to the hub: the organization match of the query string, the 401 of the engine, and
the engine principal. Its ``user_id`` (what ``Clients.User`` targets) is tenant-scoped,
``{orgId}:{sub}`` (:func:`hub_user_id`): user ids are unique only within an organization.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from aiusage.auth.access_policy import (
    ACTIVE_SUBSCRIPTIONS,
    AccessChecker,
    AccessPolicy,
    AccessRefused,
    subscription_refusal,
)
from aiusage.auth.deps import requested_organization
from aiusage.auth.errors import UNAUTHORIZED, InvalidToken
from aiusage.auth.http import bearer_token
from aiusage.auth.principal import DASHBOARD_ROLES, UserPrincipal
from aiusage.auth.tokens import TokenVerifier
from hubserver import AuthenticationFailed, AuthHook, HttpRequestInfo, Principal

_log = logging.getLogger("aiusage.realtime.access")

PRINCIPAL_ITEM: Final = "aiusage.principal"
"""``HubConnection.items`` key where the hub caches the connection's :class:`UserPrincipal`."""

KNOWN_USER_CLAIM: Final = "aiusage:storeRole"
"""Claim added by :func:`make_authenticate` when the store knows the user: the role the store
holds for them at connect time. Revalidation re-checks users that carry it."""


__all__ = [
    "ACTIVE_SUBSCRIPTIONS",
    "KNOWN_USER_CLAIM",
    "PRINCIPAL_ITEM",
    "AccessChecker",
    "AccessPolicy",
    "HubPrincipal",
    "hub_user_id",
    "make_authenticate",
    "principal_of",
    "subscription_refusal",
]


def hub_user_id(org_id: str, user_id: str) -> str:
    """The engine's user id of a connection (``Clients.User`` targeting): tenant-scoped,
    because the same user id may exist in two organizations."""
    return f"{org_id}:{user_id}"


@dataclass(slots=True)
class HubPrincipal(Principal):
    """The engine principal :func:`make_authenticate` returns, carrying the platform principal
    built from the same claims, so the hub and the revalidation sweep never parse them again
    (one principal and one claims mapping per connection instead of two of each)."""

    user: UserPrincipal | None = field(default=None, compare=False, repr=False)


def principal_of(principal: Principal) -> UserPrincipal:
    """The platform principal behind an engine principal built by :func:`make_authenticate`.

    Raises:
        ValueError: ``principal`` was built elsewhere and its claims lack ``sub``, ``org`` or
            ``role``.
    """
    user = getattr(principal, "user", None)
    if isinstance(user, UserPrincipal):
        return user
    return UserPrincipal.from_claims(principal.claims)


_SHARED_VALUES: Final = frozenset({"iss", "aud", "org", "role", KNOWN_USER_CLAIM})
"""Claims whose string values repeat across the connections of an instance."""
_ROLE_SETS: dict[frozenset[str], frozenset[str]] = {}
_MAX_ROLE_SETS: Final = 64


def _connection_claims(claims: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a token's claims for a connection that lives for hours.

    A decoded token brings its own copy of every claim name and of values every connection
    shares (issuer, audience, organization, role); interned, 10,000 connections hold one of each
    instead of 10,000 (about 0.7 KB per connection). Interned strings are freed with their
    last reference.
    """
    out: dict[str, Any] = {}
    for key, value in claims.items():
        name = sys.intern(key)
        if name in _SHARED_VALUES and type(value) is str:
            value = sys.intern(value)
        out[name] = value
    return out


def _shared_roles(roles: frozenset[str]) -> frozenset[str]:
    """One frozenset per distinct role combination (a frozenset costs 216 bytes)."""
    shared = _ROLE_SETS.get(roles)
    if shared is not None:
        return shared
    if len(_ROLE_SETS) < _MAX_ROLE_SETS:
        _ROLE_SETS[roles] = roles
    return roles


def make_authenticate(
    verifier: TokenVerifier,
    access_checker: AccessChecker,
    *,
    require_user_record: bool = False,
    cache_ttl: float = 1.0,
    clock: Callable[[], float] = time.monotonic,
    policy: AccessPolicy | None = None,
) -> AuthHook:
    """Build the AnalyticsHub's authentication hook.

    Args:
        verifier: Validates the bearer token.
        access_checker: Subscription and membership lookups.
        require_user_record: Refuse tokens whose ``sub`` is not an active member in the store.
            Off by default here so that hook-level tests connect with any ``sub``; the
            platform passes its :class:`AccessPolicy` (on unless
            ``AIUSAGE_ALLOW_UNKNOWN_USERS``). A user the store *does* know is always checked
            (removed/demoted -> 403).
        cache_ttl: Seconds a lookup answer is reused across requests (0 disables).
        clock: Monotonic clock for the cache.
        policy: The access decision shared with the REST routes (overrides the three
            arguments above).

    Returns:
        ``async (HttpRequestInfo) -> Principal``, raising
        :class:`hubserver.errors.AuthenticationFailed` to refuse.
    """
    decision = policy or AccessPolicy(
        access_checker, require_user_record=require_user_record, cache_ttl=cache_ttl, clock=clock
    )
    # Long polling authenticates every poll (10,000 a second at scale). The verifier answers
    # a token it verified moments ago with the same principal object (expiry re-checked), and
    # the access decision is re-made on every request from its cache; what is kept here is
    # only what the hook builds from those two, per connection id: the engine principal.
    built: dict[str, tuple[UserPrincipal, str | None, str | None, HubPrincipal]] = {}

    async def authenticate(request: HttpRequestInfo) -> Principal:
        # docs/spec/auth.md §9.1: the header or the access_token query, on every request.
        token = bearer_token(request.headers, request.query)
        if token is None:
            raise AuthenticationFailed(401, UNAUTHORIZED)
        try:
            user = await verifier.verify(token)
        except InvalidToken as exc:
            _log.info("hub %s %s: token refused: %s", request.method, request.path, exc.reason)
            raise AuthenticationFailed(401, UNAUTHORIZED) from None
        # Seed step 3: [Authorize(Roles = "Admin,Manager")] (+ SuperAdmin).
        if not user.has_any_role(DASHBOARD_ROLES):
            raise AuthenticationFailed(403, "Forbidden")
        requested = requested_organization(request.headers, request.query)
        if requested is not None and not user.can_access_org(requested):
            _log.info("hub: %s of %s asked for organization %r", user.sub, user.org, requested)
            raise AuthenticationFailed(403, "Organization mismatch")
        try:
            acting, store_role = await decision.decide(user, DASHBOARD_ROLES, requested)
        except AccessRefused as exc:
            if exc.status >= 500:
                _log.warning("hub: access lookup failed: %s", exc.__cause__)
            raise AuthenticationFailed(exc.status, exc.message) from None
        if requested is not None and not acting.can_access_org(requested):
            raise AuthenticationFailed(403, "Organization mismatch")  # a demoted SuperAdmin
        connection_id = request.query.get("id")
        if connection_id is not None:
            hit = built.get(connection_id)
            # Same token (the verifier's very principal), same organization asked, and the
            # store still grants the same role: the principal built last time is this one.
            if hit is not None and hit[0] is user and hit[1] == requested and hit[2] == store_role:
                return hit[3]
        principal = _hub_principal(user, acting, store_role)
        if connection_id is not None and _is_poll(request):
            if len(built) >= _MAX_BUILT:
                built.clear()  # connections come and go; a cleared entry is rebuilt once
            built[connection_id] = (user, requested, store_role, principal)
        return principal

    return authenticate


_MAX_BUILT: Final = 20_000
"""Connections whose engine principal :func:`make_authenticate` keeps for their next poll."""


def _is_poll(request: HttpRequestInfo) -> bool:
    """A long-polling GET: the only request a connection repeats many times a minute (a
    WebSocket or event stream authenticates once, so keeping its principal would only hold
    memory)."""
    headers = request.headers
    return (
        request.method == "GET"
        and "upgrade" not in headers
        and "text/event-stream" not in headers.get("accept", "")
    )


def _hub_principal(
    user: UserPrincipal, acting: UserPrincipal, store_role: str | None
) -> HubPrincipal:
    """The engine principal of a verified, admitted ``user`` acting as ``acting``."""
    # Normalised names, whatever claim names the token config uses (principal_of reads these).
    claims = _connection_claims(user.claims)
    claims["org"] = user.org
    claims["role"] = sorted(acting.roles)
    claims.pop(KNOWN_USER_CLAIM, None)  # only this hook may set it, never the token
    if store_role is not None:
        store_role = sys.intern(store_role)
        claims["role"] = store_role
        claims[KNOWN_USER_CLAIM] = store_role
    parsed = UserPrincipal.from_claims(claims)
    return HubPrincipal(
        user_id=hub_user_id(user.org, user.sub),
        claims=claims,
        expires_at=user.exp,
        user=UserPrincipal(parsed.sub, parsed.org, _shared_roles(parsed.roles), parsed.exp, claims),
    )
