"""Runs a hub's methods for its connections: lookup, argument binding, invocation, streams.

Works like ASP.NET Core's DefaultHubDispatcher over the method table of
:mod:`hubserver.hub.methods`; lookup is case-insensitive (docs/spec/hub-protocol.md §3.4).

Error texts sent to clients are those of docs/spec/hub-protocol.md; an exception's own text
only reaches the client for :class:`HubError` or with ``detailed_errors``. A streaming method
that fails before it returned its iterator (the call raises, or the awaited coroutine raises)
fails the invocation, with the text of a failing plain method; once it is being iterated (an
async generator's body included), a failure is a streaming error (docs/compliance.md).

Hub instances come from the hub's activator (:mod:`hubserver.hub.activator`) and calls pass
through its filters (:mod:`hubserver.hub.filters`); without either, the dispatcher calls the
class and the method directly (one ``is None`` test per call).
"""

from __future__ import annotations

import asyncio
import inspect
import typing
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any

from hubserver.errors import HubError, ProtocolError
from hubserver.hub import _log
from hubserver.hub.activator import DefaultHubActivator, HubActivator
from hubserver.hub.binding import BindingError
from hubserver.hub.filters import (
    AnyHubFilter,
    FilterPipeline,
    HubInvocationContext,
    HubLifetimeContext,
)
from hubserver.hub.hub import Hub
from hubserver.hub.methods import HubMethod, build_method_table
from hubserver.protocol import texts
from hubserver.protocol.messages import (
    CompletionMessage,
    InvocationMessage,
    MessageType,
    StreamInvocationMessage,
    StreamItemMessage,
)

if TYPE_CHECKING:
    from hubserver.hub.connection import HubConnection

__all__ = ["HubDispatcher"]


