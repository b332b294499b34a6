"""The canary: a probe that proves our subscription still receives what the bus delivers.

A subscription connection can stay open while the bus silently stopped delivering to it (a
proxy that lost state, an UNSUBSCRIBE nobody asked for). Publishing a sequence number on a
channel only this server subscribes, and waiting for it to come back, is the one check that
catches that (docs/spec/backplane.md §6.6). :meth:`Canary.check` also repairs a deaf
subscription when the bus can, and :meth:`Canary.run` checks periodically.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from hubserver.errors import BackplaneError
from hubserver.lifetime import redis_wire as wire
from hubserver.lifetime.bus import BusHealth
from hubserver.lifetime.remote import EVENT_HANDLER_FAILED, Waiters

__all__ = ["EVENT_CANARY_FAILED", "Canary"]

# The manager's logger: one place for operators to filter backplane events.
logger = logging.getLogger("hubserver.lifetime.pubsub")

# Stable log event name: operators alert on it (docs/deploy.md "Logs").
EVENT_CANARY_FAILED = "backplane.canary_failed"


class Canary:
    """Sends probes and matches the echoes.

    Args:
        timeout: Seconds a probe may take to come back.
    """

    __slots__ = ("_sequence", "_waiters", "failures", "ok", "timeout")

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._sequence = 0
        self._waiters: Waiters[int, None] = Waiters()
        self.ok = True
        """False from a failed :meth:`check` until one succeeds."""
        self.failures = 0
        """Checks that found the subscription deaf while the bus was up."""

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

    async def check(
        self,
        publish: Callable[[bytes], Awaitable[int]],
        health: BusHealth | None,
        last_publish_ok: Callable[[], bool],
        server_name: str,
    ) -> bool:
        """Probe with ``publish``; when the probe is lost while the bus is up, repair the bus
        through ``health`` (if given) and let a second probe decide.

        Skipped (returns False) while the bus is reconnecting anyway, or when the probe was
        lost because publishing fails (``last_publish_ok()`` is False): the bus's reconnect
        loop owns that case. ``server_name`` goes into the failure log.

        Returns:
            True when the subscription delivers (possibly after a repair).
        """
        if health is not None and not health.is_ready():
            return False
        if await self.probe(publish):
            self.ok = True
            return True
        if (health is not None and not health.is_ready()) or not last_publish_ok():
            return False
        self.failures += 1
        self.ok = False
        logger.warning("%s server=%s", EVENT_CANARY_FAILED, server_name)
        if health is not None:
            await health.repair()
        self.ok = await self.probe(publish)
        return self.ok

    @staticmethod
    async def run(interval: float, check: Callable[[], Awaitable[bool]]) -> None:
        """Call ``check`` every ``interval`` seconds until cancelled; its errors are logged."""
        while True:
            await asyncio.sleep(interval)
            try:
                await check()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("%s canary", EVENT_HANDLER_FAILED)
