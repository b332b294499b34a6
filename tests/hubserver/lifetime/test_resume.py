"""Cross-server resume over the bus (docs/spec/stateful-reconnect.md §5.4), on the loopback bus
and on real Redis: the marker splits every channel's stream identically for owner and claimer,
so each message reaches the connection exactly once, on one side or the other, in order."""

from __future__ import annotations

import asyncio
import itertools
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from hubserver.errors import BackplaneError
from hubserver.lifetime import redis_wire as wire
from hubserver.lifetime import resume
from hubserver.lifetime.loopback_bus import LoopbackBroker
from hubserver.lifetime.pubsub import PubSubLifetimeManager
from hubserver.lifetime.resume import PendingSink, ResumeOffer, ResumeRefused
from hubserver.protocol.serialized import SerializedMessage
from hubserver.types import ConnectionId, GroupName, UserId
from tests.hubserver.lifetime.spec import FakeSink, eventually

CID = "A" * 22
TOKEN = CID + "." + "s" * 22
GROUP = GroupName("org:1")

Factory = Callable[[], Awaitable[PubSubLifetimeManager]]


class ResumableSink(FakeSink):
    """A stateful connection: ``resumable`` makes the owner subscribe its resume channel;
    after :meth:`detach` every write is a bug (recorded in ``late``)."""

    __slots__ = ("detached", "late")

    def __init__(self, user: str = "ann") -> None:
        super().__init__(CID, user)
        self.detached = False
        self.late: list[SerializedMessage] = []

    @property
    def resumable(self) -> bool:
        return True

    def write_serialized(self, message: SerializedMessage) -> None:
        if self.detached:
            self.late.append(message)
            return
        super().write_serialized(message)


class Source:
    """The owner's hub layer as the lifetime manager sees it (ResumeSource)."""

    def __init__(self, sink: ResumableSink) -> None:
        self.sink = sink
        self.offers = 0

    def offer(self, connection_id: ConnectionId, token: str) -> ResumeOffer | None:
        if token != TOKEN or self.sink.detached:
            return None
        self.offers += 1
        return ResumeOffer(self.sink.user_id, "json")

    def hand_over(self, connection_id: ConnectionId, token: str) -> bytes | None:
        if token != TOKEN or self.sink.detached:
            return None
        self.sink.detached = True
        return json.dumps(self.sink.received()).encode()


@pytest.fixture(params=["loopback", pytest.param("redis", marks=pytest.mark.integration)])
async def servers(request: pytest.FixtureRequest) -> AsyncIterator[Factory]:
    managers: list[PubSubLifetimeManager] = []
    if request.param == "loopback":
        broker = LoopbackBroker()

        def build() -> PubSubLifetimeManager:
            return PubSubLifetimeManager(broker.bus(), channels=wire.RedisChannels("Resume"))

    else:
        from hubserver.lifetime.redis import RedisLifetimeManager

        prefix = f"resume-test-{uuid.uuid4().hex}"

        def build() -> PubSubLifetimeManager:
            return RedisLifetimeManager(
                "redis://127.0.0.1:6379/0", channel_prefix=prefix, hub_name="Hub"
            )

    async def new() -> PubSubLifetimeManager:
        manager = build()
        managers.append(manager)
        await manager.start()
        wait_ready = getattr(manager, "wait_ready", None)
        if wait_ready is not None:
            assert await wait_ready(5.0)
        return manager

    yield new
    for manager in managers:
        await manager.stop()


async def owner_with_connection(new: Factory) -> tuple[PubSubLifetimeManager, ResumableSink]:
    owner = await new()
    sink = ResumableSink()
    owner.set_resume_source(Source(sink))
    await owner.on_connected(sink)
    await owner.add_to_group(ConnectionId(CID), GROUP)
    return owner, sink


def numbers(received: list[tuple[str, list[Any]]]) -> list[tuple[str, int]]:
    return [(target, args[0]) for target, args in received]


