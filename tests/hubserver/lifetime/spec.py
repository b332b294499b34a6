"""Abstract conformance suites for lifetime managers (docs/spec/backplane.md §6.8).

Cf. dotnet/aspnetcore ``HubLifetimeManagerTestBase.cs`` and ``ScaleoutHubLifetimeManagerTests.cs``.
Not collected directly (class names do not start with ``Test``). A backend subclasses a suite
as ``class TestXxx(LifetimeManagerSpec)`` and provides:

* ``async create_backplane()`` -> whatever the managers share (a fake bus, a channel prefix...);
* ``async create_manager(backplane, *, write_only=False, ack_timeout=...)`` -> an unstarted manager.

Sinks record the exact bytes written to them and decode them with the real JSON codec.
Cross-server deliveries are asynchronous, so a send is followed by :meth:`_Base.flush`: a marker
broadcast from the same sender that, on an ordered bus, arrives after everything sent before it.
Only then do we assert that *exactly* the right sinks got the message.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from hubserver.errors import BackplaneError, HubError
from hubserver.lifetime.base import HubLifetimeManager
from hubserver.protocol.messages import InvocationMessage
from hubserver.protocol.registry import JSON, MESSAGEPACK
from hubserver.protocol.serialized import SerializedMessage
from hubserver.types import ConnectionId, GroupName, UserId

MS = 0.001
FLUSH = "__flush__"


class FakeSink:
    """A ConnectionSink recording what a connection would have put on the wire."""

    __slots__ = ("_cid", "_uid", "fail", "frames", "protocol", "responder")

    def __init__(
        self,
        connection_id: str,
        user_id: str | None = None,
        *,
        protocol: Any = JSON,
        fail: bool = False,
        responder: Callable[[str, Sequence[Any]], Any] | None = None,
    ) -> None:
        self._cid = ConnectionId(connection_id)
        self._uid = UserId(user_id) if user_id is not None else None
        self.protocol = protocol
        self.fail = fail
        self.responder = responder
        self.frames: list[bytes] = []

    @property
    def connection_id(self) -> ConnectionId:
        return self._cid

    @property
    def user_id(self) -> UserId | None:
        return self._uid

    def write_serialized(self, message: SerializedMessage) -> None:
        if self.fail:
            raise RuntimeError("this connection is broken")
        self.frames.append(message.get(self.protocol))

    async def invoke_client(self, target: str, args: Sequence[Any], timeout: float) -> Any:
        if self.responder is None:
            raise HubError("Client didn't provide a result.")
        return self.responder(target, list(args))

    def messages(self) -> list[InvocationMessage]:
        out: list[InvocationMessage] = []
        for frame in self.frames:
            parsed, consumed = self.protocol.parse(frame)
            assert consumed == len(frame), "a frame must hold exactly whole messages"
            out.extend(m for m in parsed if isinstance(m, InvocationMessage))
        return out

    def received(self) -> list[tuple[str, list[Any]]]:
        """(target, arguments) of every Invocation except flush markers."""
        return [(m.target, list(m.arguments)) for m in self.messages() if m.target != FLUSH]

    def flushes(self) -> int:
        return sum(1 for m in self.messages() if m.target == FLUSH)


async def eventually(condition: Callable[[], bool], within: float = 2.0) -> None:
    """Poll ``condition`` (bounded in time) — cross-server delivery is asynchronous."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not condition():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(2 * MS)


