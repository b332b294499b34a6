"""Who is monitored, adoption over them, and who among them has gone quiet.

The denominator of adoption is the organization's **monitored people**, picked by the first
basis that applies (docs/metrics.md "People, teams and adoption"):

1. ``seats``: the seat count an admin set on the organization;
2. ``enrolledDevices``: members owning an enrolled, non-revoked agent device;
3. ``reportingPeople``: members an agent reported activity for in the period.

Deactivated users are never monitored: they left the organization.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final, Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from aiusage.metrics.people import Person
from aiusage.store.tables import organizations as _orgs

Basis = Literal["seats", "enrolledDevices", "reportingPeople"]

INACTIVE_AFTER: Final = timedelta(days=7)
"""A monitored person with no activity for this long is listed as inactive."""


@dataclass(frozen=True, slots=True)
class Monitored:
    """The adoption denominator and the people it names.

    Attributes:
        basis: Which rule picked the denominator.
        count: Monitored people (the denominator).
        named: The monitored people when the basis names them (enrolled device owners, or
            members reported in the period); None for ``seats``, a bare number.
        watched: The people checked for inactivity: enrolled device owners with the
            ``enrolledDevices`` basis, else every member that owns a device or was ever
            reported by an agent (someone who stopped reporting weeks ago stays listed).
    """

    basis: Basis
    count: int
    named: tuple[Person, ...] | None
    watched: tuple[Person, ...]

    def adoption(self, people: Iterable[Person]) -> tuple[int, float | None]:
        """``(numerator, rate)``: monitored people with AI time in the period, over
        :attr:`count`, clamped to [0, 1] (None when nobody is monitored).

        With ``seats`` the numerator is every member with AI time (seats name nobody), and
        the clamp covers an organization using more people than it declared.
        """
        pool = [p for p in people if p.member] if self.named is None else self.named
        users = sum(1 for p in pool if p.uses_ai)
        if self.count <= 0:
            return users, None
        return users, min(1.0, max(0.0, users / self.count))

    def inactive(self, since: datetime) -> list[Person]:
        """Watched people with no activity at or after ``since``: never active first, then
        the longest quiet, by id within a tie."""
        quiet = [p for p in self.watched if p.last_activity is None or p.last_activity < since]
        return sorted(
            quiet,
            key=lambda p: (p.last_activity is not None, p.last_activity or since, p.user_id),
        )


async def monitored(conn: AsyncConnection, org_id: str, people: dict[str, Person]) -> Monitored:
    """The monitored people of ``org_id`` given its :func:`~aiusage.metrics.people.load_people`
    result for the period."""
    seats = (
        await conn.execute(select(_orgs.c.seats).where(_orgs.c.id == org_id))
    ).scalar_one_or_none()
    members = [p for p in people.values() if p.member]
    enrolled = tuple(p for p in members if p.enrolled)
    known = tuple(p for p in members if p.enrolled or p.reported)
    if seats is not None and seats > 0:
        return Monitored("seats", int(seats), None, known)
    if enrolled:
        return Monitored("enrolledDevices", len(enrolled), enrolled, enrolled)
    reporting = tuple(p for p in members if p.active)
    return Monitored("reportingPeople", len(reporting), reporting, known)


__all__ = ["INACTIVE_AFTER", "Basis", "Monitored", "monitored"]
