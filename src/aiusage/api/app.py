"""The REST application: ``create_api(services) -> FastAPI``.

Routers live one per module and read their services from ``app.state`` (each module's
``install_*`` function or a documented state key); this factory installs the services it is
given and includes every router module that exists:

==============================  =====================================================
module                          endpoints
==============================  =====================================================
``aiusage.api.agent_events``    ``POST /api/agent/events``
``aiusage.api.agent_devices``   ``POST /api/agent/enroll``, device tokens, ``/api/agents``
``aiusage.api.sessions``        ``GET /api/sessions``
``aiusage.api.dashboard``       ``GET /api/dashboard``
``aiusage.api.exports``         ``POST /api/exports``, ``GET /api/exports/{id}``...
``aiusage.api.alerts``          ``GET /api/alerts``, acknowledge
``aiusage.api.auth_routes``     ``POST /api/auth/login``, ``GET /.well-known/jwks.json``
``aiusage.api.users``           ``GET /api/users``, ``PATCH``/``DELETE /api/users/{id}``
``aiusage.api.organization``    ``GET``/``PATCH /api/organization``
==============================  =====================================================

plus ``GET /healthz`` (liveness) and ``GET /readyz`` (database ping and backplane health;
503 while either is down: README.md, docs/deploy.md "Health checks").

Errors are JSON everywhere: ``{"detail": ...}`` (FastAPI's shape), with a ``code`` for the
platform's own :class:`aiusage.errors.AiUsageError` tree. Unexpected exceptions answer 500
``{"detail": "Internal Server Error"}`` and are logged with their traceback, never sent.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from aiusage.api.agent_events import INGEST_PATH, IngestionService, install_agent_events
from aiusage.api.input_guard import JsonBodyGuard
from aiusage.api.sessions import install_sessions
from aiusage.auth.access_policy import AccessPolicy
from aiusage.auth.deps import install_access_policy, install_verifier
from aiusage.auth.tokens import TokenVerifier
from aiusage.errors import AiUsageError
from aiusage.store.database import Database

log = logging.getLogger("aiusage.api")

ROUTER_MODULES = (
    "aiusage.api.auth_routes",
    "aiusage.api.agent_events",
    "aiusage.api.agent_devices",
    "aiusage.api.sessions",
    "aiusage.api.dashboard",
    "aiusage.api.exports",
    "aiusage.api.alerts",
    "aiusage.api.users",
    "aiusage.api.organization",
)
"""Router modules included when importable (each exposes ``router: APIRouter``)."""


@dataclass(slots=True)
class ApiServices:
    """What the REST API needs, built by the composition root (:mod:`aiusage.platform`).

    Attributes:
        db: The database.
        verifier: Validates bearer tokens for every protected route.
        ingestion: Agent ingestion use case.
        backplane_healthy: Reports the hub backplane's health for ``/readyz``.
        state: Further ``app.state`` attributes read by other routers (login service,
            issuer, dashboard service, export and alert services...), keyed by the
            attribute names those routers document.
        max_body_bytes: Body limit of the ingestion endpoint.
        cors_origins: Origins allowed to call the API with credentials (empty: same origin).
        web_dir: Built dashboard served at ``/`` with SPA fallback (None: not served; see
            :class:`DashboardMiddleware`).
        title: OpenAPI title.
        access_policy: The store check of every authenticated request, shared with the hub
            (None: the token alone decides; only for tests of single routers).
    """

    db: Database
    verifier: TokenVerifier
    ingestion: IngestionService
    backplane_healthy: Callable[[], bool] = lambda: True
    state: Mapping[str, Any] = field(default_factory=dict)
    max_body_bytes: int = 2 * 1024 * 1024
    cors_origins: tuple[str, ...] = ()
    web_dir: Path | None = None
    title: str = "aiusage"
    access_policy: AccessPolicy | None = None


API_PREFIXES = (
    "/api/",
    "/hubs/",
    "/.well-known/",
    "/openapi.json",
    "/healthz",
    "/readyz",
    "/metrics",
)
"""Paths that always belong to the API; everything else that is a GET/HEAD is the dashboard."""


class DashboardMiddleware:
    """Serves the built single-page dashboard for GET/HEAD outside :data:`API_PREFIXES`, with
    the SPA fallback (unknown paths get ``index.html`` so Angular's router handles deep links).

    A pure ASGI middleware rather than a mount at ``/``: a mount would also match API paths
    with a wrong method and answer 405 with the static files' ``Allow: GET, HEAD`` instead
    of the API route's own methods.
    """

    def __init__(self, app: ASGIApp, directory: Path) -> None:
        self.app = app
        self.files = StaticFiles(directory=directory, html=True)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] not in ("GET", "HEAD")
            or scope["path"].startswith(API_PREFIXES)
        ):
            await self.app(scope, receive, send)
            return
        path = scope["path"].lstrip("/")
        try:
            response = await self.files.get_response(path, scope)
        except StarletteHTTPException as exc:
            if exc.status_code != 404:
                raise
            response = await self.files.get_response("index.html", scope)
        await response(scope, receive, send)


def _error(status: int, detail: Any, code: str | None = None) -> JSONResponse:
    body: dict[str, Any] = {"detail": detail}
    if code is not None:
        body["code"] = code
    return JSONResponse(body, status_code=status)


def create_api(services: ApiServices) -> FastAPI:
    """Build the FastAPI application over ``services``."""
    app = FastAPI(
        title=services.title,
        version="0.1.0",
        docs_url="/api/docs",
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    install_verifier(app, services.verifier)
    install_access_policy(app, services.access_policy)
    install_agent_events(app, services.ingestion, max_body_bytes=services.max_body_bytes)
    install_sessions(app, services.db)
    for key, value in services.state.items():
        setattr(app.state, key, value)
    app.state.api_services = services

    @app.exception_handler(AiUsageError)
    async def _platform_error(_request: Request, exc: AiUsageError) -> JSONResponse:
        if exc.status >= 500:
            log.warning("%s: %s", exc.code, exc.message)
        return _error(exc.status, exc.message, exc.code)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return _error(500, "Internal Server Error")

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        """Liveness: 200 while the process serves requests."""
        return {"status": "ok"}

    @app.get(
        "/readyz",
        tags=["ops"],
        responses={503: {"description": "database or backplane unreachable"}},
    )
    async def readyz() -> JSONResponse:
        """Readiness: 200 when the database answers and the backplane is healthy, else 503."""
        database = await services.db.ping()
        try:
            backplane = bool(services.backplane_healthy())
        except Exception:
            log.exception("backplane health check failed")
            backplane = False
        ready = database and backplane
        return JSONResponse(
            {
                "status": "ready" if ready else "unavailable",
                "database": "ok" if database else "down",
                "backplane": "ok" if backplane else "down",
            },
            status_code=200 if ready else 503,
        )

    for name in ROUTER_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                log.debug("router %s not present", name)
                continue
            raise
        app.include_router(module.router)

    # Bounded, strict JSON for every /api/ body (ingestion decodes its own the same way).
    app.add_middleware(JsonBodyGuard, skip_paths=(INGEST_PATH,))
    if services.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(services.cors_origins),
            allow_credentials=True,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
            allow_headers=[
                "Authorization",
                "Content-Type",
                "X-Organization-Id",
                "X-Requested-With",
                "X-SignalR-User-Agent",
            ],
        )
    if services.web_dir is not None and (services.web_dir / "index.html").is_file():
        app.add_middleware(DashboardMiddleware, directory=services.web_dir)
    return app
