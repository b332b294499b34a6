"""Property: with random organizations, users, roles, SuperAdmin joins and
broadcasts (server-side publishes to org and user groups, and clients' own
BroadcastDashboardUpdate calls), every delivered message belongs to the receiver's
organization, or to an organization a SuperAdmin joined, or to the receiver as a user; and
every message that should arrive does (the hub is not "secure" by dropping everything)."""

import asyncio
import functools

from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aiusage.auth.issuer import BuiltinIssuer
from aiusage.realtime.hub import org_group, user_group
from tests.security.kit import HubWorld, invocations, settle

ORGS = ["o1", "o2", "o3", "o4"]


@functools.cache
def signing_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


users_st = st.lists(
    st.tuples(
        st.sampled_from(ORGS),
        st.sampled_from(["Admin", "Manager", "SuperAdmin"]),
        st.sets(st.sampled_from(ORGS), max_size=3),  # orgs a SuperAdmin tries to join
        st.sampled_from([None, "header", "query"]),  # how the org is stated when connecting
        st.sampled_from(["json", "messagepack"]),
    ),
    min_size=1,
    max_size=7,
)

actions_st = st.lists(
    st.one_of(
        st.tuples(st.just("org"), st.sampled_from(ORGS)),
        st.tuples(st.just("user"), st.integers(0, 6)),
        st.tuples(st.just("hub"), st.integers(0, 6), st.sampled_from(ORGS)),
    ),
    max_size=12,
)


MANAGER_REFUSED = (
    "HubException: Forbidden: only Admin and SuperAdmin may broadcast dashboard updates"
)


async def scenario(users, actions):
    world = HubWorld(BuiltinIssuer(signing_key()))
    for org in ORGS:
        world.directory.org(org, "active")
    clients = []
    allowed = []  # per client: orgs whose messages it may receive
    for i, (org, role, joins, org_via, protocol) in enumerate(users):
        sub = f"user-{i}"  # sub is unique within the issuer (RFC 7519 §4.1.2)
        extra = (
            {"org_header": org}
            if org_via == "header"
            else {"org_query": org}
            if org_via == "query"
            else {}
        )
        client = await world.connect(world.token(sub, org, role), protocol=protocol, **extra)
        orgs = {org}
        for target in sorted(joins):
            completion = await client.invoke("JoinOrganization", target)
            if role == "SuperAdmin":
                assert completion.error is None
                orgs.add(target)
            else:
                assert completion.error.endswith("HubException: Forbidden")
        clients.append((sub, org, role, client))
        allowed.append(orgs)

    expected = [[] for _ in clients]
    for seq, action in enumerate(actions):
        if action[0] == "org":
            org = action[1]
            payload = {"organizationId": org, "seq": seq}
            await world.handler.hub_context.clients.group(org_group(org)).send("Event", payload)
            for k in range(len(clients)):
                if org in allowed[k]:
                    expected[k].append(("Event", payload))
        elif action[0] == "user":
            if action[1] >= len(clients):
                continue
            sub, home = clients[action[1]][0], clients[action[1]][1]
            payload = {"userId": sub, "seq": seq}
            group = user_group(home, sub)
            await world.handler.hub_context.clients.group(group).send("Event", payload)
            expected[action[1]].append(("Event", payload))
        else:
            _, idx, target = action
            if idx >= len(clients):
                continue
            _sub, home, role, sender = clients[idx]
            payload = {"organizationId": target, "seq": seq}
            completion = await sender.invoke("BroadcastDashboardUpdate", target, payload)
            if role == "SuperAdmin" or (role == "Admin" and target == home):
                assert completion.error is None
                for k in range(len(clients)):
                    if target in allowed[k]:
                        expected[k].append(("DashboardUpdate", payload))
            elif target != home:
                assert completion.error.endswith("HubException: Forbidden")
            else:  # a Manager may not broadcast, even to their own organization
                assert completion.error.endswith(MANAGER_REFUSED)
        await settle()

    for k, (sub, _home, _role, client) in enumerate(clients):
        delivered = [(m.target, m.arguments[0]) for m in invocations(client)]
        for _target, payload in delivered:
            # The isolation property itself ...
            if "organizationId" in payload:
                assert payload["organizationId"] in allowed[k]
            else:
                assert payload["userId"] == sub
        # ... and no over-blocking: exactly what the model says, in order.
        assert delivered == expected[k]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(users=users_st, actions=actions_st)
def test_every_delivered_message_belongs_to_the_receivers_tenant(users, actions):
    asyncio.run(scenario(users, actions))
