"""Tenant isolation, hub side: who may connect (403 cases), which groups a connection
joins, and that no hub method lets a client reach another tenant's group.

Every case asserts the exact outcome (HTTP status and body of the hook, or the Completion
error of the hub method) *and* that nothing reached anyone it should not.
"""

import pytest

from aiusage.realtime.hub import ADMIN_GROUP, SUPERADMIN_GROUP, org_group, user_group
from tests.security.kit import invocations, settle

FORBIDDEN = "An unexpected error occurred invoking '{}' on the server. HubException: Forbidden"


async def publish(world, group, method="SessionStarted", payload=None):
    await world.handler.hub_context.clients.group(group).send(method, payload or {"group": group})
    await settle()


def got(client, method="SessionStarted"):
    return [m.arguments[0] for m in invocations(client, method)]


# -- connecting -------------------------------------------------------------------------------


async def test_admin_manager_and_super_admin_connect(world):
    for sub, role in (("ann", "Admin"), ("max", "Manager"), ("root", "SuperAdmin")):
        client = await world.connect(world.token(sub, "acme", role))
        assert client.handshake.error is None


@pytest.mark.parametrize("role", ["Employee", "Agent", ["Employee", "Agent"], "admin"])
async def test_roles_outside_admin_manager_super_admin_get_403(world, role):
    listener = await world.connect(world.token("ann", "acme", "Admin"))
    assert await world.refusal(world.token("eve", "acme", role)) == (403, "Forbidden")
    await publish(world, org_group("acme"))
    assert len(world.handler.local_connections()) == 1 and len(got(listener)) == 1


async def test_a_role_list_with_one_dashboard_role_connects(world):
    client = await world.connect(world.token("amy", "acme", ["Employee", "Manager"]))
    await publish(world, org_group("acme"))
    assert got(client) == [{"group": "org:acme"}]


@pytest.mark.parametrize("where", ["org_header", "org_query"])
async def test_an_organization_id_other_than_the_token_org_gets_403(world, where):
    victim = await world.connect(world.token("gus", "globex", "Admin"))
    token = world.token("ann", "acme", "Admin")
    assert await world.refusal(token, **{where: "globex"}) == (403, "Organization mismatch")
    await publish(world, org_group("globex"))
    assert len(world.handler.local_connections()) == 1 and len(got(victim)) == 1


async def test_the_matching_organization_header_connects(world):
    client = await world.connect(world.token("ann", "acme", "Admin"), org_header="acme")
    await publish(world, org_group("acme"))
    assert len(got(client)) == 1


async def test_the_header_is_checked_even_when_the_query_is_right(world):
    token = world.token("ann", "acme", "Admin")
    assert await world.refusal(token, org_header="globex", org_query="acme") == (
        403,
        "Organization mismatch",
    )


@pytest.mark.parametrize(
    ("org", "status"), [("initech", "canceled"), ("hooli", "past_due"), ("piedpiper", "unpaid")]
)
async def test_an_inactive_subscription_gets_403_with_its_status(world, org, status):
    world.directory.org(org, status)
    assert await world.refusal(world.token("ann", org, "Admin")) == (
        403,
        f"Subscription inactive: {status}",
    )
    assert world.handler.local_connections() == []


async def test_an_unknown_organization_gets_403(world):
    assert await world.refusal(world.token("ann", "nowhere", "Admin")) == (
        403,
        "Unknown organization",
    )


async def test_trialing_is_enough(world):
    client = await world.connect(world.token("gus", "globex", "Manager"))
    assert client.handshake.error is None


async def test_super_admin_is_exempt_from_org_match_and_subscription(world):
    world.directory.org("platform", "canceled")
    client = await world.connect(world.token("root", "platform", "SuperAdmin"), org_header="globex")
    await publish(world, org_group("globex"))
    assert got(client) == [{"group": "org:globex"}]


async def test_a_user_the_store_removed_or_demoted_gets_403_despite_a_valid_token(world):
    world.directory.member("acme", "ann", "Employee")
    assert await world.refusal(world.token("ann", "acme", "Admin")) == (403, "Forbidden")


async def test_the_store_role_replaces_a_stale_token_role(world):
    world.directory.member("acme", "ann", "Manager")  # demoted from Admin after the token
    client = await world.connect(world.token("ann", "acme", "Admin"))
    await publish(world, ADMIN_GROUP)
    assert got(client) == []


async def test_a_user_record_can_be_required(world):
    from aiusage.realtime.access import make_authenticate

    world.authenticate = make_authenticate(
        world.verifier, world.directory, require_user_record=True, cache_ttl=0
    )
    assert await world.refusal(world.token("ghost", "acme", "Admin")) == (403, "Access revoked")
    world.directory.member("acme", "ann", "Admin")
    assert (await world.connect(world.token("ann", "acme", "Admin"))).handshake.error is None


# -- groups joined on connect -------------------------------------------------------------------


async def test_groups_joined_on_connect_follow_the_role(world):
    admin = await world.connect(world.token("ann", "acme", "Admin"))
    manager = await world.connect(world.token("max", "acme", "Manager"))
    root = await world.connect(world.token("root", "platform", "SuperAdmin"))
    for group in (
        org_group("acme"),
        user_group("acme", "ann"),
        user_group("acme", "max"),
        ADMIN_GROUP,
        SUPERADMIN_GROUP,
        org_group("platform"),
    ):
        await publish(world, group)
    assert got(admin) == [{"group": g} for g in ("org:acme", "user:acme:ann", "admin")]
    assert got(manager) == [{"group": g} for g in ("org:acme", "user:acme:max")]
    assert got(root) == [{"group": g} for g in ("superadmin", "org:platform")]


