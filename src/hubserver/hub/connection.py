"""One hub connection: its identity, its write path and its lifecycle from handshake to close.

:class:`HubConnection` is the :class:`~hubserver.transports.base.ConnectionApplication` the
connection layer feeds bytes into, and the :class:`~hubserver.lifetime.base.ConnectionSink` the
lifetime manager writes to. It is callback driven: an idle connection owns no asyncio task and
no queue (docs/adr/0001). A task exists only while there is work -- the ``on_connected`` hook,
a burst of invocations being run one at a time, a stream, or the disconnect hooks. Timers are
served by the handler's single shared ticker (``hub.ticker``), which calls :meth:`tick`.

What runs is recorded in an :class:`~hubserver.hub.tracker.InvocationTracker`; stateful
reconnect's buffering lives in an :class:`~hubserver.hub.outbox.Outbox`. The connection knows its
handler only through :class:`ConnectionHost`, so the dependencies run one way: handler ->
connection -> tracker/outbox, and dispatcher -> connection.

Inbound messages are charged to a per-connection :class:`~hubserver.hub.budget.InboundBudget`
once per parsed batch; a connection over it is closed with an error instead of slowing
everyone's dispatch.

Lifecycle (cf. HubConnectionHandler.cs): handshake -> ``lifetime.on_connected`` ->
``Hub.on_connected`` -> dispatch -> ``Hub.on_disconnected`` -> ``lifetime.on_disconnected``,
the last two exactly once whatever ends the connection.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, Protocol

from hubserver.connections.context import ConnectionContext, HttpRequestInfo, Principal
from hubserver.connections.manager import claimed_connection_id
from hubserver.errors import (
    HandshakeError,
    HubError,
    HubServerError,
    MessageTooLargeError,
    ProtocolError,
    TransportError,
)
from hubserver.hub import _log
from hubserver.hub.budget import InboundBudget
from hubserver.hub.hub import GroupManager, HubCallerClients, HubCallerContext
from hubserver.hub.outbox import Outbox
from hubserver.hub.stats import HubStats
from hubserver.hub.tracker import InvocationTracker
from hubserver.lifetime.base import HubLifetimeManager
from hubserver.options import HubOptions
from hubserver.protocol.base import HubProtocol, TransferFormat
from hubserver.protocol.handshake import (
    HANDSHAKE_CANCELED,
    handshake_failure_text,
    parse_handshake_request,
    select_protocol,
    write_handshake_response,
)
from hubserver.protocol.message_buffer import BufferSnapshot
from hubserver.protocol.messages import (
    PING,
    TRACKABLE_TYPES,
    AckMessage,
    CancelInvocationMessage,
    CloseMessage,
    CompletionMessage,
    HubMessage,
    InvocationMessage,
    PingMessage,
    SequenceMessage,
    StreamInvocationMessage,
    StreamItemMessage,
)
from hubserver.protocol.registry import ALL_PROTOCOLS
from hubserver.protocol.serialized import SerializedMessage
from hubserver.protocol.texts import (
    CLOSE_ERROR,
    CONNECTION_DISCONNECTED,
    budget_exceeded,
    client_result_timeout,
    detail,
    message_too_large,
)
from hubserver.transports.base import TransportType
from hubserver.types import ConnectionId, UserId

__all__ = ["ConnectionHost", "HubConnection", "Invoker"]

# States, in order: comparisons like ``state > _CONNECTED`` are used below.
_HANDSHAKE = 0
_CONNECTING = 1  # handshake answered; lifetime/Hub.on_connected running
_CONNECTED = 2
_CLOSING = 3  # close decided; disconnect hooks pending
_CLOSED = 4

_TEXT_ONLY = frozenset({TransferFormat.TEXT})

_result_ids = itertools.count(1)


class Invoker(Protocol):
    """Runs the hub's code for a connection (the handler's dispatcher)."""

    async def on_connected(self, connection: HubConnection) -> None:
        """Run ``Hub.on_connected``; an exception closes the connection with an error."""
        ...

    async def on_disconnected(
        self, connection: HubConnection, exception: BaseException | None
    ) -> None:
        """Run ``Hub.on_disconnected``; never raises."""
        ...

    async def dispatch(
        self, connection: HubConnection, message: InvocationMessage | StreamInvocationMessage
    ) -> None:
        """Handle one Invocation/StreamInvocation, in arrival order."""
        ...


class ConnectionHost(Protocol):
    """What a :class:`HubConnection` needs from the handler that created it: the shared
    services, a clock, counters, and a place to run and forget its tasks."""

    @property
    def options(self) -> HubOptions:
        """Options shared by the hub's connections."""
        ...

    @property
    def lifetime(self) -> HubLifetimeManager:
        """Where the connection is registered for broadcasts."""
        ...

    @property
    def group_manager(self) -> GroupManager:
        """The hub's group manager (``Hub.groups``)."""
        ...

    @property
    def dispatcher(self) -> Invoker:
        """Runs hub methods and hooks."""
        ...

    @property
    def stats(self) -> HubStats:
        """Counters the connection increments."""
        ...

    @property
    def clock(self) -> Callable[[], float]:
        """Monotonic clock in seconds."""
        ...

    def spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run ``coro`` as a task the host tracks (and waits for on shutdown)."""
        ...

    def forget(self, connection: HubConnection) -> None:
        """The connection is closed and its hooks ran: drop it."""
        ...


class HubConnection:
    """The hub layer's view of one connection (cf. ``HubConnectionContext``).

    Created by :meth:`HubConnectionHandler.create_application`; not instantiated directly.

    Attributes:
        options: The handler's :class:`~hubserver.options.HubOptions`.
    """

    __slots__ = (
        "_binary",
        "_budget",
        "_caller_clients",
        "_caller_context",
        "_connect_task",
        "_ctx",
        "_disconnect_started",
        "_fast_send",
        "_handshake_deadline",
        "_held",
        "_host",
        "_hub_connected",
        "_in",
        "_input_paused",
        "_invocations",
        "_keepalive",
        "_last_received",
        "_last_sent",
        "_lifetime_connected",
        "_max_in",
        "_max_out",
        "_outbox",
        "_ping",
        "_protocol",
        "_queue",
        "_received",
        "_runners",
        "_sent",
        "_state",
        "_timeout_armed",
        "_user_id",
        "options",
    )

    def __init__(self, host: ConnectionHost, ctx: ConnectionContext, now: float) -> None:
        options = host.options
        self._host = host
        self._ctx = ctx
        self.options = options
        self._state = _HANDSHAKE
        self._in = bytearray()
        self._protocol: HubProtocol | None = None
        self._binary = False
        self._ping = b""
        self._handshake_deadline = now + options.handshake_timeout
        self._max_in = options.maximum_receive_message_size
        self._max_out = options.max_outgoing_buffer
        # Inbound budget (token buckets), full at the start; see _charge().
        self._budget = InboundBudget.for_options(options, now)
        # Keep-alive and client timeout are off for long polling (docs/spec/transports.md §2.4).
        self._keepalive = not ctx.has_inherent_keepalive
        self._sent = False
        self._received = False
        self._last_sent = now
        self._last_received = now
        self._timeout_armed = False
        principal = ctx.principal
        self._user_id = UserId(principal.user_id) if principal is not None else None
        # Created on first use: an empty deque costs ~760 bytes, times every idle connection.
        self._queue: deque[InvocationMessage | StreamInvocationMessage] | None = None
        self._held: deque[HubMessage] | None = None
        self._runners = 0
        self._connect_task: asyncio.Task[None] | None = None
        # Created on first use too: most connections never invoke anything.
        self._invocations: InvocationTracker | None = None
        # Only for connections that negotiated stateful reconnect.
        self._outbox: Outbox | None = None
        self._fast_send: Callable[[SerializedMessage, HubProtocol], int] | None = None
        self._input_paused = False
        self._caller_context: HubCallerContext | None = None
        self._caller_clients: HubCallerClients | None = None
        self._hub_connected = False
        self._lifetime_connected = False
        self._disconnect_started = False

    # -- identity ------------------------------------------------------------------------------

    @property
    def connection_id(self) -> ConnectionId:
        """Public connection id."""
        return self._ctx.connection_id

    @property
    def user_id(self) -> UserId | None:
        """``principal.user_id`` or None."""
        return self._user_id

    @property
    def principal(self) -> Principal | None:
        """The authenticated user, if any."""
        return self._ctx.principal

    @property
    def items(self) -> dict[str, Any]:
        """Per-connection application state."""
        return self._ctx.items

    @property
    def request(self) -> HttpRequestInfo:
        """The HTTP request that opened the connection."""
        return self._ctx.request

    @property
    def transport(self) -> TransportType:
        """Transport in use."""
        return self._ctx.transport

    @property
    def protocol_name(self) -> str:
        """Negotiated hub protocol name (``""`` before the handshake)."""
        return self._protocol.name if self._protocol is not None else ""

    @property
    def protocol(self) -> HubProtocol | None:
        """Negotiated hub protocol (None before the handshake)."""
        return self._protocol

    @property
    def is_connected(self) -> bool:
        """Handshake done and not closing."""
        return _CONNECTING <= self._state <= _CONNECTED

    def buffered_bytes(self) -> int:
        """Outgoing bytes not yet accepted by the socket (slow-consumer accounting)."""
        return self._ctx.buffered_bytes()

    @property
    def stateful(self) -> bool:
        """Stateful reconnect is active (negotiated, WebSockets, handshake version >= 2)."""
        return self._outbox is not None

    @property
    def resumable(self) -> bool:
        """Stateful and its token lets another server claim it
        (docs/spec/stateful-reconnect.md §5.4)."""
        return (
            self._outbox is not None
            and claimed_connection_id(self._ctx.connection_token) is not None
        )

    @property
    def outbox(self) -> Outbox | None:
        """Stateful reconnect's buffering (None without stateful reconnect)."""
        return self._outbox

    @property
    def invocations(self) -> InvocationTracker:
        """What this connection has running (ids, streams, uploads, client results)."""
        tracker = self._invocations
        if tracker is None:
            tracker = self._invocations = InvocationTracker(
                self.options.stream_buffer_capacity, self._upload_has_space, self._stream_cancelled
            )
        return tracker

    @property
    def caller_context(self) -> HubCallerContext:
        """The :class:`HubCallerContext` shared by this connection's hub instances."""
        ctx = self._caller_context
        if ctx is None:
            ctx = self._caller_context = HubCallerContext(self)
        return ctx

    @property
    def caller_clients(self) -> HubCallerClients:
        """The :class:`HubCallerClients` shared by this connection's hub instances."""
        clients = self._caller_clients
        if clients is None:
            clients = self._caller_clients = HubCallerClients(self._host.lifetime, self)
        return clients

    @property
    def group_manager(self) -> GroupManager:
        """The handler's group manager."""
        return self._host.group_manager

    # -- ConnectionApplication -----------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        """Bytes from the client: handshake first, then hub messages (any split)."""
        if self._state > _CONNECTED:
            return
        self._received = True
        self._in += data
        if self._state == _HANDSHAKE and not self._handshake():
            return
        if self._input_paused:
            # An upload stream is full: keep bytes unparsed, but bounded.
            if len(self._in) > self._max_out:
                self._fail(MessageTooLargeError("input buffer exceeded while paused"))
            return
        self._process_input()

    def transport_paused(self) -> None:
        """Stateful reconnect: the socket dropped; buffer outgoing messages until resumed."""
        outbox = self._outbox
        if outbox is not None:
            outbox.pause()
        else:
            # Negotiated stateful reconnect but shook hands with version < 2
            # (docs/spec/stateful-reconnect.md §5.1: that
            # silently disables it): nothing to resume, so end now instead of lingering.
            self._ctx.abort()

    def transport_resumed(self) -> None:
        """Stateful reconnect: a new socket took over; write Sequence, then replay
        (docs/spec/stateful-reconnect.md §5.3)."""
        outbox = self._outbox
        if outbox is None or self._protocol is None or self._state > _CONNECTED:
            return
        self._timeout_armed = False
        sequence_id, pending = outbox.resume()
        send = self._ctx.send
        binary = self._binary
        send(self._protocol.write(SequenceMessage(sequence_id)), binary)
        for data in pending:
            send(data, binary)
        self._sent = True

    def connection_lost(self, exc: BaseException | None) -> None:
        """The connection layer disposed the connection: run the disconnect path once."""
        self._begin_disconnect(exc)

    # -- ConnectionSink ------------------------------------------------------------------------

    def write_serialized(self, message: SerializedMessage) -> None:
        """Queue a broadcast; never blocks or raises (slow consumers are aborted)."""
        if not _CONNECTING <= self._state <= _CONNECTED:
            return
        self._host.stats.messages_sent += 1
        protocol = self._protocol
        assert protocol is not None
        fast = self._fast_send
        try:
            if fast is not None:
                # The broadcast hot path (bench/micro_broadcast.py): straight to the transport.
                buffered = fast(message, protocol)
            elif self._outbox is not None:
                inner = message.message
                trackable = inner is None or inner.type in TRACKABLE_TYPES
                self._send_data(message.get(protocol), trackable)
                return
            else:
                buffered = self._ctx.send_serialized(message, protocol)
        except Exception:
            _log.logger.exception("%s connection_id=%s", _log.WRITE_FAILED, self.connection_id)
            return
        self._sent = True
        if buffered > self._max_out:
            self._slow_consumer()

    async def invoke_client(self, target: str, args: Sequence[Any], timeout: float) -> Any:  # noqa: ASYNC109
        """Client result: send an Invocation with a server-chosen id and await the reply.

        Raises:
            HubError: the client's error text, ``Connection disconnected.``, or a timeout.
        """
        if not self.is_connected:
            raise HubError(CONNECTION_DISCONNECTED)
        # Prefixed so it cannot collide with a JS client's numeric upload-stream ids.
        invocation_id = f"s{next(_result_ids)}"
        tracker = self.invocations
        future = tracker.expect_result(invocation_id)
        try:
            self.send_message(
                InvocationMessage(target=target, arguments=tuple(args), invocation_id=invocation_id)
            )
            try:
                async with asyncio.timeout(timeout):
                    return await future
            except TimeoutError:
                raise HubError(client_result_timeout(target, timeout)) from None
        finally:
            tracker.drop_result(invocation_id)

    # -- sending -------------------------------------------------------------------------------

    def send_message(self, message: HubMessage) -> None:
        """Serialize and write one message to this connection only.

        Raises:
            TypeError, ValueError: a value in the message cannot be serialized.
        """
        if not _CONNECTING <= self._state <= _CONNECTED:
            return
        self._host.stats.messages_sent += 1
        protocol = self._protocol
        assert protocol is not None
        self._send_data(protocol.write(message), message.type in TRACKABLE_TYPES)

    def send_invocation(self, method: str, args: Sequence[Any]) -> None:
        """``Clients.caller.send``: an Invocation without id to this connection."""
        self.send_message(InvocationMessage(target=method, arguments=tuple(args)))

    def _send_data(self, data: bytes, trackable: bool) -> None:
        outbox = self._outbox
        if outbox is not None:
            write_now = outbox.record(data, trackable)
            if outbox.buffer.buffered_bytes > self._max_out:
                # The replay buffer cannot block writers here; a peer that stops acking
                # is treated like any slow consumer (docs/adr/0002).
                self._slow_consumer()
                return
            if not write_now:
                return
        ctx = self._ctx
        ctx.send(data, self._binary)
        self._sent = True
        if ctx.buffered_bytes() > self._max_out:
            self._slow_consumer()

    def _slow_consumer(self) -> None:
        # docs/adr/0002: never wait for one client; drop it so it reconnects and resyncs.
        if self._state > _CONNECTED:
            return
        self._host.stats.slow_consumer_aborts += 1
        _log.logger.warning("%s connection_id=%s", _log.SLOW_CONSUMER_ABORTED, self.connection_id)
        self._state = _CLOSING
        self._ctx.abort()
        self._begin_disconnect(TransportError("outgoing buffer limit exceeded"))

    # -- closing -------------------------------------------------------------------------------

    def close(self, error: str | None = None, allow_reconnect: bool = False) -> None:
        """Send a Close message, then close the transport (docs/spec/hub-protocol.md §3.7).

        Args:
            error: Error text for the client (None = clean close).
            allow_reconnect: Let ``withAutomaticReconnect`` clients come back.
        """
        if self._state == _HANDSHAKE:
            self._ctx.close()
            self._begin_disconnect(None)
            return
        exc = HubServerError(error) if error else None
        self._close(CloseMessage(error=error, allow_reconnect=allow_reconnect), exc)

    def server_shutdown(self) -> None:
        """Graceful server stop: ``{"type":7,"allowReconnect":true}`` then close; a connection
        that can resume on another server is parked instead: its socket drops without a Close
        and it waits, buffering, to be handed over (docs/spec/stateful-reconnect.md §5.5)."""
        lifetime = self._host.lifetime
        # Parked only while the backplane can carry the claim; else nobody could take it over.
        if (
            self._state == _CONNECTED
            and self.resumable
            and lifetime.supports_resume
            and lifetime.is_healthy()
        ):
            park = getattr(self._ctx, "park", None)
            if park is not None and park():
                return
        self.close(allow_reconnect=True)

    # -- cross-server resume (docs/spec/stateful-reconnect.md §5.4) ----------------------------

    def hand_over(self) -> tuple[str, BufferSnapshot] | None:
        """Leave this process for another server without running any disconnect hook: the
        logical connection lives on there. Returns (hub protocol, outbox snapshot), or None
        when the connection is not in a state to move."""
        outbox = self._outbox
        protocol = self._protocol
        if outbox is None or protocol is None or self._state != _CONNECTED:
            return None
        snapshot = outbox.buffer.snapshot()
        self._state = _CLOSED
        self._disconnect_started = True
        self._queue = None
        self._held = None
        self._in.clear()
        tracker = self._invocations
        if tracker is not None:
            tracker.abort_all(CONNECTION_DISCONNECTED)
        self._host.forget(self)
        return protocol.name, snapshot

    def restore(self, protocol_name: str, snapshot: BufferSnapshot) -> bool:
        """Become the resumed continuation of a connection handed over by another server:
        connected, paused until the transport attaches (which writes Sequence and the replay).
        The hub's ``on_connected`` does not run again; ``on_disconnected`` runs here when the
        connection ends. False when ``protocol_name`` is not served here."""
        protocol = ALL_PROTOCOLS.get(protocol_name)
        if protocol is None or protocol_name not in self.options.supported_protocols:
            return False
        self._protocol = protocol
        self._binary = protocol.transfer_format is TransferFormat.BINARY
        self._ping = protocol.write(PING)
        self._outbox = Outbox.restore(self.options.stateful_reconnect_buffer_size, snapshot)
        self._state = _CONNECTED
        self._lifetime_connected = True
        self._hub_connected = True
        now = self._host.clock()
        self._last_sent = self._last_received = now
        return True

    def _close(self, message: CloseMessage, exc: BaseException | None) -> None:
        if self._state > _CONNECTED:
            return
        protocol = self._protocol
        outbox = self._outbox
        if protocol is not None and (outbox is None or not outbox.paused):
            try:
                self._ctx.send(protocol.write(message), self._binary)
            except Exception:
                _log.logger.debug(_log.CLOSE_WRITE_FAILED, exc_info=True)
        self._state = _CLOSING
        self._ctx.close()
        self._begin_disconnect(exc)

    def _fail(self, exc: BaseException) -> None:
        """Error close with allowReconnect (protocol error, size limit, timeout)."""
        text = CLOSE_ERROR + detail(exc, self.options.detailed_errors)
        self._close(CloseMessage(error=text, allow_reconnect=True), exc)

    def _begin_disconnect(self, exc: BaseException | None) -> None:
        if self._disconnect_started:
            return
        self._disconnect_started = True
        previous = self._state
        self._state = _CLOSING
        self._queue = None
        self._held = None
        self._in.clear()
        tracker = self._invocations
        if tracker is not None:
            tracker.abort_all(CONNECTION_DISCONNECTED)
        if previous == _HANDSHAKE:
            self._state = _CLOSED
            self._host.forget(self)
            return
        self._host.spawn(self._finish_disconnect(exc))

    async def _finish_disconnect(self, exc: BaseException | None) -> None:
        handler = self._host
        try:
            task = self._connect_task
            if task is not None and not task.done():
                await asyncio.wait((task,))
            if self._hub_connected:
                await handler.dispatcher.on_disconnected(self, exc)
        finally:
            try:
                if self._lifetime_connected:
                    await handler.lifetime.on_disconnected(self)
            except Exception:
                _log.logger.exception(
                    "%s connection_id=%s", _log.LIFETIME_DISCONNECT_FAILED, self.connection_id
                )
            finally:
                self._state = _CLOSED
                handler.forget(self)

    # -- handshake -----------------------------------------------------------------------------

    def _handshake(self) -> bool:
        """Try to complete the handshake from ``self._in``; True once it succeeded."""
        options = self.options
        try:
            request, consumed = parse_handshake_request(self._in, max_message_size=self._max_in)
        except HandshakeError as exc:
            # Malformed request -> generic text (+ detail); "Handshake was canceled." as is.
            self._fail_handshake(
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
                if self._ctx.transport == TransportType.SERVER_SENT_EVENTS
                else None,
                supported_protocols=options.supported_protocols,
                protocols=ALL_PROTOCOLS,
            )
        except HandshakeError as exc:
            self._fail_handshake(str(exc))
            return False
        del self._in[:consumed]
        self._protocol = protocol
        self._binary = protocol.transfer_format is TransferFormat.BINARY
        self._ping = protocol.write(PING)
        if self._ctx.stateful_reconnect and request.version >= 2:
            # docs/spec/stateful-reconnect.md §5.1: version < 2 silently disables stateful
            # reconnect.
            # Writes are held until the client's first message (see Outbox).
            self._outbox = Outbox(options.stateful_reconnect_buffer_size, self._host.clock())
        else:
            # The transport of a connection without stateful reconnect never changes: keep
            # its broadcast entry point (one call less per delivery).
            self._fast_send = self._ctx.broadcast_sender()
        # The response precedes every other message (docs/spec/handshake.md §3.2.3); never
        # counted/buffered.
        self._ctx.send(write_handshake_response(), self._binary)
        now = self._host.clock()
        self._last_sent = self._last_received = now
        self._sent = self._received = False
        self._state = _CONNECTING
        self._connect_task = self._host.spawn(self._connect())
        return True

    def _fail_handshake(self, text: str) -> None:
        try:
            self._ctx.send(write_handshake_response(text), False)
        finally:
            self._ctx.close()
            self._begin_disconnect(None)

    async def _connect(self) -> None:
        handler = self._host
        try:
            await handler.lifetime.on_connected(self)
            self._lifetime_connected = True
            if self._state != _CONNECTING:
                return
            await handler.dispatcher.on_connected(self)
            self._hub_connected = True
        except Exception as exc:
            # HubConnectionHandler: error in OnConnectedAsync -> Close with error and no
            # allowReconnect; Hub.on_disconnected is not called.
            _log.logger.warning(
                "%s connection_id=%s", _log.ON_CONNECTED_FAILED, self.connection_id, exc_info=True
            )
            text = CLOSE_ERROR + detail(exc, self.options.detailed_errors)
            self._close(CloseMessage(error=text), exc)
            return
        if self._state == _CONNECTING:
            self._state = _CONNECTED
            self._host.stats.connections_total += 1
            self._ensure_runner()

    # -- incoming messages ---------------------------------------------------------------------

    def _process_input(self) -> None:
        try:
            held = self._held
            while held and not self._input_paused and self._state <= _CONNECTED:
                self._on_message(held.popleft())
            if not self._input_paused:
                self._parse()
        except ProtocolError as exc:
            _log.logger.info(
                "%s connection_id=%s error=%s", _log.PROTOCOL_ERROR, self.connection_id, exc
            )
            self._fail(exc)

    def _parse(self) -> None:
        buf = self._in
        limit = self._max_in
        protocol = self._protocol
        assert protocol is not None
        while buf and self._state <= _CONNECTED:
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
                if self._input_paused:
                    if self._held is None:
                        self._held = deque()
                    self._held.extend(messages[i:])
                    return
                if self._state > _CONNECTED:
                    return
                self._on_message(message)
            if self._input_paused:
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
            self.connection_id,
            exceeded,
        )
        # A deliberate flood: the client is told why and must not reconnect automatically.
        text = budget_exceeded(exceeded)
        self._close(CloseMessage(error=text), HubServerError(text))
        return True

    def _on_message(self, message: HubMessage) -> None:
        self._host.stats.messages_received += 1
        outbox = self._outbox
        if outbox is not None:
            if outbox.holding:
                self._release_startup_hold()
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
            tracker = self._invocations
            if tracker is not None and not tracker.push_item(message.invocation_id, message.item):
                self._input_paused = True
        elif type(message) is CompletionMessage:
            # A client result or the end of an upload; unknown ids are ignored
            # (docs/spec/hub-protocol.md §3.4).
            tracker = self._invocations
            if tracker is not None:
                tracker.on_completion(message)
        elif type(message) is CancelInvocationMessage:
            iid = message.invocation_id
            queued = self._queue
            if queued and any(m.invocation_id == iid for m in queued):
                # Its StreamInvocation is still queued: .NET registers a stream's cancellation
                # as it reads the invocation, so the cancel must not be lost as unknown.
                self.invocations.cancel_when_started(iid)
            elif (tracker := self._invocations) is not None:
                tracker.cancel_stream(iid)
        elif cls is PingMessage:
            # .NET enforces the client timeout only after the first client Ping
            # (docs/spec/hub-protocol.md §3.6).
            self._timeout_armed = True
        elif cls is CloseMessage:
            # A client Close is graceful: stop reading, answer {"type":7}, no error
            # (docs/spec/hub-protocol.md §3.7).
            self._close(CloseMessage(), None)
        elif type(message) is AckMessage and outbox is not None:
            outbox.buffer.on_ack(message.sequence_id)
        # Sequence was handled by should_process; unknown ids and types are ignored.

    def _upload_has_space(self) -> None:
        if self._input_paused and not self.invocations.uploads_full():
            self._input_paused = False
            asyncio.get_running_loop().call_soon(self._resume_input)

    def _stream_cancelled(self, invocation_id: str) -> None:
        self.send_message(CompletionMessage.empty(invocation_id))

    def _resume_input(self) -> None:
        if self._state <= _CONNECTED and not self._input_paused:
            self._process_input()

    # -- background work (used by the dispatcher) ----------------------------------------------

    def start_background(
        self, invocation_id: str | None, coro: Coroutine[Any, Any, None], is_stream: bool
    ) -> None:
        """Run a stream or upload invocation beside the ordered dispatch loop."""
        task = self._host.spawn(coro)
        if invocation_id is not None:
            self.invocations.track_background(invocation_id, task, is_stream)

    def _ensure_runner(self) -> None:
        # Runner tasks exist only while invocations are queued: an idle connection has none.
        if (
            self._queue
            and self._state == _CONNECTED
            and self._runners < self.options.maximum_parallel_invocations_per_client
        ):
            self._runners += 1
            self._host.spawn(self._run_queue())

    async def _run_queue(self) -> None:
        # With the default limit of 1 this runs a connection's invocations one at a time in
        # arrival order (MaximumParallelInvocationsPerClient, docs/spec/hub-protocol.md §3.4).
        dispatcher = self._host.dispatcher
        try:
            while self._state == _CONNECTED and (queue := self._queue):
                message = queue.popleft()
                try:
                    await dispatcher.dispatch(self, message)
                except Exception as exc:
                    _log.logger.exception(
                        "%s connection_id=%s", _log.DISPATCH_FAILED, self.connection_id
                    )
                    self._fail(exc)
        finally:
            self._runners -= 1
            if self._runners == 0 and not self._queue:
                self._queue = None  # back to zero per-connection containers when idle
            else:
                self._ensure_runner()

    # -- timers (called by the handler's shared ticker) ----------------------------------------

    def _release_startup_hold(self) -> None:
        outbox = self._outbox
        assert outbox is not None
        held = outbox.release()
        if held:
            for data in held:
                self._ctx.send(data, self._binary)
            self._sent = True

    def tick(self, now: float, wall: float) -> None:
        """One timer pass (called by the handler's ticker): handshake timeout, token expiry,
        keep-alive Ping, client timeout, stateful Acks."""
        state = self._state
        if state == _HANDSHAKE:
            if now >= self._handshake_deadline:
                self._fail_handshake(HANDSHAKE_CANCELED)
            return
        if state > _CONNECTED:
            return
        principal = self._ctx.principal
        if (
            principal is not None
            and principal.expires_at is not None
            and wall >= principal.expires_at
        ):
            # CloseOnAuthenticationExpiration: no error, reconnect allowed (fresh token).
            self._close(CloseMessage(allow_reconnect=True), None)
            return
        if self._received:
            self._received = False
            self._last_received = now
        if self._sent:
            self._sent = False
            self._last_sent = now
        outbox = self._outbox
        if outbox is not None:
            if outbox.hold_expired(now):
                # A stateful client that never spoke first: deliver what was held anyway.
                self._release_startup_hold()
            if outbox.paused:
                # Reconnect window: the connection layer owns the timeout now.
                self._last_received = self._last_sent = now
                return
        options = self.options
        if self._keepalive:
            if self._timeout_armed and now - self._last_received >= options.client_timeout_interval:
                self._fail(TimeoutError("client timeout elapsed"))
                return
            if now - self._last_sent >= options.keep_alive_interval:
                self._send_data(self._ping, False)
                self._sent = False
                self._last_sent = now
        if outbox is not None and self._state <= _CONNECTED:
            ack = outbox.buffer.ack_to_send()
            if ack is not None:
                protocol = self._protocol
                assert protocol is not None
                self._send_data(protocol.write(AckMessage(ack)), False)
