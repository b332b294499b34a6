"""Hub filters: code that wraps every hub method invocation and the connect/disconnect hooks.

The counterpart of ASP.NET Core's ``IHubFilter`` (docs/spec/hub-protocol.md §3.9). A filter is
any object with one or more of these coroutine methods (or a :class:`HubFilter` subclass that
overrides some of them):

* ``invoke(context, next)`` wraps one hub method invocation; ``context`` is a
  :class:`HubInvocationContext`, ``await next(context)`` runs the rest of the chain and returns
  the method's result. A filter may return another result, or short-circuit by raising
  :class:`~hubserver.errors.HubError` (the client sees its message) or any other exception
  (the client sees the generic text, as for a failing method).
* ``on_connected(context, next)`` wraps ``Hub.on_connected``; raising closes the connection with
  an error, like a failing ``on_connected``.
* ``on_disconnected(context, exception, next)`` wraps ``Hub.on_disconnected``; errors are logged.

Filters run in registration order, the first one outermost. For a streaming method the
filter wraps the *call* of the method: ``next`` returns the async iterator the method produced
(not yet iterated) and the filter may wrap or replace it; items are never passed through
filters, as in ASP.NET (DefaultHubDispatcher invokes the filter pipeline for the stream method
and then enumerates what it returned).

The chains are composed once per hub (:class:`FilterPipeline`); a hook no filter implements
has no chain at all, so hubs without filters pay nothing per call.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, cast

from hubserver.hub.hub import Hub, HubCallerContext

if TYPE_CHECKING:
    from hubserver.hub.methods import HubMethod

__all__ = [
    "ConnectedFilter",
    "DisconnectedFilter",
    "FilterPipeline",
    "HubFilter",
    "HubInvocationContext",
    "HubLifetimeContext",
    "InvocationFilter",
]


@dataclass(slots=True)
class HubInvocationContext:
    """One hub method invocation as filters see it (``HubInvocationContext``).

    Attributes:
        hub: The hub instance that will run the method.
        method_name: The target as the client sent it (any case, PascalCase or not).
        method: The resolved method (``method.name`` is the Python name).
        arguments: The bound arguments; the method is called with the ``arguments`` of the
            context that reaches the end of the chain, so a filter may replace them.
    """

    hub: Hub
    method_name: str
    method: HubMethod
    arguments: list[Any]

    @property
    def context(self) -> HubCallerContext:
        """The caller: connection id, user, items, request (``hub.context``)."""
        return self.hub.context


@dataclass(slots=True)
class HubLifetimeContext:
    """A connect or disconnect as filters see it (``HubLifetimeContext``).

    Attributes:
        hub: The hub instance that runs ``on_connected``/``on_disconnected``.
    """

    hub: Hub

    @property
    def context(self) -> HubCallerContext:
        """The connection: id, user, items, request (``hub.context``)."""
        return self.hub.context


InvocationNext = Callable[[HubInvocationContext], Awaitable[Any]]
"""The rest of an invocation chain: returns the method's result (or its stream)."""
ConnectedNext = Callable[[HubLifetimeContext], Awaitable[None]]
"""The rest of a connect chain."""
DisconnectedNext = Callable[[HubLifetimeContext, BaseException | None], Awaitable[None]]
"""The rest of a disconnect chain."""


class InvocationFilter(Protocol):
    """A filter that wraps hub method invocations."""

    async def invoke(self, context: HubInvocationContext, next: InvocationNext) -> Any:
        """Run ``await next(context)`` (or not) and return the result the client gets."""
        ...


class ConnectedFilter(Protocol):
    """A filter that wraps ``Hub.on_connected``."""

    async def on_connected(self, context: HubLifetimeContext, next: ConnectedNext) -> None:
        """Run ``await next(context)``; raising refuses the connection."""
        ...


class DisconnectedFilter(Protocol):
    """A filter that wraps ``Hub.on_disconnected``."""

    async def on_disconnected(
        self,
        context: HubLifetimeContext,
        exception: BaseException | None,
        next: DisconnectedNext,
    ) -> None:
        """Run ``await next(context, exception)``."""
        ...


