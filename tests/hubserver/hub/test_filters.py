"""Hub filters (hub/filters.py, docs/spec/hub-protocol.md §3.9): order, short-circuit, replaced
results and arguments, sanitized failures, streaming methods, connect and disconnect."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest

from hubserver.app import map_hub
from hubserver.connections.context import Principal
from hubserver.errors import HubError
from hubserver.hub.filters import (
    ConnectedNext,
    DisconnectedNext,
    FilterPipeline,
    HubFilter,
    HubInvocationContext,
    HubLifetimeContext,
    InvocationNext,
)
from hubserver.hub.handler import HubConnectionHandler
from hubserver.hub.hub import Hub
from tests.hubserver.hub.conftest import Factory, SampleHub
from tests.support.hub_client import HubTestClient, wait_until

GENERIC = "An unexpected error occurred invoking '{}' on the server."


class Recorder(HubFilter):
    """Logs entry and exit of every hook into a shared list."""

    def __init__(self, name: str, log: list[str]) -> None:
        self.name = name
        self.log = log

    async def invoke(self, context: HubInvocationContext, next: InvocationNext) -> Any:
        self.log.append(f"{self.name}>{context.method_name}")
        try:
            return await next(context)
        finally:
            self.log.append(f"{self.name}<")

    async def on_connected(self, context: HubLifetimeContext, next: ConnectedNext) -> None:
        self.log.append(f"{self.name}>connected")
        await next(context)
        self.log.append(f"{self.name}<connected")

    async def on_disconnected(
        self, context: HubLifetimeContext, exception: BaseException | None, next: DisconnectedNext
    ) -> None:
        self.log.append(f"{self.name}>disconnected:{type(exception).__name__}")
        await next(context, exception)
        self.log.append(f"{self.name}<disconnected")


class HookedHub(Hub):
    log: list[str] = []

    async def on_connected(self) -> None:
        HookedHub.log.append("hub connected")

    async def on_disconnected(self, exception: BaseException | None) -> None:
        HookedHub.log.append("hub disconnected")

    async def echo(self, message: str) -> str:
        HookedHub.log.append("hub echo")
        return message

    async def count(self, n: int) -> AsyncIterator[int]:
        for i in range(n):
            HookedHub.log.append(f"item {i}")
            yield i


def make(make_handler: Factory, hub_cls: type[Hub], *filters: Any, **options: Any):
    return make_handler(hub_cls, filters=filters, **options)


async def connected(handler: HubConnectionHandler, **kwargs: Any) -> HubTestClient:
    client = HubTestClient(handler, **kwargs)
    await client.connect()
    return client


async def test_filters_run_in_registration_order_first_outermost(make_handler):
    HookedHub.log = log = []
    handler = make(make_handler, HookedHub, Recorder("a", log), Recorder("b", log))
    client = await connected(handler)
    assert (await client.invoke("Echo", "hi")).result == "hi"
    client.close()
    await wait_until(lambda: handler.connection_count() == 0)
    assert log == [
        "a>connected", "b>connected", "hub connected", "b<connected", "a<connected",
        "a>Echo", "b>Echo", "hub echo", "b<", "a<",
        "a>disconnected:NoneType", "b>disconnected:NoneType", "hub disconnected",
        "b<disconnected", "a<disconnected",
    ]  # fmt: skip


async def test_the_invocation_context_shows_the_call(make_handler):
    seen: list[Any] = []

    class Inspect(HubFilter):
        async def invoke(self, context: HubInvocationContext, next: InvocationNext) -> Any:
            seen.append(
                (
                    context.method_name,
                    context.method.name,
                    list(context.arguments),
                    context.context.connection_id,
                    context.context.user_id,
                    isinstance(context.hub, SampleHub),
                )
            )
            return await next(context)

    handler = make(make_handler, SampleHub, Inspect())
    client = await connected(handler, principal=Principal(user_id="ann"))
    assert (await client.invoke("ADD", 2.0, 3)).result == 5
    # Arguments are bound (2.0 -> 2) before filters see them.
    assert seen == [("ADD", "add", [2, 3], client.connection_id, "ann", True)]


async def test_a_filter_may_replace_arguments_and_result(make_handler):
    class Rewrite(HubFilter):
        async def invoke(self, context: HubInvocationContext, next: InvocationNext) -> Any:
            if context.method.name == "echo":
                context.arguments = [context.arguments[0].upper()]
            return {"wrapped": await next(context)}

    client = await connected(make(make_handler, SampleHub, Rewrite()))
    assert (await client.invoke("Echo", "hi")).result == {"wrapped": "HI"}


async def test_a_hub_error_short_circuits_and_the_client_sees_its_message(make_handler):
    class Deny(HubFilter):
        async def invoke(self, context: HubInvocationContext, next: InvocationNext) -> Any:
            if context.method.name == "nothing":
                raise HubError("Not for you")
            return await next(context)

    client = await connected(make(make_handler, SampleHub, Deny()))
    completion = await client.invoke("Nothing")
    assert completion.error == GENERIC.format("Nothing") + " HubException: Not for you"
    assert SampleHub.log == []  # the method never ran
    assert (await client.invoke("Echo", "still")).result == "still"


async def test_other_filter_exceptions_are_sanitized_and_logged(make_handler, caplog):
    class Broken(HubFilter):
        async def invoke(self, context: HubInvocationContext, next: InvocationNext) -> Any:
            raise ValueError("secret detail")

    client = await connected(make(make_handler, SampleHub, Broken()))
    with caplog.at_level(logging.WARNING, "hubserver.hub"):
        completion = await client.invoke("Echo", "x")
    assert completion.error == GENERIC.format("Echo")
    assert "secret" not in completion.error
    assert any("hub.method_failed" in r.getMessage() for r in caplog.records)
    assert client.handler.connection_count() == 1  # the connection is unharmed

    detailed = await connected(make(make_handler, SampleHub, Broken(), detailed_errors=True))
    completion = await detailed.invoke("Echo", "x")
    assert completion.error == GENERIC.format("Echo") + " ValueError: secret detail"


async def test_a_filter_wraps_the_call_of_a_stream_not_its_items(make_handler):
    HookedHub.log = log = []
    calls: list[str] = []

    class TimesTen(HubFilter):
        async def invoke(self, context: HubInvocationContext, next: InvocationNext) -> Any:
            calls.append(context.method_name)
            stream = await next(context)
            assert hasattr(stream, "__aiter__") and log == ["hub connected"]  # not iterated yet

            async def scaled() -> AsyncIterator[int]:
                async for item in stream:
                    yield item * 10

            return scaled()

    client = await connected(make(make_handler, HookedHub, TimesTen()))
    items, completion = await client.stream("Count", 3)
    assert items == [0, 10, 20] and completion.error is None
    assert calls == ["Count"]  # once per stream invocation
    assert log == ["hub connected", "item 0", "item 1", "item 2"]


async def test_a_filter_refusing_a_stream_fails_the_invocation(make_handler):
    class Deny(HubFilter):
        async def invoke(self, context: HubInvocationContext, next: InvocationNext) -> Any:
            raise HubError("No streams")

    client = await connected(make(make_handler, SampleHub, Deny()))
    items, completion = await client.stream("Counter", 3)
    assert items == []
    assert completion.error == GENERIC.format("Counter") + " HubException: No streams"


async def test_a_filter_returning_no_stream_gets_the_not_a_stream_text(make_handler):
    class NotAStream(HubFilter):
        async def invoke(self, context: HubInvocationContext, next: InvocationNext) -> Any:
            result = await next(context)
            return 42 if context.method.is_streaming else result

    client = await connected(make(make_handler, SampleHub, NotAStream()))
    _, completion = await client.stream("Counter", 1)
    assert completion.error == (
        "The value returned by the streaming method 'Counter' is not a "
        "ChannelReader<> or IAsyncEnumerable<>."
    )
    assert (await client.invoke("Echo", "ok")).result == "ok"


async def test_a_connect_filter_can_refuse_the_connection(make_handler):
    HookedHub.log = log = []

    class Refuse(HubFilter):
        async def on_connected(self, context: HubLifetimeContext, next: ConnectedNext) -> None:
            raise HubError("Go away")

    recorder = Recorder("outer", log)
    handler = make(make_handler, HookedHub, recorder, Refuse())
    client = await connected(handler)
    close = client.last_close()
    assert close.error == "Connection closed with an error. HubException: Go away"
    assert not close.allow_reconnect
    await wait_until(lambda: handler.connection_count() == 0)
    # The hub's hook never ran, and no disconnect chain runs after a failed connect.
    assert log == ["outer>connected"]


async def test_a_failing_connect_filter_is_sanitized(make_handler):
    class Broken(HubFilter):
        async def on_connected(self, context: HubLifetimeContext, next: ConnectedNext) -> None:
            raise RuntimeError("secret detail")

    client = await connected(make(make_handler, SampleHub, Broken()))
    assert client.last_close().error == "Connection closed with an error."


async def test_disconnect_filters_see_the_exception_and_their_errors_are_logged(
    make_handler, caplog
):
    HookedHub.log = log = []

    class Broken(HubFilter):
        async def on_disconnected(
            self,
            context: HubLifetimeContext,
            exception: BaseException | None,
            next: DisconnectedNext,
        ) -> None:
            await next(context, exception)
            raise RuntimeError("cleanup failed")

    handler = make(make_handler, HookedHub, Recorder("r", log), Broken())
    client = await connected(handler)
    with caplog.at_level(logging.ERROR, "hubserver.hub"):
        client.ctx.drop(ConnectionResetError("gone"))
        await wait_until(lambda: handler.connection_count() == 0)
    assert "r>disconnected:ConnectionResetError" in log and "hub disconnected" in log
    assert "r<disconnected" not in log  # the inner filter's error reached the outer one
    assert any("hub.on_disconnected_failed" in r.getMessage() for r in caplog.records)
    other = await connected(handler)  # the server goes on
    assert (await other.invoke("Echo", "x")).result == "x"


async def test_duck_typed_filters_join_only_the_chains_they_implement(make_handler):
    HookedHub.log = log = []

    class OnlyConnect:
        async def on_connected(self, context: HubLifetimeContext, next: ConnectedNext) -> None:
            log.append("duck connected")
            await next(context)

    pipeline = FilterPipeline([OnlyConnect()])
    assert pipeline.invoke is None and pipeline.on_disconnected is None
    assert pipeline.on_connected is not None
    client = await connected(make(make_handler, HookedHub, OnlyConnect()))
    assert (await client.invoke("Echo", "x")).result == "x"
    assert log == ["duck connected", "hub connected", "hub echo"]


def test_without_filters_no_chain_exists_and_pass_through_hooks_are_left_out():
    class OnlyInvoke(HubFilter):
        async def invoke(self, context: HubInvocationContext, next: InvocationNext) -> Any:
            return await next(context)

    empty = FilterPipeline([])
    assert (empty.invoke, empty.on_connected, empty.on_disconnected) == (None, None, None)
    partial = FilterPipeline([OnlyInvoke()])
    assert partial.invoke is not None
    assert (partial.on_connected, partial.on_disconnected) == (None, None)


def test_an_object_with_no_hook_is_refused():
    with pytest.raises(TypeError, match="not a hub filter"):
        FilterPipeline([object()])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="not a hub filter"):
        FilterPipeline([HubFilter()])


def test_filters_given_to_map_hub_reach_the_handler():
    recorder = Recorder("m", [])
    mapped = map_hub("/h", SampleHub, filters=[recorder])
    assert mapped.handler.dispatcher.filters.filters == (recorder,)
