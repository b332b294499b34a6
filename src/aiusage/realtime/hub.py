"""The AnalyticsHub at ``/hubs/analytics`` (tenant isolation: docs/spec/auth.md §9.5).

Tenant isolation rests on three rules, all enforced on the server:

1. who may connect is decided by the authentication hook (:func:`make_authenticate`);
2. the groups a connection joins are derived from its *verified* principal only
   (``org:{orgId}``, ``user:{orgId}:{userId}``, ``admin``, ``superadmin``); no hub method
   accepts a raw group name, and an organization id given by a client is checked against the
   token;
3. ``BroadcastDashboardUpdate`` goes only to the caller's own organization unless the caller is
   SuperAdmin.

``user:{orgId}:{userId}`` is tenant-scoped: a user id is unique only within its organization
(the store's key is ``(org_id, id)``; agents report employees by their own ids), so org-a's
``X`` never receives org-b's ``X``'s ExportCompleted or alerts (docs/security.md).

A fresh hub instance serves each invocation (hubserver's model, as ASP.NET Core); the
:class:`AnalyticsHubActivator` mapped with it gives every instance the platform's services (the
snapshot provider and the access checker) through ``__init__``.
"""

from __future__ import annotations

from typing import Any, Final, Protocol, cast

from aiusage.auth.deps import requested_organization
from aiusage.auth.principal import ADMIN, SUPER_ADMIN, UserPrincipal
from aiusage.errors import ValidationError
from aiusage.realtime.access import (
    PRINCIPAL_ITEM,
    AccessChecker,
    make_authenticate,
    principal_of,
)
from aiusage.realtime.dashboard_update import check_broadcast
from aiusage.realtime.publisher import user_group
from hubserver import Hub, HubError

__all__ = [
    "ADMIN_GROUP",
    "SUPERADMIN_GROUP",
    "AnalyticsHub",
    "AnalyticsHubActivator",
    "SnapshotProvider",
    "make_authenticate",
    "org_group",
    "user_group",
]

ADMIN_GROUP: Final = "admin"
SUPERADMIN_GROUP: Final = "superadmin"
MAX_ORG_ID_LENGTH: Final = 128

_HOME_ORG_ITEM: Final = "aiusage.homeOrg"


def org_group(org_id: str) -> str:
    """The group of every dashboard connection of an organization."""
    return f"org:{org_id}"


class SnapshotProvider(Protocol):
    """Computes the dashboard structure (``{metrics, trends}``) for an organization."""

    async def snapshot(
        self, org_id: str, tz: str | None = None, period: str | None = None
    ) -> dict[str, Any]:
        """The same structure as ``GET /api/dashboard`` and DashboardUpdate (``tz``/``period``
        as its query parameters)."""
        ...


def _check_org_id(org_id: str) -> None:
    if not org_id or len(org_id) > MAX_ORG_ID_LENGTH:
        raise HubError("Invalid organization id")


