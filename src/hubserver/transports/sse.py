"""Server-Sent Events transport shell (server -> client; client -> server arrives by POST).

docs/spec/transports.md §2.3: ``text/event-stream``, an immediate ``:\\r\\n`` comment, then each
batch of pending bytes becomes one unnamed event made of ``data:`` lines.
"""

from __future__ import annotations

from hubserver.protocol.base import HubProtocol
from hubserver.protocol.serialized import SerializedMessage
from hubserver.transports.base import HttpExchange, TransportOwner, TransportType, WriteCoalescer

SSE_HEADERS: tuple[tuple[str, str], ...] = (
    ("Content-Type", "text/event-stream"),
    ("Cache-Control", "no-cache,no-store"),
    ("Pragma", "no-cache"),
    ("Content-Encoding", "identity"),
    # Ask reverse proxies (nginx) not to buffer the stream.
    ("X-Accel-Buffering", "no"),
)


_EVENT_KEYS: dict[str, tuple[str, str]] = {}
"""Cache key of a broadcast's SSE event per hub protocol (``SerializedMessage.store``)."""


def format_event(payload: bytes) -> bytes:
    """One SSE event: a ``data:`` line per ``\\n``-separated line, then a blank line.

    A trailing ``\\r`` on a line is stripped (EventSource would treat it as a line end).
    """
    lines = payload.split(b"\n")
    out = [b"data: " + (line[:-1] if line.endswith(b"\r") else line) + b"\r\n" for line in lines]
    out.append(b"\r\n")
    return b"".join(out)


class ServerSentEventsTransport:
    """The event stream of one connection.

    Args:
        exchange: The GET request's response side.
        owner: Told when the client goes away (EventSource closed = graceful end).
    """

    __slots__ = (
        "_coalescer",
        "_dirty",
        "_exchange",
        "_open",
        "_owner",
        "_pending",
        "_pending_size",
        "_single",
    )

    def __init__(
        self,
        exchange: HttpExchange,
        owner: TransportOwner,
        coalescer: WriteCoalescer | None = None,
    ) -> None:
        self._exchange = exchange
        self._owner = owner
        self._coalescer = coalescer or WriteCoalescer.for_running_loop()
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._dirty = False
        self._open = False
        # The broadcast whose bytes are the only ones pending (its event is cached on it).
        self._single: tuple[SerializedMessage, str] | None = None

    @property
    def kind(self) -> TransportType:
        """Always :attr:`TransportType.SERVER_SENT_EVENTS`."""
        return TransportType.SERVER_SENT_EVENTS

    def start(self) -> None:
        """Send the response head and the initial comment at once.

        Firefox fires ``open`` only once bytes arrive, and the JS client waits for ``open``
        before sending its handshake (docs/spec/transports.md §2.3).
        """
        self._open = True
        self._exchange.set_disconnect_handler(self._lost)
        self._exchange.start_stream(200, SSE_HEADERS)
        self._exchange.write_chunk(b":\r\n")

    def send(self, payload: bytes, binary: bool) -> None:
        """Queue bytes; everything queued in one tick becomes one event."""
        self._single = None
        self._queue(payload)

    def _queue(self, payload: bytes) -> None:
        if self._open:
            self._pending.append(payload)
            self._pending_size += len(payload)
            if not self._dirty:
                self._dirty = True
                self._coalescer.mark(self)

    def send_serialized(self, message: SerializedMessage, protocol: HubProtocol) -> int:
        """Queue a broadcast's bytes for ``protocol`` (serialized once per protocol; when it is
        all a connection has to send this tick, its event is also built once)."""
        self._single = None if self._pending else (message, protocol.name)
        self._queue(message.get(protocol))
        return self.buffered_bytes()

    def flush(self) -> None:
        """Write the queued bytes as one event."""
        self._dirty = False
        single = self._single
        self._single = None
        pending = self._pending
        if not pending or not self._open:
            return
        if single is not None and len(pending) == 1:
            # A broadcast to every stream of a group: the same event for all of them.
            message, name = single
            key = _EVENT_KEYS.get(name)
            if key is None:
                key = _EVENT_KEYS[name] = ("sse", name)
            event = message.cached_or_none(key)
            if event is None:
                event = message.store(key, format_event(pending[0]))
        else:
            event = format_event(b"".join(pending))
        pending.clear()
        self._pending_size = 0
        self._exchange.write_chunk(event)

    def buffered_bytes(self) -> int:
        """Queued bytes plus the socket's unsent bytes."""
        return self._pending_size + self._exchange.get_write_buffer_size()

    def close(self) -> None:
        """Flush and end the response (the browser sees the stream end)."""
        if not self._open:
            return
        self.flush()
        self._open = False
        self._exchange.set_disconnect_handler(None)
        self._exchange.end_stream()

    def abort(self) -> None:
        """Drop the socket without flushing."""
        if not self._open:
            return
        self._open = False
        self._pending.clear()
        self._pending_size = 0
        self._exchange.set_disconnect_handler(None)
        self._exchange.abort()

    def _lost(self) -> None:
        # JS stop() just closes the EventSource: that is the client's goodbye
        # (docs/spec/transports.md §2.3).
        if self._open:
            self._open = False
            self._pending.clear()
            self._pending_size = 0
            self._owner.transport_closed(self, True, None)
