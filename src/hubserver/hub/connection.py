"""One hub connection: its identity, its write path and its lifecycle from handshake to close.

:class:`HubConnection` is the :class:`~hubserver.transports.base.ConnectionApplication` the
connection layer feeds bytes into, and the :class:`~hubserver.lifetime.base.ConnectionSink` the
lifetime manager writes to. It is callback driven: an idle connection owns no asyncio task and
no queue (docs/adr/0001). A task exists only while there is work -- the ``on_connected`` hook,
a burst of invocations being run one at a time, a stream, or the disconnect hooks. Timers are
served by the handler's single shared ticker (``hub.ticker``), which calls :meth:`tick`.

What the client sends -- handshake, hub messages, the invocation queue -- is read by its
:class:`~hubserver.hub.inbound.Inbound`; stateful reconnect's buffering lives in an
:class:`~hubserver.hub.outbox.Outbox`. The connection knows its handler only through
:class:`~hubserver.hub.host.ConnectionHost`, so the dependencies run one way: handler ->
connection -> inbound/outbox, and dispatcher -> connection.

Lifecycle (cf. HubConnectionHandler.cs): handshake -> ``lifetime.on_connected`` ->
``Hub.on_connected`` -> dispatch -> ``Hub.on_disconnected`` -> ``lifetime.on_disconnected``,
the last two exactly once whatever ends the connection.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from hubserver.connections.context import ConnectionContext, HttpRequestInfo, Principal
from hubserver.connections.manager import claimed_connection_id
from hubserver.errors import HubError, HubServerError, TransportError
from hubserver.hub import _log
from hubserver.hub.host import ConnectionHost
from hubserver.hub.hub import GroupManager, HubCallerClients, HubCallerContext
from hubserver.hub.inbound import Inbound
from hubserver.hub.outbox import Outbox
from hubserver.hub.tracker import InvocationTracker
from hubserver.protocol.base import HubProtocol, TransferFormat
from hubserver.protocol.handshake import HANDSHAKE_CANCELED, write_handshake_response
from hubserver.protocol.message_buffer import BufferSnapshot
from hubserver.protocol.messages import (
    PING,
    TRACKABLE_TYPES,
    AckMessage,
    CloseMessage,
    HubMessage,
    InvocationMessage,
    SequenceMessage,
)
from hubserver.protocol.registry import ALL_PROTOCOLS
from hubserver.protocol.serialized import SerializedMessage
from hubserver.protocol.texts import (
    CLOSE_ERROR,
    CONNECTION_DISCONNECTED,
    client_result_timeout,
    detail,
)
from hubserver.transports.base import TransportType
from hubserver.types import ConnectionId, UserId

__all__ = ["HubConnection"]

# States, in order: comparisons like ``state > _CONNECTED`` are used below.
_HANDSHAKE = 0
_CONNECTING = 1  # handshake answered; lifetime/Hub.on_connected running
_CONNECTED = 2
_CLOSING = 3  # close decided; disconnect hooks pending
_CLOSED = 4

_result_ids = itertools.count(1)


class HubConnection:
    """The hub layer's view of one connection (cf. ``HubConnectionContext``).

    Created by :meth:`HubConnectionHandler.create_application`; not instantiated directly.

    Attributes:
        options: The handler's :class:`~hubserver.options.HubOptions`.
    """

    __slots__ = (
        "_binary",
        "_caller_clients",
        "_caller_context",
        "_connect_task",
        "_ctx",
        "_disconnect_started",
        "_fast_send",
        "_handshake_deadline",
        "_host",
        "_hub_connected",
        "_inbound",
        "_keepalive",
        "_last_received",
        "_last_sent",
        "_lifetime_connected",
        "_max_out",
        "_outbox",
        "_ping",
        "_protocol",
        "_sent",
        "_state",
        "_timeout_armed",
        "_user_id",
        "options",
    )

    def __init__(
        self, host: ConnectionHost[HubConnection], ctx: ConnectionContext, now: float
    ) -> None:
        options = host.options
        self._host = host
        self._ctx = ctx
        self.options = options
        self._state = _HANDSHAKE
        self._inbound = Inbound(self, host, options, now)
        self._protocol: HubProtocol | None = None
        self._binary = False
        self._ping = b""
        self._handshake_deadline = now + options.handshake_timeout
        self._max_out = options.max_outgoing_buffer
        # Keep-alive and client timeout are off for long polling (docs/spec/transports.md §2.4).
        self._keepalive = not ctx.has_inherent_keepalive
        self._sent = False
        self._last_sent = now
        self._last_received = now
        self._timeout_armed = False
        principal = ctx.principal
        self._user_id = UserId(principal.user_id) if principal is not None else None
        self._connect_task: asyncio.Task[None] | None = None
        # Only for connections that negotiated stateful reconnect.
        self._outbox: Outbox | None = None
        self._fast_send: Callable[[SerializedMessage, HubProtocol], int] | None = None
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
        tracker = self._inbound.tracker
        return tracker if tracker is not None else self._inbound.invocations

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
        self._inbound.feed(data)

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
        self._inbound.stop()
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
        self._inbound.start(protocol, self._outbox)
        self._state = _CONNECTED
        self._lifetime_connected = True
        self._hub_connected = True
        now = self._host.clock()
        self._last_sent = self._last_received = now
        self._inbound.run()
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

    def fail(self, exc: BaseException) -> None:
        """Error close with allowReconnect (protocol error, size limit, timeout)."""
        text = CLOSE_ERROR + detail(exc, self.options.detailed_errors)
        self._close(CloseMessage(error=text, allow_reconnect=True), exc)

    def _begin_disconnect(self, exc: BaseException | None) -> None:
        if self._disconnect_started:
            return
        self._disconnect_started = True
        previous = self._state
        self._state = _CLOSING
        self._inbound.stop()
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

    # -- reported by the inbound side ----------------------------------------------------------

    def accept_handshake(self, protocol: HubProtocol, version: int) -> None:
        """The handshake request named ``protocol`` (handshake ``version``): answer it, set up
        the write path and start the connect hooks."""
        self._protocol = protocol
        self._binary = protocol.transfer_format is TransferFormat.BINARY
        self._ping = protocol.write(PING)
        if self._ctx.stateful_reconnect and version >= 2:
            # docs/spec/stateful-reconnect.md §5.1: version < 2 silently disables stateful
            # reconnect.
            # Writes are held until the client's first message (see Outbox).
            self._outbox = Outbox(self.options.stateful_reconnect_buffer_size, self._host.clock())
        else:
            # The transport of a connection without stateful reconnect never changes: keep
            # its broadcast entry point (one call less per delivery).
            self._fast_send = self._ctx.broadcast_sender()
        self._inbound.start(protocol, self._outbox)
        # The response precedes every other message (docs/spec/handshake.md §3.2.3); never
        # counted/buffered.
        self._ctx.send(write_handshake_response(), self._binary)
        now = self._host.clock()
        self._last_sent = self._last_received = now
        self._sent = self._inbound.received = False
        self._state = _CONNECTING
        self._connect_task = self._host.spawn(self._connect())

    def fail_handshake(self, text: str) -> None:
        """Answer the handshake with the error ``text`` and close."""
        try:
            self._ctx.send(write_handshake_response(text), False)
        finally:
            self._ctx.close()
            self._begin_disconnect(None)

    def client_pinged(self) -> None:
        """The client sent a Ping: .NET enforces the client timeout only after the first one
        (docs/spec/hub-protocol.md §3.6)."""
        self._timeout_armed = True

    def release_startup_hold(self) -> None:
        """Stateful reconnect: write what the outbox held until the client's first message."""
        outbox = self._outbox
        assert outbox is not None
        held = outbox.release()
        if held:
            for data in held:
                self._ctx.send(data, self._binary)
            self._sent = True

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
            self._inbound.run()

    # -- background work (used by the dispatcher) ----------------------------------------------

    def start_background(
        self, invocation_id: str | None, coro: Coroutine[Any, Any, None], is_stream: bool
    ) -> None:
        """Run a stream or upload invocation beside the ordered dispatch loop."""
        task = self._host.spawn(coro)
        if invocation_id is not None:
            self.invocations.track_background(invocation_id, task, is_stream)

    # -- timers (called by the handler's shared ticker) ----------------------------------------

    def tick(self, now: float, wall: float) -> None:
        """One timer pass (called by the handler's ticker): handshake timeout, token expiry,
        keep-alive Ping, client timeout, stateful Acks."""
        state = self._state
        if state == _HANDSHAKE:
            if now >= self._handshake_deadline:
                self.fail_handshake(HANDSHAKE_CANCELED)
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
        inbound = self._inbound
        if inbound.received:
            inbound.received = False
            self._last_received = now
        if self._sent:
            self._sent = False
            self._last_sent = now
        outbox = self._outbox
        if outbox is not None:
            if outbox.hold_expired(now):
                # A stateful client that never spoke first: deliver what was held anyway.
                self.release_startup_hold()
            if outbox.paused:
                # Reconnect window: the connection layer owns the timeout now.
                self._last_received = self._last_sent = now
                return
        options = self.options
        if self._keepalive:
            if self._timeout_armed and now - self._last_received >= options.client_timeout_interval:
                self.fail(TimeoutError("client timeout elapsed"))
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
