"""Export endpoints (docs/metrics.md §9 "Exports").

* ``POST /api/exports {from, to, format: csv|jsonl, kind: events|people}`` -> 202 with the job;
  the job runs in the background and ends with ExportCompleted ``{jobId, downloadUrl}`` to
  ``user:{userId}``. ``events`` (default): raw session and detection rows; ``people``: one row
  per person with the dashboard's figures (docs/metrics.md "Exports").
* ``GET /api/exports``: the caller's own jobs, newest first (``limit`` 1-200, default 50).
* ``GET /api/exports/{id}``: the job, for its owner only (404 for anyone else).
* Roles: Admin and SuperAdmin. Managers see the dashboard but not raw per-session data, so
  they are refused (403) here as the dashboard hides the page.
* ``GET /api/exports/{id}/download?exp=&sig=``: the file. Needs the owner's token (Bearer or
  ``access_token``) *and* a valid unexpired signature: bad signature or another user -> 403,
  expired link -> 410 (ask ``GET /api/exports/{id}`` for a fresh one), not finished -> 409.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from aiusage.api.dashboard import ErrorBody
from aiusage.auth.deps import TenantScope, require_principal, require_tenant
from aiusage.auth.principal import ADMIN, SUPER_ADMIN, UserPrincipal
from aiusage.domain.wire import WireTimestamp
from aiusage.errors import ValidationError
from aiusage.exports.service import DownloadGone, ExportService

router = APIRouter(tags=["exports"])

EXPORT_ROLES = frozenset({ADMIN, SUPER_ADMIN})
"""Who may export raw session data."""

STATE_KEY = "export_service"
"""Attribute of ``app.state`` holding the :class:`ExportService`."""


class ExportRequest(BaseModel):
    """Body of ``POST /api/exports``: sessions started and detections made in [from, to)
    (``kind: events``), or one row per person over [from, to) (``kind: people``)."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    from_: WireTimestamp = Field(alias="from", description="Inclusive start (ISO-8601 with zone)")
    to: WireTimestamp = Field(description="Exclusive end (ISO-8601 with zone)")
    format: Literal["csv", "jsonl"] = "csv"
    kind: Literal["events", "people"] = Field(
        "events",
        description="events: one row per session started and per detection made in the "
        "range; people: one row per person over the range (AI and session time, sessions, "
        "detections, engaged, last activity), from and to on whole UTC hours",
    )


def export_service(request: Request) -> ExportService:
    """The app's export service."""
    service = getattr(request.app.state, STATE_KEY, None)
    if not isinstance(service, ExportService):
        raise RuntimeError("app.state.export_service is not configured")
    return service


@router.post(
    "/api/exports",
    status_code=202,
    summary="Start an export job",
    responses={
        422: {
            "model": ErrorBody,
            "description": "Bad range, format or kind (people: bounds not whole UTC hours)",
        }
    },
)
async def create_export(
    request: Request,
    body: ExportRequest,
    scope: TenantScope = Depends(require_tenant(roles=EXPORT_ROLES)),
) -> JSONResponse:
    """The new job (``status: pending``); its URL is in ``Location``."""
    job = await export_service(request).create(
        scope.org_id, scope.principal.sub, body.from_, body.to, body.format, body.kind
    )
    return JSONResponse(job, status_code=202, headers={"Location": f"/api/exports/{job['id']}"})


@router.get("/api/exports", summary="The caller's export jobs")
async def list_exports(
    request: Request,
    limit: int = Query(50, ge=1, le=200),
    scope: TenantScope = Depends(require_tenant(roles=EXPORT_ROLES)),
) -> list[dict[str, Any]]:
    """The caller's jobs in this organization, newest first."""
    return await export_service(request).list(scope.org_id, scope.principal.sub, limit)


@router.get(
    "/api/exports/{job_id}",
    summary="An export job (owner only)",
    responses={404: {"description": "No such job of the caller"}},
)
async def get_export(
    request: Request,
    job_id: str = Path(..., max_length=64),
    scope: TenantScope = Depends(require_tenant(roles=EXPORT_ROLES)),
) -> dict[str, Any]:
    """The job; ``downloadUrl`` is a freshly signed link once it is done."""
    return await export_service(request).get(scope.org_id, scope.principal.sub, job_id)


@router.get(
    "/api/exports/{job_id}/download",
    summary="Download a finished export (owner's token + signed link)",
    response_class=FileResponse,
    responses={
        403: {"description": "Not the owner, or bad signature"},
        404: {"description": "No such job"},
        409: {"description": "Job not finished"},
        410: {"description": "Link expired"},
    },
)
async def download_export(
    request: Request,
    job_id: str = Path(..., max_length=64),
    exp: int = Query(..., ge=0, le=2**53),
    sig: str = Query(..., max_length=128),
    principal: UserPrincipal = Depends(require_principal()),
) -> FileResponse:
    """The export file as an attachment."""
    service = export_service(request)
    org = None if principal.is_super_admin else principal.org
    try:
        found = await service.open_download(org, principal.sub, job_id, exp, sig)
    except DownloadGone as exc:
        raise HTTPException(410, str(exc)) from None
    except ValidationError as exc:
        raise HTTPException(409, exc.message) from None
    return FileResponse(found.path, media_type=found.media_type, filename=found.filename)


__all__ = ["EXPORT_ROLES", "STATE_KEY", "ExportRequest", "export_service", "router"]
