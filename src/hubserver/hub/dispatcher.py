"""Method table, argument binding and invocation (cf. DefaultHubDispatcher.cs).

The table is built once per hub class: every public ``async def`` (not ``_``-prefixed, not a
hook) is a hub method, and so is a plain ``def`` annotated to return an async iterator (a
streaming method, like a C# method returning ``ChannelReader<T>``). Lookup is
case-insensitive (.NET uses OrdinalIgnoreCase, the JS client lower-cases too;
docs/spec/hub-protocol.md), and a snake_case method is also reachable under its PascalCase
name, so ``join_group`` answers ``JoinGroup`` as well.

Error texts sent to clients are those of docs/spec/hub-protocol.md; an exception's own text
only reaches the client for :class:`HubError` or with ``detailed_errors``. A streaming method
that fails before it returned its iterator (the call raises, or the awaited coroutine raises)
fails the invocation, with the text of a failing plain method; once it is being iterated (an
async generator's body included), a failure is a streaming error (docs/compliance.md).
"""

from __future__ import annotations

import asyncio
import collections.abc as cabc
import inspect
import typing
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hubserver.errors import HubError
from hubserver.hub import _log
from hubserver.hub.binding import BindingError, Converter, converter_for
from hubserver.hub.hub import Hub
from hubserver.protocol.messages import (
    CompletionMessage,
    InvocationMessage,
    MessageType,
    StreamInvocationMessage,
    StreamItemMessage,
)

if TYPE_CHECKING:
    from hubserver.hub.connection import HubConnection

__all__ = ["HubDispatcher", "HubMethod", "UploadStream", "error_detail"]


_HOOKS = frozenset({"on_connected", "on_disconnected"})
_STREAM_ORIGINS = frozenset({cabc.AsyncIterator, cabc.AsyncIterable, cabc.AsyncGenerator})

_BINDING_TEXT = (
    "Error binding arguments. Make sure that the types of the provided values match the "
    "types of the hub method being invoked."
)


@dataclass(frozen=True, slots=True)
class _Param:
    name: str
    convert: Converter
    is_stream: bool
    required: bool


@dataclass(frozen=True, slots=True)
class HubMethod:
    """One invocable hub method.

    Attributes:
        name: Python attribute name.
        func: The unbound function.
        params: Non-stream and stream parameters in declaration order.
        is_streaming: A server-to-client stream: an async generator, or a function (plain or
            ``async``) annotated to return ``AsyncIterator``/``AsyncIterable``/``AsyncGenerator``.
    """

    name: str
    func: Callable[..., Any]
    params: tuple[_Param, ...]
    is_streaming: bool
    value_params: int
    required_params: int
    stream_params: int


def _pascal(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.split("_"))


