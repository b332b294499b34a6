"""``GET /api/alerts`` and ``POST /api/alerts/{id}/acknowledge`` (docs/metrics.md "Alerts").

Tenant-scoped like every API (SuperAdmin may pass ``organizationId``); a caller sees the
organization's alerts plus those targeted at them (``user:{id}`` alerts of others are hidden).
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request

from aiusage.alerts.rules import ALERT_TYPES
from aiusage.alerts.service import MAX_PAGE, AlertService
from aiusage.auth.deps import TenantScope, require_tenant
from aiusage.auth.principal import DASHBOARD_ROLES

router = APIRouter(tags=["alerts"])

STATE_KEY = "alert_service"
"""Attribute of ``app.state`` holding the :class:`AlertService`."""

_ROLE_DEP = require_tenant(roles=DASHBOARD_ROLES)


def alert_service(request: Request) -> AlertService:
    """The app's alert service."""
    service = getattr(request.app.state, STATE_KEY, None)
    if not isinstance(service, AlertService):
        raise RuntimeError("app.state.alert_service is not configured")
    return service


@router.get("/api/alerts", summary="List alerts, newest first (cursor: nextCursor -> before)")
async def list_alerts(
    request: Request,
    acknowledged: bool | None = Query(None, description="Filter on acknowledgement"),
    type: str | None = Query(
        None, max_length=32, description=f"Alert type ({', '.join(ALERT_TYPES)})"
    ),
    severity: Literal["info", "warning", "critical"] | None = Query(None),
    before: int | None = Query(
        None, ge=1, le=2**62, description="Cursor: alerts with a smaller id"
    ),
    limit: int = Query(50, ge=1, le=MAX_PAGE),
    scope: TenantScope = Depends(_ROLE_DEP),
) -> dict[str, Any]:
    """``{"items": [alert...], "nextCursor": id | null}``."""
    items = await alert_service(request).list_alerts(
        scope.org_id,
        scope.principal.sub,
        acknowledged=acknowledged,
        type=type,
        severity=severity,
        before_id=before,
        limit=limit,
    )
    next_cursor = items[-1]["id"] if len(items) == limit else None
    return {"items": items, "nextCursor": next_cursor}


@router.post(
    "/api/alerts/{alert_id}/acknowledge",
    summary="Acknowledge an alert (idempotent; the first acknowledgement is kept)",
    responses={404: {"description": "No such alert visible to the caller"}},
)
async def acknowledge_alert(
    request: Request,
    alert_id: int = Path(..., ge=1, le=2**62),
    scope: TenantScope = Depends(_ROLE_DEP),
) -> dict[str, Any]:
    """The acknowledged alert."""
    return await alert_service(request).acknowledge(scope.org_id, scope.principal.sub, alert_id)


__all__ = ["STATE_KEY", "alert_service", "router"]
