"""The running agent: observe -> session events -> durable outbox -> sender.

Two loops in one process: the observer ticks every ``poll_seconds`` and commits the events it
produces (and the open session's state) to the outbox; the sender drains the outbox whenever
there is something to send, backing off while the server is unreachable.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from aiusage.agent.config import AgentConfig
from aiusage.agent.credentials import refresh_if_needed
from aiusage.agent.observer import Observer
from aiusage.agent.queue import Outbox
from aiusage.agent.sender import Sender, TokenRevoked
from aiusage.agent.sessions import SessionTracker
from aiusage.agent.signatures import load_signatures

log = logging.getLogger("aiusage.agent")

_STATE_KEY = "session"


def utcnow() -> datetime:
    """Current time, timezone-aware UTC."""
    return datetime.now(UTC)


class AgentRunner:
    """Glue between the observer, the tracker, the outbox and the sender.

    Args:
        config: Enrollment data and settings.
        outbox: Durable queue (its kv table also keeps the open session).
        observer: What tools are in use (default: processes + foreground title).
        client: HTTP client for the sender.
        now: Wall clock.
    """

    def __init__(
        self,
        config: AgentConfig,
        outbox: Outbox,
        client: httpx.AsyncClient,
        observer: Observer | None = None,
        now: Callable[[], datetime] = utcnow,
        config_dir: Path | None = None,
    ) -> None:
        self.config = config
        self.config_dir = config_dir
        self.client = client
        self._next_refresh = 0.0
        self.outbox = outbox
        self.observer = observer or Observer(load_signatures(config.extra_signatures))
        self.now = now
        self.tracker = SessionTracker(
            config.user_id, config.device_id, idle_timeout=timedelta(minutes=config.idle_minutes)
        )
        saved = outbox.get_state(_STATE_KEY)
        if saved:
            self.tracker.restore(saved)
            self._commit(self.tracker.resume())
        self.sender = Sender(config.server, config.token, outbox, client, now=now)
        self._wake = asyncio.Event()
        self.revoked = False

    def _commit(self, events: list[dict[str, object]]) -> None:
        # Events first, then the state that produced them: a crash between the two replays
        # an observation, and the server's eventId idempotency absorbs nothing twice because
        # the tracker assigns fresh ids only to new transitions.
        self.outbox.put(events)
        self.outbox.set_state(_STATE_KEY, self.tracker.state())
        if events:
            self._wake.set()

    def tick(self) -> list[dict[str, object]]:
        """One observation; returns the events it queued."""
        events = self.tracker.observe(self.observer.observe(), self.now())
        self._commit(events)
        return events

    def shutdown(self) -> None:
        """End the open session now (the agent is stopping) and queue its events."""
        self._commit(self.tracker.close(self.now()))

    async def _refresh_token(self) -> None:
        # Checked hourly; the token lasts 30 days and is renewed in its last week.
        if self.config_dir is None or time.monotonic() < self._next_refresh:
            return
        self._next_refresh = time.monotonic() + 3600
        if await refresh_if_needed(self.config, self.config_dir, self.client):
            self.sender.token = self.config.token
            log.info("agent.token_refreshed")

    async def _send_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self._refresh_token()
            try:
                await self.sender.drain(stop)
            except TokenRevoked as exc:
                self.revoked = True
                log.error("agent.token_revoked %s: re-enroll with `aiusage agent enroll`", exc)
                stop.set()
                return
            self._wake.clear()
            waiter = asyncio.ensure_future(self._wake.wait())
            stopper = asyncio.ensure_future(stop.wait())
            await asyncio.wait(
                {waiter, stopper},
                timeout=self.config.poll_seconds,
                return_when=asyncio.FIRST_COMPLETED,
            )
            waiter.cancel()
            stopper.cancel()

    async def run(self, stop: asyncio.Event, max_ticks: int | None = None) -> None:
        """Observe and send until ``stop`` is set (or ``max_ticks`` observations)."""
        sender = asyncio.create_task(self._send_loop(stop))
        ticks = 0
        try:
            while not stop.is_set() and (max_ticks is None or ticks < max_ticks):
                self.tick()
                ticks += 1
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.config.poll_seconds)
        finally:
            if not self.revoked:
                self.shutdown()
                stop.set()
                await sender
                # Last chance to deliver what the shutdown queued; the rest waits on disk.
                await self.sender.drain(max_attempts=1)
            else:
                await sender
