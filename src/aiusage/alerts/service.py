"""Alert storage, dedupe, pushes and the rule runners.

An alert is stored once per ``(org_id, dedupe_key)`` (unique constraint): the insert is
``INSERT ... ON CONFLICT DO NOTHING RETURNING``, so two processes evaluating the same rule at
once store and push it exactly once. Pushes happen after the commit (Alert ``{type, message,
severity}`` plus ids, to ``org:{orgId}`` or ``user:{userId}``; seed event table).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import and_, func, or_, select, update

from aiusage.alerts.rules import (
    AlertRules,
    NewAlert,
    agent_silent_alert,
    unapproved_tool_alerts,
    usage_spike_alert,
)
from aiusage.errors import NotFound
from aiusage.metrics.rollup import RollupBatch, hour_of, usage_hourly
from aiusage.store.database import Database
from aiusage.store.repositories import dialect_insert
from aiusage.store.tables import agents as _agents
from aiusage.store.tables import alerts as _alerts
from aiusage.store.tables import organizations as _orgs

log = logging.getLogger("aiusage.alerts")


MAX_PAGE = 200
APPROVED_CACHE_S = 5.0
"""How long an organization's approved-tool list is cached by the ingestion-time rule."""


class AlertPublisher(Protocol):
    """The part of ``realtime.publisher.EventPublisher`` alerts use."""

    async def alert(
        self, org_id: str, payload: Mapping[str, Any], user_id: str | None = None
    ) -> None:
        """Send Alert ``payload`` to ``user:{org_id}:{user_id}`` when given, else to
        ``org:{org_id}``."""
        ...


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def alert_payload(row: Mapping[Any, Any]) -> dict[str, Any]:
    """The camelCase JSON of a stored alert (REST listing and the Alert hub event)."""
    return {
        "id": row["id"],
        "type": row["type"],
        "message": row["message"],
        "severity": row["severity"],
        "organizationId": row["org_id"],
        "userId": row["user_id"],
        "createdAt": _iso(row["created_at"]),
        "acknowledged": row["acknowledged_at"] is not None,
        "acknowledgedAt": _iso(row["acknowledged_at"]),
        "acknowledgedBy": row["acknowledged_by"],
    }


_RECENT_KEYS = 10_000
"""Dedupe keys remembered per process (a bounded LRU)."""


