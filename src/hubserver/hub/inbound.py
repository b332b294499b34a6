"""The inbound side of one hub connection: handshake, parse loop, message switch, invocation queue.

:class:`Inbound` is composed by :class:`~hubserver.hub.connection.HubConnection`, which hands it
every received byte (:meth:`Inbound.feed`). It parses the handshake request, then hub messages
(any split), charges each parsed batch to the connection's
:class:`~hubserver.hub.budget.InboundBudget`, and switches on the message type: invocations are
queued and run in arrival order by runner tasks that exist only while the queue is not empty;
stream items, completions, cancels, pings, acks and the client's Close go to what they concern.

It knows its connection only through :class:`InboundOwner` (handshake outcome, closing, the
write path), so the dependency runs one way: connection -> inbound.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any, Protocol

from hubserver.errors import HandshakeError, MessageTooLargeError, ProtocolError
from hubserver.hub import _log
from hubserver.hub.budget import InboundBudget
from hubserver.hub.host import ConnectionHost
from hubserver.hub.outbox import Outbox
from hubserver.hub.tracker import InvocationTracker
from hubserver.options import HubOptions
from hubserver.protocol.base import HubProtocol, TransferFormat
from hubserver.protocol.handshake import (
    handshake_failure_text,
    parse_handshake_request,
    select_protocol,
)
from hubserver.protocol.messages import (
    AckMessage,
    CancelInvocationMessage,
    CloseMessage,
    CompletionMessage,
    HubMessage,
    InvocationMessage,
    PingMessage,
    StreamInvocationMessage,
    StreamItemMessage,
)
from hubserver.protocol.registry import ALL_PROTOCOLS
from hubserver.protocol.texts import CONNECTION_DISCONNECTED, budget_exceeded, message_too_large
from hubserver.transports.base import TransportType
from hubserver.types import ConnectionId

__all__ = ["Inbound", "InboundOwner"]

_TEXT_ONLY = frozenset({TransferFormat.TEXT})

Invocation = InvocationMessage | StreamInvocationMessage


class InboundOwner(Protocol):
    """The connection an :class:`Inbound` reads for: what it reports to it."""

    @property
    def connection_id(self) -> ConnectionId:
        """Public connection id (for logs)."""
        ...

    @property
    def transport(self) -> TransportType:
        """Transport in use (SSE carries text only)."""
        ...

    def accept_handshake(self, protocol: HubProtocol, version: int) -> None:
        """The handshake request named ``protocol``: answer it and start connecting."""
        ...

    def fail_handshake(self, text: str) -> None:
        """Answer the handshake with an error and close."""
        ...

    def close(self, error: str | None = None, allow_reconnect: bool = False) -> None:
        """Send a Close message and close the transport."""
        ...

    def fail(self, exc: BaseException) -> None:
        """Error close with allowReconnect (protocol error, size limit, dispatch failure)."""
        ...

    def client_pinged(self) -> None:
        """The client sent a Ping."""
        ...

    def release_startup_hold(self) -> None:
        """Stateful reconnect: the client spoke first; write what was held."""
        ...

    def send_message(self, message: HubMessage) -> None:
        """Serialize and write one message to this connection."""
        ...


class Inbound:
    """Reads one connection's input and runs its invocations; see the module docstring.

    Args:
        owner: The connection.
        host: The handler's services.
        options: The handler's options.
        now: Current monotonic time (the budget starts full).
    """

    __slots__ = (
        "_budget",
        "_held",
        "_host",
        "_in",
        "_max_in",
        "_options",
        "_outbox",
        "_owner",
        "_paused",
        "_protocol",
        "_queue",
        "_runners",
        "_running",
        "_stopped",
        "received",
        "tracker",
    )

    def __init__(
        self, owner: InboundOwner, host: ConnectionHost[Any], options: HubOptions, now: float
    ) -> None:
        self._owner = owner
        self._host = host
        self._options = options
        self._in = bytearray()
        self._max_in = options.maximum_receive_message_size
        self._protocol: HubProtocol | None = None
        self._outbox: Outbox | None = None
        # Inbound budget (token buckets), full at the start; see _charge().
        self._budget = InboundBudget.for_options(options, now)
        self._paused = False
        # Handshake answered and the hub's on_connected done: invocations may run.
        self._running = False
        # The connection is closing (or left): input is dropped.
        self._stopped = False
        # Created on first use: an empty deque costs ~760 bytes, times every idle connection.
        self._queue: deque[Invocation] | None = None
        self._held: deque[HubMessage] | None = None
        self._runners = 0
        self.received = False
        """Bytes arrived since the connection's timer last looked (reset by it)."""
        self.tracker: InvocationTracker | None = None
        """What the connection has running; None until first used (see :attr:`invocations`)."""

    @property
    def paused(self) -> bool:
        """An upload stream is full: received bytes wait unparsed."""
        return self._paused

    @property
    def invocations(self) -> InvocationTracker:
        """What the connection has running (created on first use: most never invoke)."""
        tracker = self.tracker
        if tracker is None:
            tracker = self.tracker = InvocationTracker(
                self._options.stream_buffer_capacity, self._upload_has_space, self._stream_cancelled
            )
        return tracker

    # -- driven by the connection --------------------------------------------------------------

    def start(self, protocol: HubProtocol, outbox: Outbox | None) -> None:
        """The handshake picked ``protocol``: parse hub messages from now on."""
        self._protocol = protocol
        self._outbox = outbox

    def run(self) -> None:
        """The connection is connected: run queued invocations from now on."""
        self._running = True
        self._ensure_runner()

    def stop(self) -> None:
        """The connection is closing or left: drop input and queued work, abort what runs."""
        self._stopped = True
        self._running = False
        self._queue = None
        self._held = None
        self._in.clear()
        tracker = self.tracker
        if tracker is not None:
            tracker.abort_all(CONNECTION_DISCONNECTED)

    def feed(self, data: bytes) -> None:
        """Bytes from the client: handshake first, then hub messages (any split)."""
        if self._stopped:
            return
        self.received = True
        self._in += data
        if self._protocol is None and not self._handshake():
            return
        if self._paused:
            # An upload stream is full: keep bytes unparsed, but bounded.
            if len(self._in) > self._options.max_outgoing_buffer:
                self._owner.fail(MessageTooLargeError("input buffer exceeded while paused"))
            return
        self._process_input()

    # -- handshake -----------------------------------------------------------------------------

    def _handshake(self) -> bool:
        """Try to complete the handshake from ``self._in``; True once it succeeded."""
        owner = self._owner
        options = self._options
        try:
            request, consumed = parse_handshake_request(self._in, max_message_size=self._max_in)
        except HandshakeError as exc:
            # Malformed request -> generic text (+ detail); "Handshake was canceled." as is.
            owner.fail_handshake(
                handshake_failure_text(exc, detailed_errors=options.detailed_errors)
            )
            return False
        if request is None:
            return False
        try:
            protocol = select_protocol(
                request,
                # SSE carries text only (docs/spec/transports.md §2.3).
                transfer_formats=_TEXT_ONLY
                if owner.transport == TransportType.SERVER_SENT_EVENTS
                else None,
                supported_protocols=options.supported_protocols,
                protocols=ALL_PROTOCOLS,
            )
        except HandshakeError as exc:
            owner.fail_handshake(str(exc))
            return False
        del self._in[:consumed]
        owner.accept_handshake(protocol, request.version)
        return True

    # -- incoming messages ---------------------------------------------------------------------

    def _process_input(self) -> None:
        try:
            held = self._held
            while held and not self._paused and not self._stopped:
                self._on_message(held.popleft())
            if not self._paused:
                self._parse()
        except ProtocolError as exc:
            _log.logger.info(
                "%s connection_id=%s error=%s",
                _log.PROTOCOL_ERROR,
                self._owner.connection_id,
                exc,
            )
            self._owner.fail(exc)

    def _parse(self) -> None:
        buf = self._in
        limit = self._max_in
        protocol = self._protocol
        assert protocol is not None
        while buf and not self._stopped:
            if limit is None or len(buf) <= limit:
                messages, consumed = protocol.parse(buf)
            else:
                # docs/spec/hub-protocol.md §3.8: the limit applies per message, so parse a
                # window of ``limit`` bytes; no whole message in it means one is too big.
                messages, consumed = protocol.parse(bytes(buf[:limit]))
            if consumed == 0:
                if limit is not None and len(buf) > limit:
                    raise MessageTooLargeError(message_too_large(limit))
                return
            del buf[:consumed]
            if self._charge(len(messages), consumed):
                return
            for i, message in enumerate(messages):
                if self._paused:
                    if self._held is None:
                        self._held = deque()
                    self._held.extend(messages[i:])
                    return
                if self._stopped:
                    return
                self._on_message(message)
            if self._paused:
                return

    def _charge(self, count: int, size: int) -> bool:
        """Take ``count`` messages of ``size`` bytes from the inbound budget; True when the
        connection went over it and was closed (the batch is then not processed)."""
        budget = self._budget
        if budget is None:
            return False
        # Once per parsed batch, not per message: a WebSocket frame or a POST body.
        exceeded = budget.charge(count, size, self._host.clock())
        if not exceeded:
            return False
        self._host.stats.inbound_budget_closes += 1
        _log.logger.warning(
            "%s connection_id=%s limit=%s",
            _log.INBOUND_BUDGET_EXCEEDED,
            self._owner.connection_id,
            exceeded,
        )
        # A deliberate flood: the client is told why and must not reconnect automatically.
        self._owner.close(error=budget_exceeded(exceeded))
        return True

    def _on_message(self, message: HubMessage) -> None:
        self._host.stats.messages_received += 1
        outbox = self._outbox
        if outbox is not None:
            if outbox.holding:
                self._owner.release_startup_hold()
            if not outbox.buffer.should_process(message):
                # duplicate from a replay, or before the client's Sequence
                # (docs/spec/stateful-reconnect.md §5.3)
                return
        cls = type(message)
        if cls is InvocationMessage or cls is StreamInvocationMessage:
            assert isinstance(message, InvocationMessage | StreamInvocationMessage)
            if message.stream_ids:
                # Create the channels now: items may arrive before the invocation runs.
                self.invocations.open_uploads(message.stream_ids)
            queue = self._queue
            if queue is None:
                queue = self._queue = deque()
            queue.append(message)
            self._ensure_runner()
        elif type(message) is StreamItemMessage:
            tracker = self.tracker
            if tracker is not None and not tracker.push_item(message.invocation_id, message.item):
                self._paused = True
        elif type(message) is CompletionMessage:
            # A client result or the end of an upload; unknown ids are ignored
            # (docs/spec/hub-protocol.md §3.4).
            tracker = self.tracker
            if tracker is not None:
                tracker.on_completion(message)
        elif type(message) is CancelInvocationMessage:
            iid = message.invocation_id
            queued = self._queue
            if queued and any(m.invocation_id == iid for m in queued):
                # Its StreamInvocation is still queued: .NET registers a stream's cancellation
                # as it reads the invocation, so the cancel must not be lost as unknown.
                self.invocations.cancel_when_started(iid)
            elif (tracker := self.tracker) is not None:
                tracker.cancel_stream(iid)
        elif cls is PingMessage:
            self._owner.client_pinged()
        elif cls is CloseMessage:
            # A client Close is graceful: stop reading, answer {"type":7}, no error
            # (docs/spec/hub-protocol.md §3.7).
            self._owner.close()
        elif type(message) is AckMessage and outbox is not None:
            outbox.buffer.on_ack(message.sequence_id)
        # Sequence was handled by should_process; unknown ids and types are ignored.

    def _upload_has_space(self) -> None:
        if self._paused and not self.invocations.uploads_full():
            self._paused = False
            asyncio.get_running_loop().call_soon(self._resume_input)

    def _stream_cancelled(self, invocation_id: str) -> None:
        self._owner.send_message(CompletionMessage.empty(invocation_id))

    def _resume_input(self) -> None:
        if not self._stopped and not self._paused:
            self._process_input()

    # -- the invocation queue ------------------------------------------------------------------

    def _ensure_runner(self) -> None:
        # Runner tasks exist only while invocations are queued: an idle connection has none.
        if (
            self._queue
            and self._running
            and self._runners < self._options.maximum_parallel_invocations_per_client
        ):
            self._runners += 1
            self._host.spawn(self._run_queue())

    async def _run_queue(self) -> None:
        # With the default limit of 1 this runs a connection's invocations one at a time in
        # arrival order (MaximumParallelInvocationsPerClient, docs/spec/hub-protocol.md §3.4).
        dispatcher = self._host.dispatcher
        owner = self._owner
        try:
            while self._running and (queue := self._queue):
                message = queue.popleft()
                try:
                    await dispatcher.dispatch(owner, message)
                except Exception as exc:
                    _log.logger.exception(
                        "%s connection_id=%s", _log.DISPATCH_FAILED, owner.connection_id
                    )
                    owner.fail(exc)
        finally:
            self._runners -= 1
            if self._runners == 0 and not self._queue:
                self._queue = None  # back to zero per-connection containers when idle
            else:
                self._ensure_runner()
