"""``aiusage serve --demo``: a demo organization with live simulated traffic (issue 5).

Seeds (idempotently, so a restart keeps history):

* organization ``demo`` (active) with the simulator's approved tools, so its occasional
  unapproved tool raises an alert;
* ``admin@demo.local`` (Admin) and ``manager@demo.local`` (Manager); a fresh password is
  generated at every start and printed, because only its hash is stored;
* 20 employees whose ids are the simulator's (``sim-user-001``...), with e-mail addresses;
* an agent ``demo-agent`` and its token; then runs the simulator in process against this
  server's own ingestion API (the real HTTP path, as a desktop agent would).
"""

from __future__ import annotations

import contextlib
import logging
import secrets

from aiusage.agent.simulator import APPROVED_TOOLS, simulate
from aiusage.auth.passwords import hash_password
from aiusage.errors import Conflict
from aiusage.store.database import Database
from aiusage.store.repositories import (
    AgentRepository,
    OrganizationRepository,
    UserRepository,
)

log = logging.getLogger("aiusage.demo")

DEMO_ORG = "demo"
DEMO_ADMIN = "admin@demo.local"
DEMO_MANAGER = "manager@demo.local"
DEMO_AGENT = "demo-agent"
DEMO_EMPLOYEES = 20
DEMO_RATE = 8.0
"""Simulated events per second: enough to keep every tile moving."""
DEMO_DURATION_S = 7 * 24 * 3600.0


async def seed_demo(db: Database) -> str:
    """Create (or refresh) the demo organization and users; returns the admin password."""
    password = secrets.token_urlsafe(12)
    password_hash = hash_password(password)
    orgs, users, agents = OrganizationRepository(), UserRepository(), AgentRepository()
    async with db.write() as conn:
        if await orgs.get(conn, DEMO_ORG) is None:
            await orgs.create(
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
        for i in range(1, DEMO_EMPLOYEES + 1):
            uid = f"sim-user-{i:03d}"
            if await users.get(conn, DEMO_ORG, uid) is None:
                # An e-mail taken by an earlier run with other ids: keep that user.
                with contextlib.suppress(Conflict):
                    await users.create(
                        conn,
                        DEMO_ORG,
                        email=f"employee{i:02d}@demo.local",
                        role="Employee",
                        user_id=uid,
                    )
        await agents.register(conn, DEMO_ORG, DEMO_AGENT, name="Demo agent (simulator)")
    return password


async def run_simulator(base_url: str, token: str) -> None:
    """Post simulated traffic for the demo organization until cancelled."""
    stats = await simulate(
        base_url,
        token,
        org=DEMO_ORG,
        users=DEMO_EMPLOYEES,
        rate=DEMO_RATE,
        duration=DEMO_DURATION_S,
    )
    log.info("demo simulator finished: %s", stats)
