"""``GET /api/organization`` and ``PATCH /api/organization``: the caller's organization and the
settings an Admin may change (seats; SuperAdmin: any organization, with ``organizationId``).

``seats`` is the number of people the organization monitors: when set, it is the adoption
denominator of the dashboard (docs/metrics.md); ``null`` unsets it.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from aiusage.api.users import database
from aiusage.auth.deps import TenantScope, require_tenant
from aiusage.auth.principal import ADMIN, DASHBOARD_ROLES, SUPER_ADMIN
from aiusage.domain.organizations import MAX_SEATS
from aiusage.errors import NotFound, ValidationError
from aiusage.store.repositories import OrganizationRecord, OrganizationRepository

router = APIRouter(tags=["organization"])

_viewer = require_tenant(roles=DASHBOARD_ROLES)
_admin = require_tenant(roles={ADMIN, SUPER_ADMIN})


class OrganizationOut(BaseModel):
    """An organization as its dashboard users see it."""

    id: str
    name: str
    subscriptionStatus: str  # camelCase on the wire, as every payload
    seats: int | None
    approvedTools: list[str]


class OrganizationPatch(BaseModel):
    """The fields to change; absent fields stay as they are."""

    model_config = ConfigDict(extra="forbid")

    seats: int | None = Field(None, ge=1, le=MAX_SEATS, description="null: not set")


_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing or invalid token"},
    403: {"description": "Role not allowed, or access refused by the store"},
}


def _out(org: OrganizationRecord) -> OrganizationOut:
    return OrganizationOut(
        id=org.id,
        name=org.name,
        subscriptionStatus=org.subscription_status,
        seats=org.seats,
        approvedTools=list(org.approved_tools),
    )


async def _read(request: Request, org_id: str) -> OrganizationOut:
    async with database(request).read() as conn:
        org = await OrganizationRepository().get(conn, org_id)
    if org is None:
        raise NotFound(f"organization {org_id!r} does not exist")
    return _out(org)


@router.get("/api/organization", response_model=OrganizationOut, responses=_ERRORS)
async def get_organization(
    request: Request, scope: TenantScope = Depends(_viewer)
) -> OrganizationOut:
    """The caller's organization."""
    return await _read(request, scope.org_id)


@router.patch(
    "/api/organization",
    response_model=OrganizationOut,
    responses={**_ERRORS, 422: {"description": "seats out of range, or an empty change"}},
)
async def update_organization(
    request: Request, body: OrganizationPatch, scope: TenantScope = Depends(_admin)
) -> OrganizationOut:
    """Change the organization's seats (Admin of it, or SuperAdmin)."""
    change = body.model_dump(exclude_unset=True)
    if not change:
        raise ValidationError("nothing to change: give seats")
    async with database(request).write() as conn:
        await OrganizationRepository().set_seats(conn, scope.org_id, change["seats"])
    return await _read(request, scope.org_id)


__all__ = ["OrganizationOut", "OrganizationPatch", "router"]
