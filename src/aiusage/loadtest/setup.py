"""Tenants and tokens for a load test.

Tokens are minted from the instance's data dir exactly as ``aiusage token issue`` does
(:meth:`BuiltinIssuer.load_or_create`): one dashboard token (role Admin) and one agent token
(role Agent) per organization. The hub refuses organizations the store does not know or whose
subscription is not active, and users it does not know (docs/security.md), so
:func:`ensure_organizations` creates them (``--create-orgs``) with their dashboard user through
the store's repositories, as ``aiusage org create`` and ``aiusage user create`` do.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aiusage.auth.issuer import MAX_TTL, BuiltinIssuer
from aiusage.errors import Conflict
from aiusage.settings import Settings
from aiusage.store.database import Database
from aiusage.store.repositories import OrganizationRepository, UserRepository

ORG_PREFIX = "loadtest-"


def org_ids(count: int, prefix: str = ORG_PREFIX) -> list[str]:
    """``loadtest-0000``, ``loadtest-0001``, ... (valid organization ids)."""
    width = max(4, len(str(count - 1)))
    return [f"{prefix}{i:0{width}d}" for i in range(count)]


def admin_id(org: str) -> str:
    """The id of an organization's load-test dashboard user."""
    return f"loadtest-admin-{org}"


def mint_tokens(
    data_dir: str | Path, orgs: list[str], ttl: int
) -> tuple[dict[str, str], dict[str, str]]:
    """``(dashboard tokens, agent tokens)`` per organization from the data dir's issuer."""
    issuer = BuiltinIssuer.load_or_create(Path(data_dir))
    ttl = max(60, min(MAX_TTL, ttl))
    dashboard = {o: issuer.issue(admin_id(o), o, "Admin", ttl) for o in orgs}
    agent = {o: issuer.issue("loadtest-agent", o, "Agent", ttl) for o in orgs}
    return dashboard, agent


def load_token_file(path: str | Path) -> tuple[list[str], dict[str, str], dict[str, str]]:
    """Read ``{"orgs": {"<org>": {"dashboard": "<jwt>", "agent": "<jwt>"}}}``.

    Raises:
        ValueError: The file does not have that shape.
    """
    obj: Any = json.loads(Path(path).read_text())
    orgs = obj.get("orgs") if isinstance(obj, dict) else None
    if not isinstance(orgs, dict) or not orgs:
        raise ValueError('token file must be {"orgs": {"<org>": {"dashboard": ..., "agent": ...}}}')
    dashboard: dict[str, str] = {}
    agent: dict[str, str] = {}
    for org, pair in orgs.items():
        if not isinstance(pair, dict) or not isinstance(pair.get("dashboard"), str):
            raise ValueError(f"token file: organization {org!r} needs a 'dashboard' token")
        dashboard[org] = pair["dashboard"]
        if isinstance(pair.get("agent"), str):
            agent[org] = pair["agent"]
    return list(orgs), dashboard, agent


async def ensure_organizations(
    orgs: list[str], data_dir: str | Path, database_url: str | None = None
) -> int:
    """Create the organizations that do not exist yet (subscription ``active``) and their
    dashboard user (:func:`admin_id`); return how many organizations were created. Uses the
    same store resolution as every ``aiusage`` command."""
    settings = Settings.from_env().replace(data_dir=Path(data_dir), database_url=database_url)
    settings.validate()
    db = Database(settings.resolved_database_url, schema=settings.database_schema)
    created = 0
    repo = OrganizationRepository()
    users = UserRepository()
    try:
        await db.migrate()
        async with db.write() as conn:
            for org in orgs:
                try:
                    await repo.create(conn, org, f"Load test {org}")
                    created += 1
                except Conflict:
                    status = await repo.subscription_status(conn, org)
                    if status not in ("active", "trialing"):
                        await repo.set_subscription(conn, org, "active")
                if await users.get(conn, org, admin_id(org)) is None:
                    await users.create(conn, org, email=None, role="Admin", user_id=admin_id(org))
    finally:
        await db.dispose()
    return created