AnyHubFilter = InvocationFilter | ConnectedFilter | DisconnectedFilter
"""What a filter list may hold: objects implementing one or more hooks."""


class HubFilter:
    """Convenience base: every hook passes through; override the ones you need."""

    async def invoke(self, context: HubInvocationContext, next: InvocationNext) -> Any:
        """Wrap one hub method invocation (default: pass through)."""
        return await next(context)

    async def on_connected(self, context: HubLifetimeContext, next: ConnectedNext) -> None:
        """Wrap ``Hub.on_connected`` (default: pass through)."""
        await next(context)

    async def on_disconnected(
        self,
        context: HubLifetimeContext,
        exception: BaseException | None,
        next: DisconnectedNext,
    ) -> None:
        """Wrap ``Hub.on_disconnected`` (default: pass through)."""
        await next(context, exception)


def _implements(flt: object, hook: str) -> bool:
    # A HubFilter subclass that keeps a base pass-through adds nothing but a call: leave it
    # out of that chain.
    if not callable(getattr(flt, hook, None)):
        return False
    return getattr(type(flt), hook, None) is not getattr(HubFilter, hook)


async def _call_method(context: HubInvocationContext) -> Any:
    method = context.method
    produced = method.func(context.hub, *context.arguments)
    if method.is_streaming:
        # A plain def returns the iterator; an async def returning one must be awaited.
        # Async generators are returned un-iterated: their body runs when enumerated.
        return await produced if inspect.isawaitable(produced) else produced
    return await produced


def _hub_connected(context: HubLifetimeContext) -> Awaitable[None]:
    return context.hub.on_connected()


def _hub_disconnected(context: HubLifetimeContext, exc: BaseException | None) -> Awaitable[None]:
    return context.hub.on_disconnected(exc)


def _link_invoke(flt: InvocationFilter, nxt: InvocationNext) -> InvocationNext:
    return lambda context: flt.invoke(context, nxt)


def _link_connected(flt: ConnectedFilter, nxt: ConnectedNext) -> ConnectedNext:
    return lambda context: flt.on_connected(context, nxt)


def _link_disconnected(flt: DisconnectedFilter, nxt: DisconnectedNext) -> DisconnectedNext:
    return lambda context, exc: flt.on_disconnected(context, exc, nxt)


class FilterPipeline:
    """The composed filter chains of one hub.

    Args:
        filters: Filter objects in registration order (first = outermost).

    Attributes:
        invoke: Runs an invocation through every ``invoke`` filter, then the method; None
            when no filter wraps invocations.
        on_connected: Runs ``Hub.on_connected`` through the ``on_connected`` filters; None
            when there are none.
        on_disconnected: Same for ``Hub.on_disconnected``.
    """

    __slots__ = ("filters", "invoke", "on_connected", "on_disconnected")

    def __init__(self, filters: Sequence[AnyHubFilter]) -> None:
        for flt in filters:
            if not any(_implements(flt, h) for h in ("invoke", "on_connected", "on_disconnected")):
                raise TypeError(
                    f"{type(flt).__name__} is not a hub filter: it has none of invoke, "
                    "on_connected, on_disconnected"
                )
        self.filters: tuple[AnyHubFilter, ...] = tuple(filters)
        invoke: InvocationNext | None = None
        connected: ConnectedNext | None = None
        disconnected: DisconnectedNext | None = None
        # Built from the innermost filter outwards, so the first registered runs first.
        for flt in reversed(self.filters):
            if _implements(flt, "invoke"):
                invoke = _link_invoke(cast(InvocationFilter, flt), invoke or _call_method)
            if _implements(flt, "on_connected"):
                connected = _link_connected(cast(ConnectedFilter, flt), connected or _hub_connected)
            if _implements(flt, "on_disconnected"):
                disconnected = _link_disconnected(
                    cast(DisconnectedFilter, flt), disconnected or _hub_disconnected
                )
        self.invoke = invoke
        self.on_connected = connected
        self.on_disconnected = disconnected
