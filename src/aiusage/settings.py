"""Typed settings of an aiusage process, from ``AIUSAGE_*`` environment variables and CLI flags.

Precedence (lowest to highest): defaults, environment, command-line flags. Every command that
touches state resolves the same :attr:`Settings.resolved_database_url`, so ``aiusage serve``,
``aiusage migrate`` and ``aiusage org create`` act on one store (README.md "Using it").
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiusage.errors import ConfigurationError

SQLITE_FILENAME = "aiusage.db"
"""Name of the embedded database file inside the data dir."""

_TRUE = frozenset({"1", "true", "yes", "on"})


def _split(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything an aiusage process needs to know about its environment.

    Attributes:
        data_dir: Directory for the embedded SQLite database, signing keys and exports.
        database_url: SQLAlchemy async URL (``sqlite+aiosqlite:///...`` or
            ``postgresql+asyncpg://...``); None means SQLite in ``data_dir``.
        database_schema: PostgreSQL schema to use (search_path); None = the server default.
        redis_url: Redis URL of the backplane (``redis://``, ``rediss://``, ``unix://``,
            ``redis+sentinel://``; docs/scaleout.md); None = in-memory lifetime manager.
        channel_prefix: Redis channel prefix (ASP.NET's ``ChannelPrefix``,
            docs/spec/backplane.md §6.1).
        host: Bind address of ``aiusage serve``.
        port: Bind port (0 = any free port).
        workers: Number of server processes sharing the port (docs/scaleout.md).
        demo: Seed the demo organization and run the simulator in process.
        cors_origins: Origins allowed to call the REST API and hub with credentials.
        trusted_proxies: Addresses whose ``X-Forwarded-*`` headers are believed.
        jwt_issuer: Required ``iss`` of incoming tokens (None: not checked unless built-in).
        jwt_audience: Required ``aud`` (None: not checked).
        jwt_public_key_file: PEM public key of an external identity provider.
        jwks_url: JWKS URL of an external identity provider.
        login_token_ttl_s: Lifetime of dashboard tokens from ``POST /api/auth/login``.
        max_batch_events: Maximum events in one ``POST /api/agent/events`` batch.
        max_body_bytes: Maximum request body of the ingestion endpoint.
        dashboard_interval_s: DashboardUpdate coalescing period per organization.
        export_url_ttl_s: Lifetime of signed export download URLs.
        agent_silent_minutes: "Agent silent" alert threshold.
        shutdown_grace_s: Time allowed to drain connections on SIGTERM.
        stateful_reconnect: Let clients that ask (``withStatefulReconnect()``) resume a
            dropped WebSocket, on any process of the backplane (docs/scaleout.md).
        resume_timeout_s: Seconds a stateful reconnect to a connection of another process may
            take to be handed over before the client is refused and starts over.
        public_url: Externally visible base URL (download links); None = derived from host/port.
        web_dir: Built dashboard (``web/dashboard/dist/...``) served at ``/``; None = not served.
        access_log: Emit one access-log line per HTTP request (tokens redacted).
        max_connections: Hub connections per process; beyond it negotiate/upgrade get 503
            (None = unlimited).
        max_org_connections: Hub connections of one organization per process; beyond it
            503 ``Organization connection limit reached (N)`` (None = unlimited).
        max_message_bytes: Largest incoming hub message (docs/spec/hub-protocol.md §3.8).
        max_outgoing_buffer: Unsent bytes per connection before it is dropped as a slow
            consumer (it reconnects and resyncs).
        max_org_share: Largest share of ``max_connections`` one organization may hold,
            negotiated-but-unconnected connections included (1.0 = no share limit).
        http_body_timeout_s: Seconds a request body may take to arrive; then 408 and close
            (0 = no limit).
        hub_max_messages_per_s: Hub messages per second one connection may send on average;
            over budget it is closed with an error (0 = unlimited).
        hub_max_messages_burst: Hub messages one connection may send at once.
        hub_max_bytes_per_s: Hub bytes per second one connection may send (0 = unlimited).
        log_format: ``text`` or ``json`` (one JSON object per line, tokens redacted).
        metrics_top_orgs: Organizations listed individually in ``/metrics``.
        tls_cert: PEM certificate chain: serve HTTPS/WSS without a proxy (docs/deploy.md);
            needs ``tls_key``.
        tls_key: PEM private key of ``tls_cert``.
    """

    data_dir: Path = Path(".data")
    database_url: str | None = None
    database_schema: str | None = None
    redis_url: str | None = None
    channel_prefix: str = "AIUsagePlatform"
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    demo: bool = False
    cors_origins: tuple[str, ...] = ()
    trusted_proxies: tuple[str, ...] = ()
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    jwt_public_key_file: str | None = None
    jwks_url: str | None = None
    login_token_ttl_s: int = 3600
    max_batch_events: int = 1000
    max_body_bytes: int = 2 * 1024 * 1024
    dashboard_interval_s: float = 1.0
    export_url_ttl_s: int = 3600
    agent_silent_minutes: int = 30
    shutdown_grace_s: float = 10.0
    stateful_reconnect: bool = True
    resume_timeout_s: float = 5.0
    public_url: str | None = None
    web_dir: Path | None = None
    access_log: bool = True
    max_connections: int | None = None
    max_org_connections: int | None = None
    max_message_bytes: int = 32 * 1024
    max_outgoing_buffer: int = 4 * 1024 * 1024
    # Limits one tenant or client cannot use against the others (docs/deploy.md "Limits").
    max_org_share: float = 0.5
    http_body_timeout_s: float = 30.0
    hub_max_messages_per_s: float = 100.0
    hub_max_messages_burst: int = 200
    hub_max_bytes_per_s: int = 1024 * 1024
    log_format: str = "text"
    metrics_top_orgs: int = 20
    # Identity and access (docs/security.md): trust tokens whose subject the store does not
    # know (development and load tests only: a deleted user's tokens then work until expiry).
    allow_unknown_users: bool = False
    tls_cert: str | None = None
    tls_key: str | None = None

    @property
    def resolved_database_url(self) -> str:
        """The database URL actually used: the configured one, else SQLite in ``data_dir``."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / SQLITE_FILENAME).resolve()}"

    @property
    def base_url(self) -> str:
        """Base URL for links printed or sent to users (``public_url`` or host:port)."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"{self.scheme}://{host}:{self.port}"

    @property
    def scheme(self) -> str:
        """``https`` when a TLS certificate is configured, else ``http``."""
        return "https" if self.tls_cert else "http"

    def replace(self, **changes: Any) -> Settings:
        """A copy with ``changes`` applied; ``None`` values are ignored (unset CLI flags)."""
        applied = {k: v for k, v in changes.items() if v is not None}
        return dataclasses.replace(self, **applied)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read ``AIUSAGE_*`` variables (documented in ``deploy/aiusage.env``).

        Raises:
            ConfigurationError: A numeric variable does not parse.
        """
        env = os.environ if environ is None else environ
        kw: dict[str, Any] = {}

        def text(name: str, attr: str) -> None:
            value = env.get(name)
            if value:
                kw[attr] = value

        def number(name: str, attr: str, kind: type[int] | type[float]) -> None:
            value = env.get(name)
            if value:
                try:
                    kw[attr] = kind(value)
                except ValueError as exc:
                    raise ConfigurationError(f"{name}={value!r} is not a number") from exc

        if env.get("AIUSAGE_DATA_DIR"):
            kw["data_dir"] = Path(env["AIUSAGE_DATA_DIR"])
        text("AIUSAGE_DATABASE_URL", "database_url")
        text("AIUSAGE_DATABASE_SCHEMA", "database_schema")
        text("AIUSAGE_REDIS_URL", "redis_url")
        text("AIUSAGE_CHANNEL_PREFIX", "channel_prefix")
        text("AIUSAGE_HOST", "host")
        number("AIUSAGE_PORT", "port", int)
        number("AIUSAGE_WORKERS", "workers", int)
        if env.get("AIUSAGE_DEMO"):
            kw["demo"] = env["AIUSAGE_DEMO"].lower() in _TRUE
        if env.get("AIUSAGE_CORS_ORIGINS"):
            kw["cors_origins"] = _split(env["AIUSAGE_CORS_ORIGINS"])
        if env.get("AIUSAGE_TRUSTED_PROXIES"):
            kw["trusted_proxies"] = _split(env["AIUSAGE_TRUSTED_PROXIES"])
        text("AIUSAGE_JWT_ISSUER", "jwt_issuer")
        text("AIUSAGE_JWT_AUDIENCE", "jwt_audience")
        text("AIUSAGE_JWT_PUBLIC_KEY_FILE", "jwt_public_key_file")
        text("AIUSAGE_JWKS_URL", "jwks_url")
        number("AIUSAGE_LOGIN_TOKEN_TTL", "login_token_ttl_s", int)
        number("AIUSAGE_MAX_BATCH_EVENTS", "max_batch_events", int)
        number("AIUSAGE_MAX_BODY_BYTES", "max_body_bytes", int)
        number("AIUSAGE_DASHBOARD_INTERVAL", "dashboard_interval_s", float)
        number("AIUSAGE_EXPORT_URL_TTL", "export_url_ttl_s", int)
        number("AIUSAGE_AGENT_SILENT_MINUTES", "agent_silent_minutes", int)
        number("AIUSAGE_SHUTDOWN_GRACE", "shutdown_grace_s", float)
        if env.get("AIUSAGE_STATEFUL_RECONNECT"):
            kw["stateful_reconnect"] = env["AIUSAGE_STATEFUL_RECONNECT"].lower() in _TRUE
        number("AIUSAGE_RESUME_TIMEOUT", "resume_timeout_s", float)
        text("AIUSAGE_PUBLIC_URL", "public_url")
        if env.get("AIUSAGE_WEB_DIR"):
            kw["web_dir"] = Path(env["AIUSAGE_WEB_DIR"])
        if env.get("AIUSAGE_ACCESS_LOG"):
            kw["access_log"] = env["AIUSAGE_ACCESS_LOG"].lower() in _TRUE
        # Operator limits and observability (docs/deploy.md).
        number("AIUSAGE_MAX_CONNECTIONS", "max_connections", int)
        number("AIUSAGE_MAX_ORG_CONNECTIONS", "max_org_connections", int)
        number("AIUSAGE_MAX_MESSAGE_BYTES", "max_message_bytes", int)
        number("AIUSAGE_MAX_OUTGOING_BUFFER", "max_outgoing_buffer", int)
        number("AIUSAGE_MAX_ORG_SHARE", "max_org_share", float)
        number("AIUSAGE_HTTP_BODY_TIMEOUT", "http_body_timeout_s", float)
        number("AIUSAGE_HUB_MAX_MESSAGES_PER_S", "hub_max_messages_per_s", float)
        number("AIUSAGE_HUB_MAX_MESSAGES_BURST", "hub_max_messages_burst", int)
        number("AIUSAGE_HUB_MAX_BYTES_PER_S", "hub_max_bytes_per_s", int)
        if env.get("AIUSAGE_LOG_FORMAT"):
            kw["log_format"] = env["AIUSAGE_LOG_FORMAT"].strip().lower()
        number("AIUSAGE_METRICS_TOP_ORGS", "metrics_top_orgs", int)
        if env.get("AIUSAGE_ALLOW_UNKNOWN_USERS"):
            kw["allow_unknown_users"] = env["AIUSAGE_ALLOW_UNKNOWN_USERS"].lower() in _TRUE
        text("AIUSAGE_SERVER_TLS_CERT", "tls_cert")
        text("AIUSAGE_SERVER_TLS_KEY", "tls_key")
        settings = cls(**kw)
        settings.validate()
        return settings

    def validate(self) -> None:
        """Reject settings that cannot work.

        Raises:
            ConfigurationError: With a message naming the bad setting.
        """
        url = self.resolved_database_url
        if not (url.startswith("sqlite+aiosqlite://") or url.startswith("postgresql+asyncpg://")):
            raise ConfigurationError(
                "database URL must start with sqlite+aiosqlite:// or postgresql+asyncpg://"
            )
        if not 0 <= self.port <= 65535:
            raise ConfigurationError(f"port {self.port} is out of range")
        if self.redis_url:
            # Imported here: commands that never touch Redis do not load the client.
            from hubserver.lifetime.redis_url import RedisUrlError, parse_redis_url

            try:
                parse_redis_url(self.redis_url)
            except RedisUrlError as exc:
                raise ConfigurationError(f"--redis-url / AIUSAGE_REDIS_URL: {exc}") from exc
        if self.workers < 1:
            raise ConfigurationError("workers must be at least 1")
        if self.max_batch_events < 1:
            raise ConfigurationError("max_batch_events must be at least 1")
        for name in ("max_connections", "max_org_connections"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigurationError(f"{name} must be at least 1 (unset = unlimited)")
        if self.max_message_bytes < 1024:
            raise ConfigurationError("max_message_bytes must be at least 1024")
        if self.max_outgoing_buffer < 64 * 1024:
            raise ConfigurationError("max_outgoing_buffer must be at least 65536")
        if not 0.0 < self.max_org_share <= 1.0:
            raise ConfigurationError("max_org_share must be in (0, 1]")
        for name in ("http_body_timeout_s", "hub_max_messages_per_s", "hub_max_bytes_per_s"):
            if getattr(self, name) < 0:
                raise ConfigurationError(f"{name} must not be negative (0 = unlimited)")
        if self.hub_max_messages_burst < 1:
            raise ConfigurationError("hub_max_messages_burst must be at least 1")
        if self.log_format not in ("text", "json"):
            raise ConfigurationError("log_format must be 'text' or 'json'")
        if self.metrics_top_orgs < 0:
            raise ConfigurationError("metrics_top_orgs must not be negative")
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ConfigurationError(
                "TLS needs both --tls-cert and --tls-key"
                " (AIUSAGE_SERVER_TLS_CERT, AIUSAGE_SERVER_TLS_KEY)"
            )
