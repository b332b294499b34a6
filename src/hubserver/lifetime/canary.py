"""The canary: a probe that proves our subscription still receives what the bus delivers.

A subscription connection can stay open while the bus silently stopped delivering to it (a
proxy that lost state, an UNSUBSCRIBE nobody asked for). Publishing a sequence number on a
channel only this server subscribes, and waiting for it to come back, is the one check that
catches that (docs/spec/backplane.md §6.6).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from hubserver.errors import BackplaneError
from hubserver.lifetime import redis_wire as wire
from hubserver.lifetime.remote import Waiters

__all__ = ["Canary"]


class Canary:
    """Sends probes and matches the echoes.

    Args:
        timeout: Seconds a probe may take to come back.
    """

    __slots__ = ("_sequence", "_waiters", "timeout")

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._sequence = 0
        self._waiters: Waiters[int, None] = Waiters()

    def on_message(self, data: bytes) -> None:
        """A probe came back on our canary channel.

        Raises:
            BackplaneError: the payload is not a canary.
        """
        self._waiters.resolve(wire.read_canary(data), None)

    async def probe(self, publish: Callable[[bytes], Awaitable[int]]) -> bool:
        """Publish one probe with ``publish`` and wait for it; True when it came back."""
        self._sequence += 1
        sequence = self._sequence
        future = self._waiters.open(sequence)
        try:
            try:
                receivers = await publish(wire.write_canary(sequence))
            except BackplaneError:
                return False
            if receivers < 1:
                return False  # the bus no longer has us subscribed: deaf, no need to wait
            try:
                async with asyncio.timeout(self.timeout):
                    await future
            except TimeoutError:
                return False
            return True
        finally:
            self._waiters.close(sequence)

    def fail_all(self, error: BaseException) -> None:
        """Fail probes in flight (the backplane stops)."""
        self._waiters.fail_all(error)
