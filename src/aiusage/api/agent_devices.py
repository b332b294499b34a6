"""Desktop-agent devices (docs/agent.md): enrollment, token refresh, listing and revocation.

* ``POST /api/agent/enroll`` ``{code, deviceName}`` (no token: the one-time code is the
  credential) -> ``{token, deviceId, organizationId, userId, expiresAt}``. The device token is
  an RS256 JWT from the built-in issuer with role ``Agent`` and ``sub`` = device id; the
  ingestion endpoint refuses it (401) once the device is revoked.
* ``POST /api/agent/token`` (Agent token) -> a fresh token for the same device, so a running
  agent never lets its token expire; refused once the device is revoked.
* ``POST /api/agent/enrollment-codes`` ``{userId?, ttlSeconds?}`` (Admin, SuperAdmin) -> ``{code,
  expiresAt}``; the CLI twin is ``aiusage enroll-code create``.
* ``GET /api/agents`` (Admin, Manager, SuperAdmin) and ``POST /api/agents/{id}/revoke``
  (Admin, SuperAdmin).

The routes read the database and the issuer the composition root already put on
``app.state`` (``sessions_database``, ``builtin_issuer``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, Field

from aiusage.api.auth_routes import ISSUER_STATE_KEY
from aiusage.api.sessions import SESSIONS_DB_STATE_KEY
from aiusage.auth.deps import TenantScope, require_principal, require_tenant
from aiusage.auth.issuer import BuiltinIssuer
from aiusage.auth.principal import ADMIN, AGENT, DASHBOARD_ROLES, SUPER_ADMIN, UserPrincipal
from aiusage.errors import Unauthorized
from aiusage.realtime.publisher import iso
from aiusage.store.database import Database
from aiusage.store.repositories import AgentRepository

router = APIRouter(tags=["agents"])

DEVICE_TOKEN_TTL_S = 30 * 24 * 3600
"""Device tokens last 30 days; agents refresh them (``POST /api/agent/token``) well before."""

_agents = AgentRepository()
_admin_tenant = require_tenant(roles={ADMIN, SUPER_ADMIN})
_dashboard_tenant = require_tenant(roles=DASHBOARD_ROLES)
_agent = require_principal(roles={AGENT})


def _db(request: Request) -> Database:
    db = getattr(request.app.state, SESSIONS_DB_STATE_KEY, None)
    if db is None:
        raise HTTPException(404, "Not Found")
    return db  # type: ignore[no-any-return]


def _issuer(request: Request) -> BuiltinIssuer:
    issuer = getattr(request.app.state, ISSUER_STATE_KEY, None)
    if issuer is None:  # an external identity provider signs tokens: no device enrollment
        raise HTTPException(404, "Device enrollment needs the built-in issuer")
    return issuer  # type: ignore[no-any-return]


class EnrollRequest(BaseModel):
    """A one-time code from an admin, and a name for this device."""

    code: str = Field(min_length=1, max_length=100)
    deviceName: str = Field(default="", max_length=200)


class DeviceToken(BaseModel):
    """Credentials of an enrolled device."""

    token: str
    deviceId: str
    organizationId: str
    userId: str | None
    expiresAt: str


class CodeRequest(BaseModel):
    """Options of a new enrollment code."""

    userId: str | None = Field(default=None, max_length=64)
    ttlSeconds: int = Field(default=24 * 3600, ge=60, le=30 * 24 * 3600)


class CodeResponse(BaseModel):
    """A code to type into ``aiusage agent enroll --code``; shown once, stored hashed."""

    code: str
    expiresAt: str


class AgentItem(BaseModel):
    """One enrolled device."""

    deviceId: str
    userId: str | None
    name: str
    createdAt: str
    revokedAt: str | None
    lastSeenAt: str | None


def _device_token(issuer: BuiltinIssuer, device_id: str, org: str, user: str | None) -> DeviceToken:
    extra = {"uid": user} if user else None
    token, exp = issuer.issue_with_expiry(
        device_id, org, AGENT, DEVICE_TOKEN_TTL_S, extra_claims=extra
    )
    return DeviceToken(
        token=token,
        deviceId=device_id,
        organizationId=org,
        userId=user,
        expiresAt=iso(datetime.fromtimestamp(exp, UTC)),
    )


@router.post(
    "/api/agent/enroll",
    response_model=DeviceToken,
    responses={404: {"description": "unknown, expired or already used code"}},
)
async def enroll(body: EnrollRequest, request: Request) -> DeviceToken:
    """Trade a one-time enrollment code for a device token."""
    issuer = _issuer(request)
    async with _db(request).write() as conn:
        enrollment = await _agents.redeem_enrollment_code(
            conn, body.code, device_name=body.deviceName
        )
    return _device_token(issuer, enrollment.device_id, enrollment.org_id, enrollment.user_id)


@router.post(
    "/api/agent/token",
    response_model=DeviceToken,
    responses={401: {"description": "revoked or unknown device"}},
)
async def refresh_token(
    request: Request, principal: UserPrincipal = Depends(_agent)
) -> DeviceToken:
    """A fresh token for the calling device (refused once it is revoked)."""
    issuer = _issuer(request)
    async with _db(request).read() as conn:
        record = await _agents.get(conn, principal.org, principal.sub)
    if record is None or record.revoked_at is not None:
        raise Unauthorized("device revoked or unknown")
    return _device_token(issuer, record.id, principal.org, record.user_id)


@router.post(
    "/api/agent/enrollment-codes",
    response_model=CodeResponse,
    status_code=201,
    responses={
        403: {"description": "not an Admin/SuperAdmin of this organization"},
        404: {"description": "no such user in this organization"},
    },
)
async def create_code(
    body: CodeRequest, request: Request, scope: TenantScope = Depends(_admin_tenant)
) -> CodeResponse:
    """Create a one-time enrollment code for the organization (optionally bound to a user)."""
    now = datetime.now(UTC)
    async with _db(request).write() as conn:
        code = await _agents.create_enrollment_code(
            conn, scope.org_id, user_id=body.userId, ttl=timedelta(seconds=body.ttlSeconds), now=now
        )
    return CodeResponse(code=code, expiresAt=iso(now + timedelta(seconds=body.ttlSeconds)))


def _item(record: Any) -> AgentItem:
    def opt(t: datetime | None) -> str | None:
        return iso(t) if t is not None else None

    return AgentItem(
        deviceId=record.id,
        userId=record.user_id,
        name=record.name,
        createdAt=iso(record.created_at),
        revokedAt=opt(record.revoked_at),
        lastSeenAt=opt(record.last_seen_at),
    )


@router.get("/api/agents", response_model=list[AgentItem])
async def list_agents(
    request: Request, scope: TenantScope = Depends(_dashboard_tenant)
) -> list[AgentItem]:
    """The organization's enrolled devices."""
    async with _db(request).read() as conn:
        return [_item(r) for r in await _agents.list(conn, scope.org_id)]


@router.post(
    "/api/agents/{device_id}/revoke",
    response_model=AgentItem,
    responses={404: {"description": "no such device in this organization"}},
)
async def revoke(
    device_id: str, request: Request, scope: TenantScope = Depends(_admin_tenant)
) -> AgentItem:
    """Revoke a device: its token is refused by ingestion and refresh from now on."""
    async with _db(request).write() as conn:
        await _agents.revoke(conn, scope.org_id, device_id)
        record = await _agents.get(conn, scope.org_id, device_id)
    return _item(record)
