"""AnalyticsHub mechanics: services from the activator, token expiry on open connections,
missing services."""

import pytest
from tests.security.kit import HubWorld, Snapshots, close_message
from tests.support.hub_client import HubTestClient

from aiusage.auth.issuer import BuiltinIssuer
from aiusage.realtime.hub import AnalyticsHub, AnalyticsHubActivator
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


def handler_for(snapshots, access=None):
    """The AnalyticsHub mapped as the platform maps it: its services come from the activator."""
    return HubConnectionHandler(
        AnalyticsHub,
        InMemoryLifetimeManager(),
        auto_tick=False,
        activator=AnalyticsHubActivator(snapshots, access),
    )


def test_the_activator_gives_each_instance_the_services_and_no_class_state():
    snapshots, access = Snapshots(), object()
    activator = AnalyticsHubActivator(snapshots, access)
    first, second = activator.create(AnalyticsHub), activator.create(AnalyticsHub)
    assert type(first) is AnalyticsHub and first is not second
    assert first.snapshot_provider is snapshots and first.access_checker is access
    assert AnalyticsHub().snapshot_provider is None  # the class itself holds no service
    assert not hasattr(AnalyticsHub, "snapshot_provider")


async def test_invocations_run_on_instances_the_activator_created(world):
    created: list[AnalyticsHub] = []

    class Recording(AnalyticsHubActivator):
        def create(self, hub_cls):
            hub = super().create(hub_cls)
            created.append(hub)
            return hub

    snapshots = Snapshots()
    handler = HubConnectionHandler(
        AnalyticsHub, InMemoryLifetimeManager(), auto_tick=False, activator=Recording(snapshots)
    )
    principal = await world.authenticate(world.request(world.token("ann", "acme", "Admin")))
    client = HubTestClient(handler, principal=principal, request=world.request())
    await client.connect()
    completion = await client.invoke("GetDashboardSnapshot")
    assert completion.error is None and completion.result["metrics"]["organizationId"] == "acme"
    assert snapshots.asked == ["acme"]
    assert len(created) == 2  # on_connected, then the invocation
    assert all(h.snapshot_provider is snapshots for h in created)


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
    handler = handler_for(None)
    principal = await world.authenticate(world.request(world.token("ann", "acme", "Admin")))
    client = HubTestClient(handler, principal=principal, request=world.request())
    await client.connect()
    completion = await client.invoke("GetDashboardSnapshot")
    assert completion.error.endswith("HubException: Dashboard unavailable")


async def test_a_hub_mapped_without_authentication_refuses_to_connect():
    handler = handler_for(Snapshots())
    client = HubTestClient(handler)
    await client.connect()
    close = close_message(client)
    assert close is not None and close.error is not None and not close.allow_reconnect
    assert handler.local_connections() == []


async def test_a_principal_without_platform_claims_is_refused(world):
    handler = handler_for(Snapshots())
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
    handler = handler_for(snapshots)
    principal = await world.authenticate(world.request(world.token("ann", "acme", "Admin")))
    client = HubTestClient(handler, principal=principal, request=world.request())
    await client.connect()
    assert (await client.invoke("GetDashboardSnapshot", "Europe/Paris", "7d")).error is None
    assert (await client.invoke("GetDashboardSnapshot")).error is None
    assert snapshots.asked == [("acme", "Europe/Paris", "7d"), ("acme", None, None)]
    bad = await client.invoke("GetDashboardSnapshot", "Mars/Olympus")
    assert bad.error.endswith("unknown time zone 'Mars/Olympus'")
    assert (await client.invoke("GetDashboardSnapshot", 42)).error is not None


async def test_a_connected_dashboard_keeps_only_its_principal_and_home_org_in_its_items(world):
    # Group memberships live in the engine's index; a per-connection copy would cost every
    # idle dashboard a set (docs/benchmarks.md §8).
    await world.connect(world.token("ann", "acme", "Admin"))
    (connection,) = world.handler.local_connections()
    items = connection.items
    assert items  # the hub caches the caller's principal and home organization there
    assert not [k for k, v in items.items() if isinstance(v, set | list | dict)]
