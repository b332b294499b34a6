"""Authentication endpoints: ``POST /api/auth/login`` and ``GET /.well-known/jwks.json``.

Composition stores the services with :func:`install_auth_routes`; the router reads them from
``app.state`` (so one router object serves any app instance).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from aiusage.auth.errors import InvalidCredentials, RateLimited
from aiusage.auth.issuer import BuiltinIssuer
from aiusage.auth.login import MAX_EMAIL_LENGTH, MAX_PASSWORD_LENGTH, LoginService

LOGIN_STATE_KEY = "login_service"
ISSUER_STATE_KEY = "builtin_issuer"

router = APIRouter(tags=["auth"])


def install_auth_routes(
    app: Any, *, login: LoginService | None, issuer: BuiltinIssuer | None
) -> None:
    """Give the router its services (None disables the endpoint: 404)."""
    setattr(app.state, LOGIN_STATE_KEY, login)
    setattr(app.state, ISSUER_STATE_KEY, issuer)


class LoginRequest(BaseModel):
    """Credentials."""

    email: str = Field(min_length=1, max_length=MAX_EMAIL_LENGTH)
    password: str = Field(min_length=1, max_length=MAX_PASSWORD_LENGTH)


class LoginUser(BaseModel):
    """The logged-in user."""

    id: str
    email: str
    organizationId: str  # camelCase on the wire, as every payload
    role: str


class LoginResponse(BaseModel):
    """A dashboard token and when it expires."""

    token: str
    expiresAt: datetime  # camelCase on the wire
    user: LoginUser


class ErrorBody(BaseModel):
    """Error answer."""

    detail: str


@router.post(
    "/api/auth/login",
    response_model=LoginResponse,
    responses={401: {"model": ErrorBody}, 429: {"model": ErrorBody}},
)
async def login(body: LoginRequest, request: Request) -> LoginResponse | JSONResponse:
    """Exchange e-mail and password for a bearer token (RS256, built-in issuer).

    401 ``Invalid email or password`` for every kind of failure; 429 ``Too many login
    attempts`` with ``Retry-After`` (seconds) after 5 failures for one e-mail from one address,
    50 from one address, or 20 for one e-mail from any addresses, within 5 minutes
    (docs/security.md "Login").
    """
    service = getattr(request.app.state, LOGIN_STATE_KEY, None)
    if not isinstance(service, LoginService):
        raise HTTPException(404, "Not Found")
    client_ip = request.client.host if request.client else "unknown"
    try:
        result = await service.login(body.email, body.password, client_ip)
    except RateLimited as exc:
        return JSONResponse(
            {"detail": "Too many login attempts"},
            status_code=429,
            headers={"Retry-After": str(max(1, math.ceil(exc.retry_after)))},
        )
    except InvalidCredentials as exc:
        return JSONResponse({"detail": str(exc)}, status_code=401)
    return LoginResponse(
        token=result.token,
        expiresAt=datetime.fromtimestamp(result.expires_at, tz=UTC),
        user=LoginUser(
            id=result.user_id, email=result.email, organizationId=result.org_id, role=result.role
        ),
    )


@router.get("/.well-known/jwks.json", include_in_schema=False)
async def jwks(request: Request) -> JSONResponse:
    """The built-in issuer's public keys (RFC 7517)."""
    issuer = getattr(request.app.state, ISSUER_STATE_KEY, None)
    if not isinstance(issuer, BuiltinIssuer):
        raise HTTPException(404, "Not Found")
    return JSONResponse(issuer.jwks(), headers={"Cache-Control": "public, max-age=300"})