async def test_every_message_reaches_the_connection_once_whoever_publishes_when(
    servers: Factory,
) -> None:
    owner, old = await owner_with_connection(servers)
    claimer = await servers()
    third = await servers()
    count = 150

    async def publish(manager: PubSubLifetimeManager, name: str) -> None:
        for i in range(count):
            if i % 3 == 0:
                await manager.send_groups([GROUP], name, [i])
            elif i % 3 == 1:
                await manager.send_all(name, [i])
            else:
                await manager.send_users([UserId("ann")], name, [i])
            if i % 10 == 0:
                await asyncio.sleep(0.001)

    publishers = [
        asyncio.create_task(publish(m, name))
        for m, name in ((owner, "fromOwner"), (claimer, "fromClaimer"), (third, "fromThird"))
    ]
    await asyncio.sleep(0.01)  # some before, some during, some after the handover
    claim = await claimer.claim(TOKEN, "ann", 5.0)
    handed = [tuple(x) for x in json.loads(claim.state)]
    new = ResumableSink()
    claimer.adopt(ConnectionId(CID), new)
    await asyncio.gather(*publishers)
    expected = {
        (name, i) for name in ("fromOwner", "fromClaimer", "fromThird") for i in range(count)
    }
    await eventually(lambda: len(handed) + len(new.received()) >= len(expected), within=10.0)
    await asyncio.sleep(0.05)  # nothing more may arrive
    before = numbers([(t, a) for t, a in handed])  # type: ignore[misc]
    after = numbers(new.received())
    assert not old.late, "the owner wrote to the connection after handing it over"
    assert len(before) + len(after) == len(expected)
    assert set(before) | set(after) == expected
    assert not set(before) & set(after)
    for name in ("fromOwner", "fromClaimer", "fromThird"):
        sequence = [i for n, i in before + after if n == name]
        assert sequence == list(range(count)), f"{name} out of order"
    assert claimer.stats()["handovers_in"] == 1 and owner.stats()["handovers_out"] == 1
    # The connection now lives on the claimer: the owner no longer listens for it.
    assert resume.resume_channel(owner.channels, CID) not in owner.subscribed_channels()
    assert resume.resume_channel(claimer.channels, CID) in claimer.subscribed_channels()


async def test_a_resumed_connection_can_move_again(servers: Factory) -> None:
    owner, _old = await owner_with_connection(servers)
    second = await servers()
    third = await servers()
    await second.claim(TOKEN, "ann", 5.0)
    moved = ResumableSink()
    second.adopt(ConnectionId(CID), moved)
    second.set_resume_source(Source(moved))
    await second.send_groups([GROUP], "onSecond", [1])
    await eventually(lambda: moved.received() == [("onSecond", [1])])
    claim = await third.claim(TOKEN, "ann", 5.0)
    assert json.loads(claim.state) == [["onSecond", [1]]]
    again = ResumableSink()
    third.adopt(ConnectionId(CID), again)
    await owner.send_groups([GROUP], "onThird", [2])
    await eventually(lambda: again.received() == [("onThird", [2])])


async def test_a_claim_for_another_users_connection_is_refused_with_403(
    servers: Factory,
) -> None:
    owner, old = await owner_with_connection(servers)
    claimer = await servers()
    with pytest.raises(ResumeRefused) as refused:
        await claimer.claim(TOKEN, "mallory", 5.0)
    assert refused.value.status == 403
    # The owner keeps delivering; the claimer holds nothing.
    await owner.send_groups([GROUP], "still", [1])
    await eventually(lambda: old.received() == [("still", [1])])
    assert claimer.local_connection_count() == 0
    assert not old.detached


async def test_a_wrong_secret_is_refused_with_404(servers: Factory) -> None:
    _owner, old = await owner_with_connection(servers)
    claimer = await servers()
    with pytest.raises(ResumeRefused) as refused:
        await claimer.claim(CID + "." + "x" * 22, "ann", 5.0)
    assert refused.value.status == 404
    assert not old.detached