class _Base:
    async def create_backplane(self) -> Any:
        raise NotImplementedError

    async def create_manager(
        self, backplane: Any, *, write_only: bool = False, ack_timeout: float = 30.0
    ) -> HubLifetimeManager:
        raise NotImplementedError

    @pytest.fixture(autouse=True)
    async def _cleanup(self):
        self._managers: list[HubLifetimeManager] = []
        self._backplane: Any = None
        yield
        for manager in reversed(self._managers):
            await manager.stop()
        await self.dispose_backplane(self._backplane)

    async def dispose_backplane(self, backplane: Any) -> None:
        return None

    async def backplane(self) -> Any:
        if self._backplane is None:
            self._backplane = await self.create_backplane()
        return self._backplane

    async def manager(self, *, write_only: bool = False, ack_timeout: float = 30.0):
        manager = await self.create_manager(
            await self.backplane(), write_only=write_only, ack_timeout=ack_timeout
        )
        self._managers.append(manager)
        await manager.start()
        return manager

    async def connect(self, manager: HubLifetimeManager, *sinks: FakeSink) -> None:
        for sink in sinks:
            await manager.on_connected(sink)

    async def flush(self, sender: HubLifetimeManager, sinks: Sequence[FakeSink]) -> None:
        """Wait until everything ``sender`` sent so far reached every (healthy) sink."""
        before = [s.flushes() for s in sinks]
        await sender.send_all(FLUSH, [])
        await eventually(
            lambda: all(s.fail or s.flushes() > b for s, b in zip(sinks, before, strict=True))
        )


