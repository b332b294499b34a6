"""What ingestion calls after it commits a batch (the write path: commit, then push).

``await hooks.after_commit(batch)``: marks the dashboards of the touched organizations dirty
(the coalescer pushes DashboardUpdate within its interval) and runs the ingestion-driven alert
rules. Both run after the commit, so nothing here can make an acknowledged batch fail.
"""

from __future__ import annotations

import logging
from typing import Protocol

from aiusage.metrics.rollup import RollupBatch

log = logging.getLogger("aiusage.metrics")


class DirtyMarker(Protocol):
    """``DashboardCoalescer`` as the hooks see it."""

    def mark_dirty(self, org_id: str) -> None:
        """Record that ``org_id`` changed."""
        ...


class IngestionAlerts(Protocol):
    """``AlertService`` as the hooks see it."""

    async def on_ingested(self, batch: RollupBatch) -> object:
        """Evaluate the ingestion-driven rules."""
        ...


class IngestionHooks:
    """Post-commit work of an ingestion batch.

    Args:
        coalescer: Marks dashboards dirty (None: no live dashboards, e.g. a CLI import).
        alerts: Alert rules (None: alerts off).
    """

    def __init__(
        self, coalescer: DirtyMarker | None = None, alerts: IngestionAlerts | None = None
    ) -> None:
        self._coalescer = coalescer
        self._alerts = alerts

    async def after_commit(self, batch: RollupBatch) -> None:
        """Run after the batch's transaction committed; never raises."""
        if self._coalescer is not None:
            for org in sorted(batch.orgs):
                self._coalescer.mark_dirty(org)
        if self._alerts is not None and batch.orgs:
            try:
                await self._alerts.on_ingested(batch)
            except Exception:  # alerts are best effort; the events are safely stored
                log.exception("ingestion_alerts_failed")


__all__ = ["IngestionHooks"]
