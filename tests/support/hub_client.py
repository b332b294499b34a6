"""In-memory hub client speaking real protocol bytes (cf. aspnetcore Tests.Utils/TestClient.cs).

:class:`FakeConnectionContext` stands in for the connection layer: it records every transport
message the hub writes and can simulate a stalled socket. :class:`HubTestClient` encodes
messages with the real codecs, feeds them to the :class:`HubConnection`, and decodes what
comes back. No sockets, no sleeps: waiting is bounded polling of the event loop.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from typing import Any

from hubserver.connections.context import HttpRequestInfo, Principal
from hubserver.errors import TransportError
from hubserver.hub.handler import HubConnectionHandler
from hubserver.protocol.base import HubProtocol, TransferFormat
from hubserver.protocol.handshake import (
    HandshakeResponse,
    parse_handshake_response,
    write_handshake_request,
)
from hubserver.protocol.messages import (
    CancelInvocationMessage,
    CloseMessage,
    CompletionMessage,
    HubMessage,
    InvocationMessage,
    MessageType,
    StreamInvocationMessage,
    StreamItemMessage,
)
from hubserver.protocol.registry import get_protocol
from hubserver.protocol.serialized import SerializedMessage
from hubserver.transports.base import ConnectionApplication, TransportType
from hubserver.types import ConnectionId, ConnectionToken

MS = 0.001
DEFAULT_TIMEOUT = 2.0

_ids = itertools.count(1)


class FakeClock:
    """A manually advanced clock (seconds)."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeConnectionContext:
    """A ConnectionContext that records writes instead of touching a socket."""

    def __init__(
        self,
        connection_id: str | None = None,
        *,
        transport: TransportType = TransportType.WEB_SOCKETS,
        principal: Principal | None = None,
        stateful_reconnect: bool = False,
        request: HttpRequestInfo | None = None,
    ) -> None:
        n = next(_ids)
        self._id = ConnectionId(connection_id or f"conn-{n}")
        self._token = ConnectionToken(f"token-{n}")
        self._transport = transport
        self._principal = principal
        self._stateful = stateful_reconnect
        self._request = request or HttpRequestInfo("GET", "/hub", {}, {})
        self._items: dict[str, Any] = {}
        self.app: ConnectionApplication | None = None
        self.sent: list[tuple[bytes, bool]] = []
        self.serialized_sends = 0
        self.closed = False
        self.aborted = False
        self.stalled = False
        self.unsent = 0
        self.lost = False

    @property
    def connection_id(self) -> ConnectionId:
        return self._id

    @property
    def connection_token(self) -> ConnectionToken:
        return self._token

    @property
    def transport(self) -> TransportType:
        return self._transport

    @property
    def request(self) -> HttpRequestInfo:
        return self._request

    @property
    def principal(self) -> Principal | None:
        return self._principal

    @property
    def items(self) -> dict[str, Any]:
        return self._items

    @property
    def has_inherent_keepalive(self) -> bool:
        return self._transport == TransportType.LONG_POLLING

    @property
    def stateful_reconnect(self) -> bool:
        return self._stateful

    def set_application(self, app: ConnectionApplication) -> None:
        self.app = app

    def send(self, payload: bytes, binary: bool) -> None:
        if self.closed or self.aborted:
            return
        if self.stalled:
            self.unsent += len(payload)
            return
        self.sent.append((payload, binary))

    def send_serialized(self, message: SerializedMessage, protocol: HubProtocol) -> int:
        self.serialized_sends += 1
        self.send(message.get(protocol), protocol.transfer_format is TransferFormat.BINARY)
        return self.buffered_bytes()

    def broadcast_sender(self):
        return self.send_serialized

    def buffered_bytes(self) -> int:
        return self.unsent

    def close(self) -> None:
        if self.closed or self.aborted:
            return
        self.closed = True
        self._lose(None)

    def abort(self) -> None:
        if self.closed or self.aborted:
            return
        self.aborted = True
        self._lose(TransportError("aborted"))

    def drop(self, exc: BaseException | None = None) -> None:
        """The client vanished (transport error)."""
        self.aborted = True
        self._lose(exc)

    def _lose(self, exc: BaseException | None) -> None:
        # The real connection layer reports the end asynchronously.
        app = self.app

        def report() -> None:
            if not self.lost and app is not None:
                self.lost = True
                app.connection_lost(exc)

        asyncio.get_running_loop().call_soon(report)


