"""Long-polling transport shell (docs/spec/transports.md §2.4).

Pending bytes wait here until a poll arrives; a parked poll is answered when data is queued
(at the end of the tick, so a burst becomes one response), after ``poll_timeout`` with an empty
200, or with 204 once the connection has ended or a newer poll displaced it. No task is held
while a poll is parked: only a timer handle.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from hubserver.protocol.base import HubProtocol
from hubserver.protocol.serialized import SerializedMessage
from hubserver.transports.base import (
    NO_CACHE_HEADERS,
    HttpExchange,
    TransportOwner,
    TransportType,
    WriteCoalescer,
)

_OCTET_STREAM = "application/octet-stream"


class PollingOwner(TransportOwner, Protocol):
    """A :class:`TransportOwner` that also tracks whether a poll is outstanding."""

    def poll_active(self, active: bool) -> None:
        """True while a poll is parked; False between polls (the disconnect timer runs)."""
        ...


def respond_first_poll(exchange: HttpExchange) -> None:
    """The first poll returns at once: 200, empty octet-stream (docs/spec/transports.md §2.4, JS
    awaits it)."""
    exchange.respond(200, b"", _OCTET_STREAM, NO_CACHE_HEADERS)


class LongPollingTransport:
    """Outgoing side of a long-polling connection.

    Args:
        owner: Told about poll activity and about the final end of the transport.
        poll_timeout: Seconds a poll may wait for data (.NET ``PollTimeout``, 90 s).
    """

    __slots__ = (
        "_closing",
        "_coalescer",
        "_dirty",
        "_finished",
        "_owner",
        "_pending",
        "_pending_size",
        "_poll",
        "_timer",
        "poll_timeout",
    )

    def __init__(
        self,
        owner: PollingOwner,
        poll_timeout: float,
        coalescer: WriteCoalescer | None = None,
    ) -> None:
        self._owner = owner
        self.poll_timeout = poll_timeout
        self._coalescer = coalescer or WriteCoalescer.for_running_loop()
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._dirty = False
        self._poll: HttpExchange | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._closing = False
        self._finished = False

    @property
    def kind(self) -> TransportType:
        """Always :attr:`TransportType.LONG_POLLING`."""
        return TransportType.LONG_POLLING

    @property
    def polling(self) -> bool:
        """True while a poll is parked."""
        return self._poll is not None

    # --- polls ----------------------------------------------------------------------------

    def poll(self, exchange: HttpExchange) -> None:
        """Handle a (non-first) poll request."""
        previous = self._take_poll()
        if previous is not None:
            # .NET answers a poll displaced by a newer one with 204.
            _respond_204(previous)
        if self._finished:
            _respond_204(exchange)
            return
        if self._pending:
            self._respond_data(exchange)
            self._owner.poll_active(False)
            return
        if self._closing:
            # Everything (including the hub's Close message) was delivered: end for good.
            _respond_204(exchange)
            self._finish()
            return
        self._poll = exchange
        exchange.set_disconnect_handler(self._poll_lost)
        self._timer = asyncio.get_running_loop().call_later(self.poll_timeout, self._timed_out)
        self._owner.poll_active(True)

    def _take_poll(self) -> HttpExchange | None:
        poll = self._poll
        if poll is not None:
            self._poll = None
            poll.set_disconnect_handler(None)
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        return poll

    def _respond_data(self, exchange: HttpExchange) -> None:
        data = b"".join(self._pending)
        self._pending.clear()
        self._pending_size = 0
        exchange.respond(200, data, _OCTET_STREAM, NO_CACHE_HEADERS)
        if self._closing and not self._finished:
            # The final bytes (the hub's Close message) are delivered: the connection ends
            # now instead of waiting for a poll the client may never send (on Close the JS
            # client stops and DELETEs; during a server stop that DELETE cannot even arrive).
            # A later poll that still reaches this transport gets 204.
            self._finish()

    def _timed_out(self) -> None:
        self._timer = None
        poll = self._take_poll()
        if poll is not None:
            # Nothing to send within the poll timeout: empty 200, the client polls again.
            poll.respond(200, b"", _OCTET_STREAM, NO_CACHE_HEADERS)
            self._owner.poll_active(False)

    def _poll_lost(self) -> None:
        # The client dropped its poll (e.g. JS stop() aborts it before DELETE).
        if self._take_poll() is not None:
            self._owner.poll_active(False)

    # --- writes ---------------------------------------------------------------------------

    def send(self, payload: bytes, binary: bool) -> None:
        """Queue bytes for the current or next poll."""
        if self._closing:
            return
        self._pending.append(payload)
        self._pending_size += len(payload)
        if not self._dirty and self._poll is not None:
            self._dirty = True
            self._coalescer.mark(self)

    def send_serialized(self, message: SerializedMessage, protocol: HubProtocol) -> int:
        """Queue a broadcast's bytes for ``protocol``."""
        self.send(message.get(protocol), False)
        return self._pending_size

    def flush(self) -> None:
        """Answer the parked poll with everything queued."""
        self._dirty = False
        if self._pending and self._poll is not None:
            poll = self._take_poll()
            assert poll is not None
            self._respond_data(poll)
            self._owner.poll_active(False)

    def buffered_bytes(self) -> int:
        """Bytes waiting for a poll."""
        return self._pending_size

    # --- ending ---------------------------------------------------------------------------

    def close(self) -> None:
        """End gracefully: queued bytes go to the next poll, the poll after that gets 204."""
        if self._closing:
            return
        self._closing = True
        poll = self._take_poll()
        if poll is None:
            return
        if self._pending:
            self._respond_data(poll)
            self._owner.poll_active(False)
        else:
            _respond_204(poll)
            self._finish()

    def abort(self) -> None:
        """End now: drop queued bytes, answer a parked poll with 204. Owner not notified."""
        self._closing = True
        self._finished = True
        self._pending.clear()
        self._pending_size = 0
        poll = self._take_poll()
        if poll is not None:
            _respond_204(poll)

    def _finish(self) -> None:
        self._finished = True
        self._owner.transport_closed(self, True, None)


def _respond_204(exchange: HttpExchange) -> None:
    if not exchange.closed and not exchange.responded:
        exchange.respond(204, b"", None, NO_CACHE_HEADERS)
