"""Who is calling: the validated identity extracted from a token.

Roles (docs/spec/auth.md §9.5): ``Admin``, ``Manager``, ``SuperAdmin``, ``Employee``,
``Agent``. Role names are compared exactly (as ``[Authorize(Roles = "Admin,Manager")]`` does
with the default ``ClaimsIdentity``), so ``admin`` is not ``Admin``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

ADMIN: Final = "Admin"
MANAGER: Final = "Manager"
SUPER_ADMIN: Final = "SuperAdmin"
EMPLOYEE: Final = "Employee"
AGENT: Final = "Agent"

KNOWN_ROLES: Final = frozenset({ADMIN, MANAGER, SUPER_ADMIN, EMPLOYEE, AGENT})
"""Every role the platform gives a meaning to."""

DASHBOARD_ROLES: Final = frozenset({ADMIN, MANAGER, SUPER_ADMIN})
"""Roles that may watch live analytics (seed: ``[Authorize(Roles = "Admin,Manager")]``,
plus SuperAdmin)."""


def normalise_roles(value: object) -> frozenset[str]:
    """Turn a ``role`` claim (a string or a list of strings) into a set.

    Raises:
        ValueError: The claim is empty, or not a string / list of non-empty strings.
    """
    if isinstance(value, str):
        items: Iterable[object] = (value,)
    elif isinstance(value, list | tuple):
        items = value
    else:
        raise ValueError("role claim must be a string or a list of strings")
    roles: set[str] = set()
    for item in items:
        if not isinstance(item, str) or not item.strip():
            raise ValueError("role claim holds an empty or non-string value")
        roles.add(item.strip())
    if not roles:
        raise ValueError("role claim is empty")
    return frozenset(roles)


@dataclass(frozen=True, slots=True)
class UserPrincipal:
    """An authenticated caller.

    Attributes:
        sub: User id (JWT ``sub``).
        org: Organization id the token is bound to (JWT ``org``).
        roles: Normalised role set (JWT ``role``, string or list).
        exp: Expiry as Unix time, or None when the token has none.
        claims: Every validated claim, for application-specific checks.
    """

    sub: str
    org: str
    roles: frozenset[str]
    exp: float | None = None
    claims: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def is_super_admin(self) -> bool:
        """True for platform operators, who may act across organizations."""
        return SUPER_ADMIN in self.roles

    def has_any_role(self, roles: Iterable[str]) -> bool:
        """True when the principal holds at least one of ``roles``."""
        return not self.roles.isdisjoint(roles)

    def can_access_org(self, org_id: str) -> bool:
        """Tenant rule: a principal sees only its own organization, SuperAdmin sees all."""
        return self.is_super_admin or org_id == self.org

    @classmethod
    def from_claims(
        cls,
        claims: Mapping[str, Any],
        *,
        org_claim: str = "org",
        role_claim: str = "role",
    ) -> UserPrincipal:
        """Build a principal from already-verified claims.

        Raises:
            ValueError: A required claim (``sub``, ``org``, ``role``) is missing or malformed.
        """
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub:
            raise ValueError("missing or empty 'sub' claim")
        org = claims.get(org_claim)
        if not isinstance(org, str) or not org:
            raise ValueError(f"missing or empty {org_claim!r} claim")
        if role_claim not in claims:
            raise ValueError(f"missing {role_claim!r} claim")
        roles = normalise_roles(claims[role_claim])
        exp = claims.get("exp")
        expires = float(exp) if isinstance(exp, int | float) and not isinstance(exp, bool) else None
        return cls(sub=sub, org=org, roles=roles, exp=expires, claims=dict(claims))
