"""``GET /api/sessions``: AI sessions of one organization, filtered, cursor-paginated.

Query: ``userId``, ``tool``, ``from`` (inclusive) and ``to`` (exclusive) on the session start
(ISO-8601 with a time zone), ``limit`` (1-500, default 100) and ``cursor`` (opaque, from the
previous page's ``nextCursor``). Newest start first; keyset pagination on ``(startTime, id)``
so pages stay consistent while new sessions arrive. Roles Admin, Manager, SuperAdmin; the
organization is the token's, or ``X-Organization-Id`` / ``organizationId`` for SuperAdmin.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel

from aiusage.auth.deps import TenantScope, require_tenant
from aiusage.auth.principal import DASHBOARD_ROLES
from aiusage.errors import ValidationError
from aiusage.realtime.publisher import iso
from aiusage.store.database import Database
from aiusage.store.repositories import MAX_PAGE_SIZE, SessionRecord, SessionRepository

SESSIONS_DB_STATE_KEY = "sessions_database"
"""Attribute of ``app.state`` holding the :class:`Database` the router reads."""

router = APIRouter(tags=["sessions"])
_dashboard_tenant = require_tenant(roles=DASHBOARD_ROLES)


def install_sessions(app: Any, db: Database) -> None:
    """Give the router its database (composition root)."""
    setattr(app.state, SESSIONS_DB_STATE_KEY, db)


class SessionItem(BaseModel):
    """One session (camelCase on the wire; durations in seconds, null while active)."""

    sessionId: str
    userId: str
    deviceId: str | None
    tool: str | None
    startTime: str
    endTime: str | None
    duration: float | None
    aiUsageTime: float | None
    active: bool


class SessionPageModel(BaseModel):
    """A page of sessions; ``nextCursor`` null on the last page."""

    items: list[SessionItem]
    nextCursor: str | None


class ErrorBody(BaseModel):
    """Error answer."""

    detail: str


def _item(s: SessionRecord) -> SessionItem:
    return SessionItem(
        sessionId=s.id,
        userId=s.user_id,
        deviceId=s.device_id,
        tool=s.tool,
        startTime=iso(s.start_time),
        endTime=iso(s.end_time) if s.end_time is not None else None,
        duration=s.duration_s,
        aiUsageTime=s.ai_usage_s,
        active=s.end_time is None,
    )


def _timestamp(name: str, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise HTTPException(400, f"{name} is not an ISO-8601 timestamp") from None
    if moment.tzinfo is None:
        raise HTTPException(400, f"{name} must include a time zone")
    return moment


@router.get(
    "/api/sessions",
    response_model=SessionPageModel,
    responses={
        400: {"model": ErrorBody, "description": "bad filter or cursor"},
        401: {"model": ErrorBody},
        403: {"model": ErrorBody},
    },
)
async def list_sessions(
    request: Request,
    scope: TenantScope = Depends(_dashboard_tenant),
    user_id: str | None = Query(None, alias="userId", min_length=1, max_length=64),
    tool: str | None = Query(None, min_length=1, max_length=64),
    start_from: str | None = Query(
        None, alias="from", max_length=40, json_schema_extra={"format": "date-time"}
    ),
    start_to: str | None = Query(
        None, alias="to", max_length=40, json_schema_extra={"format": "date-time"}
    ),
    cursor: str | None = Query(None, max_length=400),
    limit: int = Query(100, ge=1, le=MAX_PAGE_SIZE),
) -> SessionPageModel:
    """Sessions of the caller's organization, newest first."""
    db: Database = getattr(request.app.state, SESSIONS_DB_STATE_KEY)
    lower = _timestamp("from", start_from)
    upper = _timestamp("to", start_to)
    try:
        async with db.read() as conn:
            page = await SessionRepository().page(
                conn,
                scope.org_id,
                user_id=user_id,
                tool=tool,
                start_from=lower,
                start_to=upper,
                cursor=cursor,
                limit=limit,
            )
    except ValidationError as exc:
        raise HTTPException(400, exc.message) from None
    return SessionPageModel(items=[_item(s) for s in page.items], nextCursor=page.next_cursor)
