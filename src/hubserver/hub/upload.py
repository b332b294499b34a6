"""A client-to-server stream (``streamIds``) as the bounded async iterator a hub method reads.

Items arrive as StreamItem messages and wait here until the method consumes them; a full
buffer tells the connection to stop parsing input (docs/spec/hub-protocol.md §3.4, §3.8).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Any

from hubserver.errors import HubError
from hubserver.hub.binding import BindingError, Converter
from hubserver.protocol.texts import BINDING_FAILED

__all__ = ["UploadStream"]


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
            raise HubError(BINDING_FAILED) from exc
