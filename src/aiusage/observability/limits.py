"""Per-organization connection limit and the per-organization connection counts.

One organization must not be able to take a whole process (docs/deploy.md "Limits an
operator can set"). :class:`OrgConnectionTracker` counts this process's hub connections per
organization in O(1) per connect/disconnect; the same counts feed ``/metrics`` (top-N).

The limit is enforced twice:

* at the door, by :func:`guard_authenticate`: a *new* connection (``POST .../negotiate`` or a
  WebSocket upgrade without ``id``, docs/spec/transports.md §2.1/§2.6) of an organization at its
  limit gets **503** ``Organization connection limit reached (N)`` — the JS client reports it
  and its automatic reconnect retries later;
* exactly, by the hub filter :class:`OrgLimitFilter` around the hub's ``on_connected``:
  connections that negotiated concurrently and would overshoot are closed with the hub error
  ``Connection closed with an error. HubException: Organization connection limit reached (N)``.

The limit is per process: with P processes an organization may hold up to P x N connections
(docs/deploy.md "Limits").

A third, coarser bound lives in the engine's connection registry, which sees every
*negotiated* connection, including those that never open a transport: organizations are
the registry's tenants (:func:`org_tenant`), and one organization may hold at most
:func:`tenant_connection_cap` live connections there -- the per-organization limit, and a
share of ``AIUSAGE_MAX_CONNECTIONS`` -- so a tenant that floods negotiate fills only its own
share and every other tenant can still connect.
"""

from __future__ import annotations

import heapq
from collections.abc import Awaitable, Callable, Iterator
from typing import Final

from hubserver import (
    AuthenticationFailed,
    AuthHook,
    HttpRequestInfo,
    HubError,
    HubLifetimeContext,
    Principal,
)

__all__ = [
    "ORG_LIMIT_TEXT",
    "OrgConnectionTracker",
    "OrgLimitFilter",
    "guard_authenticate",
    "org_tenant",
    "tenant_connection_cap",
]

ORG_LIMIT_TEXT: Final = "Organization connection limit reached ({limit})"
"""Message of the 503 and of the hub error when an organization is at its limit."""

_COUNTED_ORG_ITEM: Final = "aiusage.countedOrg"
_SUPER_ADMIN: Final = "SuperAdmin"


def _org_of(principal: Principal | None) -> str | None:
    if principal is None:
        return None
    org = principal.claims.get("org")
    return org if isinstance(org, str) and org else None


def _is_super_admin(principal: Principal | None) -> bool:
    if principal is None:
        return False
    roles = principal.claims.get("role")
    if isinstance(roles, str):
        return roles == _SUPER_ADMIN
    return isinstance(roles, list | tuple | frozenset | set) and _SUPER_ADMIN in roles


def org_tenant(principal: Principal) -> str | None:
    """The engine's tenant key of a principal: its organization. Platform operators
    (SuperAdmin) belong to no tenant, so they are never refused for a tenant's share."""
    if _is_super_admin(principal):
        return None
    return _org_of(principal)


def tenant_connection_cap(
    max_connections: int | None, max_org_connections: int | None, max_org_share: float
) -> int | None:
    """Live connections (negotiated ones included) one organization may hold in a process.

    The smaller of ``max_org_connections`` and ``max_org_share`` of ``max_connections``
    (at least 1); None when neither limit is set.
    """
    caps = []
    if max_org_connections is not None:
        caps.append(max_org_connections)
    if max_connections is not None and max_org_share < 1.0:
        caps.append(max(1, int(max_connections * max_org_share)))
    return min(caps) if caps else None


