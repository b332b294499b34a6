"""Deliver the outbox to ``POST /api/agent/events`` in batches, with retry and backoff.

* 2xx: the batch is stored server-side (committed before the answer); remove it locally.
* 422: the server refused the batch as a whole and named the bad events; those are dropped
  (logged by id, never retried forever) and the rest is sent again at once.
* 401/403: the device token was revoked or is wrong: :class:`TokenRevoked`, the agent stops
  sending and keeps everything queued until it is enrolled again.
* anything else (connection refused, timeouts, 5xx, 429): exponential backoff with jitter,
  capped; nothing is dropped.

Clock skew: each answer's ``Date`` header tells the server's clock; when the workstation's clock
is off by more than ``skew_tolerance`` seconds, timestamps are shifted to server time before
sending, so the server's ordering wins (docs/agent.md).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from aiusage.agent.queue import Outbox

log = logging.getLogger("aiusage.agent")

_TIME_FIELDS = ("occurredAt", "startTime", "endTime")


class TokenRevoked(Exception):
    """The server refused the device token (401/403)."""


class TransientFailure(Exception):
    """Sending failed in a way worth retrying later."""


class Sender:
    """Sends queued events; one instance per agent.

    Args:
        server: Base URL of the aiusage server.
        token: Device token (role Agent).
        outbox: The durable queue.
        client: HTTP client (tests pass one bound to a local server).
        batch_size: Events per request (server maximum: 1000).
        now: Wall clock (UTC-aware datetimes).
        sleep: Awaitable sleep (injected in tests).
    """

    def __init__(
        self,
        server: str,
        token: str,
        outbox: Outbox,
        client: httpx.AsyncClient,
        *,
        batch_size: int = 100,
        now: Callable[[], datetime],
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        max_backoff: float = 60.0,
        skew_tolerance: float = 2.0,
    ) -> None:
        self._url = server.rstrip("/") + "/api/agent/events"
        self.token = token
        self._outbox = outbox
        self._client = client
        self._batch = batch_size
        self._now = now
        self._sleep = sleep
        self._max_backoff = max_backoff
        self._tolerance = skew_tolerance
        self.clock_offset = timedelta(0)
        self.delivered = 0
        self.dropped = 0
        self.failures = 0

    async def send_once(self) -> int:
        """Send one batch; returns how many events left the queue (0 = queue empty).

        Raises:
            TokenRevoked: 401/403.
            TransientFailure: network error or a retryable status.
        """
        batch = self._outbox.peek(self._batch)
        if not batch:
            return 0
        events = [self._adjust(e) for _, e in batch]
        try:
            resp = await self._client.post(
                self._url,
                json={"events": events},
                headers={"Authorization": f"Bearer {self.token}"},
                timeout=30.0,
            )
        except httpx.HTTPError as exc:
            raise TransientFailure(f"{type(exc).__name__}: {exc}") from exc
        self._learn_clock(resp)
        if resp.status_code in (401, 403):
            raise TokenRevoked(f"server answered {resp.status_code}")
        if resp.status_code == 422:
            bad = self._invalid_indexes(resp)
            if not bad:  # a 422 about the batch itself: nothing to single out, retry later
                raise TransientFailure("422 without per-event errors")
            drop = [batch[i][0] for i in sorted(bad) if i < len(batch)]
            for i in sorted(bad):
                log.warning("agent.event_refused event_id=%s", batch[i][1].get("eventId"))
            self._outbox.remove(drop)
            self.dropped += len(drop)
            return len(drop)
        if not 200 <= resp.status_code < 300:
            raise TransientFailure(f"server answered {resp.status_code}")
        self._outbox.remove([seq for seq, _ in batch])
        self.delivered += len(batch)
        return len(batch)

    async def drain(
        self, stop: asyncio.Event | None = None, max_attempts: int | None = None
    ) -> None:
        """Send until the queue is empty, backing off on transient failures.

        Stops early when ``stop`` is set or after ``max_attempts`` consecutive failures.
        """
        attempt = 0
        while stop is None or not stop.is_set():
            try:
                if await self.send_once() == 0:
                    return
                attempt = 0
            except TransientFailure as exc:
                self.failures += 1
                attempt += 1
                if max_attempts is not None and attempt >= max_attempts:
                    return
                delay = min(self._max_backoff, 0.5 * 2 ** min(attempt, 10))
                delay *= 0.5 + random.random() / 2
                log.info("agent.send_retry attempt=%d delay=%.1fs reason=%s", attempt, delay, exc)
                await self._sleep(delay)

    def _adjust(self, event: dict[str, Any]) -> dict[str, Any]:
        if abs(self.clock_offset.total_seconds()) <= self._tolerance:
            return event
        out = dict(event)
        for key in _TIME_FIELDS:
            value = out.get(key)
            if isinstance(value, str):
                shifted = datetime.fromisoformat(value) + self.clock_offset
                out[key] = shifted.isoformat().replace("+00:00", "Z")
        return out

    def _learn_clock(self, resp: httpx.Response) -> None:
        date = resp.headers.get("date")
        if not date:
            return
        try:
            server_now = parsedate_to_datetime(date)
        except (TypeError, ValueError):
            return
        self.clock_offset = server_now - self._now()

    @staticmethod
    def _invalid_indexes(resp: httpx.Response) -> set[int]:
        try:
            detail = resp.json().get("detail")
        except ValueError:
            return set()
        if not isinstance(detail, list):
            return set()
        return {
            d["index"] for d in detail if isinstance(d, dict) and isinstance(d.get("index"), int)
        }