# -- hub methods ----------------------------------------------------------------------------------


async def test_join_organization_group_is_idempotent(world):
    client = await world.connect(world.token("ann", "acme", "Admin"))
    for _ in range(3):
        assert (await client.invoke("JoinOrganizationGroup")).error is None
    await publish(world, org_group("acme"))
    assert got(client) == [{"group": "org:acme"}]


async def test_join_organization_is_super_admin_only(world):
    victim = await world.connect(world.token("gus", "globex", "Admin"))
    for role in ("Admin", "Manager"):
        client = await world.connect(world.token("ann", "acme", role))
        for method in (
            "JoinOrganization",
            "joinorganization",
            "join_organization",
            "LeaveOrganization",
        ):
            completion = await client.invoke(method, "globex")
            assert completion.error == FORBIDDEN.format(method)
        await publish(world, org_group("globex"))
        assert got(client) == []
    assert len(got(victim)) == 2


async def test_super_admin_joins_and_leaves_another_organization(world):
    root = await world.connect(world.token("root", "platform", "SuperAdmin"))
    assert (await root.invoke("JoinOrganization", "globex")).error is None
    await publish(world, org_group("globex"), payload={"n": 1})
    assert (await root.invoke("LeaveOrganization", "globex")).error is None
    await publish(world, org_group("globex"), payload={"n": 2})
    assert got(root) == [{"n": 1}]


async def test_super_admin_cannot_join_an_unknown_or_malformed_organization(world):
    root = await world.connect(world.token("root", "platform", "SuperAdmin"))
    completion = await root.invoke("JoinOrganization", "nowhere")
    assert completion.error.endswith("HubException: Unknown organization")
    completion = await root.invoke("JoinOrganization", "")
    assert completion.error.endswith("HubException: Invalid organization id")


async def test_cross_org_broadcast_is_forbidden_and_reaches_nobody(world):
    sender = await world.connect(world.token("ann", "acme", "Admin"))
    colleague = await world.connect(world.token("max", "acme", "Manager"))
    victim = await world.connect(world.token("gus", "globex", "Admin"))
    completion = await sender.invoke("BroadcastDashboardUpdate", "globex", {"activeSessions": 666})
    assert completion.error == FORBIDDEN.format("BroadcastDashboardUpdate")
    await settle()
    assert (
        got(victim, "DashboardUpdate") == []
        and got(colleague, "DashboardUpdate") == []
        and got(sender, "DashboardUpdate") == []
    )


async def test_own_org_broadcast_reaches_the_org_only(world):
    sender = await world.connect(world.token("ann", "acme", "Admin"))
    colleague = await world.connect(world.token("max", "acme", "Manager"))
    other = await world.connect(world.token("gus", "globex", "Admin"))
    assert (
        await sender.invoke("BroadcastDashboardUpdate", "acme", {"activeSessions": 3})
    ).error is None
    await settle()
    assert (
        got(sender, "DashboardUpdate")
        == got(colleague, "DashboardUpdate")
        == [{"activeSessions": 3}]
    )
    assert got(other, "DashboardUpdate") == []


async def test_super_admin_may_broadcast_to_any_org(world):
    root = await world.connect(world.token("root", "platform", "SuperAdmin"))
    victim = await world.connect(world.token("gus", "globex", "Admin"))
    update = {"activeSessions": 1}
    assert (await root.invoke("BroadcastDashboardUpdate", "globex", update)).error is None
    await settle()
    assert got(victim, "DashboardUpdate") == [update] and got(root, "DashboardUpdate") == []


@pytest.mark.parametrize(
    ("method", "args"),
    [
        ("AddToGroup", ["org:globex"]),
        ("JoinGroup", ["org:globex"]),
        ("SendToGroup", ["org:globex", "x"]),
        ("JoinOrganizationGroup", ["globex"]),
        ("BroadcastDashboardUpdate", ["acme:org:globex", {}]),
        ("BroadcastDashboardUpdate", ["globex", {}, "extra"]),
        ("GetDashboardSnapshot", ["globex"]),
        ("OnConnected", []),
        ("_user", []),
    ],
)
async def test_no_method_reaches_another_tenants_group(world, method, args):
    attacker = await world.connect(world.token("ann", "acme", "Admin"))
    victim = await world.connect(world.token("gus", "globex", "Admin"))
    completion = await attacker.invoke(method, *args)
    assert completion.error is not None
    await publish(world, org_group("globex"))
    await publish(world, user_group("globex", "gus"))
    assert got(attacker) == [] and got(attacker, "DashboardUpdate") == []
    assert got(victim) == [{"group": "org:globex"}, {"group": "user:globex:gus"}]
    assert got(victim, "DashboardUpdate") == []


async def test_dashboard_snapshot_is_the_callers_organization(world):
    client = await world.connect(world.token("ann", "acme", "Manager"))
    completion = await client.invoke("GetDashboardSnapshot")
    assert completion.error is None and completion.result == {
        "metrics": {"organizationId": "acme"},
        "trends": {},
    }
    assert world.snapshots.asked == ["acme"]


async def test_messagepack_clients_get_the_same_isolation(world):
    attacker = await world.connect(world.token("ann", "acme", "Admin"), protocol="messagepack")
    completion = await attacker.invoke("BroadcastDashboardUpdate", "globex", {"x": 1})
    assert completion.error == FORBIDDEN.format("BroadcastDashboardUpdate")
    await publish(world, org_group("acme"))
    assert got(attacker) == [{"group": "org:acme"}]
