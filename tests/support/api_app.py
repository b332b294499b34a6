"""Build the REST app over a real database, the real token verifier and a recording hub."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import httpx

from aiusage.api.agent_events import IngestionService
from aiusage.api.app import ApiServices, create_api
from aiusage.auth.issuer import BuiltinIssuer
from aiusage.auth.tokens import TokenVerifier
from aiusage.realtime.publisher import EventPublisher
from aiusage.store.database import Database
from aiusage.store.ingest import Ingestor
from support.fake_hub_context import FakeHubContext

_issuers: dict[str, BuiltinIssuer] = {}


def shared_issuer(base: Path) -> BuiltinIssuer:
    """One signing key per test session (RSA key generation is slow)."""
    if "i" not in _issuers:
        _issuers["i"] = BuiltinIssuer.load_or_create(base / "issuer")
    return _issuers["i"]


@dataclass
class ApiHarness:
    db: Database
    issuer: BuiltinIssuer
    hub: FakeHubContext
    client: httpx.AsyncClient
    service: IngestionService
    backplane: list[bool]

    def token(self, sub: str, org: str, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.issuer.issue(sub, org, role)}"}


def build(
    db: Database, base: Path, *, max_body_bytes: int = 2 * 1024 * 1024, after_commit=()
) -> tuple[ApiServices, FakeHubContext, BuiltinIssuer, list[bool]]:
    issuer = shared_issuer(base)
    hub = FakeHubContext()
    service = IngestionService(Ingestor(db), EventPublisher(hub), after_commit=after_commit)
    backplane = [True]
    services = ApiServices(
        db=db,
        verifier=TokenVerifier(issuer.token_config()),
        ingestion=service,
        backplane_healthy=lambda: backplane[0],
        max_body_bytes=max_body_bytes,
    )
    return services, hub, issuer, backplane


async def open_harness(db: Database, base: Path, **kw) -> ApiHarness:
    services, hub, issuer, backplane = build(db, base, **kw)
    app = create_api(services)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")
    return ApiHarness(db, issuer, hub, client, services.ingestion, backplane)
