"""``aiusage serve --demo``: a demo organization whose simulated workforce reports live.

Seeds (idempotently, so a restart keeps history):

* organization ``demo`` (active) with the simulator's approved tools, so the unapproved tools
  some people use raise alerts and show up as shadow AI;
* ``admin@demo.local`` (Admin) and ``manager@demo.local`` (Manager); a fresh password is
  generated at every start and printed, because only its hash is stored;
* :data:`DEMO_EMPLOYEES` employees (ids ``sim-user-001``...) with names, e-mail addresses and
  teams (see :func:`aiusage.agent.workforce.demo_people`), each with an enrolled device (an
  agent owned by them), so adoption is measured over the people with an enrolled device;
* an agent ``demo-agent`` (kept for tokens issued by earlier versions).

Then :func:`run_simulator` posts, through this server's own ingestion API and with one token
per device (the real HTTP path, as desktop agents do), :data:`HISTORY_DAYS` days of history
when the organization has none yet, then the workforce's events as they happen.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
from datetime import UTC, datetime, timedelta
from typing import Final

from sqlalchemy import func, select, update

from aiusage.agent.simulator import APPROVED_TOOLS, simulate_workforce
from aiusage.agent.workforce import Person, Workforce, demo_people
from aiusage.auth.issuer import BuiltinIssuer
from aiusage.auth.passwords import hash_password
from aiusage.errors import Conflict
from aiusage.store.database import Database
from aiusage.store.repositories import (
    AgentRepository,
    OrganizationRepository,
    UserRepository,
)
from aiusage.store.tables import ai_sessions as _sessions
from aiusage.store.tables import users as _users

log = logging.getLogger("aiusage.demo")

DEMO_ORG: Final = "demo"
DEMO_ADMIN: Final = "admin@demo.local"
DEMO_MANAGER: Final = "manager@demo.local"
DEMO_AGENT: Final = "demo-agent"
DEMO_EMPLOYEES: Final = 40
HISTORY_DAYS: Final = 30
"""Days of history posted when the demo organization has no sessions yet."""
DEVICE_TOKEN_TTL_S: Final = 30 * 24 * 3600
"""Lifetime of the devices' tokens (the issuer's longest)."""
DEMO_DURATION_S: Final = DEVICE_TOKEN_TTL_S - 3600.0
"""The simulation stops before its tokens expire."""


async def seed_demo(db: Database) -> str:
    """Create (or refresh) the demo organization, people and devices; returns the password."""
    password = secrets.token_urlsafe(12)
    password_hash = hash_password(password)
    orgs, users, agents = OrganizationRepository(), UserRepository(), AgentRepository()
    async with db.write() as conn:
        org = await orgs.get(conn, DEMO_ORG)
        if org is None:
            org = await orgs.create(
                conn,
                DEMO_ORG,
                "Demo Corp",
                subscription_status="active",
                approved_tools=list(APPROVED_TOOLS),
            )
        else:
            await orgs.set_subscription(conn, DEMO_ORG, "active")
        for email, role in ((DEMO_ADMIN, "Admin"), (DEMO_MANAGER, "Manager")):
            existing = await users.get_by_email(conn, email)
            if existing is None:
                await users.create(
                    conn, DEMO_ORG, email=email, role=role, password_hash=password_hash
                )
            else:
                await users.set_password_hash(conn, existing.org_id, existing.id, password_hash)
        for person in demo_people(DEMO_EMPLOYEES, org.created_at):
            if await users.get(conn, DEMO_ORG, person.user_id) is None:
                # An e-mail taken by an earlier run with other ids: keep that user.
                with contextlib.suppress(Conflict):
                    await users.create(
                        conn,
                        DEMO_ORG,
                        email=person.email,
                        role="Employee",
                        user_id=person.user_id,
                    )
            await conn.execute(
                update(_users)
                .where(_users.c.org_id == DEMO_ORG, _users.c.id == person.user_id)
                .values(team=person.team)
            )
            await agents.register(
                conn, DEMO_ORG, person.device_id, user_id=person.user_id, name=person.device_name
            )
        await agents.register(conn, DEMO_ORG, DEMO_AGENT, name="Demo agent (simulator)")
    return password


async def demo_workforce(db: Database, now: datetime | None = None) -> Workforce:
    """The demo's workforce, starting :data:`HISTORY_DAYS` ago when the organization has no
    sessions yet, else now (a restart: its history is stored already)."""
    moment = now or datetime.now(UTC)
    async with db.read() as conn:
        org = await OrganizationRepository().get(conn, DEMO_ORG)
        sessions = (
            await conn.execute(
                select(func.count()).select_from(_sessions).where(_sessions.c.org_id == DEMO_ORG)
            )
        ).scalar_one()
    anchor = org.created_at if org is not None else moment
    start = moment if sessions else moment - timedelta(days=HISTORY_DAYS)
    people: list[Person] = demo_people(DEMO_EMPLOYEES, anchor)
    return Workforce(people, start=start, anchor=anchor, seed=secrets.randbits(32))


async def run_simulator(base_url: str, db: Database, issuer: BuiltinIssuer) -> None:
    """Post the demo workforce's traffic (history first) until cancelled.

    A failure is logged, not raised: the demo's server keeps serving without it.
    """
    try:
        workforce = await demo_workforce(db)
        tokens = {
            p.device_id: issuer.issue(p.device_id, DEMO_ORG, "Agent", DEVICE_TOKEN_TTL_S)
            for p in workforce.people
        }
        stats = await simulate_workforce(
            base_url, tokens, org=DEMO_ORG, workforce=workforce, duration=DEMO_DURATION_S
        )
    except Exception:
        log.exception("demo simulator failed")
        return
    log.info("demo simulator finished: %s", stats.as_dict())