class AlertService:
    """Runs the rules, stores alerts once, pushes them, lists and acknowledges them.

    Args:
        db: The store.
        publisher: Pushes Alert events (None: store only, e.g. in a CLI).
        rules: Rule parameters.
        clock: Current time (aware UTC).
        monotonic: Monotonic seconds (rate limit of the spike check).
        spike_check_interval: Minimum seconds between two spike evaluations of one org.
    """

    def __init__(
        self,
        db: Database,
        publisher: AlertPublisher | None = None,
        *,
        rules: AlertRules | None = None,
        clock: Callable[[], datetime] = _utcnow,
        monotonic: Callable[[], float] = time.monotonic,
        # The rule compares hourly buckets: checking an organization more than once a minute
        # adds nothing but a query per event when a thousand organizations are busy.
        spike_check_interval: float = 60.0,
    ) -> None:
        self._db = db
        self._publisher = publisher
        self.rules = rules or AlertRules()
        self._clock = clock
        self._monotonic = monotonic
        self._spike_interval = spike_check_interval
        self._spike_checked: dict[str, float] = {}
        self._approved_cache: dict[str, tuple[list[str], float]] = {}
        # Dedupe keys this process stored or saw refused: skipped without a database trip.
        self._recent_keys: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._sweeper: asyncio.Task[None] | None = None

    # -- raising --------------------------------------------------------------------------

    async def raise_alerts(self, alerts: Sequence[NewAlert]) -> list[dict[str, Any]]:
        """Store the alerts not stored yet (by dedupe key) and push those. Returns them.

        Runs after every ingested batch, so it costs at most one statement: alerts repeated in
        the batch or raised recently by this process are dropped before the database, and the
        rest go in one multi-row ``INSERT ... ON CONFLICT DO NOTHING RETURNING`` (the unique
        ``(org_id, dedupe_key)`` index decides across processes).
        """
        fresh: dict[tuple[str, str], NewAlert] = {}
        for alert in alerts:
            key = (alert.org_id, alert.dedupe_key)
            if key in fresh or key in self._recent_keys:
                continue
            fresh[key] = alert
        if not fresh:
            return []
        created: list[dict[str, Any]] = []
        now = self._clock()
        async with self._db.write() as conn:
            stmt = (
                dialect_insert(conn, _alerts)
                .values(
                    [
                        {
                            "org_id": alert.org_id,
                            "user_id": alert.user_id,
                            "type": alert.type,
                            "message": alert.message,
                            "severity": alert.severity,
                            "created_at": now,
                            "dedupe_key": alert.dedupe_key,
                        }
                        for alert in fresh.values()
                    ]
                )
                .on_conflict_do_nothing(index_elements=["org_id", "dedupe_key"])
                .returning(*_alerts.c)
            )
            rows = (await conn.execute(stmt)).mappings().all()
            created = sorted((alert_payload(row) for row in rows), key=lambda p: p["id"])
        for key in fresh:
            self._recent_keys[key] = None
        while len(self._recent_keys) > _RECENT_KEYS:
            self._recent_keys.popitem(last=False)
        for payload in created:
            log.info("alert_raised org=%s type=%s", payload["organizationId"], payload["type"])
            if self._publisher is not None:
                try:
                    await self._publisher.alert(
                        payload["organizationId"], payload, user_id=payload["userId"]
                    )
                except Exception:  # stored anyway: listed by GET /api/alerts
                    log.exception("alert_push_failed id=%s", payload["id"])
        return created

    async def on_ingested(self, batch: RollupBatch) -> list[dict[str, Any]]:
        """Rules that react to ingestion (after its commit): unapproved tools, usage spikes."""
        alerts: list[NewAlert] = []
        by_org: dict[str, list[Any]] = defaultdict(list)
        for detection in batch.detections:
            by_org[detection.org_id].append(detection)
        if by_org:
            approved = await self._approved_lists(sorted(by_org))
            for org, detections in by_org.items():
                alerts.extend(unapproved_tool_alerts(detections, approved.get(org, [])))
        for org in sorted(batch.orgs):
            spike = await self.check_spike(org)
            if spike is not None:
                alerts.append(spike)
        return await self.raise_alerts(alerts)

    async def _approved_lists(self, orgs: Sequence[str]) -> dict[str, list[str]]:
        # Cached for APPROVED_CACHE_S: this runs after every ingested batch, and approved lists
        # change rarely; a change takes effect for alerts within that many seconds.
        mono = self._monotonic()
        result: dict[str, list[str]] = {}
        missing = []
        for org in orgs:
            cached = self._approved_cache.get(org)
            if cached is not None and mono - cached[1] < APPROVED_CACHE_S:
                result[org] = cached[0]
            else:
                missing.append(org)
        if missing:
            async with self._db.read() as conn:
                rows = await conn.execute(
                    select(_orgs.c.id, _orgs.c.approved_tools).where(_orgs.c.id.in_(missing))
                )
                for org, tools in rows:
                    result[org] = [str(t) for t in tools or []]
                    self._approved_cache[org] = (result[org], mono)
        return result

    async def check_spike(self, org_id: str, *, force: bool = False) -> NewAlert | None:
        """Evaluate the usage-spike rule for ``org_id`` (at most once per check interval)."""
        mono = self._monotonic()
        last = self._spike_checked.get(org_id)
        if not force and last is not None and mono - last < self._spike_interval:
            return None
        self._spike_checked[org_id] = mono
        current = hour_of(self._clock())
        hours = max(1, self.rules.spike_baseline_hours)
        first = current - timedelta(hours=hours)
        c = usage_hourly.c
        async with self._db.read() as conn:
            rows = await conn.execute(
                select(c.hour, func.sum(c.detections))
                .where(c.org_id == org_id, c.hour >= first, c.hour <= current)
                .group_by(c.hour)
            )
            counts = {hour: int(n or 0) for hour, n in rows}
        baseline = [counts.get(first + timedelta(hours=i), 0) for i in range(hours)]
        return usage_spike_alert(org_id, current, counts.get(current, 0), baseline, self.rules)

    async def check_silent_agents(self) -> list[dict[str, Any]]:
        """Raise AgentSilent for every agent silent longer than the threshold."""
        now = self._clock()
        a = _agents.c
        async with self._db.read() as conn:
            rows = (
                await conn.execute(
                    select(a.org_id, a.id, a.last_seen_at).where(
                        a.revoked_at.is_(None),
                        a.last_seen_at.is_not(None),
                        a.last_seen_at <= now - self.rules.silent_after,
                        a.last_seen_at >= now - self.rules.silent_lookback,
                    )
                )
            ).all()
        alerts = [
            alert
            for org, agent, seen in rows
            if (alert := agent_silent_alert(org, agent, seen, now, self.rules)) is not None
        ]
        return await self.raise_alerts(alerts)

    # -- reading ----------------------------------------------------------------------------

    async def list_alerts(
        self,
        org_id: str,
        viewer_id: str,
        *,
        acknowledged: bool | None = None,
        type: str | None = None,
        severity: str | None = None,
        before_id: int | None = None,
        limit: int = 50,
    ) -> list[dict[str, Any]]:
        """Alerts of ``org_id`` visible to ``viewer_id`` (org-wide ones and the viewer's own),
        newest first; ``before_id`` is the cursor (the last id of the previous page)."""
        c = _alerts.c
        conditions = [c.org_id == org_id, _visible(viewer_id)]
        if acknowledged is not None:
            conditions.append(
                c.acknowledged_at.is_not(None) if acknowledged else c.acknowledged_at.is_(None)
            )
        if type is not None:
            conditions.append(c.type == type)
        if severity is not None:
            conditions.append(c.severity == severity)
        if before_id is not None:
            conditions.append(c.id < before_id)
        async with self._db.read() as conn:
            rows = await conn.execute(
                select(_alerts)
                .where(and_(*conditions))
                .order_by(c.id.desc())
                .limit(max(1, min(limit, MAX_PAGE)))
            )
            return [alert_payload(row) for row in rows.mappings()]

    async def acknowledge(self, org_id: str, viewer_id: str, alert_id: int) -> dict[str, Any]:
        """Mark an alert acknowledged by ``viewer_id`` (idempotent: the first ack is kept).

        Raises:
            NotFound: No such alert visible to the viewer in ``org_id``.
        """
        c = _alerts.c
        where = and_(c.id == alert_id, c.org_id == org_id, _visible(viewer_id))
        async with self._db.write() as conn:
            await conn.execute(
                update(_alerts)
                .where(where, c.acknowledged_at.is_(None))
                .values(acknowledged_at=self._clock(), acknowledged_by=viewer_id)
            )
            row = (await conn.execute(select(_alerts).where(where))).mappings().first()
        if row is None:
            raise NotFound(f"alert {alert_id} not found")
        return alert_payload(row)

    # -- background -------------------------------------------------------------------------

    async def start_sweeper(self, interval: float = 60.0) -> None:
        """Run :meth:`check_silent_agents` every ``interval`` seconds in one task."""
        if self._sweeper is None or self._sweeper.done():
            self._sweeper = asyncio.create_task(self._sweep(interval), name="alert-sweeper")

    async def stop_sweeper(self) -> None:
        """Stop the sweeper task."""
        task, self._sweeper = self._sweeper, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _sweep(self, interval: float) -> None:
        while True:
            try:
                await self.check_silent_agents()
            except Exception:  # the next round retries; never kill the loop
                log.exception("alert_sweep_failed")
            await asyncio.sleep(interval)


def _visible(viewer_id: str) -> Any:
    return or_(_alerts.c.user_id.is_(None), _alerts.c.user_id == viewer_id)


__all__ = ["AlertPublisher", "AlertService", "alert_payload"]
