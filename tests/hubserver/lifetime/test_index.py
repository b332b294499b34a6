"""LocalIndex: the transitions both managers act on (first/last local member of a group or
user), which the conformance suites only see through the bus subscriptions."""

from hubserver.lifetime.index import Departure, LocalIndex
from hubserver.types import ConnectionId
from tests.hubserver.lifetime.spec import FakeSink


def test_add_reports_the_first_connection_of_a_user_only() -> None:
    index = LocalIndex()
    assert index.add(FakeSink("a1", "ann")) is True
    assert index.add(FakeSink("a2", "ann")) is False
    assert index.add(FakeSink("anon")) is False
    assert set(index.users["ann"]) == {"a1", "a2"}


def test_join_and_leave_report_the_first_and_last_member() -> None:
    index = LocalIndex()
    a, b = FakeSink("a"), FakeSink("b")
    index.add(a)
    index.add(b)
    assert index.join(a, "g") is True
    assert index.join(a, "g") is False  # idempotent
    assert index.join(b, "g") is False
    assert index.leave(ConnectionId("a"), "g") is False
    assert index.leave(ConnectionId("a"), "g") is False  # not a member any more
    assert index.leave(ConnectionId("b"), "never") is False
    assert index.leave(ConnectionId("b"), "g") is True
    assert index.groups == {} and index.memberships == {}


def test_remove_reports_emptied_groups_in_join_order_and_the_last_user_connection() -> None:
    index = LocalIndex()
    a, b = FakeSink("a", "ann"), FakeSink("b", "ann")
    index.add(a)
    index.add(b)
    for group in ("g2", "g1", "shared"):
        index.join(a, group)
    index.join(b, "shared")
    assert index.remove(ConnectionId("a")) == Departure(("g2", "g1"), last_of_user=False)
    assert index.remove(ConnectionId("a")) is None
    assert index.remove(ConnectionId("b")) == Departure(("shared",), last_of_user=True)
    assert index.connections == {} and index.groups == {} and index.users == {}
    assert index.memberships == {}
