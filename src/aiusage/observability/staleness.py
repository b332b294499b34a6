"""DashboardUpdate staleness: how long a committed change waits before dashboards see it.

The product promises at most one DashboardUpdate per second per organization, never staler
than that; this measures it in production. The clock starts when the first change after the
previous push marks an organization dirty (ingestion's after-commit hook) and stops when the
coalescer's push for that organization has been handed to the hub (local connections
written, backplane published).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from aiusage.observability.exposition import Histogram

__all__ = ["STALENESS_BUCKETS", "DashboardStaleness"]

STALENESS_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0)
"""Seconds; dense around the 1 s coalescing period."""


class _DirtyMarker(Protocol):
    def mark_dirty(self, org_id: str) -> None: ...


class _DashboardPublisher(Protocol):
    async def dashboard_update(self, org_id: str, snapshot: Mapping[str, Any]) -> None: ...


class _TimedMarker:
    __slots__ = ("_inner", "_owner")

    def __init__(self, owner: DashboardStaleness, inner: _DirtyMarker) -> None:
        self._owner = owner
        self._inner = inner

    def mark_dirty(self, org_id: str) -> None:
        self._owner.changed(org_id)
        self._inner.mark_dirty(org_id)


class _TimedPublisher:
    __slots__ = ("_inner", "_owner")

    def __init__(self, owner: DashboardStaleness, inner: _DashboardPublisher) -> None:
        self._owner = owner
        self._inner = inner

    async def dashboard_update(self, org_id: str, snapshot: Mapping[str, Any]) -> None:
        await self._inner.dashboard_update(org_id, snapshot)
        self._owner.pushed(org_id)


class DashboardStaleness:
    """Histogram of change-to-push delays plus the age of the oldest unpushed change.

    Args:
        clock: Monotonic seconds (injected in tests).
    """

    __slots__ = ("_clock", "_pending", "histogram")

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._pending: dict[str, float] = {}
        self.histogram = Histogram(STALENESS_BUCKETS)

    def marker(self, inner: _DirtyMarker) -> _TimedMarker:
        """Wrap the coalescer as the ingestion hooks' dirty marker."""
        return _TimedMarker(self, inner)

    def publisher(self, inner: _DashboardPublisher) -> _TimedPublisher:
        """Wrap the publisher the coalescer pushes through."""
        return _TimedPublisher(self, inner)

    def changed(self, org_id: str) -> None:
        """A change of ``org_id`` was committed (keeps the earliest unpushed one)."""
        self._pending.setdefault(org_id, self._clock())

    def pushed(self, org_id: str) -> None:
        """A DashboardUpdate of ``org_id`` went out."""
        since = self._pending.pop(org_id, None)
        if since is not None:
            self.histogram.observe(max(0.0, self._clock() - since))

    def oldest_pending_age(self) -> float:
        """Seconds the oldest not-yet-pushed change has been waiting (0 when none)."""
        if not self._pending:
            return 0.0
        return max(0.0, self._clock() - min(self._pending.values()))
