"""The composition root: builds every service of one ``aiusage serve`` process and wires them.

::

    Settings ──► Database (migrated) ──► StoreAccess (AccessChecker, UserLookup)
             ──► BuiltinIssuer ──► TokenVerifier (built-in keys, or an external PEM/JWKS)
             ──► lifetime manager (in-memory, or RedisLifetimeManager with --redis-url)
             ──► map_hub('/hubs/analytics', AnalyticsHub, authenticate=make_authenticate(...),
                         activator=AnalyticsHubActivator(...), filters=[OrgLimitFilter(...)])
             ──► EventPublisher(hub_context)
             ──► DashboardService + DashboardCoalescer, AlertService, ExportService
             ──► IngestionService(Ingestor, publisher, after_commit=IngestionHooks)
             ──► create_api(ApiServices) ──► HubServer([hub endpoint], api)

Lifecycle: :meth:`Platform.start` starts the backplane, the background services
(coalescer, alert sweeper, access revalidation) and the HTTP server, in that order;
:meth:`Platform.stop` undoes it in reverse: the server first (clients get Close with
``allowReconnect: true``), background work next, the backplane and the database last.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiusage.alerts.rules import AlertRules
from aiusage.alerts.service import AlertService
from aiusage.api import alerts as alerts_api
from aiusage.api import dashboard as dashboard_api
from aiusage.api import exports as exports_api
from aiusage.api.agent_events import IngestionService
from aiusage.api.app import ApiServices, create_api
from aiusage.api.auth_routes import ISSUER_STATE_KEY, LOGIN_STATE_KEY
from aiusage.auth.access_policy import AccessPolicy
from aiusage.auth.issuer import BuiltinIssuer
from aiusage.auth.jwks import JwksKeySource
from aiusage.auth.keys import StaticKeySource
from aiusage.auth.login import LoginService
from aiusage.auth.tokens import TokenConfig, TokenVerifier
from aiusage.errors import ConfigurationError
from aiusage.exports.service import ExportService
from aiusage.exports.signing import UrlSigner
from aiusage.metrics.coalescer import DashboardCoalescer
from aiusage.metrics.hooks import IngestionHooks
from aiusage.metrics.service import DashboardService
from aiusage.observability import (
    DashboardStaleness,
    MetricsCollector,
    OrgConnectionTracker,
    OrgLimitFilter,
    RequestIdMiddleware,
    guard_authenticate,
    install_metrics,
)
from aiusage.observability.limits import ORG_LIMIT_TEXT, org_tenant, tenant_connection_cap
from aiusage.realtime.access import make_authenticate
from aiusage.realtime.hub import AnalyticsHub, AnalyticsHubActivator
from aiusage.realtime.publisher import EventPublisher
from aiusage.realtime.revalidation import AccessRevalidator
from aiusage.realtime.store_access import StoreAccess
from aiusage.settings import Settings
from aiusage.store.database import Database
from aiusage.store.ingest import Ingestor
from hubserver import (
    ConnectionOptions,
    HubLifetimeManager,
    HubOptions,
    HubServer,
    InMemoryLifetimeManager,
    MappedHub,
    map_hub,
)
from hubserver.server.runner import serve_until_stopped
from hubserver.server.tls import TlsConfigError, load_tls_context

log = logging.getLogger("aiusage.platform")

HUB_PATH = "/hubs/analytics"
HUB_NAME = "AnalyticsHub"
"""Hub name on the Redis backplane (ASP.NET Core uses the hub class's full name)."""


def _default_web_dir() -> Path | None:
    # Repository checkout: web/dashboard/dist/dashboard/browser (Angular's application builder).
    root = Path(__file__).resolve().parents[2] / "web" / "dashboard" / "dist"
    for candidate in (root / "dashboard" / "browser", root / "browser", root):
        if (candidate / "index.html").is_file():
            return candidate
    return None


def build_verifier(settings: Settings, issuer: BuiltinIssuer) -> TokenVerifier:
    """Tokens of the built-in issuer, or of the external identity provider when one is
    configured (``jwt_public_key_file`` / ``jwks_url``; then ``jwt_issuer``/``jwt_audience``
    are checked when set and the built-in issuer's tokens are not accepted).

    Raises:
        ConfigurationError: The configured PEM file cannot be read.
    """
    if settings.jwks_url:
        return TokenVerifier(
            TokenConfig(
                key_source=JwksKeySource(settings.jwks_url),
                issuer=settings.jwt_issuer,
                audience=settings.jwt_audience,
            )
        )
    if settings.jwt_public_key_file:
        try:
            pem = Path(settings.jwt_public_key_file).read_bytes()
        except OSError as exc:
            raise ConfigurationError(f"cannot read JWT public key: {exc}") from exc
        return TokenVerifier(
            TokenConfig(
                key_source=StaticKeySource.from_pem(pem),
                issuer=settings.jwt_issuer,
                audience=settings.jwt_audience,
            )
        )
    return TokenVerifier(issuer.token_config())


def build_lifetime(settings: Settings) -> HubLifetimeManager:
    """In-memory lifetime manager, or the Redis backplane when ``redis_url`` is set."""
    if settings.redis_url:
        from hubserver.lifetime.redis import RedisLifetimeManager  # loads redis: only if used

        return RedisLifetimeManager(
            settings.redis_url, channel_prefix=settings.channel_prefix, hub_name=HUB_NAME
        )
    return InMemoryLifetimeManager()


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    """The server's TLS context when ``tls_cert``/``tls_key`` are set (docs/deploy.md).

    Raises:
        ConfigurationError: A file is missing, unreadable, not PEM, or the key does not
            belong to the certificate (the message names the file).
    """
    if not settings.tls_cert or not settings.tls_key:
        return None
    try:
        return load_tls_context(settings.tls_cert, settings.tls_key)
    except TlsConfigError as exc:
        raise ConfigurationError(str(exc)) from exc


@dataclass
class Platform:
    """Every service of one process. Build with :meth:`create`."""

    settings: Settings
    db: Database
    issuer: BuiltinIssuer
    verifier: TokenVerifier
    access: StoreAccess
    hub: MappedHub
    publisher: EventPublisher
    dashboard: DashboardService
    coalescer: DashboardCoalescer
    alerts: AlertService
    exports: ExportService
    ingestion: IngestionService
    revalidator: AccessRevalidator
    api: Any
    server: HubServer
    background: list[asyncio.Task[Any]] = field(default_factory=list)
    metrics: MetricsCollector | None = None
    _started: bool = False

    @classmethod
    async def create(
        cls,
        settings: Settings,
        *,
        migrate: bool = True,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> Platform:
        """Build (and by default migrate) everything; nothing listens yet.

        Raises:
            ConfigurationError: Unusable settings.
            aiusage.errors.StoreError: The database is unreachable.
        """
        settings.validate()
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        db = Database(settings.resolved_database_url, schema=settings.database_schema)
        if migrate:
            await db.migrate()
        issuer = BuiltinIssuer.load_or_create(settings.data_dir)
        verifier = build_verifier(settings, issuer)
        access = StoreAccess(db)
        # One access decision (and one cache) for REST and the hub (docs/security.md).
        policy = AccessPolicy(access, require_user_record=not settings.allow_unknown_users)
        dashboard = DashboardService(db, clock=clock)
        # Operator limits (docs/deploy.md "Limits"): per process, per organization,
        # message size and the slow-consumer buffer.
        org_tracker = OrgConnectionTracker(settings.max_org_connections)
        hub = map_hub(
            HUB_PATH,
            AnalyticsHub,
            activator=AnalyticsHubActivator(dashboard, access),
            filters=[OrgLimitFilter(org_tracker)],
            lifetime=build_lifetime(settings),
            hub_options=HubOptions(
                maximum_receive_message_size=settings.max_message_bytes,
                max_outgoing_buffer=settings.max_outgoing_buffer,
                max_receive_messages_per_second=settings.hub_max_messages_per_s or None,
                max_receive_messages_burst=settings.hub_max_messages_burst,
                max_receive_bytes_per_second=settings.hub_max_bytes_per_s or None,
            ),
            connection_options=ConnectionOptions(
                allow_stateful_reconnects=settings.stateful_reconnect,
                allowed_origins=settings.cors_origins,
                max_connections=settings.max_connections,
                tenant_of=org_tenant,
                max_tenant_connections=tenant_connection_cap(
                    settings.max_connections, settings.max_org_connections, settings.max_org_share
                ),
                tenant_limit_text=ORG_LIMIT_TEXT,
            ),
            authenticate=guard_authenticate(
                make_authenticate(verifier, access, policy=policy), org_tracker
            ),
            resume_timeout=settings.resume_timeout_s,
        )
        publisher = EventPublisher(hub.hub_context)
        staleness = DashboardStaleness()
        coalescer = DashboardCoalescer(
            dashboard.push_snapshot,
            staleness.publisher(publisher),
            interval=settings.dashboard_interval_s,
        )
        alerts = AlertService(
            db,
            publisher,
            rules=AlertRules(silent_after=timedelta(minutes=settings.agent_silent_minutes)),
            clock=clock,
        )
        exports = ExportService(
            db,
            settings.data_dir,
            UrlSigner.load_or_create(settings.data_dir),
            publisher,
            url_ttl_s=settings.export_url_ttl_s,
            base_url=settings.public_url or "",
            clock=clock,
        )
        hooks = IngestionHooks(staleness.marker(coalescer), alerts)
        ingestion = IngestionService(
            Ingestor(db),
            publisher,
            after_commit=[hooks.after_commit],
            max_events=settings.max_batch_events,
            clock=clock,
        )
        login = LoginService(access, issuer, token_ttl=settings.login_token_ttl_s)
        builtin_tokens = not (settings.jwks_url or settings.jwt_public_key_file)
        api = create_api(
            ApiServices(
                db=db,
                verifier=verifier,
                ingestion=ingestion,
                backplane_healthy=hub.lifetime.is_healthy,
                state={
                    LOGIN_STATE_KEY: login if builtin_tokens else None,
                    ISSUER_STATE_KEY: issuer if builtin_tokens else None,
                    dashboard_api.STATE_KEY: dashboard,
                    exports_api.STATE_KEY: exports,
                    alerts_api.STATE_KEY: alerts,
                },
                max_body_bytes=settings.max_body_bytes,
                cors_origins=settings.cors_origins,
                web_dir=settings.web_dir or _default_web_dir(),
                access_policy=policy,
            )
        )
        metrics = MetricsCollector(
            handler=hub.handler,
            endpoint=hub.endpoint,
            lifetime=hub.lifetime,
            ingestion_stats=ingestion.stats,
            coalescer=coalescer,
            staleness=staleness,
            org_tracker=org_tracker,
            max_connections=settings.max_connections,
            top_orgs=settings.metrics_top_orgs,
        )
        install_metrics(api, metrics)
        api.add_middleware(RequestIdMiddleware)
        server = HubServer(
            [hub.endpoint],
            api,
            host=settings.host,
            port=settings.port,
            reuse_port=settings.workers > 1,
            trusted_proxies=settings.trusted_proxies,
            access_log=settings.access_log,
            body_timeout=settings.http_body_timeout_s,
            ssl_context=tls_context(settings),
        )
        revalidator = AccessRevalidator(hub.handler, access)
        return cls(
            settings=settings,
            db=db,
            issuer=issuer,
            verifier=verifier,
            access=access,
            hub=hub,
            publisher=publisher,
            dashboard=dashboard,
            coalescer=coalescer,
            alerts=alerts,
            exports=exports,
            ingestion=ingestion,
            revalidator=revalidator,
            api=api,
            server=server,
            metrics=metrics,
        )

    @property
    def port(self) -> int:
        """The bound port (the real one when the settings say 0)."""
        return self.server.port

    @property
    def base_url(self) -> str:
        """URL of this process (with the actual port)."""
        if self.settings.public_url:
            return self.settings.public_url.rstrip("/")
        host = self.settings.host
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        return f"{self.settings.scheme}://{host}:{self.port}"

    async def start(self) -> None:
        """Start the backplane, background services and the HTTP server."""
        await self.hub.start()
        await self.coalescer.start()
        await self.alerts.start_sweeper()
        self.revalidator.start()
        await self.server.start()
        self._started = True
        log.info("aiusage listening on %s", self.base_url)

    def spawn(self, coro: Any, name: str) -> asyncio.Task[Any]:
        """Run ``coro`` as a background task stopped with the platform (demo simulator)."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self.background.append(task)
        return task

    async def stop(self, grace: float | None = None) -> None:
        """Graceful stop: server (Close with allowReconnect), background work, backplane, db."""
        grace_s = self.settings.shutdown_grace_s if grace is None else grace
        for task in self.background:
            task.cancel()
        for task in self.background:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.background.clear()
        if self._started:
            await self.server.stop(grace_s)
        await self.ingestion.drain()
        await self.revalidator.stop()
        await self.alerts.stop_sweeper()
        await self.coalescer.stop()
        await self.exports.aclose()
        with contextlib.suppress(Exception):
            await self.hub.lifetime.stop()
        await self.db.dispose()
        self._started = False

    async def _start_and_freeze(self) -> None:
        await self.start()
        # What exists once the server is up (modules, table metadata, the app, compiled
        # statements) lives as long as the process. Left to the cycle collector, every full
        # collection walks it all: 60-200 ms pauses of the event loop under ingestion, the
        # POST -> push p99 of bench/bench_ingest.py. Frozen, full collections scan only
        # what was allocated since.
        gc.collect()
        gc.freeze()

    async def serve(self, on_started: Callable[[Platform], Any] | None = None) -> None:
        """Start, call ``on_started``, run until SIGINT/SIGTERM, then stop gracefully (the
        engine's runner, :func:`hubserver.server.runner.serve_until_stopped`)."""
        await serve_until_stopped(
            self._start_and_freeze,
            self.stop,
            on_started=None if on_started is None else functools.partial(on_started, self),
        )
