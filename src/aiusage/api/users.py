"""``GET /api/users``, ``PATCH /api/users/{id}``, ``DELETE /api/users/{id}``: an Admin manages
the members of their organization (SuperAdmin: any, with ``organizationId``).

Every change is in effect within seconds everywhere (docs/security.md "User lifecycle"):
REST checks the store on every request (1 s cache), new hub connections are checked at
connect, open ones are closed by the revalidation sweep (every 2 s). Rules:

* the last active Admin of an organization cannot be demoted, deactivated or removed
  (409 ``conflict``): make another user Admin first;
* only a SuperAdmin may grant, change or take away the SuperAdmin role (403);
* ``Agent`` is a device role, never a person's (422).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncConnection

from aiusage.auth.deps import TenantScope, require_tenant
from aiusage.auth.principal import ADMIN, AGENT, SUPER_ADMIN
from aiusage.domain.organizations import MAX_TEAM_LENGTH, ROLES
from aiusage.errors import Forbidden, NotFound, ValidationError
from aiusage.store.database import Database
from aiusage.store.repositories import UserRecord, UserRepository
from aiusage.store.tables import ID_LENGTH

router = APIRouter(tags=["users"])

_admin = require_tenant(roles={ADMIN, SUPER_ADMIN})
_PERSON_ROLES = tuple(r for r in ROLES if r != AGENT)

UserId = Annotated[str, Path(min_length=1, max_length=ID_LENGTH, description="User id")]


class UserOut(BaseModel):
    """One member of the organization."""

    id: str
    email: str | None
    role: str
    active: bool
    team: str | None
    organizationId: str  # camelCase on the wire, as every payload
    createdAt: datetime
    lastSeenAt: datetime | None


class UserList(BaseModel):
    """The organization's users, by id."""

    items: list[UserOut]


class UserPatch(BaseModel):
    """The fields to change; absent fields stay as they are (``team: null`` unassigns)."""

    model_config = ConfigDict(extra="forbid")

    role: str | None = Field(None, description=f"One of {', '.join(_PERSON_ROLES)}")
    active: bool | None = None
    team: str | None = Field(None, max_length=MAX_TEAM_LENGTH)


def database(request: Request) -> Database:
    """The app's database (``ApiServices.db``)."""
    services = getattr(request.app.state, "api_services", None)
    db = getattr(services, "db", None)
    if not isinstance(db, Database):
        raise RuntimeError("app.state.api_services.db is not configured")
    return db


def _out(user: UserRecord) -> UserOut:
    return UserOut(
        id=user.id,
        email=user.email,
        role=user.role,
        active=user.active,
        team=user.team,
        organizationId=user.org_id,
        createdAt=user.created_at,
        lastSeenAt=user.last_seen_at,
    )


_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing or invalid token"},
    403: {"description": "Not an Admin of the organization, or access refused by the store"},
    404: {"description": "No such user in the organization"},
}


@router.get("/api/users", response_model=UserList, responses=_ERRORS)
async def list_users(request: Request, scope: TenantScope = Depends(_admin)) -> UserList:
    """Every user of the caller's organization (active or not), by id."""
    async with database(request).read() as conn:
        users = await UserRepository().list(conn, scope.org_id)
    return UserList(items=[_out(u) for u in users])


@router.patch(
    "/api/users/{user_id}",
    response_model=UserOut,
    responses={
        **_ERRORS,
        409: {"description": "The change would leave the organization without an active Admin"},
        422: {"description": "Unknown role, team too long, or an empty change"},
    },
)
async def update_user(
    request: Request, user_id: UserId, body: UserPatch, scope: TenantScope = Depends(_admin)
) -> UserOut:
    """Change a user's role, active flag and/or team (one transaction)."""
    change = body.model_dump(exclude_unset=True)
    if not change:
        raise ValidationError("nothing to change: give role, active and/or team")
    role = change.get("role")
    if "role" in change and role not in _PERSON_ROLES:
        raise ValidationError(f"role must be one of {', '.join(_PERSON_ROLES)}")
    if "active" in change and change["active"] is None:
        raise ValidationError("active must be true or false")
    repo = UserRepository()
    async with database(request).write() as conn:
        current = await _target(conn, repo, scope, user_id, granting=role)
        if "role" in change or "active" in change:
            await repo.ensure_an_admin_remains(
                conn, scope.org_id, user_id, role=role, active=change.get("active")
            )
        if role is not None and role != current.role:
            await repo.set_role(conn, scope.org_id, user_id, role)
        if "active" in change and change["active"] != current.active:
            await repo.set_active(conn, scope.org_id, user_id, change["active"])
        if "team" in change:
            await repo.set_team(conn, scope.org_id, user_id, change["team"])
        updated = await repo.get(conn, scope.org_id, user_id)
    assert updated is not None
    return _out(updated)


@router.delete(
    "/api/users/{user_id}",
    status_code=204,
    responses={
        **_ERRORS,
        409: {"description": "The user is the organization's last active Admin"},
    },
)
async def remove_user(
    request: Request, user_id: UserId, scope: TenantScope = Depends(_admin)
) -> Response:
    """Remove the user from the organization: their tokens are refused from now on (their
    usage history stays, under their id)."""
    repo = UserRepository()
    async with database(request).write() as conn:
        await _target(conn, repo, scope, user_id)
        await repo.ensure_an_admin_remains(conn, scope.org_id, user_id, remove=True)
        await repo.remove(conn, scope.org_id, user_id)
    return Response(status_code=204)


async def _target(
    conn: AsyncConnection,
    repo: UserRepository,
    scope: TenantScope,
    user_id: str,
    granting: str | None = None,
) -> UserRecord:
    """The user to change, once the caller is allowed to change them.

    Raises:
        NotFound: No such user in the organization.
        Forbidden: A non-SuperAdmin touching a SuperAdmin, or granting the role.
    """
    user = await repo.get(conn, scope.org_id, user_id)
    if user is None:
        raise NotFound(f"user {user_id!r} does not exist in organization {scope.org_id!r}")
    if not scope.principal.is_super_admin and SUPER_ADMIN in (user.role, granting):
        raise Forbidden("only a SuperAdmin may change a SuperAdmin")
    return user


__all__ = ["UserList", "UserOut", "UserPatch", "database", "router"]
