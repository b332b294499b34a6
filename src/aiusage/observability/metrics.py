"""``GET /metrics``: what one aiusage process is doing, in Prometheus text format.

Families (all prefixed ``aiusage_``; docs/deploy.md "Metrics" lists them with alerts):

* hub connections by transport and protocol, handshakes pending, connections per organization
  as a bounded top-N (+ ``org="__other__"``), connections opened, refusals by the limits;
* hub messages in/out (when the engine counts them), slow-consumer disconnects;
* backplane state (0 stopped, 1 connecting, 2 connected), health, reconnects, canary failures
  and repairs, publish failures (messages other servers never got, docs/spec/backplane.md §6.6);
* agent ingestion: batches, events accepted/duplicate, rejected batches, request latency
  histogram (``POST /api/agent/events`` end to end in this process);
* DashboardUpdate pushes and staleness (change-to-push histogram, oldest waiting change).

Everything is read from the live objects at scrape time (O(connections) once per scrape);
nothing runs per message except the engine's own integer counters.
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from aiusage.observability.exposition import CONTENT_TYPE, Histogram, MetricFamily, render
from aiusage.observability.limits import OrgConnectionTracker
from aiusage.observability.staleness import DashboardStaleness

__all__ = [
    "INGEST_LATENCY_BUCKETS",
    "INGEST_PATH",
    "IngestLatencyMiddleware",
    "MetricsCollector",
    "install_metrics",
]

INGEST_PATH: Final = "/api/agent/events"
INGEST_LATENCY_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
OTHER_ORGS: Final = "__other__"

_TRANSPORT_NAMES: Final = {1: "WebSockets", 2: "ServerSentEvents", 4: "LongPolling"}


class _HubConnectionView(Protocol):
    @property
    def transport(self) -> Any: ...

    @property
    def protocol_name(self) -> str: ...


class _HandlerView(Protocol):
    def local_connections(self) -> Iterable[Any]: ...

    def connection_count(self) -> int: ...

    def stats_snapshot(self) -> dict[str, int]: ...


class _LifetimeView(Protocol):
    """What the collector reads from a :class:`hubserver.HubLifetimeManager`."""

    def is_healthy(self) -> bool: ...

    def stats(self) -> dict[str, int | float]: ...


def _transport_name(value: Any) -> str:
    name = _TRANSPORT_NAMES.get(int(value)) if value is not None else None
    return name or "unknown"


@dataclass
class MetricsCollector:
    """Assembles the metric families of one process from its services.

    Every source is optional so the collector also serves partial compositions (tests, a
    process without a backplane). ``handler``/``endpoint``/``lifetime`` are the hub's
    :class:`hubserver.MappedHub` parts; ``ingestion_stats`` is
    :attr:`aiusage.api.agent_events.IngestionService.stats`.
    """

    handler: _HandlerView | None = None
    endpoint: Any = None
    lifetime: _LifetimeView | None = None
    ingestion_stats: Any = None
    coalescer: Any = None
    staleness: DashboardStaleness | None = None
    org_tracker: OrgConnectionTracker | None = None
    max_connections: int | None = None
    top_orgs: int = 20
    ingest_latency: Histogram = field(default_factory=lambda: Histogram(INGEST_LATENCY_BUCKETS))
    ingest_requests: dict[str, int] = field(default_factory=dict)
    """``POST /api/agent/events`` responses by status class (``2xx``, ``4xx``...)."""
    started_at: float = field(default_factory=time.time)

    # -- families -----------------------------------------------------------------------------

    def collect(self) -> list[MetricFamily]:
        """Every metric family, freshly computed."""
        families: list[MetricFamily] = []
        process = MetricFamily(
            "aiusage_process_start_time_seconds", "Unix time this process started.", "gauge"
        )
        process.add(self.started_at, {"pid": str(os.getpid())})
        families.append(process)
        families.extend(self._hub())
        families.extend(self._backplane())
        families.extend(self._ingest())
        families.extend(self._dashboard())
        return families

    def _hub(self) -> list[MetricFamily]:
        out: list[MetricFamily] = []
        handler = self.handler
        if handler is None:
            return out
        by_kind: dict[tuple[str, str], int] = {}
        by_org: dict[str, int] = {}
        connected = 0
        for conn in handler.local_connections():
            connected += 1
            key = (
                _transport_name(getattr(conn, "transport", None)),
                getattr(conn, "protocol_name", "") or "unknown",
            )
            by_kind[key] = by_kind.get(key, 0) + 1
            if self.org_tracker is None:
                principal = getattr(conn, "principal", None)
                org = principal.claims.get("org") if principal is not None else None
                if isinstance(org, str):
                    by_org[org] = by_org.get(org, 0) + 1
        fam = MetricFamily(
            "aiusage_hub_connections",
            "Hub connections of this process past the handshake, by transport and hub protocol.",
            "gauge",
        )
        for transport in ("WebSockets", "ServerSentEvents", "LongPolling"):
            for protocol in ("json", "messagepack"):
                fam.add(
                    by_kind.pop((transport, protocol), 0),
                    {"transport": transport, "protocol": protocol},
                )
        for (transport, protocol), n in sorted(by_kind.items()):
            fam.add(n, {"transport": transport, "protocol": protocol})
        out.append(fam)

        pending = MetricFamily(
            "aiusage_hub_handshakes_pending",
            "Connections still in the hub handshake or closing.",
            "gauge",
        )
        pending.add(max(0, handler.connection_count() - connected))
        out.append(pending)

        endpoint = self.endpoint
        if endpoint is not None and hasattr(endpoint, "connection_count"):
            transport_level = MetricFamily(
                "aiusage_transport_connections",
                "Connection-layer connections (negotiated, not yet disposed).",
                "gauge",
            )
            transport_level.add(int(endpoint.connection_count()))
            out.append(transport_level)
        if self.max_connections is not None:
            limit = MetricFamily(
                "aiusage_hub_connections_limit", "AIUSAGE_MAX_CONNECTIONS of this process.", "gauge"
            )
            limit.add(self.max_connections)
            out.append(limit)

        if self.org_tracker is not None:
            counts = dict(self.org_tracker.items())
            refused = self.org_tracker.refused
            org_limit = self.org_tracker.limit
        else:
            counts, refused, org_limit = by_org, 0, None
        out.append(self._orgs(counts))
        orgs = MetricFamily(
            "aiusage_hub_organizations", "Organizations with at least one connection here.", "gauge"
        )
        orgs.add(len(counts))
        out.append(orgs)
        refused_fam = MetricFamily(
            "aiusage_hub_org_limit_refusals_total",
            "New connections refused because their organization reached "
            "AIUSAGE_MAX_ORG_CONNECTIONS.",
            "counter",
        )
        refused_fam.add(refused)
        out.append(refused_fam)
        if org_limit is not None:
            org_limit_fam = MetricFamily(
                "aiusage_hub_org_connections_limit",
                "AIUSAGE_MAX_ORG_CONNECTIONS of this process.",
                "gauge",
            )
            org_limit_fam.add(org_limit)
            out.append(org_limit_fam)

        stats = handler.stats_snapshot()
        opened = MetricFamily(
            "aiusage_hub_connections_opened_total",
            "Connections that completed the handshake and on_connected.",
            "counter",
        )
        opened.add(stats.get("connections_total", 0))
        out.append(opened)
        slow = MetricFamily(
            "aiusage_hub_slow_consumer_disconnects_total",
            "Connections dropped because their outgoing buffer exceeded "
            "AIUSAGE_MAX_OUTGOING_BUFFER (they reconnect and resync).",
            "counter",
        )
        slow.add(stats.get("slow_consumer_aborts", 0))
        out.append(slow)
        if "messages_received" in stats or "messages_sent" in stats:
            messages = MetricFamily(
                "aiusage_hub_messages_total",
                "Hub protocol messages received from / sent to clients.",
                "counter",
            )
            messages.add(stats.get("messages_received", 0), {"direction": "in"})
            messages.add(stats.get("messages_sent", 0), {"direction": "out"})
            out.append(messages)
        return out

    def _orgs(self, counts: dict[str, int]) -> MetricFamily:
        fam = MetricFamily(
            "aiusage_hub_org_connections",
            f"Connections of the {self.top_orgs} largest organizations here; the rest are "
            f'summed in org="{OTHER_ORGS}" (bounded cardinality).',
            "gauge",
        )
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        for org, n in ranked[: self.top_orgs]:
            fam.add(n, {"org": org})
        rest = sum(n for _, n in ranked[self.top_orgs :])
        if rest:
            fam.add(rest, {"org": OTHER_ORGS})
        return fam

    def _backplane(self) -> list[MetricFamily]:
        lifetime = self.lifetime
        if lifetime is None:
            return []
        out: list[MetricFamily] = []
        healthy = MetricFamily(
            "aiusage_backplane_healthy",
            "1 while the backplane delivers (connected, canary answered, "
            "last publish ok); /readyz is 503 otherwise.",
            "gauge",
        )
        try:
            healthy.add(1 if lifetime.is_healthy() else 0)
        except Exception:
            healthy.add(0)
        out.append(healthy)
        stats = lifetime.stats()
        kind = MetricFamily("aiusage_backplane_info", "Lifetime manager in use.", "gauge")
        kind.add(1, {"kind": type(lifetime).__name__})
        out.append(kind)
        if "state" in stats:
            state = MetricFamily(
                "aiusage_backplane_state",
                "Subscription connection: 0 stopped, 1 connecting, 2 connected.",
                "gauge",
            )
            state.add(stats["state"])
            out.append(state)
        counters = (
            (
                "reconnects",
                "aiusage_backplane_reconnects_total",
                "Times the subscription connection was re-established.",
            ),
            (
                "connection_failures",
                "aiusage_backplane_connection_failures_total",
                "Failed attempts to connect to the backplane.",
            ),
            (
                "canary_failures",
                "aiusage_backplane_canary_failures_total",
                "Canary messages that did not come back in time (deaf subscription).",
            ),
            (
                "canary_repairs",
                "aiusage_backplane_canary_repairs_total",
                "Subscription connections torn down and rebuilt after a canary failure.",
            ),
            ("publishes", "aiusage_backplane_publishes_total", "Messages published."),
            (
                "publish_failures",
                "aiusage_backplane_publish_failures_total",
                "Publishes that failed: those messages never reached other servers.",
            ),
            (
                "messages_received",
                "aiusage_backplane_messages_received_total",
                "Messages received from the backplane.",
            ),
            (
                "bad_payloads",
                "aiusage_backplane_bad_payloads_total",
                "Undecodable backplane messages (dropped).",
            ),
        )
        for key, name, help_text in counters:
            if key in stats:
                fam = MetricFamily(name, help_text, "counter")
                fam.add(stats[key])
                out.append(fam)
        if "local_groups" in stats:
            groups = MetricFamily(
                "aiusage_backplane_local_groups",
                "Groups with a member connection in this process.",
                "gauge",
            )
            groups.add(stats["local_groups"])
            out.append(groups)
        return out

    def _ingest(self) -> list[MetricFamily]:
        out: list[MetricFamily] = []
        stats = self.ingestion_stats
        if stats is not None:
            events = MetricFamily(
                "aiusage_ingest_events_total", "Agent events received, by outcome.", "counter"
            )
            events.add(getattr(stats, "events_accepted", 0), {"outcome": "accepted"})
            events.add(getattr(stats, "events_duplicate", 0), {"outcome": "duplicate"})
            out.append(events)
            batches = MetricFamily(
                "aiusage_ingest_batches_total",
                "Agent batches, by outcome (rejected = 422, nothing applied).",
                "counter",
            )
            batches.add(getattr(stats, "batches", 0), {"outcome": "applied"})
            batches.add(getattr(stats, "batches_rejected", 0), {"outcome": "rejected"})
            out.append(batches)
            failures = MetricFamily(
                "aiusage_ingest_publish_failures_total",
                "Live events that could not be published after a commit "
                "(stored, but dashboards saw them only on refresh).",
                "counter",
            )
            failures.add(getattr(stats, "publish_failures", 0))
            out.append(failures)
            apply_sum = MetricFamily(
                "aiusage_ingest_apply_seconds_total",
                "Time spent validating, storing and publishing batches.",
                "counter",
            )
            apply_sum.add(float(getattr(stats, "latency_sum_s", 0.0)))
            out.append(apply_sum)
        latency = MetricFamily(
            "aiusage_ingest_request_duration_seconds",
            f"Latency of POST {INGEST_PATH} in this process.",
            "histogram",
        )
        latency.add_histogram(self.ingest_latency)
        out.append(latency)
        requests = MetricFamily(
            "aiusage_ingest_requests_total",
            f"POST {INGEST_PATH} responses by status class.",
            "counter",
        )
        for status_class in ("2xx", "4xx", "5xx"):
            requests.add(self.ingest_requests.get(status_class, 0), {"code": status_class})
        out.append(requests)
        return out

    def _dashboard(self) -> list[MetricFamily]:
        out: list[MetricFamily] = []
        if self.coalescer is not None:
            pushes = MetricFamily(
                "aiusage_dashboard_updates_total",
                "DashboardUpdate pushes sent by this process.",
                "counter",
            )
            pushes.add(getattr(self.coalescer, "published", 0))
            out.append(pushes)
        if self.staleness is not None:
            hist = MetricFamily(
                "aiusage_dashboard_staleness_seconds",
                "Delay from a committed change to the DashboardUpdate that carried it.",
                "histogram",
            )
            hist.add_histogram(self.staleness.histogram)
            out.append(hist)
            oldest = MetricFamily(
                "aiusage_dashboard_oldest_pending_change_seconds",
                "Age of the oldest change not yet pushed (stays near 0-1 s "
                "when the coalescer keeps up).",
                "gauge",
            )
            oldest.add(self.staleness.oldest_pending_age())
            out.append(oldest)
        return out

    def render(self) -> str:
        """The exposition text."""
        return render(self.collect())

    def observe_ingest(self, status: int, seconds: float) -> None:
        """Record one ``POST /api/agent/events`` response."""
        self.ingest_latency.observe(seconds)
        key = f"{status // 100}xx"
        self.ingest_requests[key] = self.ingest_requests.get(key, 0) + 1


_Scope = MutableMapping[str, Any]
_Message = MutableMapping[str, Any]
_Receive = Callable[[], Awaitable[_Message]]
_Send = Callable[[_Message], Awaitable[None]]
_ASGIApp = Callable[[_Scope, _Receive, _Send], Awaitable[None]]


class IngestLatencyMiddleware:
    """ASGI middleware timing ``POST /api/agent/events`` (start of request to end of
    response) into :attr:`MetricsCollector.ingest_latency`; other requests pass untouched."""

    def __init__(
        self,
        app: _ASGIApp,
        collector: MetricsCollector,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.app = app
        self.collector = collector
        self.clock = clock

    async def __call__(self, scope: _Scope, receive: _Receive, send: _Send) -> None:
        if (
            scope.get("type") != "http"
            or scope.get("method") != "POST"
            or scope.get("path") != INGEST_PATH
        ):
            await self.app(scope, receive, send)
            return
        started = self.clock()
        status = 500

        async def timed_send(message: _Message) -> None:
            nonlocal status
            if message.get("type") == "http.response.start":
                status = int(message.get("status", 500))
            await send(message)

        try:
            await self.app(scope, receive, timed_send)
        finally:
            self.collector.observe_ingest(status, self.clock() - started)


def install_metrics(app: Any, collector: MetricsCollector) -> None:
    """Add ``GET /metrics`` (ahead of the dashboard's catch-all mount) and the ingest timer
    to a FastAPI/Starlette ``app``. Call before the app serves its first request."""
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    async def metrics(_request: Request) -> Response:
        return Response(
            collector.render(),
            media_type=None,
            headers={"Content-Type": CONTENT_TYPE, "Cache-Control": "no-store"},
        )

    # Routes match in order and create_api mounts the dashboard at "/" last: insert first.
    app.router.routes.insert(
        0, Route("/metrics", metrics, methods=["GET"], name="metrics", include_in_schema=False)
    )
    app.add_middleware(IngestLatencyMiddleware, collector=collector)
