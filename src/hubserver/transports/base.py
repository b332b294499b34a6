"""What every transport offers the layers above, and what they offer it.

The seam between the connection layer (``hubserver.connections``) and the hub layer
(``hubserver.hub``) is deliberately callback-based, not task-and-queue based: a broadcast to
10,000 WebSocket connections must not cost 10,000 task wake-ups (docs/adr/0001).
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
import weakref
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, ClassVar, Protocol

from hubserver.errors import TransportError

_logger = logging.getLogger("hubserver.transports")

if TYPE_CHECKING:
    # Type-only: the protocol layer sits below this one, so importing it is allowed, but the
    # runtime import is avoided to keep this module free of cycles through options.py.
    from hubserver.protocol.base import HubProtocol
    from hubserver.protocol.serialized import SerializedMessage


class TransportType(enum.IntFlag):
    """Bit flags as in the JS client (``HttpTransportType``)."""

    NONE = 0
    WEB_SOCKETS = 1
    SERVER_SENT_EVENTS = 2
    LONG_POLLING = 4
    ALL = 7

    @property
    def wire_name(self) -> str:
        """Name used in negotiate ``availableTransports``."""
        return _WIRE_NAMES[self]


_WIRE_NAMES = {
    TransportType.WEB_SOCKETS: "WebSockets",
    TransportType.SERVER_SENT_EVENTS: "ServerSentEvents",
    TransportType.LONG_POLLING: "LongPolling",
}


class ConnectionApplication(Protocol):
    """The per-connection object of the layer above (the hub layer's ``HubConnection``).

    The connection layer calls these from the event loop; none may block. ``data_received``
    gets raw bytes exactly as the client sent them (any split; the application buffers).
    """

    def data_received(self, data: bytes) -> None:
        """Bytes from the client (WebSocket message payload or HTTP POST body)."""
        ...

    def transport_paused(self) -> None:
        """Stateful reconnect only: the transport dropped ungracefully; the connection lives
        on for the reconnect window and outgoing data must be buffered, not written."""
        ...

    def transport_resumed(self) -> None:
        """Stateful reconnect only: a new transport took over the same connection token."""
        ...

    def connection_lost(self, exc: BaseException | None) -> None:
        """Final: the connection is disposed (client closed, DELETE, timeout, server close)."""
        ...


class ServerShutdownAware(Protocol):
    """Optional extension of :class:`ConnectionApplication`.

    On graceful server stop the endpoint calls ``application.server_shutdown()`` when the
    application has that method (the hub layer sends ``Close {allowReconnect: true}`` and then
    closes); applications without it are closed with ``ConnectionContext.close()``.
    """

    def server_shutdown(self) -> None:
        """The server is stopping: say goodbye and close the connection."""
        ...


class ByteChannel(Protocol):
    """The subset of ``asyncio.Transport`` the transport shells write to."""

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Queue bytes on the socket."""
        ...

    def get_write_buffer_size(self) -> int:
        """Bytes accepted but not yet handed to the kernel."""
        ...

    def is_closing(self) -> bool:
        """True once closed or closing."""
        ...

    def close(self) -> None:
        """Flush then close the socket."""
        ...

    def abort(self) -> None:
        """Close the socket now, dropping unsent bytes."""
        ...


class RawStreamHandler(Protocol):
    """Receives the socket events of an HTTP connection after a WebSocket upgrade."""

    def data_received(self, data: bytes) -> None:
        """Bytes from the peer."""
        ...

    def eof_received(self) -> None:
        """The peer half-closed the socket."""
        ...

    def connection_lost(self, exc: BaseException | None) -> None:
        """The socket is gone."""
        ...

    def pause_writing(self) -> None:
        """The socket's write buffer went over its high-water mark."""
        ...

    def resume_writing(self) -> None:
        """The socket's write buffer drained below its low-water mark."""
        ...


class HttpExchange(Protocol):
    """One HTTP request's response side, implemented by the server shell (``hubserver.server``).

    Transports use it to answer polls, stream SSE and upgrade to WebSocket without knowing
    anything about HTTP/1.1 framing or the access log.
    """

    @property
    def closed(self) -> bool:
        """True when the client's socket is gone."""
        ...

    @property
    def responded(self) -> bool:
        """True once a response (or the response head of a stream) was written."""
        ...

    def add_header(self, name: str, value: str) -> None:
        """Add a header to whatever response this exchange sends (e.g. CORS headers)."""
        ...

    def respond(
        self,
        status: int,
        body: bytes = b"",
        content_type: str | None = "text/plain",
        headers: Sequence[tuple[str, str]] = (),
    ) -> None:
        """Send a complete response (``Content-Length`` framed)."""
        ...

    def start_stream(self, status: int, headers: Sequence[tuple[str, str]] = ()) -> None:
        """Send the head of a chunked streaming response."""
        ...

    def write_chunk(self, data: bytes) -> None:
        """Send one chunk of a streaming response (empty data is ignored)."""
        ...

    def end_stream(self) -> None:
        """Terminate a streaming response; the HTTP connection may then serve more requests."""
        ...

    def abort(self) -> None:
        """Drop the client's socket."""
        ...

    def get_write_buffer_size(self) -> int:
        """Bytes queued on the socket."""
        ...

    def set_disconnect_handler(self, handler: Callable[[], None] | None) -> None:
        """Call ``handler`` (once) if the client's socket is lost before the response ends."""
        ...

    def upgrade(self, headers: Sequence[tuple[str, str]], handler: RawStreamHandler) -> ByteChannel:
        """Send ``101 Switching Protocols`` with ``headers``; the socket's events now go to
        ``handler`` (bytes that followed the request are delivered to it at once)."""
        ...


class TransportOwner(Protocol):
    """What a transport shell reports to its connection (``HttpConnectionContext``)."""

    def transport_data(self, data: bytes) -> None:
        """Bytes from the client."""
        ...

    def transport_closed(
        self, transport: object, graceful: bool, exc: BaseException | None
    ) -> None:
        """The transport ended. ``graceful`` = the client said goodbye (WS close frame,
        EventSource closed); ``exc`` describes a failure (protocol violation, lost socket)."""
        ...


class ServerTransport(Protocol):
    """A transport shell as its connection drives it."""

    @property
    def kind(self) -> TransportType:
        """Which transport this is."""
        ...

    def send(self, payload: bytes, binary: bool) -> None:
        """Queue one message; written at the end of the event-loop tick."""
        ...

    def send_serialized(self, message: SerializedMessage, protocol: HubProtocol) -> int:
        """Queue a broadcast message, reusing framing cached on ``message``; returns the
        bytes buffered for this connection."""
        ...

    def buffered_bytes(self) -> int:
        """Queued bytes not yet accepted by the kernel."""
        ...

    def close(self) -> None:
        """Flush, then end gracefully."""
        ...

    def abort(self) -> None:
        """End now without flushing."""
        ...


class Flushable(Protocol):
    """Anything the :class:`WriteCoalescer` can flush."""

    def flush(self) -> None:
        """Write everything queued with one socket write."""
        ...


FLUSH_SLICE = 500
"""At most this many transports are flushed per end-of-tick pass of a :class:`WriteCoalescer`
before the loop gets to read sockets again."""

FLUSH_BUDGET_S = 0.005
"""...and a pass also yields once it has spent this long (checked every :data:`FLUSH_CHECK`
items): a socket write costs 20 µs on a quiet machine but 50-100 µs on a loaded one, so a
count alone lets a slice hold the loop for 10 ms or for 50."""

FLUSH_CHECK = 16
"""Items flushed between two looks at the clock."""


class WriteCoalescer:
    """Batches writes per event-loop tick (syscalls, not bytes, are the cost).

    A transport that queues data calls :meth:`mark` once; a single ``call_soon`` callback then
    flushes every marked transport, so N messages sent to one connection in one tick become
    one ``transport.write``. One coalescer per event loop (:meth:`for_running_loop`).

    Args:
        loop: The event loop whose ticks end the passes.
        clock: Monotonic seconds, for the time budget of a pass (injected in tests).
    """

    __slots__ = ("_clock", "_dirty", "_loop", "_scheduled", "generation")

    _instances: ClassVar[weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, WriteCoalescer]] = (
        weakref.WeakKeyDictionary()
    )

    def __init__(
        self, loop: asyncio.AbstractEventLoop, clock: Callable[[], float] = time.perf_counter
    ) -> None:
        self._loop = loop
        self._clock = clock
        self._dirty: list[Flushable] = []
        self._scheduled = False
        self.generation = 0
        """Incremented at the end of every tick in which anything was written or queued:
        a transport that wrote directly in generation G queues (and so coalesces) the rest
        of that tick's messages."""

    @classmethod
    def for_running_loop(cls) -> WriteCoalescer:
        """The coalescer of the running event loop (created on first use)."""
        loop = asyncio.get_running_loop()
        inst = cls._instances.get(loop)
        if inst is None:
            inst = cls._instances[loop] = cls(loop)
        return inst

    def mark(self, item: Flushable) -> None:
        """Flush ``item`` at the end of this tick (callers mark each item once per tick)."""
        self._dirty.append(item)
        # touch(), inlined: this runs once per connection per broadcast.
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._run)

    def touch(self) -> None:
        """Run the end-of-tick pass once this tick (a transport that wrote directly calls it,
        so that the generation ends with the tick)."""
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._run)

    def _run(self) -> None:
        dirty = self._dirty
        self.generation += 1
        if len(dirty) <= FLUSH_CHECK:
            self._dirty = []
            self._scheduled = False
            _flush_all(dirty)
            return
        # A broadcast marks every connection of a group at once: flushing 5,000 SSE streams
        # or polls is 5,000 socket writes. Flushing them in slices, the rest in a later
        # callback, lets the loop read sockets in between, so a REST request or a poll
        # arriving meanwhile waits one slice, not the whole fan-out. Items marked meanwhile
        # queue behind the rest (each item is marked once); the pass stays scheduled, so
        # marks only append.
        self._dirty = []
        limit = min(len(dirty), FLUSH_SLICE)
        clock = self._clock
        deadline = clock() + FLUSH_BUDGET_S
        done = 0
        while done < limit:
            end = min(done + FLUSH_CHECK, limit)
            _flush_all(dirty[done:end])
            done = end
            if clock() >= deadline:
                break
        if done < len(dirty):
            self._dirty = dirty[done:] + self._dirty
        if self._dirty:
            self._loop.call_soon(self._run)
        else:
            self._scheduled = False


def _flush_all(items: Sequence[Flushable]) -> None:
    for item in items:
        try:
            item.flush()
        except Exception:
            # One broken connection must not leave the others' data unflushed (their dirty
            # flags are set, so they would never be marked again).
            _logger.exception("flush failed")


class ConnectionLostError(TransportError):
    """The client's socket went away without a goodbye (no WebSocket close frame).

    Only this failure lets a stateful-reconnect connection live on
    (docs/spec/stateful-reconnect.md §5.3);
    protocol violations and deliberate closes dispose the connection.
    """


NO_CACHE_HEADERS: tuple[tuple[str, str], ...] = (
    ("Cache-Control", "no-cache, no-store"),
    ("Pragma", "no-cache"),
    ("Expires", "Thu, 01 Jan 1970 00:00:00 GMT"),
)
"""Headers of every long-polling response (docs/spec/transports.md §2.1)."""
