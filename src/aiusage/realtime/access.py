"""Who may connect to the AnalyticsHub (seed security model steps 1-3, issue 4).

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
no active membership, with ``require_user_record``         403     ``Access revoked``
store unreachable                                          503     ``Service Unavailable``
=========================================================  ======  ==============================

SuperAdmin is exempt from the organization match and from the subscription check: platform
operators act across tenants.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Collection
from typing import Any, Final, Protocol

from aiusage.auth.deps import requested_organization
from aiusage.auth.errors import UNAUTHORIZED, InvalidToken
from aiusage.auth.http import bearer_token
from aiusage.auth.principal import DASHBOARD_ROLES, UserPrincipal
from aiusage.auth.tokens import TokenVerifier
from hubserver import AuthenticationFailed, AuthHook, HttpRequestInfo, Principal

_log = logging.getLogger("aiusage.realtime.access")

PRINCIPAL_ITEM: Final = "aiusage.principal"
"""``HubConnection.items`` key where the hub caches the connection's :class:`UserPrincipal`."""

ACTIVE_SUBSCRIPTIONS: Final = frozenset({"active", "trialing"})
"""Subscription statuses that allow watching live analytics."""

KNOWN_USER_CLAIM: Final = "aiusage:storeRole"
"""Claim added by :func:`make_authenticate` when the store knows the user: the role the store
holds for them at connect time. Revalidation re-checks users that carry it."""


class AccessChecker(Protocol):
    """The store's current view of organizations and memberships (implemented over the
    platform's repositories)."""

    async def subscription_status(self, org_id: str) -> str | None:
        """``active``, ``trialing``, ``past_due``, ``canceled`` ..., or None for no such org."""
        ...

    async def user_role(self, org_id: str, user_id: str) -> str | None:
        """The role of an *active* member ``user_id`` of ``org_id``; None when the store has no
        active membership (unknown user, removed or deactivated)."""
        ...

    async def subscription_statuses(self, org_ids: Collection[str]) -> dict[str, str | None]:
        """:meth:`subscription_status` of many organizations at once (revalidation sweeps:
        a few queries for a thousand organizations instead of a thousand)."""
        ...

    async def user_roles(
        self, members: Collection[tuple[str, str]]
    ) -> dict[tuple[str, str], str | None]:
        """:meth:`user_role` of many ``(org_id, user_id)`` pairs at once."""
        ...


def subscription_refusal(status: str | None) -> str | None:
    """The 403 text for a subscription status, or None when it allows access."""
    if status is None:
        return "Unknown organization"
    if status not in ACTIVE_SUBSCRIPTIONS:
        return f"Subscription inactive: {status}"
    return None


def principal_of(principal: Principal) -> UserPrincipal:
    """The platform principal behind an engine principal built by :func:`make_authenticate`."""
    return UserPrincipal.from_claims(principal.claims)


class _TtlCache:
    """Tiny per-key cache: long polling re-authenticates every request, and each request
    should not cost a database round trip; a second is far below the 5 s revocation bound."""

    __slots__ = ("_clock", "_data", "_max", "_ttl")

    def __init__(self, ttl: float, clock: Callable[[], float], max_entries: int = 10_000) -> None:
        self._ttl = ttl
        self._clock = clock
        self._data: dict[Any, tuple[float, str | None]] = {}
        self._max = max_entries

    async def get(self, key: Any, load: Callable[[], Awaitable[str | None]]) -> str | None:
        if self._ttl <= 0:
            return await load()
        now = self._clock()
        hit = self._data.get(key)
        if hit is not None and now - hit[0] < self._ttl:
            return hit[1]
        value = await load()
        if len(self._data) >= self._max:
            self._data.clear()
        self._data[key] = (now, value)
        return value


def make_authenticate(
    verifier: TokenVerifier,
    access_checker: AccessChecker,
    *,
    require_user_record: bool = False,
    cache_ttl: float = 1.0,
    clock: Callable[[], float] = time.monotonic,
) -> AuthHook:
    """Build the AnalyticsHub's authentication hook.

    Args:
        verifier: Validates the bearer token.
        access_checker: Subscription and membership lookups.
        require_user_record: Refuse tokens whose ``sub`` is not an active member in the store.
            Off by default so that tokens from ``aiusage token issue`` (any ``sub``) connect;
            a user the store *does* know is always checked (removed/demoted -> 403).
        cache_ttl: Seconds a lookup answer is reused across requests (0 disables).
        clock: Monotonic clock for the cache.

    Returns:
        ``async (HttpRequestInfo) -> Principal``, raising
        :class:`hubserver.errors.AuthenticationFailed` to refuse.
    """
    statuses = _TtlCache(cache_ttl, clock)
    roles = _TtlCache(cache_ttl, clock)

    async def authenticate(request: HttpRequestInfo) -> Principal:
        # signalr-protocol.md §1.6: the header or the access_token query, on every request.
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
            if not user.is_super_admin:
                status = await statuses.get(
                    user.org, lambda: access_checker.subscription_status(user.org)
                )
                refusal = subscription_refusal(status)
                if refusal is not None:
                    raise AuthenticationFailed(403, refusal)
            store_role = await roles.get(
                (user.org, user.sub), lambda: access_checker.user_role(user.org, user.sub)
            )
        except AuthenticationFailed:
            raise
        except Exception as exc:
            # The store is unreachable: neither a yes nor a no. 503 lets clients retry
            # (automatic reconnect) instead of being told they are not allowed.
            _log.warning("hub: access lookup failed: %s", exc)
            raise AuthenticationFailed(503, "Service Unavailable") from None
        # Normalised names, whatever claim names the token config uses (principal_of reads these).
        claims = dict(user.claims)
        claims["org"] = user.org
        claims["role"] = sorted(user.roles)
        claims.pop(KNOWN_USER_CLAIM, None)  # only this hook may set it, never the token
        if store_role is None:
            if require_user_record:
                raise AuthenticationFailed(403, "Access revoked")
        else:
            # The store is the authority on membership: a demoted user keeps a token that
            # still says Admin until it expires, so the store's role replaces the claim.
            if store_role not in DASHBOARD_ROLES:
                raise AuthenticationFailed(403, "Forbidden")
            claims["role"] = store_role
            claims[KNOWN_USER_CLAIM] = store_role
        return Principal(user_id=user.sub, claims=claims, expires_at=user.exp)

    return authenticate
