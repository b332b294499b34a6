"""DashboardUpdate coalescing: at most one push per organization per interval, never staler.

Ingestion calls :meth:`DashboardCoalescer.mark_dirty` after each commit. The first change after
a quiet period is pushed at once (leading edge); changes arriving within ``interval`` of the last
push are folded into one push at ``last push + interval`` (trailing edge). So for each
organization pushes are at least ``interval`` apart, and a committed change is reflected in a
push at most ``interval`` later (docs/metrics.md "Push cadence": at most one per second,
never staler than that).

The org is taken off the dirty set *before* its snapshot is computed: a change committed while
the snapshot query runs marks it dirty again and gets its own push, never lost.

One background task serves every organization (no task per org or per connection). The pure
scheduling state lives in :class:`CoalescingSchedule` so tests drive it with a fake clock.

Under overload (say 1,000 organizations each changing every few seconds) snapshots could take
the whole process and starve ingestion and live events, which matter more. The task therefore
keeps to ``max_share`` of wall time (default one half): after a snapshot that took ``t`` it
pauses ``t * (1 / max_share - 1)``. Updates then become staler than ``interval`` instead of the
server becoming slower for everyone; ``/metrics`` exports the staleness.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

log = logging.getLogger("aiusage.metrics")


class DashboardPublisher(Protocol):
    """The part of ``realtime.publisher.EventPublisher`` the coalescer uses."""

    async def dashboard_update(self, org_id: str, snapshot: Mapping[str, Any]) -> None:
        """Send DashboardUpdate ``{metrics, trends}`` to ``org:{org_id}``."""
        ...


class CoalescingSchedule:
    """Sans-I/O bookkeeping of dirty organizations and their earliest allowed push time.

    Args:
        interval: Minimum seconds between two pushes of one organization.
    """

    __slots__ = ("_dirty", "_interval", "_last_sent")

    def __init__(self, interval: float = 1.0) -> None:
        self._interval = interval
        self._dirty: set[str] = set()
        self._last_sent: dict[str, float] = {}

    def mark(self, org_id: str) -> None:
        """``org_id`` changed."""
        self._dirty.add(org_id)

    def due_at(self, org_id: str) -> float:
        """Earliest time ``org_id`` may be pushed again."""
        last = self._last_sent.get(org_id)
        return float("-inf") if last is None else last + self._interval

    def take_due(self, now: float) -> list[str]:
        """Dirty organizations whose push is due at ``now``; they leave the dirty set and are
        recorded as pushed at ``now``."""
        due = sorted(org for org in self._dirty if self.due_at(org) <= now)
        for org in due:
            self._dirty.discard(org)
            self._last_sent[org] = now
        # Forget orgs quiet for a full interval: their next change is a leading-edge push
        # anyway, and the map stays as small as the set of recently active orgs.
        for org in [o for o, t in self._last_sent.items() if t + self._interval <= now]:
            if org not in self._dirty:
                del self._last_sent[org]
        return due

    def next_deadline(self) -> float | None:
        """When the earliest dirty organization becomes due (None: nothing dirty)."""
        if not self._dirty:
            return None
        return min(self.due_at(org) for org in self._dirty)

    @property
    def dirty(self) -> frozenset[str]:
        """Organizations waiting for a push."""
        return frozenset(self._dirty)


class DashboardCoalescer:
    """Pushes DashboardUpdate for dirty organizations from one background task.

    Args:
        snapshot: ``org_id -> {metrics, trends}`` (``DashboardService.snapshot``).
        publisher: Sends the DashboardUpdate.
        interval: Seconds between two pushes of one organization (default 1).
        clock: Monotonic seconds; injected in tests.
    """

    def __init__(
        self,
        snapshot: Callable[[str], Awaitable[Mapping[str, Any]]],
        publisher: DashboardPublisher,
        *,
        interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        max_share: float = 0.5,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if not 0 < max_share <= 1:
            raise ValueError("max_share must be in (0, 1]")
        self._max_share = max_share
        self._sleep = sleep
        self._snapshot = snapshot
        self._publisher = publisher
        self._clock = clock
        self.schedule = CoalescingSchedule(interval)
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.published = 0
        """Pushes sent since start (exposed for /metrics and tests)."""

    def mark_dirty(self, org_id: str) -> None:
        """Record that ``org_id``'s KPIs changed (cheap; call after every commit)."""
        self.schedule.mark(org_id)
        self._wakeup.set()

    async def flush_due(self) -> list[str]:
        """Push every organization that is due now; returns them (the task's unit of work)."""
        due = self.schedule.take_due(self._clock())
        for org in due:
            started = self._clock()
            try:
                snap = await self._snapshot(org)
                await self._publisher.dashboard_update(org, snap)
                self.published += 1
            except Exception:  # one failing org must not starve the others
                log.exception("dashboard_update_failed org=%s", org)
            if self._max_share < 1 and len(due) > 1:
                # Keep to max_share of the process (module docstring).
                busy = self._clock() - started
                await self._sleep(busy * (1 / self._max_share - 1))
        return due

    async def start(self) -> None:
        """Start the background task (idempotent)."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="dashboard-coalescer")

    async def stop(self) -> None:
        """Stop the background task; pending pushes are dropped (clients refetch on connect)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            await self.flush_due()
            deadline = self.schedule.next_deadline()
            self._wakeup.clear()
            if deadline is None:
                await self._wakeup.wait()
                continue
            delay = deadline - self._clock()
            if delay > 0:
                # Woken early by mark_dirty only to recompute the deadline; never pushes early
                # because take_due checks the deadline again.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), timeout=delay)


__all__ = ["CoalescingSchedule", "DashboardCoalescer", "DashboardPublisher"]
