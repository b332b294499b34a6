"""Per-organization connection limit (aiusage.observability.limits)."""

from __future__ import annotations

import pytest
from tests.support.hub_client import HubTestClient, settle, wait_until

from aiusage.observability.limits import (
    OrgConnectionTracker,
    OrgLimitFilter,
    guard_authenticate,
)
from hubserver import AuthenticationFailed, HttpRequestInfo, Hub, HubError, Principal
from hubserver.hub.handler import HubConnectionHandler
from hubserver.lifetime.memory import InMemoryLifetimeManager


def principal(org: str, role: str = "Admin", sub: str = "u") -> Principal:
    return Principal(user_id=sub, claims={"sub": sub, "org": org, "role": [role]})


class CountingHub(Hub):
    connected: list[str] = []
    disconnected: list[str] = []

    async def on_connected(self) -> None:
        type(self).connected.append(self.context.connection_id)

    async def on_disconnected(self, exception: BaseException | None) -> None:
        type(self).disconnected.append(self.context.connection_id)

    async def echo(self, value: str) -> str:
        return value


def test_the_tracker_counts_per_organization_and_refuses_beyond_the_limit():
    tracker = OrgConnectionTracker(limit=2)
    tracker.acquire("acme")
    tracker.acquire("acme")
    with pytest.raises(Exception, match=r"Organization connection limit reached \(2\)"):
        tracker.acquire("acme")
    tracker.acquire("acme", exempt=True)  # SuperAdmin
    tracker.acquire("globex")
    assert (tracker.count("acme"), tracker.count("globex"), tracker.refused) == (3, 1, 1)
    for _ in range(4):
        tracker.release("acme")
    assert tracker.count("acme") == 0 and tracker.organizations() == 1


def test_top_is_bounded_and_ordered_by_size_then_id():
    tracker = OrgConnectionTracker()
    for org, n in (("b", 3), ("a", 3), ("c", 1), ("d", 5)):
        for _ in range(n):
            tracker.acquire(org)
    assert tracker.top(3) == [("d", 5), ("a", 3), ("b", 3)]


def test_a_limit_below_one_is_rejected():
    with pytest.raises(ValueError):
        OrgConnectionTracker(limit=0)


def _request(path: str, method: str = "POST", query=None, upgrade: str | None = None):
    headers = {"upgrade": upgrade} if upgrade else {}
    return HttpRequestInfo(method, path, query or {}, headers)


async def test_the_guard_refuses_only_new_connections_of_a_full_organization():
    tracker = OrgConnectionTracker(limit=1)
    tracker.acquire("acme")

    async def auth(_request: HttpRequestInfo) -> Principal:
        return principal("acme")

    guarded = guard_authenticate(auth, tracker)
    for new in (
        _request("/hubs/analytics/negotiate"),
        _request("/HUBS/Analytics/NEGOTIATE/"),  # hub paths match ignoring case
        _request("/hubs/analytics", "GET", upgrade="websocket"),  # skipNegotiation
    ):
        with pytest.raises(AuthenticationFailed) as info:
            await guarded(new)
        assert info.value.status == 503
        assert "Organization connection limit reached (1)" in info.value.message
    # Requests of existing connections are never cut by the limit.
    for existing in (
        _request("/hubs/analytics", "GET", {"id": "t"}),
        _request("/hubs/analytics", "POST", {"id": "t"}),
        _request("/hubs/analytics", "GET", {"id": "t"}, upgrade="websocket"),
    ):
        assert (await guarded(existing)).user_id == "u"
    assert tracker.refused == 3


async def test_the_guard_lets_super_admins_and_other_organizations_through():
    tracker = OrgConnectionTracker(limit=1)
    tracker.acquire("acme")
    who = {"p": principal("acme", "SuperAdmin")}

    async def auth(_request: HttpRequestInfo) -> Principal:
        return who["p"]

    guarded = guard_authenticate(auth, tracker)
    assert await guarded(_request("/hubs/analytics/negotiate")) is who["p"]
    who["p"] = principal("globex")
    assert await guarded(_request("/hubs/analytics/negotiate")) is who["p"]


def test_without_a_limit_the_hook_is_returned_unchanged():
    async def auth(_request: HttpRequestInfo) -> None:
        return None

    assert guard_authenticate(auth, OrgConnectionTracker()) is auth


async def test_the_hub_counts_connections_and_closes_one_over_the_limit_with_a_hub_error():
    CountingHub.connected, CountingHub.disconnected = [], []
    tracker = OrgConnectionTracker(limit=2)
    handler = HubConnectionHandler(
        CountingHub, InMemoryLifetimeManager(), auto_tick=False, filters=[OrgLimitFilter(tracker)]
    )
    first = HubTestClient(handler, principal=principal("acme", sub="a"))
    second = HubTestClient(handler, principal=principal("acme", sub="b"))
    await first.connect()
    await second.connect()
    assert tracker.count("acme") == 2
    assert await first.invoke("Echo", "hi") is not None

    third = HubTestClient(handler, principal=principal("acme", sub="c"))
    await third.connect()
    close = third.last_close()
    assert close.error == (
        "Connection closed with an error. HubException: Organization connection limit reached (2)"
    )
    assert not close.allow_reconnect
    assert tracker.count("acme") == 2 and tracker.refused == 1
    assert len(CountingHub.connected) == 2  # the refused one never reached the hub

    first.close()
    await wait_until(lambda: tracker.count("acme") == 1)
    await settle()
    assert CountingHub.disconnected == [first.connection_id]
    fourth = HubTestClient(handler, principal=principal("acme", sub="d"))
    await fourth.connect()
    assert tracker.count("acme") == 2


class FailingHub(Hub):
    async def on_connected(self) -> None:
        raise HubError("not today")


async def test_a_connection_whose_hub_refuses_it_is_not_counted():
    tracker = OrgConnectionTracker(limit=1)
    handler = HubConnectionHandler(
        FailingHub, InMemoryLifetimeManager(), auto_tick=False, filters=[OrgLimitFilter(tracker)]
    )
    client = HubTestClient(handler, principal=principal("acme"))
    await client.connect()
    assert client.last_close().error == "Connection closed with an error. HubException: not today"
    await wait_until(lambda: handler.connection_count() == 0)
    assert tracker.count("acme") == 0 and tracker.refused == 0


async def test_super_admins_are_counted_but_never_refused_by_the_filter():
    tracker = OrgConnectionTracker(limit=1)
    handler = HubConnectionHandler(
        CountingHub, InMemoryLifetimeManager(), auto_tick=False, filters=[OrgLimitFilter(tracker)]
    )
    clients = [
        HubTestClient(handler, principal=principal("acme", role="SuperAdmin", sub=s))
        for s in ("a", "b")
    ]
    for client in clients:
        await client.connect()
    assert tracker.count("acme") == 2 and tracker.refused == 0
    assert len(handler.local_connections()) == 2