class HubTestClient:
    """Drives one :class:`HubConnection` through a fake context.

    Args:
        handler: The handler under test.
        protocol: ``"json"`` or ``"messagepack"``.
        **ctx_kwargs: Passed to :class:`FakeConnectionContext`.
    """

    def __init__(
        self, handler: HubConnectionHandler, protocol: str = "json", **ctx_kwargs: Any
    ) -> None:
        self.handler = handler
        proto = get_protocol(protocol)
        assert proto is not None
        self.protocol: HubProtocol = proto
        self.protocol_name = protocol
        self.ctx = FakeConnectionContext(**ctx_kwargs)
        self.app = handler.create_application(self.ctx)
        self.ctx.set_application(self.app)
        self.handshake: HandshakeResponse | None = None
        self.received: list[HubMessage] = []
        self._frames_read = 0
        self._rx = bytearray()
        self._ids = itertools.count(0)

    @property
    def connection_id(self) -> str:
        return self.ctx.connection_id

    # -- raw I/O -------------------------------------------------------------------------------

    def send_raw(self, data: bytes) -> None:
        self.app.data_received(data)

    def send_message(self, message: HubMessage) -> None:
        self.send_raw(self.protocol.write(message))

    def read(self) -> list[HubMessage]:
        """Decode frames written since the last call; returns the new messages."""
        new: list[HubMessage] = []
        frames = self.ctx.sent
        while self._frames_read < len(frames):
            payload, _binary = frames[self._frames_read]
            self._frames_read += 1
            self._rx += payload
            if self.handshake is None:
                response, consumed = parse_handshake_response(self._rx)
                if response is None:
                    continue
                self.handshake = response
                del self._rx[:consumed]
            messages, consumed = self.protocol.parse(self._rx)
            del self._rx[:consumed]
            new.extend(messages)
        self.received.extend(new)
        return new

    # -- protocol helpers ----------------------------------------------------------------------

    async def connect(self, version: int = 1, protocol: str | None = None) -> HandshakeResponse:
        """Send the handshake and wait for the response (and on_connected to run)."""
        self.send_raw(write_handshake_request(protocol or self.protocol_name, version))
        await wait_until(lambda: self._handshaken())
        assert self.handshake is not None
        await settle()
        return self.handshake

    def _handshaken(self) -> bool:
        self.read()
        return self.handshake is not None

    def next_id(self) -> str:
        return str(next(self._ids))

    async def invoke(
        self,
        target: str,
        *args: Any,
        stream_ids: list[str] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> CompletionMessage:
        """Blocking invocation; returns the Completion."""
        iid = self.next_id()
        self.send_message(
            InvocationMessage(
                target=target, arguments=list(args), invocation_id=iid, stream_ids=stream_ids
            )
        )
        return await self.wait_completion(iid, timeout)

    def send(self, target: str, *args: Any, stream_ids: list[str] | None = None) -> None:
        """Non-blocking invocation (no id)."""
        self.send_message(
            InvocationMessage(target=target, arguments=list(args), stream_ids=stream_ids)
        )

    def start_stream(self, target: str, *args: Any) -> str:
        iid = self.next_id()
        self.send_message(
            StreamInvocationMessage(invocation_id=iid, target=target, arguments=list(args))
        )
        return iid

    async def stream(
        self, target: str, *args: Any, timeout: float = DEFAULT_TIMEOUT
    ) -> tuple[list[Any], CompletionMessage]:
        """Run a server-to-client stream to its end: (items, final completion)."""
        iid = self.start_stream(target, *args)
        completion = await self.wait_completion(iid, timeout)
        items = [
            m.item
            for m in self.received
            if isinstance(m, StreamItemMessage) and m.invocation_id == iid
        ]
        return items, completion

    def cancel(self, invocation_id: str) -> None:
        self.send_message(CancelInvocationMessage(invocation_id=invocation_id))

    def close(self) -> None:
        self.send_message(CloseMessage())

    async def wait_completion(
        self, invocation_id: str, timeout: float = DEFAULT_TIMEOUT
    ) -> CompletionMessage:
        message = await self.wait_for(
            lambda m: isinstance(m, CompletionMessage) and m.invocation_id == invocation_id,
            timeout,
        )
        assert isinstance(message, CompletionMessage)
        return message

    async def wait_for(
        self, predicate: Callable[[HubMessage], bool], timeout: float = DEFAULT_TIMEOUT
    ) -> HubMessage:
        """First received message (old or new) matching ``predicate``."""
        found: list[HubMessage] = []

        def check() -> bool:
            self.read()
            for m in self.received:
                if predicate(m):
                    found.append(m)
                    return True
            return False

        await wait_until(check, timeout)
        return found[0]

    def tick(self, clock: FakeClock | None = None, seconds: float = 0.0) -> None:
        """Advance ``clock`` by ``seconds`` and run one pass of the handler's ticker."""
        if clock is not None:
            clock.advance(seconds)
        self.handler.tick()

    def last_close(self) -> CloseMessage:
        """The last message received, which must be a Close."""
        self.read()
        message = self.received[-1]
        assert isinstance(message, CloseMessage), message
        return message

    def of_type(self, kind: MessageType) -> list[HubMessage]:
        self.read()
        return [m for m in self.received if m.type is kind]

    def invocations(self) -> list[InvocationMessage]:
        self.read()
        return [m for m in self.received if isinstance(m, InvocationMessage)]


async def settle(rounds: int = 10) -> None:
    """Let scheduled callbacks and tasks run a few loop iterations."""
    for _ in range(rounds):
        await asyncio.sleep(0)


async def wait_until(condition: Callable[[], bool], timeout: float = DEFAULT_TIMEOUT) -> None:
    """Poll ``condition`` on every loop iteration until true; AssertionError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0 if time.monotonic() < deadline - timeout + 0.05 else MS)