class AnalyticsHub(Hub):
    """Live analytics for admins and managers of one organization (SuperAdmin: any).

    Client -> server methods: ``JoinOrganizationGroup()``,
    ``JoinOrganization(orgId)``, ``LeaveOrganization(orgId)``,
    ``BroadcastDashboardUpdate(orgId, metrics)``, ``GetDashboardSnapshot()``.

    Args:
        snapshot_provider: Serves ``GetDashboardSnapshot`` (``DashboardService``); without one
            the method answers ``Dashboard unavailable``.
        access_checker: Lets ``JoinOrganization`` refuse unknown organizations.
    """

    def __init__(
        self,
        snapshot_provider: SnapshotProvider | None = None,
        access_checker: AccessChecker | None = None,
    ) -> None:
        self.snapshot_provider = snapshot_provider
        self.access_checker = access_checker

    # -- caller identity --------------------------------------------------------------------

    def _user(self) -> UserPrincipal:
        items = self.context.items
        cached = items.get(PRINCIPAL_ITEM)
        if isinstance(cached, UserPrincipal):
            return cached
        engine_principal = self.context.principal
        if engine_principal is None:
            # Mapped without make_authenticate: refuse rather than serve an anonymous tenant.
            raise HubError("Unauthorized")
        user = principal_of(engine_principal)
        items[PRINCIPAL_ITEM] = user
        return user

    def _home_org(self, user: UserPrincipal) -> str:
        home = self.context.items.get(_HOME_ORG_ITEM)
        if isinstance(home, str):
            return home
        # The hook already refused a mismatching organization for everyone but SuperAdmin,
        # for whom an explicit organizationId selects the tenant they watch.
        request = self.context.request
        requested = requested_organization(request.headers, request.query)
        home = requested if requested is not None and user.can_access_org(requested) else user.org
        self.context.items[_HOME_ORG_ITEM] = home
        return home

    def _require_super_admin(self) -> UserPrincipal:
        user = self._user()
        if not user.is_super_admin:
            raise HubError("Forbidden")
        return user

    # -- lifecycle --------------------------------------------------------------------------

    async def on_connected(self) -> None:
        """Seed step 4: join ``org:{orgId}``, ``user:{orgId}:{userId}``, and
        ``admin``/``superadmin``."""
        user = self._user()
        home = self._home_org(user)
        cid = self.context.connection_id
        await self.groups.add(cid, org_group(home))
        await self.groups.add(cid, user_group(user.org, user.sub))
        if ADMIN in user.roles:
            await self.groups.add(cid, ADMIN_GROUP)
        if SUPER_ADMIN in user.roles:
            await self.groups.add(cid, SUPERADMIN_GROUP)

    # -- hub methods ------------------------------------------------------------------------

    async def join_organization_group(self) -> None:
        """(Re)join the caller's own organization group; idempotent (the seed's method)."""
        user = self._user()
        home = self._home_org(user)
        await self.groups.add(self.context.connection_id, org_group(home))

    async def join_organization(self, org_id: str) -> None:
        """SuperAdmin only: also receive ``org_id``'s events.

        Raises:
            HubError: ``Forbidden`` for other roles, ``Unknown organization`` when the store
                has no such organization.
        """
        self._require_super_admin()
        _check_org_id(org_id)
        checker = self.access_checker
        if checker is not None and await checker.subscription_status(org_id) is None:
            raise HubError("Unknown organization")
        await self.groups.add(self.context.connection_id, org_group(org_id))

    async def leave_organization(self, org_id: str) -> None:
        """SuperAdmin only: stop receiving ``org_id``'s events.

        Raises:
            HubError: ``Forbidden`` for other roles.
        """
        self._require_super_admin()
        _check_org_id(org_id)
        await self.groups.remove(self.context.connection_id, org_group(org_id))

    async def broadcast_dashboard_update(self, org_id: str, metrics: dict[str, Any]) -> None:
        """Send ``DashboardUpdate(metrics)`` to ``org:{org_id}`` (the seed's method).

        Seed "Tenant Isolation": hub methods verify the caller belongs to the target org.
        Every dashboard of the organization, Admins' included, shows what this sends, so only
        Admin and SuperAdmin may call it, and only with a payload that validates against the
        DashboardUpdate schema (docs/security.md "BroadcastDashboardUpdate").

        Raises:
            HubError: ``Forbidden`` when ``org_id`` is not the caller's organization (SuperAdmin
                may target any organization); ``Forbidden: ...`` for other roles than Admin and
                SuperAdmin; ``Invalid DashboardUpdate: ...`` naming the first schema problem.
        """
        user = self._user()
        _check_org_id(org_id)
        if not user.can_access_org(org_id):
            raise HubError("Forbidden")
        check_broadcast(user, org_id, metrics)
        await self.clients.group(org_group(org_id)).send("DashboardUpdate", metrics)

    async def get_dashboard_snapshot(
        self, tz: object = None, period: object = None
    ) -> dict[str, Any]:
        """The caller's organization's dashboard (``{metrics, trends}``).

        Args:
            tz: Optional IANA zone of "today" and of the days (docs/metrics.md "Time"); the
                pushed DashboardUpdate stays in UTC.
            period: Optional ``7d``, ``30d`` (default) or ``90d``.

        Raises:
            HubError: ``Dashboard unavailable`` when no snapshot provider is configured; the
                validation message for a bad zone or period.
        """
        user = self._user()
        provider = self.snapshot_provider
        if provider is None:
            raise HubError("Dashboard unavailable")
        org_id = self._home_org(user)
        if tz is None and period is None:
            return await provider.snapshot(org_id)
        for value in (tz, period):
            if value is not None and (not isinstance(value, str) or len(value) > 64):
                raise HubError("Invalid dashboard arguments")
        try:
            return await provider.snapshot(
                org_id, tz=cast(str | None, tz), period=cast(str | None, period)
            )
        except ValidationError as exc:
            raise HubError(str(exc)) from exc


class AnalyticsHubActivator:
    """Creates every :class:`AnalyticsHub` instance with the platform's services
    (the hub's ``activator`` in ``map_hub``).

    Args:
        snapshot_provider: Serves ``GetDashboardSnapshot`` (``DashboardService``).
        access_checker: Used by ``JoinOrganization`` to refuse unknown organizations.
    """

    __slots__ = ("access_checker", "snapshot_provider")

    def __init__(
        self,
        snapshot_provider: SnapshotProvider | None,
        access_checker: AccessChecker | None = None,
    ) -> None:
        self.snapshot_provider = snapshot_provider
        self.access_checker = access_checker

    def create(self, hub_cls: type[AnalyticsHub]) -> AnalyticsHub:
        """A hub instance holding the services."""
        return hub_cls(self.snapshot_provider, self.access_checker)

    def release(self, hub: AnalyticsHub) -> None:
        """Nothing to free: the services outlive the call."""