class HubDispatcher:
    """Runs invocations of one hub class on behalf of :class:`HubConnection`.

    Args:
        hub_cls: The hub class.
        detailed_errors: Append exception details to error texts (HubOptions.detailed_errors).
        filters: Hub filters in registration order, the first outermost.
        activator: Creates and releases hub instances; ``hub_cls()`` when None.
    """

    __slots__ = (
        "_activator",
        "_connected",
        "_detailed",
        "_disconnected",
        "_invoke_chain",
        "filters",
        "hub_cls",
        "methods",
    )

    def __init__(
        self,
        hub_cls: type[Hub],
        detailed_errors: bool = False,
        *,
        filters: Sequence[AnyHubFilter] = (),
        activator: HubActivator[Any] | None = None,
    ) -> None:
        self.hub_cls = hub_cls
        self.methods = build_method_table(hub_cls)
        self._detailed = detailed_errors
        self.filters = FilterPipeline(filters)
        # None selects the direct paths below: no filter, or the default activator, costs
        # nothing per call.
        self._invoke_chain = self.filters.invoke
        self._connected = self.filters.on_connected
        self._disconnected = self.filters.on_disconnected
        self._activator = None if type(activator) is DefaultHubActivator else activator

    def lookup(self, target: str) -> HubMethod | None:
        """The method for ``target`` (case-insensitive), or None."""
        return self.methods.get(target.casefold())

    def create_hub(self, connection: HubConnection) -> Hub:
        """A fresh hub instance bound to ``connection`` (one per invocation, as .NET).

        Pair it with :meth:`release_hub` once the call is over.
        """
        activator = self._activator
        hub = self.hub_cls() if activator is None else activator.create(self.hub_cls)
        hub.context = connection.caller_context
        hub.clients = connection.caller_clients
        hub.groups = connection.group_manager
        return hub

    def release_hub(self, hub: Hub) -> None:
        """Give ``hub`` back to the activator; its errors are logged, never raised."""
        activator = self._activator
        if activator is None:
            return
        try:
            activator.release(hub)
        except Exception:
            _log.logger.exception("%s hub=%s", _log.HUB_RELEASE_FAILED, type(hub).__name__)

    # -- lifecycle hooks -------------------------------------------------------------------------

    async def on_connected(self, connection: HubConnection) -> None:
        """Run ``Hub.on_connected`` through the filters (exceptions propagate to the
        connection, which closes with an error)."""
        hub = self.create_hub(connection)
        try:
            chain = self._connected
            if chain is None:
                await hub.on_connected()
            else:
                await chain(HubLifetimeContext(hub))
        finally:
            self.release_hub(hub)

    async def on_disconnected(
        self, connection: HubConnection, exception: BaseException | None
    ) -> None:
        """Run ``Hub.on_disconnected`` through the filters; errors are logged, never raised."""
        try:
            hub = self.create_hub(connection)
            try:
                chain = self._disconnected
                if chain is None:
                    await hub.on_disconnected(exception)
                else:
                    await chain(HubLifetimeContext(hub), exception)
            finally:
                self.release_hub(hub)
        except Exception:
            _log.logger.exception(
                "%s connection_id=%s", _log.ON_DISCONNECTED_FAILED, connection.connection_id
            )

    # -- invocations -----------------------------------------------------------------------------

    async def dispatch(
        self, connection: HubConnection, message: InvocationMessage | StreamInvocationMessage
    ) -> None:
        """Handle one Invocation/StreamInvocation (called in order, one at a time).

        Returns once a plain invocation finished; streams and invocations with upload
        streams are started and continue in the background (MaximumParallelInvocations=1
        applies to plain invocations only, as in .NET).
        """
        target = message.target
        iid = message.invocation_id
        stream_ids = message.stream_ids or ()
        is_stream_call = message.type is MessageType.STREAM_INVOCATION
        method = self.lookup(target)
        detailed = self._detailed
        tracker = connection.invocations

        def fail(error: str) -> None:
            tracker.discard_uploads(stream_ids)
            if iid is not None:
                connection.send_message(CompletionMessage.with_error(iid, error))

        if iid is not None and tracker.in_use(iid):
            # Do not discard uploads: they may belong to the invocation that owns the id.
            connection.send_message(CompletionMessage.with_error(iid, texts.id_in_use(iid)))
            return
        if method is None:
            fail(texts.method_not_found(target))
            return
        if method.is_streaming != is_stream_call:
            fail(texts.streaming_mismatch(target, method.is_streaming))
            return
        if len(stream_ids) != method.stream_params:
            fail(texts.stream_count_mismatch(target, len(stream_ids), method.stream_params))
            return
        args = message.arguments
        n = len(args)
        if n > method.value_params or n < method.required_params:
            expected = method.value_params if n > method.value_params else method.required_params
            # .NET's binder throws InvalidDataException: a ProtocolError here.
            error = ProtocolError(texts.argument_count(n, expected))
            fail(texts.invoke_failed(target) + texts.detail(error, detailed))
            return
        try:
            bound = self._bind(connection, method, args, stream_ids)
        except BindingError:
            error = ProtocolError(texts.BINDING_FAILED)
            fail(texts.invoke_failed(target) + texts.detail(error, detailed))
            return

        if method.is_streaming:
            assert iid is not None  # StreamInvocation always carries an id
            connection.start_background(
                iid, self._run_stream(connection, target, method, bound, iid, stream_ids), True
            )
            return
        coro = self._invoke(connection, target, method, bound, iid, stream_ids)
        if stream_ids:
            # Upload streams can last forever: run in the background so later
            # invocations are not stuck behind them (DefaultHubDispatcher does the same).
            connection.start_background(iid, coro, False)
            return
        if iid is not None:
            tracker.begin(iid)
        try:
            await coro
        finally:
            if iid is not None:
                tracker.end(iid)

    def _bind(
        self,
        connection: HubConnection,
        method: HubMethod,
        args: typing.Sequence[Any],
        stream_ids: typing.Sequence[str],
    ) -> list[Any]:
        bound: list[Any] = []
        values = iter(args)
        streams = iter(stream_ids)
        for p in method.params:
            if p.is_stream:
                bound.append(connection.invocations.take_upload(next(streams)).bind(p.convert))
                continue
            try:
                value = next(values)
            except StopIteration:
                break  # remaining parameters have defaults
            bound.append(p.convert(value))
        return bound

    async def _invoke(
        self,
        connection: HubConnection,
        target: str,
        method: HubMethod,
        args: list[Any],
        iid: str | None,
        stream_ids: typing.Sequence[str],
    ) -> None:
        hub: Hub | None = None
        try:
            hub = self.create_hub(connection)
            chain = self._invoke_chain
            if chain is None:
                result = await method.func(hub, *args)
            else:
                result = await chain(HubInvocationContext(hub, target, method, args))
        except Exception as exc:
            text = self._invocation_failed(target, exc)
            if iid is not None:
                connection.send_message(CompletionMessage.with_error(iid, text))
            return
        finally:
            connection.invocations.discard_uploads(stream_ids)
            if hub is not None and self._activator is not None:
                self.release_hub(hub)
        if iid is not None:
            try:
                # Void methods answer "result":null, as .NET does.
                connection.send_message(CompletionMessage.with_result(iid, result))
            except (TypeError, ValueError) as exc:
                # The result has no wire representation: report it like a failing method
                # rather than closing the connection.
                _log.logger.warning(
                    "%s target=%s", _log.RESULT_NOT_SERIALIZABLE, target, exc_info=True
                )
                connection.send_message(
                    CompletionMessage.with_error(
                        iid, texts.invocation_failed(target) + texts.detail(exc, self._detailed)
                    )
                )

    def _invocation_failed(self, target: str, exc: Exception) -> str:
        """Log a method that raised and return the client's text (InvokeAsync's catch)."""
        if not isinstance(exc, HubError):
            _log.logger.warning("%s target=%s", _log.METHOD_FAILED, target, exc_info=True)
        return texts.invocation_failed(target) + texts.detail(exc, self._detailed)

    async def _run_stream(
        self,
        connection: HubConnection,
        target: str,
        method: HubMethod,
        args: list[Any],
        iid: str,
        stream_ids: typing.Sequence[str],
    ) -> None:
        error: str | None = None
        gen: AsyncIterator[Any] | None = None
        hub: Hub | None = None
        try:
            # Called here, not in dispatch(): a stream cancelled before its first step never
            # creates the hub nor calls the method (and leaves no coroutine un-awaited).
            hub = self.create_hub(connection)
            chain = self._invoke_chain
            if chain is None:
                produced = method.func(hub, *args)
                if inspect.isawaitable(produced):
                    produced = await produced
            else:
                # Filters wrap the call; what they return is the stream (filters.py).
                produced = await chain(HubInvocationContext(hub, target, method, args))
            if hasattr(produced, "__aiter__"):
                gen = produced.__aiter__()
                async for item in gen:
                    connection.send_message(StreamItemMessage(invocation_id=iid, item=item))
            else:
                error = texts.not_a_stream(target)
        except asyncio.CancelledError:
            # CancelInvocation (or disconnect): .NET still sends a plain final Completion.
            pass
        except Exception as exc:
            if gen is None:
                # The call itself raised (or its awaitable did) before an iterator existed:
                # the method failed at invocation, like a .NET method returning
                # ChannelReader<T> that throws. An async generator's body runs only once it
                # is iterated, like a C# async iterator, so its failures take the streaming
                # text below even before the first item (docs/compliance.md).
                error = self._invocation_failed(target, exc)
            else:
                if not isinstance(exc, HubError):
                    _log.logger.warning(
                        "%s invocation_id=%s", _log.STREAM_FAILED, iid, exc_info=True
                    )
                error = texts.STREAM_FAILED + texts.detail(exc, self._detailed)
        finally:
            aclose = getattr(gen, "aclose", None)
            if aclose is not None:
                try:
                    await aclose()
                except Exception:
                    _log.logger.debug(_log.STREAM_CLOSE_FAILED, exc_info=True)
            connection.invocations.discard_uploads(stream_ids)
            if hub is not None:
                self.release_hub(hub)
        connection.send_message(
            CompletionMessage.with_error(iid, error) if error else CompletionMessage.empty(iid)
        )
