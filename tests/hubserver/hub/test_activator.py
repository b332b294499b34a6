"""Hub activators (hub/activator.py, docs/spec/hub-protocol.md §3.9): one hub per call, created
by the activator, released once the call (or the stream) is over; failures are contained."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

from hubserver.errors import HubError
from hubserver.hub.activator import DefaultHubActivator
from hubserver.hub.filters import HubFilter, HubInvocationContext, InvocationNext
from hubserver.hub.handler import HubConnectionHandler
from hubserver.hub.hub import Hub
from hubserver.protocol.messages import StreamItemMessage
from tests.support.hub_client import HubTestClient, wait_until


class Service:
    """Something the application injects into its hubs."""

    def __init__(self) -> None:
        self.calls: list[str] = []


class ServiceHub(Hub):
    def __init__(self, service: Service) -> None:
        self.service = service

    async def on_connected(self) -> None:
        self.service.calls.append("connected")

    async def on_disconnected(self, exception: BaseException | None) -> None:
        self.service.calls.append("disconnected")

    async def use(self, tag: str) -> str:
        self.service.calls.append(tag)
        return tag

    async def ticks(self) -> AsyncIterator[int]:
        i = 0
        while True:
            yield i
            i += 1
            await asyncio.sleep(0)  # lets the connection read the CancelInvocation


class Activator:
    """Creates ServiceHubs with the service and records the lifecycle."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.created: list[Hub] = []
        self.released: list[Hub] = []

    def create(self, hub_cls: type[ServiceHub]) -> ServiceHub:
        hub = hub_cls(self.service)
        self.created.append(hub)
        return hub

    def release(self, hub: ServiceHub) -> None:
        self.released.append(hub)

    def balanced(self) -> bool:
        return self.created == self.released


async def connected(handler: HubConnectionHandler) -> HubTestClient:
    client = HubTestClient(handler)
    await client.connect()
    return client


async def test_each_call_gets_a_created_hub_that_is_released_after_it(make_handler):
    service = Service()
    activator = Activator(service)
    handler = make_handler(ServiceHub, activator=activator)
    assert handler.activator is activator
    client = await connected(handler)
    assert service.calls == ["connected"] and activator.balanced()
    assert (await client.invoke("Use", "a")).result == "a"
    assert (await client.invoke("Use", "b")).result == "b"
    client.close()
    await wait_until(lambda: handler.connection_count() == 0)
    assert service.calls == ["connected", "a", "b", "disconnected"]
    assert len(activator.created) == 4 and len(set(map(id, activator.created))) == 4
    assert activator.balanced()
    # The dispatcher still binds the caller to the instance the activator made.
    assert all(h.context.connection_id == client.connection_id for h in activator.created)


async def test_a_stream_keeps_its_hub_until_it_ends(make_handler):
    activator = Activator(Service())
    handler = make_handler(ServiceHub, activator=activator)
    client = await connected(handler)
    iid = client.start_stream("Ticks")
    await client.wait_for(lambda m: isinstance(m, StreamItemMessage) and m.item == 3)
    streaming_hub = activator.created[-1]
    assert streaming_hub not in activator.released
    client.cancel(iid)
    await client.wait_completion(iid)
    await wait_until(lambda: streaming_hub in activator.released)
    assert activator.balanced()


async def test_filters_see_the_hub_the_activator_created(make_handler):
    seen: list[Hub] = []

    class Look(HubFilter):
        async def invoke(self, context: HubInvocationContext, next: InvocationNext) -> Any:
            seen.append(context.hub)
            return await next(context)

    activator = Activator(Service())
    client = await connected(make_handler(ServiceHub, activator=activator, filters=[Look()]))
    await client.invoke("Use", "x")
    assert seen == [activator.created[-1]]


async def test_a_failing_create_fails_the_invocation_like_a_failing_method(make_handler, caplog):
    class Flaky(Activator):
        fail = False

        def create(self, hub_cls: type[ServiceHub]) -> ServiceHub:
            if self.fail:
                raise RuntimeError("secret detail")
            return super().create(hub_cls)

    activator = Flaky(Service())
    client = await connected(make_handler(ServiceHub, activator=activator))
    activator.fail = True
    with caplog.at_level(logging.WARNING, "hubserver.hub"):
        completion = await client.invoke("Use", "x")
    assert completion.error == "An unexpected error occurred invoking 'Use' on the server."
    _, stream_completion = await client.stream("Ticks")
    assert stream_completion.error == (
        "An unexpected error occurred invoking 'Ticks' on the server."
    )
    activator.fail = False
    assert (await client.invoke("Use", "y")).result == "y"
    assert activator.balanced()


async def test_a_failing_create_on_connect_closes_with_an_error(make_handler):
    class Refusing(Activator):
        def create(self, hub_cls: type[ServiceHub]) -> ServiceHub:
            raise HubError("No hub for you")

    handler = make_handler(ServiceHub, activator=Refusing(Service()))
    client = await connected(handler)
    close = client.last_close()
    assert close.error == "Connection closed with an error. HubException: No hub for you"
    await wait_until(lambda: handler.connection_count() == 0)


async def test_a_failing_release_is_logged_and_changes_nothing_for_the_client(make_handler, caplog):
    class BadRelease(Activator):
        def release(self, hub: ServiceHub) -> None:
            super().release(hub)
            raise RuntimeError("release failed")

    activator = BadRelease(Service())
    handler = make_handler(ServiceHub, activator=activator)
    with caplog.at_level(logging.ERROR, "hubserver.hub"):
        client = await connected(handler)
        assert (await client.invoke("Use", "a")).result == "a"
        client.close()
        await wait_until(lambda: handler.connection_count() == 0)
    assert activator.balanced() and len(activator.released) == 3
    failures = [r for r in caplog.records if "hub.release_failed" in r.getMessage()]
    assert len(failures) == 3


async def test_the_default_activator_is_the_direct_path(make_handler):
    handler = make_handler(activator=DefaultHubActivator())
    assert handler.dispatcher._activator is None  # no create/release call per invocation
    client = await connected(handler)
    assert (await client.invoke("Echo", "x")).result == "x"
    assert type(DefaultHubActivator().create(ServiceHub.__base__)) is Hub
