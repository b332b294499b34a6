"""``GET /api/dashboard``: the dashboard snapshot (same structure as DashboardUpdate).

Initial load of the dashboard and its fallback while the hub is unreachable. Roles
Admin, Manager, SuperAdmin; SuperAdmin may pick another organization with ``organizationId``
(or ``X-Organization-Id``), everyone else gets 403 for a foreign one.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel

from aiusage.auth.deps import TenantScope, require_tenant
from aiusage.auth.principal import DASHBOARD_ROLES
from aiusage.metrics.service import DashboardService

router = APIRouter(tags=["dashboard"])


class ErrorBody(BaseModel):
    """An error answer: FastAPI's validation list or the platform's message and code."""

    detail: Any
    code: str | None = None


STATE_KEY = "dashboard_service"
"""Attribute of ``app.state`` holding the :class:`DashboardService`."""


def dashboard_service(request: Request) -> DashboardService:
    """The app's dashboard service."""
    service = getattr(request.app.state, STATE_KEY, None)
    if not isinstance(service, DashboardService):
        raise RuntimeError("app.state.dashboard_service is not configured")
    return service


@router.get(
    "/api/dashboard",
    summary="Dashboard KPIs and trends (same payload as the DashboardUpdate hub event)",
    responses={
        403: {"description": "Role or organization not allowed"},
        422: {
            "model": ErrorBody,
            "description": "Bad or non-hour-aligned time zone, or unknown period",
        },
    },
)
async def get_dashboard(
    request: Request,
    tz: str | None = Query(
        None,
        max_length=64,
        description="IANA time zone for 'today' and the daily trend (default UTC); its "
        "midnight must be a whole UTC hour",
    ),
    period: str | None = Query(
        None,
        max_length=8,
        description="Period of the *Period KPIs, usageByTool, usageByUser and the daily "
        "trend: 7d, 30d (default) or 90d",
    ),
    organizationId: str | None = Query(
        None, max_length=64, description="SuperAdmin only: organization to show"
    ),
    scope: TenantScope = Depends(require_tenant(roles=DASHBOARD_ROLES)),
) -> dict[str, Any]:
    """``{"metrics": {...}, "trends": {"hourly": [...], "daily": [...]}}`` (docs/metrics.md)."""
    del organizationId  # resolved by require_tenant (header or query)
    return await dashboard_service(request).snapshot(scope.org_id, tz=tz, period=period)


__all__ = ["STATE_KEY", "ErrorBody", "dashboard_service", "router"]