async def test_a_connection_that_exists_nowhere_is_refused_at_once(servers: Factory) -> None:
    claimer = await servers()
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(ResumeRefused) as refused:
        await claimer.claim(TOKEN, "ann", 5.0)
    assert refused.value.status == 404
    assert loop.time() - started < 1.0
    with pytest.raises(ResumeRefused):
        await claimer.claim("not-a-resumable-token", "ann", 5.0)


async def test_an_owner_that_refuses_at_the_marker_gives_404(servers: Factory) -> None:
    owner, old = await owner_with_connection(servers)
    claimer = await servers()

    class GoneMeanwhile(Source):
        def hand_over(self, connection_id: ConnectionId, token: str) -> bytes | None:
            return None

    owner.set_resume_source(GoneMeanwhile(old))
    with pytest.raises(ResumeRefused) as refused:
        await claimer.claim(TOKEN, "ann", 2.0)
    assert refused.value.status == 404
    await eventually(lambda: claimer.local_connection_count() == 0)


async def test_an_owner_that_dies_mid_handover_times_out_with_404_and_leaves_nothing(
    servers: Factory,
) -> None:
    owner, old = await owner_with_connection(servers)
    claimer = await servers()
    baseline = set(claimer.subscribed_channels())

    class Dying(Source):
        def offer(self, connection_id: ConnectionId, token: str) -> ResumeOffer | None:
            asyncio.ensure_future(owner.stop())
            return super().offer(connection_id, token)

    owner.set_resume_source(Dying(old))
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(ResumeRefused) as refused:
        await claimer.claim(TOKEN, "ann", 0.5)
    assert refused.value.status == 404
    assert loop.time() - started < 2.0
    await eventually(
        lambda: (
            set(claimer.subscribed_channels()) - baseline
            <= {resume.reply_channel(claimer.channels, claimer.server_name)}
        )
    )
    assert claimer.local_connection_count() == 0
    assert not claimer._resume._claims and not claimer._stream_only


def test_a_pending_connection_keeps_only_after_the_marker_and_is_bounded() -> None:
    pending = PendingSink(ConnectionId(CID), None)
    message = SerializedMessage(None, {"json": b"{}\x1e"})
    pending.write_serialized(message)
    assert pending.kept == []
    pending.keeping = True
    for _ in itertools.repeat(None, resume.PENDING_MESSAGE_LIMIT + 1):
        pending.write_serialized(message)
    assert len(pending.kept) == resume.PENDING_MESSAGE_LIMIT
    assert pending.overflow


async def test_an_overflowing_claim_cannot_be_adopted(servers: Factory) -> None:
    _owner, _old = await owner_with_connection(servers)
    claimer = await servers()
    claim = await claimer.claim(TOKEN, "ann", 5.0)
    state = claimer._resume._claims[claim.connection_id]
    state.pending.overflow = True
    with pytest.raises(BackplaneError):
        claimer.adopt(claim.connection_id, ResumableSink())
    await eventually(lambda: claimer.local_connection_count() == 0)


def test_resume_messages_round_trip_and_reject_garbage() -> None:
    message = resume.ResumeMessage(
        resume.Op.STATE, CID, "srv", "n1", token="t", user_id=None, groups=("g",), state=b"\x00"
    )
    assert resume.read_message(resume.write_message(message)) == message
    with pytest.raises(BackplaneError):
        resume.read_message(b"\x93\x01\x02\x03")


async def test_an_owner_stopping_right_after_the_marker_still_sends_the_state(
    servers: Factory,
) -> None:
    # A rolling restart: the owner's last connection leaves at the marker and the process
    # stops at once; stopping must not cancel the state on its way to the claimer.
    owner, old = await owner_with_connection(servers)
    claimer = await servers()

    class Exiting(Source):
        def hand_over(self, connection_id: ConnectionId, token: str) -> bytes | None:
            asyncio.ensure_future(owner.stop())
            return super().hand_over(connection_id, token)

    owner.set_resume_source(Exiting(old))
    claim = await claimer.claim(TOKEN, "ann", 2.0)
    assert json.loads(claim.state) == []
