"""The resume exchange against a fake host: the owner's side of a claim, message by message,
through the seam (:class:`~hubserver.lifetime.resume_exchange.ResumeHost`) alone."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from hubserver.lifetime import redis_wire as wire
from hubserver.lifetime import resume
from hubserver.lifetime.base import ConnectionSink
from hubserver.lifetime.index import Departure, LocalIndex
from hubserver.lifetime.resume import Op, ResumeMessage, ResumeOffer
from hubserver.lifetime.resume_exchange import Handler, ResumeExchange, ResumeHost
from hubserver.types import ConnectionId, UserId
from tests.hubserver.lifetime.spec import FakeSink

CID = ConnectionId("A" * 22)
TOKEN = CID + "." + "s" * 22
CHANNELS = wire.RedisChannels("P")


class FakeHost:
    """Records what the exchange asks of its manager; the handlers it subscribed are called
    by the test in place of the bus."""

    def __init__(self) -> None:
        self.index = LocalIndex()
        self.handlers: dict[str, Handler] = {}
        self.published: list[tuple[str, ResumeMessage]] = []
        self.released: list[tuple[ConnectionId, UserId | None, Departure | None]] = []
        self.tasks: list[asyncio.Task[None]] = []

    async def publish(self, channel: str, data: bytes) -> int:
        self.published.append((channel, resume.read_message(data)))
        return 1

    async def publish_best_effort(self, channel: str, data: bytes) -> None:
        await self.publish(channel, data)

    async def subscribe(self, channel: str, handler: Handler) -> None:
        self.handlers[channel] = handler

    async def unsubscribe(self, channel: str) -> None:
        self.handlers.pop(channel, None)

    def spawn(self, coro: Awaitable[None]) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self.tasks.append(task)
        return task

    async def add_local(self, sink: ConnectionSink) -> None:
        self.index.add(sink)

    async def join_local(self, sink: ConnectionSink, group: str) -> None:
        self.index.join(sink, group)

    async def release(
        self, cid: ConnectionId, uid: UserId | None, departure: Departure | None
    ) -> None:
        self.released.append((cid, uid, departure))

    def host(self) -> ResumeHost:
        return ResumeHost(
            server_name="owner",
            channels=CHANNELS,
            index=self.index,
            publish=self.publish,
            publish_best_effort=self.publish_best_effort,
            subscribe=self.subscribe,
            unsubscribe=self.unsubscribe,
            spawn=self.spawn,
            add_local=self.add_local,
            join_local=self.join_local,
            release=self.release,
        )

    async def settle(self) -> None:
        await asyncio.gather(*self.tasks)
        self.tasks.clear()


class Source:
    def offer(self, connection_id: ConnectionId, token: str) -> ResumeOffer | None:
        return ResumeOffer("ann", "json") if token == TOKEN else None

    def hand_over(self, connection_id: ConnectionId, token: str) -> bytes | None:
        return b"state"


async def test_the_owner_fences_offers_and_hands_over_through_the_host_only() -> None:
    fake = FakeHost()
    exchange = ResumeExchange(fake.host())
    exchange.set_source(Source())
    sink = FakeSink(CID, "ann")
    await fake.add_local(sink)
    await fake.join_local(sink, "g")
    await exchange.watch(CID)
    channel = resume.resume_channel(CHANNELS, CID)
    on_resume = fake.handlers[channel]

    def send(op: str, server: str, token: str = "") -> Awaitable[None]:
        return on_resume(resume.write_message(ResumeMessage(op, CID, server, "n1", token=token)))

    await send(Op.PREPARE, "claimer", TOKEN)
    await fake.settle()
    reply = resume.reply_channel(CHANNELS, "claimer")
    assert [(c, m.op) for c, m in fake.published] == [(channel, Op.FENCE), (reply, Op.OFFER)]
    assert fake.published[1][1].groups == ("g",)
    # Our own broadcasts skip it at publish time until the fence comes back.
    assert exchange.stream_only == {CID: True}
    await send(Op.FENCE, "owner")
    assert exchange.stream_only == {CID: False}

    await send(Op.MARKER, "claimer")
    await fake.settle()
    assert fake.published[-1][0] == reply
    assert fake.published[-1][1].op == Op.STATE
    assert fake.published[-1][1].state == b"state"
    assert CID not in fake.index.connections and exchange.stream_only == {}
    assert [(cid, uid) for cid, uid, _ in fake.released] == [(CID, "ann")]
    assert exchange.stats() == {"handovers_out": 1, "handovers_in": 0}


async def test_the_owner_refuses_a_wrong_token_and_stays_out_of_the_stream() -> None:
    fake = FakeHost()
    exchange = ResumeExchange(fake.host())
    exchange.set_source(Source())
    await fake.add_local(FakeSink(CID, "ann"))
    await exchange.watch(CID)
    on_resume = fake.handlers[resume.resume_channel(CHANNELS, CID)]
    prepare = ResumeMessage(Op.PREPARE, CID, "claimer", "n1", token=CID + ".wrong")
    await on_resume(resume.write_message(prepare))
    await fake.settle()
    assert [m.op for _, m in fake.published] == [Op.REFUSE]
    assert exchange.stream_only == {}
    await exchange.unwatch(CID)
    assert fake.handlers == {}