class OrgConnectionTracker:
    """Live hub connections of this process per organization.

    Args:
        limit: Maximum connections of one organization in this process (None = unlimited).
            Platform operators (SuperAdmin) are counted but never refused.
    """

    __slots__ = ("_counts", "limit", "refused")

    def __init__(self, limit: int | None = None) -> None:
        if limit is not None and limit < 1:
            raise ValueError("the per-organization limit must be at least 1")
        self.limit = limit
        self._counts: dict[str, int] = {}
        self.refused = 0
        """New connections refused because their organization was at the limit."""

    def count(self, org: str) -> int:
        """Current connections of ``org``."""
        return self._counts.get(org, 0)

    def at_limit(self, org: str) -> bool:
        """True when one more connection of ``org`` would exceed the limit."""
        return self.limit is not None and self._counts.get(org, 0) >= self.limit

    def refusal_text(self) -> str:
        """The message sent to a refused client."""
        return ORG_LIMIT_TEXT.format(limit=self.limit)

    def acquire(self, org: str, *, exempt: bool = False) -> None:
        """Count one connection of ``org``.

        Raises:
            HubError: ``org`` is at its limit (nothing counted).
        """
        if not exempt and self.at_limit(org):
            self.refused += 1
            raise HubError(self.refusal_text())
        self._counts[org] = self._counts.get(org, 0) + 1

    def release(self, org: str) -> None:
        """Forget one connection of ``org`` (never below zero)."""
        left = self._counts.get(org, 0) - 1
        if left > 0:
            self._counts[org] = left
        else:
            self._counts.pop(org, None)

    def organizations(self) -> int:
        """Organizations with at least one connection here."""
        return len(self._counts)

    def total(self) -> int:
        """Connections counted over every organization."""
        return sum(self._counts.values())

    def top(self, n: int) -> list[tuple[str, int]]:
        """The ``n`` organizations with the most connections, largest first (ties by id),
        so ``/metrics`` stays bounded however many tenants there are."""
        return heapq.nsmallest(n, self._counts.items(), key=lambda kv: (-kv[1], kv[0]))

    def items(self) -> Iterator[tuple[str, int]]:
        """Every (organization, count)."""
        return iter(list(self._counts.items()))


def _is_new_connection(request: HttpRequestInfo) -> bool:
    # docs/spec/transports.md §2.1: negotiate creates a connection; a WebSocket upgrade without
    # `id` is a skipNegotiation connection created on the fly. Every other request (SSE GET,
    # long polls, POST sends, DELETE) belongs to an existing connection and must not be cut.
    # Hub paths match ignoring case, so must this check (or NEGOTIATE would skip the limit).
    if request.path.rstrip("/").lower().endswith("/negotiate"):
        return True
    if request.method == "GET" and "id" not in request.query:
        upgrade = request.headers.get("upgrade") or request.headers.get("Upgrade") or ""
        return upgrade.lower() == "websocket"
    return False


def guard_authenticate(authenticate: AuthHook, tracker: OrgConnectionTracker) -> AuthHook:
    """Wrap the hub's authentication hook so new connections of an organization at its
    limit are refused with 503 before any state is created."""
    if tracker.limit is None:
        return authenticate

    async def guarded(request: HttpRequestInfo) -> Principal | None:
        principal = await authenticate(request)
        org = _org_of(principal)
        if (
            org is not None
            and not _is_super_admin(principal)
            and _is_new_connection(request)
            and tracker.at_limit(org)
        ):
            tracker.refused += 1
            raise AuthenticationFailed(503, tracker.refusal_text())
        return principal

    return guarded


class OrgLimitFilter:
    """Hub filter that counts a hub's connections per organization in ``tracker`` and refuses
    (hub error Close, no reconnect) connections beyond the limit.

    Register it first in the hub's filter list, so it wraps every other connect hook: a
    refused connection then runs none of them.

    Args:
        tracker: The per-organization counts and limit.
    """

    __slots__ = ("tracker",)

    def __init__(self, tracker: OrgConnectionTracker) -> None:
        self.tracker = tracker

    async def on_connected(
        self,
        context: HubLifetimeContext,
        next: Callable[[HubLifetimeContext], Awaitable[None]],
    ) -> None:
        """Count the connection (or refuse it), then run the rest of the connect chain.

        Raises:
            HubError: The organization is at its limit.
        """
        caller = context.context
        principal = caller.principal
        org = _org_of(principal)
        if org is not None:
            self.tracker.acquire(org, exempt=_is_super_admin(principal))
            caller.items[_COUNTED_ORG_ITEM] = org
        try:
            await next(context)
        except BaseException:
            # The engine does not run the disconnect chain after a failed connect.
            self._release(context)
            raise

    async def on_disconnected(
        self,
        context: HubLifetimeContext,
        exception: BaseException | None,
        next: Callable[[HubLifetimeContext, BaseException | None], Awaitable[None]],
    ) -> None:
        """Run the rest of the disconnect chain, then forget the connection."""
        try:
            await next(context, exception)
        finally:
            self._release(context)

    def _release(self, context: HubLifetimeContext) -> None:
        counted = context.context.items.pop(_COUNTED_ORG_ITEM, None)
        if isinstance(counted, str):
            self.tracker.release(counted)
