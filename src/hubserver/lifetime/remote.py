"""Requests to other servers that wait for an answer: group-command acks and client results.

A server that changes the groups of a connection it does not host publishes a group command
and waits for the hosting server's ack; a server that asks a remote connection for a client
result publishes the invocation with a return channel and waits for the completion
(docs/spec/backplane.md §6.3). This module keeps the waiters, and runs the hosting side of a
client result. Nothing here touches the bus: callers publish, these classes wait.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Generic, TypeVar

from hubserver.errors import BackplaneError, HubError, ProtocolError
from hubserver.lifetime import redis_wire as wire
from hubserver.lifetime.base import ConnectionSink
from hubserver.protocol.base import HubProtocol
from hubserver.protocol.messages import CompletionMessage, InvocationMessage

__all__ = ["EVENT_HANDLER_FAILED", "PendingAcks", "PendingResults", "Waiters", "answer_invocation"]

logger = logging.getLogger("hubserver.lifetime.pubsub")

EVENT_HANDLER_FAILED = "backplane.handler_failed"
"""Log event of a message handler or remote client-result run that raised unexpectedly."""

_INT32_MAX = 2**31 - 1

K = TypeVar("K")
V = TypeVar("V")


class Waiters(Generic[K, V]):
    """Futures keyed by request id: opened before publishing, resolved by the answer."""

    __slots__ = ("_futures",)

    def __init__(self) -> None:
        self._futures: dict[K, asyncio.Future[V]] = {}

    def open(self, key: K) -> asyncio.Future[V]:
        """A future for ``key``; open it *before* publishing, the answer may come at once."""
        future: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        self._futures[key] = future
        return future

    def close(self, key: K) -> None:
        """Forget ``key`` (in a ``finally``: answered, timed out or failed)."""
        self._futures.pop(key, None)

    def resolve(self, key: K, value: V) -> None:
        """Complete the waiter of ``key``; late or unknown answers are ignored."""
        future = self._futures.get(key)
        if future is not None and not future.done():
            future.set_result(value)

    def fail_all(self, error: BaseException) -> None:
        """Fail every waiter (the backplane stops)."""
        for future in self._futures.values():
            if not future.done():
                future.set_exception(error)


class PendingAcks(Waiters[int, None]):
    """Group commands waiting for the hosting server's ack, by command id."""

    __slots__ = ("_last_id",)

    def __init__(self) -> None:
        super().__init__()
        self._last_id = 0

    def next_id(self) -> int:
        """The next command id: an int32 counter per server, as .NET, wrapped before overflow."""
        self._last_id = self._last_id + 1 if self._last_id < _INT32_MAX else 1
        return self._last_id

    def on_ack(self, data: bytes) -> None:
        """An ack arrived on our ack channel.

        Raises:
            BackplaneError: the payload is not an ack.
        """
        self.resolve(wire.read_ack(data), None)


class PendingResults(Waiters[str, CompletionMessage]):
    """Client results waiting for a remote connection's completion, by invocation id."""

    __slots__ = ()

    def on_completion(self, data: bytes, protocols: Mapping[str, HubProtocol]) -> None:
        """A completion arrived on our return channel.

        Raises:
            BackplaneError: unknown protocol or undecodable payload.
        """
        completion = wire.read_completion(data)
        protocol = protocols.get(completion.protocol)
        if protocol is None:
            raise BackplaneError(f"Completion in unknown protocol '{completion.protocol}'.")
        try:
            messages, _ = protocol.parse(completion.payload)
        except ProtocolError as exc:
            raise BackplaneError(f"Invalid completion payload: {exc}") from exc
        for message in messages:
            if isinstance(message, CompletionMessage):
                self.resolve(message.invocation_id, message)


async def answer_invocation(
    sink: ConnectionSink | None,
    invocation: wire.RedisInvocation,
    protocols: Mapping[str, HubProtocol],
    timeout: float,  # noqa: ASYNC109 - the hosting side's wait for its client
) -> tuple[bytes | None, int]:
    """Run a client result for a connection we host; return the completion envelope to
    publish on the invocation's return channel (None when no payload was readable) and the
    number of undecodable payloads met.

    The sink owns the local invocation id and timeout. .NET forwards the client's own Completion
    bytes; we answer in the first protocol we could read, and the result is the same.
    """
    invocation_id = invocation.invocation_id
    assert invocation_id is not None
    protocol, parsed, bad = _parse_any(invocation.payloads, protocols)
    if protocol is None:
        return None, bad
    completion: CompletionMessage
    if sink is None or parsed is None:
        completion = CompletionMessage.with_error(invocation_id, "Connection disconnected.")
    else:
        try:
            result = await sink.invoke_client(parsed.target, list(parsed.arguments), timeout)
            completion = CompletionMessage.with_result(invocation_id, result)
        except HubError as exc:
            completion = CompletionMessage.with_error(invocation_id, str(exc))
        except Exception:
            logger.exception("%s client result", EVENT_HANDLER_FAILED)
            completion = CompletionMessage.with_error(invocation_id, "Invocation failed.")
    return wire.write_completion(protocol.name, protocol.write(completion)), bad


def _parse_any(
    payloads: Mapping[str, bytes], protocols: Mapping[str, HubProtocol]
) -> tuple[HubProtocol | None, InvocationMessage | None, int]:
    bad = 0
    for name, data in payloads.items():
        protocol = protocols.get(name)
        if protocol is None:
            continue
        try:
            messages, _ = protocol.parse(data)
        except ProtocolError:
            bad += 1
            continue
        for message in messages:
            if isinstance(message, InvocationMessage):
                return protocol, message, bad
        return protocol, None, bad
    return None, None, bad