def _type_hints(func: Callable[..., Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(func, include_extras=True)
    except Exception:  # unresolved forward refs: fall back to raw values
        return {}


def _returns_stream(hints: dict[str, Any]) -> bool:
    ret = hints.get("return")
    return ret in _STREAM_ORIGINS or typing.get_origin(ret) in _STREAM_ORIGINS


def _build_method(name: str, func: Callable[..., Any]) -> HubMethod:
    hints = _type_hints(func)
    params: list[_Param] = []
    sig = inspect.signature(func)
    for p in list(sig.parameters.values())[1:]:  # skip self
        if p.kind not in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            continue
        ann = hints.get(p.name, Any)
        origin = typing.get_origin(ann)
        if origin in _STREAM_ORIGINS:
            args = typing.get_args(ann)
            item = converter_for(args[0]) if args else converter_for(Any)
            params.append(_Param(p.name, item, True, True))
        else:
            params.append(_Param(p.name, converter_for(ann), False, p.default is p.empty))
    values = [p for p in params if not p.is_stream]
    return HubMethod(
        name=name,
        func=func,
        params=tuple(params),
        is_streaming=inspect.isasyncgenfunction(func) or _returns_stream(hints),
        value_params=len(values),
        required_params=sum(1 for p in values if p.required),
        stream_params=len(params) - len(values),
    )


def build_method_table(hub_cls: type[Hub]) -> dict[str, HubMethod]:
    """Case-folded name -> method for every public async method of ``hub_cls`` (and every
    public plain method that returns an async iterator)."""
    table: dict[str, HubMethod] = {}
    base_names = set(dir(Hub))
    for name in dir(hub_cls):
        if name.startswith("_") or name in _HOOKS or name in base_names:
            continue
        func = inspect.getattr_static(hub_cls, name)
        if isinstance(func, staticmethod | classmethod):
            continue
        if not (
            inspect.iscoroutinefunction(func)
            or inspect.isasyncgenfunction(func)
            or (inspect.isfunction(func) and _returns_stream(_type_hints(func)))
        ):
            continue
        method = _build_method(name, func)
        for alias in (name, _pascal(name)):
            table.setdefault(alias.casefold(), method)
    return table


def error_detail(exc: BaseException, detailed: bool) -> str:
    """`` <Type>: <message>`` as appended by ErrorMessageHelper, or ``""`` when hidden.

    HubError text is always shown (it plays .NET's ``HubException``).
    """
    if isinstance(exc, HubError):
        return f" HubException: {exc}"
    if detailed:
        return f" {type(exc).__name__}: {exc}"
    return ""


class UploadStream:
    """A client-to-server stream (``streamIds``) as an async iterator for the hub method.

    Bounded: once ``capacity`` items wait unconsumed, :meth:`push` returns False and the
    connection stops parsing input until the method catches up (HubOptions.stream_buffer_capacity).
    """

    __slots__ = ("_capacity", "_convert", "_done", "_error", "_items", "_on_space", "_waiter")

    def __init__(self, capacity: int, on_space: Callable[[], None]) -> None:
        self._items: deque[Any] = deque()
        self._capacity = max(1, capacity)
        self._waiter: asyncio.Future[None] | None = None
        self._done = False
        self._error: str | None = None
        self._convert: Converter | None = None
        self._on_space = on_space

    def bind(self, convert: Converter) -> UploadStream:
        """Set the item converter (from the parameter's ``AsyncIterator[T]``)."""
        self._convert = convert
        return self

    def push(self, item: Any) -> bool:
        """Queue one item; False when the buffer is now full."""
        if self._done:
            return True
        self._items.append(item)
        self._wake()
        return len(self._items) < self._capacity

    def complete(self, error: str | None = None) -> None:
        """The client ended the stream (``error`` -> :class:`HubError` in the method)."""
        if not self._done:
            self._done = True
            self._error = error
            self._wake()

    @property
    def full(self) -> bool:
        """True while the consumer lags ``capacity`` items behind."""
        return len(self._items) >= self._capacity

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def __aiter__(self) -> UploadStream:
        return self

    async def __anext__(self) -> Any:
        while not self._items:
            if self._done:
                if self._error is not None:
                    raise HubError(self._error)
                raise StopAsyncIteration
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        was_full = len(self._items) >= self._capacity
        item = self._items.popleft()
        if was_full:
            self._on_space()
        convert = self._convert
        if convert is None:
            return item
        try:
            return convert(item)
        except BindingError as exc:
            raise HubError(_BINDING_TEXT) from exc


class HubDispatcher:
    """Runs invocations of one hub class on behalf of :class:`HubConnection`.

    Args:
        hub_cls: The hub class.
        detailed_errors: Append exception details to error texts (HubOptions.detailed_errors).
    """

    __slots__ = ("_detailed", "hub_cls", "methods")

    def __init__(self, hub_cls: type[Hub], detailed_errors: bool = False) -> None:
        self.hub_cls = hub_cls
        self.methods = build_method_table(hub_cls)
        self._detailed = detailed_errors

    def lookup(self, target: str) -> HubMethod | None:
        """The method for ``target`` (case-insensitive), or None."""
        return self.methods.get(target.casefold())

    def create_hub(self, connection: HubConnection) -> Hub:
        """A fresh hub instance bound to ``connection`` (one per invocation, as .NET)."""
        hub = self.hub_cls()
        hub.context = connection.caller_context
        hub.clients = connection.caller_clients
        hub.groups = connection.group_manager
        return hub

    # -- lifecycle hooks -------------------------------------------------------------------------

    async def on_connected(self, connection: HubConnection) -> None:
        """Run ``Hub.on_connected`` (exceptions propagate to the connection)."""
        await self.create_hub(connection).on_connected()

    async def on_disconnected(
        self, connection: HubConnection, exception: BaseException | None
    ) -> None:
        """Run ``Hub.on_disconnected``; errors are logged, never raised."""
        try:
            await self.create_hub(connection).on_disconnected(exception)
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

        def fail(error: str) -> None:
            connection.discard_uploads(stream_ids)
            if iid is not None:
                connection.send_message(CompletionMessage.with_error(iid, error))

        if iid is not None and connection.invocation_id_in_use(iid):
            # Do not discard uploads: they may belong to the invocation that owns the id.
            connection.send_message(
                CompletionMessage.with_error(iid, f"Invocation ID '{iid}' is already in use.")
            )
            return
        if method is None:
            fail(
                f"Failed to invoke '{target}' due to an error on the server. "
                "HubException: Method does not exist."
            )
            return
        if method.is_streaming and not is_stream_call:
            fail(
                f"The client attempted to invoke the streaming '{target}' method with a "
                "non-streaming invocation."
            )
            return
        if is_stream_call and not method.is_streaming:
            fail(
                f"The client attempted to invoke the non-streaming '{target}' method with a "
                "streaming invocation."
            )
            return
        if len(stream_ids) != method.stream_params:
            fail(
                f"An unexpected error occurred invoking '{target}' on the server. "
                f"HubException: Client sent {len(stream_ids)} stream(s), Hub method expects "
                f"{method.stream_params}."
            )
            return
        args = message.arguments
        n = len(args)
        if n > method.value_params or n < method.required_params:
            expected = method.value_params if n > method.value_params else method.required_params
            detail = (
                f" InvalidDataException: Invocation provides {n} argument(s) but target "
                f"expects {expected}."
                if detailed
                else ""
            )
            fail(f"Failed to invoke '{target}' due to an error on the server.{detail}")
            return
        try:
            bound = self._bind(connection, method, args, stream_ids)
        except BindingError:
            detail = f" InvalidDataException: {_BINDING_TEXT}" if detailed else ""
            fail(f"Failed to invoke '{target}' due to an error on the server.{detail}")
            return

        hub = self.create_hub(connection)
        if method.is_streaming:
            assert iid is not None  # StreamInvocation always carries an id
            connection.start_background(
                iid, self._run_stream(connection, target, method, hub, bound, iid, stream_ids), True
            )
            return
        coro = self._invoke(connection, target, method, hub, bound, iid, stream_ids)
        if stream_ids:
            # Upload streams can last forever: run in the background so later
            # invocations are not stuck behind them (DefaultHubDispatcher does the same).
            connection.start_background(iid, coro, False)
            return
        if iid is not None:
            connection.active_ids.add(iid)
        try:
            await coro
        finally:
            if iid is not None:
                connection.active_ids.discard(iid)

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
                bound.append(connection.take_upload(next(streams)).bind(p.convert))
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
        hub: Hub,
        args: list[Any],
        iid: str | None,
        stream_ids: typing.Sequence[str],
    ) -> None:
        try:
            result = await method.func(hub, *args)
        except Exception as exc:
            text = self._invocation_failed(target, exc)
            if iid is not None:
                connection.send_message(CompletionMessage.with_error(iid, text))
            return
        finally:
            connection.discard_uploads(stream_ids)
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
                        iid,
                        f"An unexpected error occurred invoking '{target}' on the server."
                        + error_detail(exc, self._detailed),
                    )
                )

    def _invocation_failed(self, target: str, exc: Exception) -> str:
        """Log a method that raised and return the client's text (InvokeAsync's catch)."""
        if not isinstance(exc, HubError):
            _log.logger.warning("%s target=%s", _log.METHOD_FAILED, target, exc_info=True)
        return f"An unexpected error occurred invoking '{target}' on the server." + error_detail(
            exc, self._detailed
        )

    async def _run_stream(
        self,
        connection: HubConnection,
        target: str,
        method: HubMethod,
        hub: Hub,
        args: list[Any],
        iid: str,
        stream_ids: typing.Sequence[str],
    ) -> None:
        error: str | None = None
        gen: AsyncIterator[Any] | None = None
        try:
            # Called here, not in dispatch(): a stream cancelled before its first step never
            # calls the method (and leaves no coroutine un-awaited).
            produced = method.func(hub, *args)
            if inspect.isawaitable(produced):
                produced = await produced
            if hasattr(produced, "__aiter__"):
                gen = produced.__aiter__()
                async for item in gen:
                    connection.send_message(StreamItemMessage(invocation_id=iid, item=item))
            else:
                error = (
                    f"The value returned by the streaming method '{target}' is not a "
                    "ChannelReader<> or IAsyncEnumerable<>."
                )
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
                error = "An error occurred on the server while streaming results." + error_detail(
                    exc, self._detailed
                )
        finally:
            aclose = getattr(gen, "aclose", None)
            if aclose is not None:
                try:
                    await aclose()
                except Exception:
                    _log.logger.debug(_log.STREAM_CLOSE_FAILED, exc_info=True)
            connection.discard_uploads(stream_ids)
        connection.send_message(
            CompletionMessage.with_error(iid, error) if error else CompletionMessage.empty(iid)
        )
