"""The store's answers to P1's access questions.

:class:`StoreAccess` implements :class:`aiusage.realtime.access.AccessChecker` (hub connect and
revalidation: subscription status, membership role) and :class:`aiusage.auth.login.UserLookup`
(``POST /api/auth/login``) over the repositories. Each call is one short read transaction.
"""

from __future__ import annotations

from aiusage.store.database import Database
from aiusage.store.repositories import OrganizationRepository, UserRepository


class StoreAccess:
    """Access lookups over the database.

    Args:
        db: The database.
    """

    def __init__(self, db: Database) -> None:
        self._db = db
        self._orgs = OrganizationRepository()
        self._users = UserRepository()

    async def subscription_status(self, org_id: str) -> str | None:
        """``active``, ``trialing``, ``past_due``, ``canceled``, or None for no such org."""
        async with self._db.read() as conn:
            return await self._orgs.subscription_status(conn, org_id)

    async def user_role(self, org_id: str, user_id: str) -> str | None:
        """The role of an active member, or None (unknown, removed or deactivated)."""
        async with self._db.read() as conn:
            return await self._users.role_of(conn, org_id, user_id)

    async def get_user_by_email(self, email: str) -> tuple[str, str, str, str | None, bool] | None:
        """``(user_id, org_id, role, password_hash, active)`` for ``email``, or None."""
        async with self._db.read() as conn:
            user = await self._users.get_by_email(conn, email)
        if user is None:
            return None
        return (user.id, user.org_id, user.role, user.password_hash, user.active)
