"""AnalyticsHub mechanics: class factory, token expiry on open connections, missing services."""

import pytest
from tests.security.kit import HubWorld, Snapshots, close_message
from tests.support.hub_client import HubTestClient

from aiusage.auth.issuer import BuiltinIssuer
from aiusage.realtime.hub import AnalyticsHub, make_analytics_hub
from hubserver.connections.context import Principal
from hubserver.hub.handler import HubConnectionHandler
from hubserver.lifetime.memory import InMemoryLifetimeManager


@pytest.fixture(scope="module")
def key(tmp_path_factory):
    return BuiltinIssuer.load_or_create(tmp_path_factory.mktemp("k"))._private


@pytest.fixture
def world(key):
    w = HubWorld(BuiltinIssuer(key))
    w.directory.org("acme")
    return w


def test_the_factory_binds_services_without_touching_the_base_class():
    snapshots = Snapshots()
    cls = make_analytics_hub(snapshots)
    assert issubclass(cls, AnalyticsHub) and cls.__name__ == "AnalyticsHub"
    assert cls.snapshot_provider is snapshots and AnalyticsHub.snapshot_provider is None


async def test_an_expired_token_closes_the_connection_with_allow_reconnect(world):
    client = await world.connect(world.token("ann", "acme", "Admin", ttl=60))
    world.wall.advance(59)
    world.handler.tick()
    assert close_message(client) is None
    world.wall.advance(1)
    world.handler.tick()
    close = close_message(client)
    assert close is not None and close.allow_reconnect is True and close.error is None
    assert world.handler.local_connections() == []


async def test_snapshot_without_a_provider_is_a_clear_hub_error(world):
    handler = HubConnectionHandler(
        make_analytics_hub(None), InMemoryLifetimeManager(), auto_tick=False
    )
    principal = await world.authenticate(world.request(world.token("ann", "acme", "Admin")))
    client = HubTestClient(handler, principal=principal, request=world.request())
    await client.connect()
    completion = await client.invoke("GetDashboardSnapshot")
    assert completion.error.endswith("HubException: Dashboard unavailable")


async def test_a_hub_mapped_without_authentication_refuses_to_connect():
    handler = HubConnectionHandler(
        make_analytics_hub(Snapshots()), InMemoryLifetimeManager(), auto_tick=False
    )
    client = HubTestClient(handler)
    await client.connect()
    close = close_message(client)
    assert close is not None and close.error is not None and not close.allow_reconnect
    assert handler.local_connections() == []


async def test_a_principal_without_platform_claims_is_refused(world):
    handler = HubConnectionHandler(
        make_analytics_hub(Snapshots()), InMemoryLifetimeManager(), auto_tick=False
    )
    client = HubTestClient(handler, principal=Principal(user_id="x", claims={"sub": "x"}))
    await client.connect()
    assert close_message(client) is not None and handler.local_connections() == []


class ZonedSnapshots:
    """A snapshot provider that records the zone and period it was asked for."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, object, object]] = []

    async def snapshot(self, org_id, tz=None, period=None):
        from aiusage.errors import ValidationError

        if tz == "Mars/Olympus":
            raise ValidationError("unknown time zone 'Mars/Olympus'")
        self.asked.append((org_id, tz, period))
        return {"metrics": {"organizationId": org_id, "timezone": tz}, "trends": {}}


async def test_get_dashboard_snapshot_takes_an_optional_zone_and_period(world):
    snapshots = ZonedSnapshots()
    handler = HubConnectionHandler(
        make_analytics_hub(snapshots), InMemoryLifetimeManager(), auto_tick=False
    )
    principal = await world.authenticate(world.request(world.token("ann", "acme", "Admin")))
    client = HubTestClient(handler, principal=principal, request=world.request())
    await client.connect()
    assert (await client.invoke("GetDashboardSnapshot", "Europe/Paris", "7d")).error is None
    assert (await client.invoke("GetDashboardSnapshot")).error is None
    assert snapshots.asked == [("acme", "Europe/Paris", "7d"), ("acme", None, None)]
    bad = await client.invoke("GetDashboardSnapshot", "Mars/Olympus")
    assert bad.error.endswith("unknown time zone 'Mars/Olympus'")
    assert (await client.invoke("GetDashboardSnapshot", 42)).error is not None