class LifetimeManagerSpec(_Base):
    """HubLifetimeManagerTestBase: routing rules on one manager (every backend)."""

    async def test_send_all_reaches_every_connection(self) -> None:
        m = await self.manager()
        a, b = FakeSink("a"), FakeSink("b")
        await self.connect(m, a, b)
        await m.send_all("Hello", ["World", 1])
        await self.flush(m, [a, b])
        assert a.received() == [("Hello", ["World", 1])]
        assert b.received() == [("Hello", ["World", 1])]

    async def test_send_all_except_skips_the_excluded_connections(self) -> None:
        m = await self.manager()
        a, b, c = FakeSink("a"), FakeSink("b"), FakeSink("c")
        await self.connect(m, a, b, c)
        await m.send_all("Hi", [], exclude=[ConnectionId("a"), ConnectionId("c")])
        await self.flush(m, [a, b, c])
        assert a.received() == [] and c.received() == []
        assert b.received() == [("Hi", [])]

    async def test_send_connections_reaches_only_the_named_connections(self) -> None:
        m = await self.manager()
        a, b, c = FakeSink("a"), FakeSink("b"), FakeSink("c")
        await self.connect(m, a, b, c)
        await m.send_connections([ConnectionId("a")], "One", [1])
        await m.send_connections([ConnectionId("b"), ConnectionId("c")], "Two", [2])
        await self.flush(m, [a, b, c])
        assert a.received() == [("One", [1])]
        assert b.received() == [("Two", [2])]
        assert c.received() == [("Two", [2])]

    async def test_send_to_an_unknown_connection_is_a_no_op(self) -> None:
        m = await self.manager()
        a = FakeSink("a")
        await self.connect(m, a)
        await m.send_connections([ConnectionId("nobody")], "X", [])
        await self.flush(m, [a])
        assert a.received() == []

    async def test_send_groups_reaches_only_members(self) -> None:
        m = await self.manager()
        a, b, c = FakeSink("a"), FakeSink("b"), FakeSink("c")
        await self.connect(m, a, b, c)
        await m.add_to_group(ConnectionId("a"), GroupName("g1"))
        await m.add_to_group(ConnectionId("b"), GroupName("g2"))
        await m.send_groups([GroupName("g1")], "G1", [])
        await m.send_groups([GroupName("g1"), GroupName("g2")], "Both", [])
        await self.flush(m, [a, b, c])
        assert a.received() == [("G1", []), ("Both", [])]
        assert b.received() == [("Both", [])]
        assert c.received() == []

    async def test_a_member_of_two_targeted_groups_gets_one_copy_per_group(self) -> None:
        m = await self.manager()
        a = FakeSink("a")
        await self.connect(m, a)
        await m.add_to_group(ConnectionId("a"), GroupName("g1"))
        await m.add_to_group(ConnectionId("a"), GroupName("g2"))
        await m.send_groups([GroupName("g1"), GroupName("g2")], "Twice", [])
        await self.flush(m, [a])
        assert a.received() == [("Twice", []), ("Twice", [])]

    async def test_group_except_skips_the_excluded_members(self) -> None:
        m = await self.manager()
        a, b = FakeSink("a"), FakeSink("b")
        await self.connect(m, a, b)
        for cid in ("a", "b"):
            await m.add_to_group(ConnectionId(cid), GroupName("g"))
        await m.send_groups([GroupName("g")], "Msg", [], exclude=[ConnectionId("a")])
        await self.flush(m, [a, b])
        assert a.received() == []
        assert b.received() == [("Msg", [])]

    async def test_send_users_reaches_every_connection_of_the_users(self) -> None:
        m = await self.manager()
        a1, a2, b, c = (
            FakeSink("a1", "ann"),
            FakeSink("a2", "ann"),
            FakeSink("b", "bob"),
            FakeSink("c", "cat"),
        )
        await self.connect(m, a1, a2, b, c)
        await m.send_users([UserId("ann")], "ToAnn", [])
        await m.send_users([UserId("bob"), UserId("cat")], "ToBobCat", [])
        await self.flush(m, [a1, a2, b, c])
        assert a1.received() == a2.received() == [("ToAnn", [])]
        assert b.received() == c.received() == [("ToBobCat", [])]

    async def test_a_failing_connection_does_not_stop_the_others(self) -> None:
        m = await self.manager()
        a, bad, c = FakeSink("a"), FakeSink("bad", fail=True), FakeSink("c")
        await self.connect(m, a, bad, c)
        for cid in ("a", "bad", "c"):
            await m.add_to_group(ConnectionId(cid), GroupName("g"))
        await m.send_all("All", [])
        await m.send_groups([GroupName("g")], "Group", [])
        await self.flush(m, [a, bad, c])
        assert a.received() == c.received() == [("All", []), ("Group", [])]

    async def test_adding_to_a_group_twice_delivers_once(self) -> None:
        m = await self.manager()
        a = FakeSink("a")
        await self.connect(m, a)
        await m.add_to_group(ConnectionId("a"), GroupName("g"))
        await m.add_to_group(ConnectionId("a"), GroupName("g"))
        await m.send_groups([GroupName("g")], "Once", [])
        await self.flush(m, [a])
        assert a.received() == [("Once", [])]

    async def test_removing_from_a_group_is_idempotent_and_stops_delivery(self) -> None:
        m = await self.manager()
        a, b = FakeSink("a"), FakeSink("b")
        await self.connect(m, a, b)
        await m.add_to_group(ConnectionId("a"), GroupName("g"))
        await m.add_to_group(ConnectionId("b"), GroupName("g"))
        await m.remove_from_group(ConnectionId("a"), GroupName("g"))
        await m.remove_from_group(ConnectionId("a"), GroupName("g"))
        await m.remove_from_group(ConnectionId("a"), GroupName("never-joined"))
        await m.send_groups([GroupName("g")], "After", [])
        await self.flush(m, [a, b])
        assert a.received() == []
        assert b.received() == [("After", [])]

    async def test_disconnect_removes_the_connection_from_its_groups(self) -> None:
        m = await self.manager()
        a, b = FakeSink("a", "ann"), FakeSink("b")
        await self.connect(m, a, b)
        await m.add_to_group(ConnectionId("a"), GroupName("g"))
        await m.on_disconnected(a)
        await m.send_groups([GroupName("g")], "G", [])
        await m.send_all("All", [])
        await m.send_users([UserId("ann")], "U", [])
        await m.send_connections([ConnectionId("a")], "C", [])
        await self.flush(m, [b])
        assert a.received() == []
        assert b.received() == [("All", [])]
        assert m.local_connection_count() == 1

    async def test_each_connection_gets_bytes_in_its_own_protocol(self) -> None:
        m = await self.manager()
        j, p = FakeSink("j"), FakeSink("p", protocol=MESSAGEPACK)
        await self.connect(m, j, p)
        await m.send_all("Both", [{"k": 1}])
        await self.flush(m, [j, p])
        assert j.received() == p.received() == [("Both", [{"k": 1}])]
        assert j.frames[0].endswith(b"\x1e") and not p.frames[0].endswith(b"\x1e")

    async def test_invoke_connection_returns_the_local_clients_result(self) -> None:
        m = await self.manager()
        a = FakeSink("a", responder=lambda target, args: {"echo": [target, *args]})
        b = FakeSink("b")
        await self.connect(m, a, b)
        assert await m.invoke_connection(ConnectionId("a"), "Ask", [1], 1.0) == {"echo": ["Ask", 1]}
        with pytest.raises(HubError, match="didn't provide a result"):
            await m.invoke_connection(ConnectionId("b"), "Ask", [], 1.0)


