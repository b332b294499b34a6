"""``GET /metrics`` content (aiusage.observability.metrics)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from fastapi import FastAPI
from starlette.responses import PlainTextResponse
from starlette.routing import Mount
from starlette.testclient import TestClient
from tests.support.hub_client import FakeClock, HubTestClient

from aiusage.observability.limits import OrgConnectionTracker, OrgLimitFilter
from aiusage.observability.metrics import MetricsCollector, install_metrics
from aiusage.observability.staleness import DashboardStaleness
from hubserver import Hub, Principal
from hubserver.hub.handler import HubConnectionHandler
from hubserver.lifetime.memory import InMemoryLifetimeManager
from hubserver.transports.base import TransportType

SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$")


def parse(text: str) -> dict[str, float]:
    """``name{labels}`` -> value; also checks every line is valid exposition syntax."""
    samples: dict[str, float] = {}
    typed: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            name = line.split()[2]
            assert name not in typed, f"duplicate family {name}"
            typed.add(name)
            continue
        if line.startswith("# HELP "):
            continue
        match = SAMPLE.match(line)
        assert match, f"bad sample line {line!r}"
        samples[match.group(1) + (match.group(2) or "")] = float(match.group(3))
    return samples


class PlainHub(Hub):
    async def echo(self, value: str) -> str:
        return value


def user(org: str, sub: str) -> Principal:
    return Principal(user_id=sub, claims={"sub": sub, "org": org, "role": ["Admin"]})


@dataclass
class FakeIngestionStats:
    batches: int = 4
    events_accepted: int = 37
    events_duplicate: int = 2
    batches_rejected: int = 1
    publish_failures: int = 0
    latency_sum_s: float = 0.25


class FakeRedisLifetime:
    def is_healthy(self) -> bool:
        return False

    def stats(self) -> dict[str, int | float]:
        return {
            "state": 1,
            "reconnects": 3,
            "canary_failures": 2,
            "canary_repairs": 1,
            "publishes": 10,
            "publish_failures": 4,
            "messages_received": 9,
            "local_groups": 5,
            "connection_failures": 6,
            "bad_payloads": 0,
        }


class Coalescer:
    published = 7


async def test_connections_are_reported_by_transport_protocol_and_organization():
    tracker = OrgConnectionTracker(limit=10)
    handler = HubConnectionHandler(
        PlainHub, InMemoryLifetimeManager(), auto_tick=False, filters=[OrgLimitFilter(tracker)]
    )
    clients = [
        HubTestClient(handler, "json", principal=user("acme", "a")),
        HubTestClient(handler, "json", principal=user("acme", "b")),
        HubTestClient(
            handler,
            "messagepack",
            principal=user("globex", "c"),
            transport=TransportType.LONG_POLLING,
        ),
        HubTestClient(
            handler,
            "json",
            principal=user("initech", "d"),
            transport=TransportType.SERVER_SENT_EVENTS,
        ),
    ]
    for client in clients:
        await client.connect()
    assert (await clients[0].invoke("Echo", "hi")).result == "hi"
    pending = HubTestClient(handler, "json", principal=user("acme", "e"))  # no handshake yet
    assert pending.handshake is None
    collector = MetricsCollector(
        handler=handler,
        lifetime=handler.lifetime,
        org_tracker=tracker,
        max_connections=500,
        top_orgs=2,
    )
    m = parse(collector.render())

    conn = "aiusage_hub_connections"
    assert m[f'{conn}{{transport="WebSockets",protocol="json"}}'] == 2
    assert m[f'{conn}{{transport="LongPolling",protocol="messagepack"}}'] == 1
    assert m[f'{conn}{{transport="ServerSentEvents",protocol="json"}}'] == 1
    assert m[f'{conn}{{transport="WebSockets",protocol="messagepack"}}'] == 0
    assert m["aiusage_hub_handshakes_pending"] == 1
    assert m["aiusage_hub_connections_limit"] == 500
    assert m["aiusage_hub_org_connections_limit"] == 10
    # Bounded top-N: acme (2) and globex (1, before initech by id); the rest summed.
    assert m['aiusage_hub_org_connections{org="acme"}'] == 2
    assert m['aiusage_hub_org_connections{org="globex"}'] == 1
    assert m['aiusage_hub_org_connections{org="__other__"}'] == 1
    assert 'aiusage_hub_org_connections{org="initech"}' not in m
    assert m["aiusage_hub_organizations"] == 3
    assert m["aiusage_hub_connections_opened_total"] == 4
    assert m["aiusage_hub_slow_consumer_disconnects_total"] == 0
    assert m['aiusage_hub_messages_total{direction="in"}'] == 1  # the invocation
    assert m['aiusage_hub_messages_total{direction="out"}'] == 1  # its completion
    assert m["aiusage_backplane_healthy"] == 1
    assert m['aiusage_backplane_info{kind="InMemoryLifetimeManager"}'] == 1


async def test_without_a_tracker_organizations_are_counted_from_the_connections():
    handler = HubConnectionHandler(PlainHub, InMemoryLifetimeManager(), auto_tick=False)
    for sub in ("a", "b"):
        await HubTestClient(handler, principal=user("acme", sub)).connect()
    m = parse(MetricsCollector(handler=handler).render())
    assert m['aiusage_hub_org_connections{org="acme"}'] == 2


def test_backplane_ingest_and_dashboard_figures_are_exported():
    clock = FakeClock()
    staleness = DashboardStaleness(clock)
    staleness.changed("acme")
    clock.advance(0.4)
    staleness.pushed("acme")
    staleness.changed("globex")
    clock.advance(2.0)
    collector = MetricsCollector(
        lifetime=FakeRedisLifetime(),
        ingestion_stats=FakeIngestionStats(),
        coalescer=Coalescer(),
        staleness=staleness,
    )
    collector.observe_ingest(200, 0.02)
    collector.observe_ingest(422, 0.004)
    m = parse(collector.render())
    assert m["aiusage_backplane_healthy"] == 0
    assert m["aiusage_backplane_state"] == 1
    assert m["aiusage_backplane_reconnects_total"] == 3
    assert m["aiusage_backplane_canary_failures_total"] == 2
    assert m["aiusage_backplane_canary_repairs_total"] == 1
    assert m["aiusage_backplane_publish_failures_total"] == 4
    assert m['aiusage_ingest_events_total{outcome="accepted"}'] == 37
    assert m['aiusage_ingest_events_total{outcome="duplicate"}'] == 2
    assert m['aiusage_ingest_batches_total{outcome="rejected"}'] == 1
    assert m['aiusage_ingest_requests_total{code="2xx"}'] == 1
    assert m['aiusage_ingest_requests_total{code="4xx"}'] == 1
    assert m["aiusage_ingest_request_duration_seconds_count"] == 2
    assert m['aiusage_ingest_request_duration_seconds_bucket{le="0.005"}'] == 1
    assert m['aiusage_ingest_request_duration_seconds_bucket{le="0.025"}'] == 2
    assert m["aiusage_dashboard_updates_total"] == 7
    assert m["aiusage_dashboard_staleness_seconds_count"] == 1
    assert m['aiusage_dashboard_staleness_seconds_bucket{le="0.25"}'] == 0
    assert m['aiusage_dashboard_staleness_seconds_bucket{le="0.5"}'] == 1
    assert m["aiusage_dashboard_oldest_pending_change_seconds"] == 2.0


def test_the_route_wins_over_a_catch_all_mount_and_ingest_requests_are_timed():
    app = FastAPI()

    @app.post("/api/agent/events")
    async def events() -> dict[str, int]:
        return {"accepted": 1}

    async def spa(scope, receive, send):  # the dashboard's catch-all mount
        await PlainTextResponse("spa")(scope, receive, send)

    app.router.routes.append(Mount("/", app=spa))
    collector = MetricsCollector()
    install_metrics(app, collector)
    with TestClient(app) as client:
        assert client.post("/api/agent/events").status_code == 200
        assert client.get("/other").text == "spa"
        response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    m = parse(response.text)
    assert m["aiusage_ingest_request_duration_seconds_count"] == 1
    assert m['aiusage_ingest_requests_total{code="2xx"}'] == 1
