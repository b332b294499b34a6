"""A whole REST platform in process for the dashboard/exports/alerts API tests (P2b).

Real store (SQLite file or PostgreSQL schema), real ingestion, the real EventPublisher over a
recording hub context, real tokens from the built-in issuer; only the clock is fake.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

import aiusage.metrics.tables  # noqa: F401 - rollup tables on the metadata
from aiusage.alerts.service import AlertService
from aiusage.api.agent_events import IngestionService
from aiusage.api.app import ApiServices, create_api
from aiusage.auth.issuer import BuiltinIssuer
from aiusage.auth.tokens import TokenVerifier
from aiusage.exports.service import ExportService
from aiusage.exports.signing import UrlSigner
from aiusage.metrics.coalescer import DashboardCoalescer
from aiusage.metrics.hooks import IngestionHooks
from aiusage.metrics.service import DashboardService
from aiusage.realtime.publisher import EventPublisher
from aiusage.store.database import Database
from aiusage.store.ingest import Ingestor
from aiusage.store.repositories import OrganizationRepository
from aiusage.store.tables import metadata

PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


class WallClock:
    """A settable aware-UTC clock."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


class MonoClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Sent:
    group: str
    method: str
    args: tuple[Any, ...]


class _Proxy:
    def __init__(self, hub: RecordingHubContext, group: str) -> None:
        self._hub, self._group = hub, group

    async def send(self, method: str, *args: Any) -> None:
        self._hub.sent.append(Sent(self._group, method, args))


class _Clients:
    def __init__(self, hub: RecordingHubContext) -> None:
        self._hub = hub

    def group(self, group: str) -> _Proxy:
        return _Proxy(self._hub, group)


@dataclass
class RecordingHubContext:
    """A hub context that records every group send (a fake we own)."""

    sent: list[Sent] = field(default_factory=list)

    @property
    def clients(self) -> _Clients:
        return _Clients(self)

    def of(self, method: str) -> list[Sent]:
        return [s for s in self.sent if s.method == method]


@dataclass
class Platform:
    db: Database
    schema: str | None
    app: Any
    client: httpx.AsyncClient
    issuer: BuiltinIssuer
    hub: RecordingHubContext
    clock: WallClock
    mono: MonoClock
    dashboard: DashboardService
    coalescer: DashboardCoalescer
    alerts: AlertService
    exports: ExportService
    data_dir: Path
    ingestion: IngestionService

    def token(self, sub: str, org: str, role: str) -> str:
        return self.issuer.issue(sub, org, role)

    def auth(self, sub: str, org: str, role: str = "Admin") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(sub, org, role)}"}

    async def close(self) -> None:
        await self.client.aclose()
        await self.exports.aclose()
        await self.coalescer.stop()
        if self.schema is not None:
            async with self.db.engine.begin() as conn:
                await conn.execute(text(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE'))
        await self.db.dispose()


async def open_platform(
    tmp_path: Path, kind: str = "sqlite", *, now: datetime | None = None, orgs=("acme", "globex")
) -> Platform:
    if kind == "sqlite":
        db, schema = Database(f"sqlite+aiosqlite:///{tmp_path}/store.db"), None
    else:
        schema = f"p2b_{uuid.uuid4().hex[:12]}"
        db = Database(PG_URL, schema=schema)
    await db.migrate()
    async with db.engine.begin() as conn:
        await conn.run_sync(metadata.create_all, checkfirst=True)
    clock = WallClock(now or datetime(2026, 3, 10, 14, 25, tzinfo=UTC))
    mono = MonoClock()
    async with db.write() as conn:
        for org in orgs:
            await OrganizationRepository().create(
                conn, org, org.title(), approved_tools=["ChatGPT", "GitHub Copilot"], now=clock.now
            )
    issuer = BuiltinIssuer.load_or_create(tmp_path / "keys")
    verifier = TokenVerifier(issuer.token_config())
    hub = RecordingHubContext()
    publisher = EventPublisher(hub)
    dashboard = DashboardService(db, clock=clock)
    coalescer = DashboardCoalescer(dashboard.snapshot, publisher, clock=mono)
    alerts = AlertService(db, publisher, clock=clock, monotonic=mono)
    exports = ExportService(
        db, tmp_path / "data", UrlSigner.load_or_create(tmp_path / "data"), publisher, clock=clock
    )
    hooks = IngestionHooks(coalescer, alerts)
    ingestion = IngestionService(
        Ingestor(db), publisher, after_commit=[hooks.after_commit], clock=clock
    )
    app = create_api(
        ApiServices(
            db=db,
            verifier=verifier,
            ingestion=ingestion,
            state={
                "dashboard_service": dashboard,
                "export_service": exports,
                "alert_service": alerts,
            },
        )
    )
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")
    return Platform(
        db,
        schema,
        app,
        client,
        issuer,
        hub,
        clock,
        mono,
        dashboard,
        coalescer,
        alerts,
        exports,
        tmp_path / "data",
        ingestion,
    )


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgres", marks=[pytest.mark.postgres, pytest.mark.integration]),
    ]
)
async def platform(request, tmp_path):
    """An open :class:`Platform` on each backend (import it into a test module to use it)."""
    p = await open_platform(tmp_path, request.param)
    try:
        yield p
    finally:
        await p.close()


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


async def post_events(p: Platform, org: str, events: list[dict[str, Any]], agent: str = "dev-1"):
    response = await p.client.post(
        "/api/agent/events", json={"events": events}, headers=p.auth(agent, org, "Agent")
    )
    assert response.status_code == 200, response.text
    await p.ingestion.drain()  # post-commit work (coalescer marks, alert rules) runs in a task
    return response.json()