class ScaleoutSpec(_Base):
    """ScaleoutHubLifetimeManagerTests: two (or three) managers on one backplane."""

    async def two(self, ack_timeout: float = 30.0):
        return (
            await self.manager(ack_timeout=ack_timeout),
            await self.manager(ack_timeout=ack_timeout),
        )

    async def test_send_all_reaches_connections_on_every_server(self) -> None:
        m1, m2 = await self.two()
        a, b = FakeSink("a"), FakeSink("b")
        await self.connect(m1, a)
        await self.connect(m2, b)
        await m1.send_all("Hello", ["World"])
        await self.flush(m1, [a, b])
        # Exactly once on the origin too: its own echo from the bus is suppressed.
        assert a.received() == [("Hello", ["World"])]
        assert b.received() == [("Hello", ["World"])]

    async def test_all_except_excludes_connections_on_other_servers(self) -> None:
        m1, m2 = await self.two()
        a, b, c = FakeSink("a"), FakeSink("b"), FakeSink("c")
        await self.connect(m1, a)
        await self.connect(m2, b, c)
        await m1.send_all("X", [], exclude=[ConnectionId("b")])
        await self.flush(m1, [a, b, c])
        assert a.received() == c.received() == [("X", [])]
        assert b.received() == []

    async def test_send_connection_reaches_a_connection_on_another_server(self) -> None:
        m1, m2 = await self.two()
        a, b, c = FakeSink("a"), FakeSink("b"), FakeSink("c")
        await self.connect(m1, a)
        await self.connect(m2, b, c)
        await m1.send_connections([ConnectionId("b"), ConnectionId("a")], "Direct", [7])
        await self.flush(m1, [a, b, c])
        assert a.received() == b.received() == [("Direct", [7])]
        assert c.received() == []

    async def test_group_members_on_every_server_receive_group_sends(self) -> None:
        m1, m2 = await self.two()
        a, b, c = FakeSink("a"), FakeSink("b"), FakeSink("c")
        await self.connect(m1, a)
        await self.connect(m2, b, c)
        await m1.add_to_group(ConnectionId("a"), GroupName("org:1"))
        await m2.add_to_group(ConnectionId("b"), GroupName("org:1"))
        await m2.send_groups([GroupName("org:1")], "FromB", [])
        await self.flush(m2, [a, b, c])
        await m1.send_groups([GroupName("org:1")], "FromA", [], exclude=[ConnectionId("b")])
        await self.flush(m1, [a, b, c])
        assert a.received() == [("FromB", []), ("FromA", [])]
        assert b.received() == [("FromB", [])]
        assert c.received() == []

    async def test_send_groups_across_servers_reaches_each_groups_members(self) -> None:
        m1, m2 = await self.two()
        a, b = FakeSink("a"), FakeSink("b")
        await self.connect(m1, a)
        await self.connect(m2, b)
        await m1.add_to_group(ConnectionId("a"), GroupName("g1"))
        await m2.add_to_group(ConnectionId("b"), GroupName("g2"))
        await m1.send_groups([GroupName("g1"), GroupName("g2")], "Multi", [])
        await self.flush(m1, [a, b])
        assert a.received() == b.received() == [("Multi", [])]

    async def test_a_user_connected_to_two_servers_gets_user_sends_on_both(self) -> None:
        m1, m2 = await self.two()
        a1, a2, other = FakeSink("a1", "ann"), FakeSink("a2", "ann"), FakeSink("o", "olga")
        await self.connect(m1, a1)
        await self.connect(m2, a2, other)
        await m1.send_users([UserId("ann")], "ToAnn", [1])
        await self.flush(m1, [a1, a2, other])
        assert a1.received() == a2.received() == [("ToAnn", [1])]
        assert other.received() == []

    async def test_remote_group_add_and_remove_are_acknowledged(self) -> None:
        m1, m2 = await self.two()
        a, b = FakeSink("a"), FakeSink("b")
        await self.connect(m1, a)
        await self.connect(m2, b)
        # m1 adds m2's connection: group command on internal:groups, m2 acks
        # (docs/spec/backplane.md §6.3).
        await m1.add_to_group(ConnectionId("b"), GroupName("g"))
        await m1.send_groups([GroupName("g")], "In", [])
        await self.flush(m1, [a, b])
        await m1.remove_from_group(ConnectionId("b"), GroupName("g"))
        await m1.send_groups([GroupName("g")], "Out", [])
        await self.flush(m1, [a, b])
        assert b.received() == [("In", [])]
        assert a.received() == []

    async def test_remote_group_add_for_an_unknown_connection_times_out(self) -> None:
        m1, _m2 = await self.two(ack_timeout=0.2)
        with pytest.raises(BackplaneError, match="No server acknowledged"):
            await m1.add_to_group(ConnectionId("ghost"), GroupName("g"))

    async def test_disconnect_on_another_server_stops_group_delivery(self) -> None:
        m1, m2 = await self.two()
        a, b = FakeSink("a"), FakeSink("b")
        await self.connect(m1, a)
        await self.connect(m2, b)
        await m2.add_to_group(ConnectionId("b"), GroupName("g"))
        await m2.on_disconnected(b)
        await m1.send_groups([GroupName("g")], "G", [])
        await m1.send_connections([ConnectionId("b")], "C", [])
        await self.flush(m1, [a])
        assert b.received() == []

    async def test_a_failing_connection_on_another_server_does_not_stop_the_group(self) -> None:
        m1, m2 = await self.two()
        bad, b = FakeSink("bad", fail=True), FakeSink("b")
        await self.connect(m2, bad, b)
        for cid in ("bad", "b"):
            await m2.add_to_group(ConnectionId(cid), GroupName("g"))
        await m1.send_groups([GroupName("g")], "G", [])
        await self.flush(m1, [bad, b])
        assert b.received() == [("G", [])]

    async def test_client_results_work_across_servers(self) -> None:
        m1, m2 = await self.two()
        b = FakeSink("b", responder=lambda target, args: [target, sum(args)])
        c = FakeSink("c")  # no responder: answers with an error
        await self.connect(m2, b, c)
        assert await m1.invoke_connection(ConnectionId("b"), "Add", [2, 3], 2.0) == ["Add", 5]
        with pytest.raises(HubError, match="didn't provide a result"):
            await m1.invoke_connection(ConnectionId("c"), "Add", [], 2.0)
        with pytest.raises(HubError, match="Connection 'ghost' does not exist."):
            await m1.invoke_connection(ConnectionId("ghost"), "Add", [], 2.0)

    async def test_messagepack_clients_on_other_servers_get_messagepack_bytes(self) -> None:
        m1, m2 = await self.two()
        j, p = FakeSink("j"), FakeSink("p", protocol=MESSAGEPACK)
        await self.connect(m2, j, p)
        await m1.send_all("Both", [[1, 2], "x"])
        await self.flush(m1, [j, p])
        assert j.received() == p.received() == [("Both", [[1, 2], "x"])]

    async def test_a_write_only_publisher_reaches_clients_on_every_server(self) -> None:
        m1, m2 = await self.two()
        publisher = await self.manager(write_only=True)
        a, b = FakeSink("a", "ann"), FakeSink("b", "bob")
        await self.connect(m1, a)
        await self.connect(m2, b)
        await m2.add_to_group(ConnectionId("b"), GroupName("org:1"))
        # The publisher hosts nobody: group membership goes through commands + acks.
        await publisher.add_to_group(ConnectionId("a"), GroupName("org:1"))
        await publisher.send_all("All", [])
        await publisher.send_groups([GroupName("org:1")], "Org", [])
        await publisher.send_users([UserId("bob")], "Bob", [])
        await publisher.send_connections([ConnectionId("a")], "A", [])
        await self.flush(publisher, [a, b])
        assert a.received() == [("All", []), ("Org", []), ("A", [])]
        assert b.received() == [("All", []), ("Org", []), ("Bob", [])]
        with pytest.raises(BackplaneError):
            await publisher.on_connected(FakeSink("z"))
