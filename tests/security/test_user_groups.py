"""User ids are unique only within an organization (the store's key is ``(org_id, id)``;
agents report employees by their own ids), so every user-targeted message is tenant-scoped:
org-a's ``X`` never receives org-b's ``X``'s ExportCompleted or alerts, whether they are
sent to the user's group (``user:{orgId}:{userId}``) or through ``Clients.User``.

Real authentication hook, real AnalyticsHub, real hub engine, real protocol bytes."""

import pytest

from aiusage.realtime.access import hub_user_id
from aiusage.realtime.publisher import EventPublisher, user_group
from tests.security.kit import invocations, settle


@pytest.fixture
async def twins(world):
    world.directory.org("org-a", "active")
    world.directory.org("org-b", "active")
    a = await world.connect(world.token("x", "org-a", "Admin"))
    b = await world.connect(world.token("x", "org-b", "Manager"))
    other = await world.connect(world.token("y", "org-b", "Admin"))
    return world, a, b, other


def got(client, method):
    return [m.arguments[0] for m in invocations(client, method)]


async def test_export_completed_reaches_only_the_requesting_tenants_user(twins):
    world, a, b, other = twins
    publisher = EventPublisher(world.handler.hub_context)
    await publisher.export_completed("org-b", "x", "job-b", "http://h/dl?sig=b")
    await settle()
    assert got(a, "ExportCompleted") == []
    assert got(other, "ExportCompleted") == []
    assert got(b, "ExportCompleted") == [
        {"jobId": "job-b", "downloadUrl": "http://h/dl?sig=b", "organizationId": "org-b"}
    ]


async def test_user_targeted_alerts_reach_only_that_tenants_user(twins):
    world, a, b, other = twins
    publisher = EventPublisher(world.handler.hub_context)
    alert = {"type": "ExportFailed", "message": "m", "severity": "warning"}
    await publisher.alert("org-a", alert, user_id="x")
    await settle()
    assert [p["organizationId"] for p in got(a, "Alert")] == ["org-a"]
    assert got(b, "Alert") == [] and got(other, "Alert") == []


async def test_the_group_name_carries_the_organization(twins):
    assert user_group("org-a", "x") == "user:org-a:x" != user_group("org-b", "x")


async def test_clients_user_targets_one_tenants_user(twins):
    world, a, b, other = twins
    assert hub_user_id("org-b", "x") == "org-b:x"
    await world.handler.hub_context.clients.user(hub_user_id("org-b", "x")).send("Probe", {"n": 1})
    await world.handler.hub_context.clients.user("x").send("Probe", {"n": 2})  # bare id: no one
    await settle()
    assert got(b, "Probe") == [{"n": 1}]
    assert got(a, "Probe") == [] and got(other, "Probe") == []
