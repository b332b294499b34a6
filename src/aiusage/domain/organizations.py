"""Organizations, users and their vocabularies."""

from __future__ import annotations

import re
from typing import Final

from aiusage.errors import ValidationError

SUBSCRIPTION_STATUSES: Final = ("active", "trialing", "past_due", "canceled")
"""Every subscription status an organization can have."""

LIVE_SUBSCRIPTIONS: Final = frozenset({"active", "trialing"})
"""Statuses whose dashboards may connect to the hub (docs/spec/auth.md §9.5)."""

INGESTING_SUBSCRIPTIONS: Final = frozenset({"active", "trialing", "past_due"})
"""Statuses whose agents' events are still accepted: a late payment must not lose data."""

ROLES: Final = ("Admin", "Manager", "SuperAdmin", "Employee", "Agent")
"""Every role (same names as :data:`aiusage.auth.principal.KNOWN_ROLES`)."""

ADMIN_ROLE: Final = "Admin"
"""The role that manages an organization's members (one active Admin must remain)."""

MAX_TEAM_LENGTH: Final = 100
MAX_SEATS: Final = 10_000_000

_ORG_ID_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_EMAIL_RE: Final = re.compile(r"[^@\s]{1,64}@[^@\s]{1,189}")


def validate_org_id(org_id: str) -> str:
    """An organization id: 1-64 of letters, digits, ``.``, ``_``, ``-`` (used in group names).

    Raises:
        ValidationError: With a message naming the rule.
    """
    if not _ORG_ID_RE.fullmatch(org_id):
        raise ValidationError(
            "organization id must be 1-64 letters, digits, '.', '_' or '-', starting with a "
            "letter or digit"
        )
    return org_id


def validate_subscription(status: str) -> str:
    """A known subscription status.

    Raises:
        ValidationError: Unknown status.
    """
    if status not in SUBSCRIPTION_STATUSES:
        raise ValidationError(f"subscription must be one of {', '.join(SUBSCRIPTION_STATUSES)}")
    return status


def validate_role(role: str) -> str:
    """A known role (exact spelling).

    Raises:
        ValidationError: Unknown role.
    """
    if role not in ROLES:
        raise ValidationError(f"role must be one of {', '.join(ROLES)}")
    return role


def normalize_email(email: str) -> str:
    """A lower-cased, trimmed e-mail address with a plausible shape.

    Raises:
        ValidationError: Not an address.
    """
    value = email.strip().lower()
    if len(value) > 254 or not _EMAIL_RE.fullmatch(value):
        raise ValidationError(f"not an e-mail address: {email!r}")
    return value


def validate_name(name: str) -> str:
    """A display name: 1-200 characters after trimming.

    Raises:
        ValidationError: Empty or too long.
    """
    value = name.strip()
    if not value or len(value) > 200:
        raise ValidationError("name must be 1-200 characters")
    return value


def validate_team(team: str | None) -> str | None:
    """A team name (trimmed, at most 100 characters), or None for "unassigned" (None or
    blank).

    Raises:
        ValidationError: Too long.
    """
    if team is None:
        return None
    value = team.strip()
    if not value:
        return None
    if len(value) > MAX_TEAM_LENGTH:
        raise ValidationError(f"team must be at most {MAX_TEAM_LENGTH} characters")
    return value


def validate_seats(seats: int | None) -> int | None:
    """A seat count (1 to 10,000,000), or None for "not set".

    Raises:
        ValidationError: Out of range or not an integer.
    """
    if seats is None:
        return None
    if isinstance(seats, bool) or not isinstance(seats, int) or not 1 <= seats <= MAX_SEATS:
        raise ValidationError(f"seats must be an integer from 1 to {MAX_SEATS:,}")
    return seats
