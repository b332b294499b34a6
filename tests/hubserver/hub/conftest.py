"""Fixtures for hub-layer tests: a sample hub, a handler on a fake clock, connected clients."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import pydantic
import pytest

from hubserver.errors import HubError
from hubserver.hub.handler import HubConnectionHandler
from hubserver.hub.hub import Hub
from hubserver.lifetime.memory import InMemoryLifetimeManager
from hubserver.options import HubOptions
from tests.support.hub_client import FakeClock, HubTestClient


@dataclasses.dataclass
class Point:
    x: float
    y: float
    label_text: str = ""


class Model(pydantic.BaseModel):
    name: str
    count: int


class SampleHub(Hub):
    """Covers every feature the tests exercise."""

    log: list[str] = []  # noqa: RUF012 - reset per test by the fixture

    async def echo(self, message: str) -> str:
        return message

    async def add(self, a: int, b: int) -> int:
        return a + b

    async def nothing(self) -> None:
        SampleHub.log.append("nothing")

    async def optional(self, x: int | None = None, y: str = "d") -> list[Any]:
        return [x, y]

    async def total(self, xs: list[int]) -> int:
        return sum(xs)

    async def distance(self, p: Point) -> float:
        return (p.x**2 + p.y**2) ** 0.5 if not p.label_text else -1.0

    async def describe(self, m: Model) -> str:
        return f"{m.name}:{m.count}"

    async def year(self, when: dt.datetime) -> int:
        return when.year

    async def fail(self) -> None:
        raise ValueError("secret detail")

    async def fail_hub(self) -> None:
        raise HubError("visible to client")

    async def counter(self, n: int) -> AsyncIterator[int]:
        for i in range(n):
            yield i

    async def endless(self) -> AsyncIterator[int]:
        i = 0
        try:
            while True:
                yield i
                i += 1
                await asyncio.sleep(0.001)
        finally:
            SampleHub.log.append("endless closed")

    async def broken_stream(self) -> AsyncIterator[int]:
        yield 1
        raise RuntimeError("boom")

    async def upload_sum(self, items: AsyncIterator[int]) -> int:
        total = 0
        async for item in items:
            total += item
        return total

    async def upload_collect(self, prefix: str, items: AsyncIterator[str]) -> list[str]:
        return [prefix + item async for item in items]

    async def upload_echo(self, items: AsyncIterator[int]) -> AsyncIterator[int]:
        async for item in items:
            yield item * 10

    async def upload_error(self, items: AsyncIterator[int]) -> str:
        try:
            async for _ in items:
                pass
        except HubError as exc:
            return f"caught: {exc}"
        return "no error"

    async def record(self, tag: str, delay_ticks: int = 0) -> str:
        SampleHub.log.append(f"start {tag}")
        for _ in range(delay_ticks):
            await asyncio.sleep(0)
        SampleHub.log.append(f"end {tag}")
        return tag

    async def join_group(self, group: str) -> None:
        await self.groups.add(self.context.connection_id, group)

    async def leave_group(self, group: str) -> None:
        await self.groups.remove(self.context.connection_id, group)

    async def to_group(self, group: str, message: str) -> None:
        await self.clients.group(group).send("Receive", message)

    async def to_groups(self, groups: list[str], message: str) -> None:
        await self.clients.groups(groups).send("Receive", message)

    async def to_group_except(self, group: str, excluded: list[str], message: str) -> None:
        await self.clients.group_except(group, excluded).send("Receive", message)

    async def to_others_in_group(self, group: str, message: str) -> None:
        await self.clients.others_in_group(group).send("Receive", message)

    async def to_all(self, message: str) -> None:
        await self.clients.all.send("Receive", message)

    async def to_others(self, message: str) -> None:
        await self.clients.others.send("Receive", message)

    async def to_caller(self, message: str) -> None:
        await self.clients.caller.send("Receive", message)

    async def to_client(self, connection_id: str, message: str) -> None:
        await self.clients.client(connection_id).send("Receive", message)

    async def to_clients(self, ids: list[str], message: str) -> None:
        await self.clients.clients(ids).send("Receive", message)

    async def to_user(self, user: str, message: str) -> None:
        await self.clients.user(user).send("Receive", message)

    async def to_users(self, users: list[str], message: str) -> None:
        await self.clients.users(users).send("Receive", message)

    async def to_all_except(self, ids: list[str], message: str) -> None:
        await self.clients.all_except(ids).send("Receive", message)

    async def ask_caller(self, question: str) -> Any:
        return await self.clients.caller.invoke("Ask", question)

    async def ask_client(self, connection_id: str, question: str) -> Any:
        return await self.clients.client(connection_id).invoke("Ask", question, timeout=5)

    async def whoami(self) -> dict[str, Any]:
        ctx = self.context
        return {
            "connectionId": ctx.connection_id,
            "userId": ctx.user_id,
            "protocol": ctx.protocol,
            "items": dict(ctx.items),
        }

    async def remember(self, key: str, value: str) -> None:
        self.context.items[key] = value

    async def abort_me(self) -> None:
        self.context.abort()

    def sync_method(self) -> int:  # not async: not a hub method
        return 1

    async def _private(self) -> int:
        return 1


Factory = Callable[..., HubConnectionHandler]


@pytest.fixture(autouse=True)
def _reset_log() -> None:
    SampleHub.log = []


@pytest.fixture
def lifetime() -> InMemoryLifetimeManager:
    return InMemoryLifetimeManager()


@pytest.fixture
def make_handler(
    lifetime: InMemoryLifetimeManager, clock: FakeClock, wall_clock: FakeClock
) -> Factory:
    def make(
        hub_cls: type[Hub] = SampleHub,
        *,
        filters: Sequence[Any] = (),
        activator: Any = None,
        **options: Any,
    ) -> HubConnectionHandler:
        return HubConnectionHandler(
            hub_cls,
            lifetime,
            HubOptions(**options),
            clock,
            wall_clock=wall_clock,
            auto_tick=False,
            filters=filters,
            activator=activator,
        )

    return make


@pytest.fixture
def handler(make_handler: Factory) -> HubConnectionHandler:
    return make_handler()


ClientFactory = Callable[..., Awaitable[HubTestClient]]


@pytest.fixture
def connect(handler: HubConnectionHandler) -> ClientFactory:
    async def make(protocol: str = "json", version: int = 1, **kwargs: Any) -> HubTestClient:
        client = HubTestClient(handler, protocol, **kwargs)
        response = await client.connect(version)
        assert response.error is None
        return client

    return make


@pytest.fixture
async def client(connect: ClientFactory) -> HubTestClient:
    return await connect()
