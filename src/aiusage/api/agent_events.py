"""``POST /api/agent/events``: agent batch ingestion (docs/agent.md).

Contract:

* ``Authorization: Bearer`` with role ``Agent``; the organization is the token's ``org`` and
  the device is its ``sub`` (a revoked device gets 401).
* Body ``{"events": [...]}``, at most ``max_batch_events`` (1,000) events and
  ``max_body_bytes``; a bigger body is refused with 413 before it is read completely. A body
  that is not UTF-8 JSON, or nests arrays/objects deeper than
  :data:`~aiusage.api.input_guard.MAX_JSON_DEPTH`, is refused with 400 before it is decoded.
* **All-or-nothing**: if any event is invalid the whole batch is refused with 422
  ``{"detail": [{"index", "eventId", "errors": [...]}]}`` and nothing is applied.
* Idempotent on ``eventId`` within the organization: 200 ``{"accepted", "duplicates"}``.
* The batch is committed before the 200 is sent, then published to ``org:{orgId}`` (so a client
  never sees an event that could still be lost); a publish failure is logged and counted but
  does not fail the request: the events are stored and show up in the next snapshot.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from aiusage.api.input_guard import JsonInputError, decode_json
from aiusage.auth.deps import require_principal
from aiusage.auth.principal import AGENT, UserPrincipal
from aiusage.domain.events import BatchInvalid, parse_batch
from aiusage.realtime.publisher import EventPublisher
from aiusage.store.ingest import Ingestor, IngestResult

log = logging.getLogger("aiusage.api.ingest")

INGEST_PATH = "/api/agent/events"
"""The route; it decodes its own body (see :class:`aiusage.api.input_guard.JsonBodyGuard`)."""

INGESTION_STATE_KEY = "ingestion_service"
"""Attribute of ``app.state`` holding the :class:`IngestionService`."""

AfterCommit = Callable[[Any], Awaitable[None]]
"""Post-commit callback receiving the batch's rollup (``metrics.hooks.IngestionHooks``)."""


@dataclass(slots=True)
class IngestionStats:
    """Counters for ``/metrics``: ingest rate and latency."""

    batches: int = 0
    events_accepted: int = 0
    events_duplicate: int = 0
    batches_rejected: int = 0
    publish_failures: int = 0
    latency_sum_s: float = 0.0
    latency_max_s: float = 0.0


class IngestionService:
    """Validate, apply, then publish one agent batch.

    Args:
        ingestor: Applies batches to the store.
        publisher: Sends live events (None: nothing is published, e.g. a CLI import).
        after_commit: Post-commit callbacks (dashboard coalescer, alert rules); they run in a
            background task after the batch is published, and their failures are logged,
            never returned to the agent.
        max_events: Largest accepted batch.
        clock: Aware-UTC wall clock (validation of future timestamps, ``received_at``).
    """

    def __init__(
        self,
        ingestor: Ingestor,
        publisher: EventPublisher | None,
        *,
        after_commit: Sequence[AfterCommit] = (),
        max_events: int = 1000,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.ingestor = ingestor
        self.publisher = publisher
        self.after_commit = list(after_commit)
        self.max_events = max_events
        self.clock = clock
        self.stats = IngestionStats()
        self._pending: set[asyncio.Task[None]] = set()

    async def submit(self, org_id: str, agent_id: str, payload: object) -> IngestResult:
        """Apply a decoded request body.

        Raises:
            BatchInvalid: Any event is invalid (nothing applied).
            aiusage.errors.AiUsageError: Organization refused, agent revoked, store failure.
        """
        started = time.perf_counter()
        now = self.clock()
        try:
            events = parse_batch(payload, max_events=self.max_events, now=now)
        except BatchInvalid:
            self.stats.batches_rejected += 1
            raise
        # Shielded: once the batch is handed to the store it is committed even if this request
        # is cancelled (client gone), and what is committed must also be published.
        result = await asyncio.shield(self._apply(org_id, agent_id, events, now))
        elapsed = time.perf_counter() - started
        stats = self.stats
        stats.batches += 1
        stats.events_accepted += result.accepted
        stats.events_duplicate += result.duplicates
        stats.latency_sum_s += elapsed
        stats.latency_max_s = max(stats.latency_max_s, elapsed)
        return result

    async def _apply(
        self, org_id: str, agent_id: str, events: Sequence[Any], now: datetime
    ) -> IngestResult:
        result = await self.ingestor.ingest(org_id, agent_id, events, now=now)
        await self._publish(result)
        return result

    async def _publish(self, result: IngestResult) -> None:
        if self.publisher is not None and (result.published or result.new_users):
            try:
                for user in result.new_users:
                    await self.publisher.user_joined(
                        result.org_id, user.user_id, user.email, user.created_at
                    )
                await self.publisher.agent_events(result.org_id, result.published)
            except Exception:  # stored already: clients catch up from the next snapshot
                self.stats.publish_failures += 1
                log.exception("publishing %d events of %s failed", result.accepted, result.org_id)
        if result.rollup is None or not self.after_commit:
            return
        # Dashboard marking and alert rules run after the answer: they read and write the
        # store, and an agent's POST (and the next batch's commit) must not wait for them.
        task = asyncio.get_running_loop().create_task(self._after_commit(result.rollup))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _after_commit(self, rollup: Any) -> None:
        for callback in self.after_commit:
            try:
                await callback(rollup)
            except Exception:
                log.exception("post-commit ingestion callback failed")

    async def drain(self) -> None:
        """Wait for the post-commit work of every batch accepted so far (tests, shutdown)."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)


def install_agent_events(app: Any, service: IngestionService, *, max_body_bytes: int) -> None:
    """Give the router its service (composition root)."""
    setattr(app.state, INGESTION_STATE_KEY, service)
    app.state.ingestion_max_body_bytes = max_body_bytes


# -- wire models (documentation and response validation) --------------------------------------


class IngestResponse(BaseModel):
    """Outcome of an accepted batch."""

    accepted: int
    duplicates: int


class EventErrorModel(BaseModel):
    """The problems of one event (``index`` null: the batch itself)."""

    index: int | None
    eventId: str | None  # camelCase on the wire
    errors: list[str]


class BatchErrors(BaseModel):
    """422: the batch was refused as a whole."""

    detail: list[EventErrorModel]


class ErrorBody(BaseModel):
    """Other errors."""

    detail: str


_TS = {"type": "string", "format": "date-time", "description": "ISO-8601 with a time zone"}
_ID = {"type": "string", "pattern": "^[!-~]{1,64}$", "description": "printable ASCII, no spaces"}
_TOOL = {"type": "string", "minLength": 1, "maxLength": 64, "pattern": "^[^\\x00-\\x20\\x7f]"}
_SECONDS = {"type": "number", "minimum": 0, "maximum": 86400, "description": "seconds"}
_COMMON = {"eventId": _ID, "occurredAt": _TS, "userId": _ID}


def _event_schema(kind: str, required: list[str], fields: dict[str, Any]) -> dict[str, Any]:
    # Optional fields may also be null (agents serialise "no session" as null).
    optional = {
        name: {**schema, "type": [schema["type"], "null"]}
        for name, schema in fields.items()
        if name not in required
    }
    return {
        "type": "object",
        "title": kind,
        "required": ["eventId", "type", "occurredAt", "userId", *required],
        "properties": {
            "type": {"type": "string", "const": kind},
            **_COMMON,
            **fields,
            **optional,
        },
    }


_BATCH_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["events"],
    "properties": {
        "events": {
            "type": "array",
            "maxItems": 1000,
            "items": {
                "oneOf": [
                    _event_schema(
                        "SessionStarted",
                        ["sessionId", "startTime"],
                        {"sessionId": _ID, "startTime": _TS, "tool": _TOOL, "deviceId": _ID},
                    ),
                    _event_schema(
                        "SessionEnded",
                        ["sessionId", "endTime", "duration", "aiUsageTime"],
                        {
                            "sessionId": _ID,
                            "endTime": _TS,
                            "duration": _SECONDS,
                            "aiUsageTime": {
                                **_SECONDS,
                                "description": "seconds, at most duration",
                            },
                        },
                    ),
                    _event_schema(
                        "AIDetected",
                        ["tool", "duration"],
                        {"tool": _TOOL, "duration": _SECONDS, "sessionId": _ID},
                    ),
                ]
            },
        }
    },
}

router = APIRouter(tags=["agent"])
_agent_only = require_principal(roles=[AGENT])


async def _read_body(request: Request, limit: int) -> bytes | None:
    """The body, or None when it exceeds ``limit`` (stops reading at the limit)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


@router.post(
    INGEST_PATH,
    response_model=IngestResponse,
    responses={
        400: {
            "model": ErrorBody,
            "description": "body is not UTF-8 JSON, or nested deeper than 32 levels",
        },
        401: {"model": ErrorBody, "description": "missing, invalid or revoked agent token"},
        403: {"model": ErrorBody, "description": "not an Agent token, or organization refused"},
        413: {"model": ErrorBody, "description": "body too large"},
        422: {"model": BatchErrors, "description": "invalid events; nothing was applied"},
        503: {"model": ErrorBody, "description": "store unavailable; retry the batch"},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _BATCH_SCHEMA}},
        }
    },
)
async def post_agent_events(
    request: Request, principal: UserPrincipal = Depends(_agent_only)
) -> IngestResponse | JSONResponse:
    """Ingest a batch of agent events (role Agent; the organization is the token's).

    * **All-or-nothing**: every event is validated (types, lengths and charsets, ISO-8601
      timestamps with a time zone from 2000-01-01 to 24 h ahead, finite durations from 0 to
      86,400 s, `aiUsageTime` at most `duration`, known types, no lone UTF-16 surrogates); if
      any is invalid nothing is applied and the 422 lists each invalid event's `index`,
      `eventId` and `errors`.
    * **Idempotent** on `eventId` within the organization: repeats (across batches or inside
      one) are counted in `duplicates` and change nothing.
    * Events are committed before the 200 and then published to `org:{orgId}`
      (SessionStarted, SessionEnded, AIDetected; UserJoined for users seen the first time).
    * Sessions: a SessionStarted sets the start (and tool/device when given); the first
      SessionEnded sets end, duration and aiUsageTime (later ones change nothing); an end
      that arrives before its start creates the session with start = end - duration until
      the start arrives.
    * At most 1,000 events per batch; bodies over the configured limit get 413.
    """
    service: IngestionService = getattr(request.app.state, INGESTION_STATE_KEY)
    limit: int = request.app.state.ingestion_max_body_bytes
    body = await _read_body(request, limit)
    if body is None:
        return JSONResponse({"detail": f"body exceeds {limit} bytes"}, status_code=413)
    try:
        # Not strict: strings and numbers are checked per event (a per-event 422 lets the
        # agent drop just that event), and unknown fields are ignored, never stored.
        payload = decode_json(body, strict=False)
    except JsonInputError as exc:
        return JSONResponse({"detail": exc.message}, status_code=exc.status)
    try:
        result = await service.submit(principal.org, principal.sub, payload)
    except BatchInvalid as exc:
        return JSONResponse({"detail": [error.to_json() for error in exc.errors]}, status_code=422)
    return IngestResponse(accepted=result.accepted, duplicates=result.duplicates)
