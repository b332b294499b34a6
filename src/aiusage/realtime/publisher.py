"""Domain events -> hub messages (the seed's ``SessionEventPublisher`` over ``IHubContext``).

Every payload is camelCase JSON (docs/metrics.md); the extra
fields (``organizationId``, ids, timestamps) are allowed by the contract and let one client
watching several organizations (SuperAdmin) tell them apart.

=================  ===================  ==============================================
Event              Group                Payload (required part)
=================  ===================  ==============================================
SessionStarted     ``org:{orgId}``      ``{sessionId, userId, startTime}``
SessionEnded       ``org:{orgId}``      ``{sessionId, duration, aiUsageTime}``
AIDetected         ``org:{orgId}``      ``{tool, duration, userId}``
UserJoined         ``org:{orgId}``      ``{userId, email, timestamp}``
DashboardUpdate    ``org:{orgId}``      ``{metrics, trends}``
Alert              ``org:`` / ``user:`` ``{type, message, severity}``
ExportCompleted    ``user:{o}:{u}``     ``{jobId, downloadUrl}``
=================  ===================  ==============================================

The publisher works on anything shaped like :class:`hubserver.HubContext` (the in-memory or
Redis lifetime manager behind it, or a write-only Redis publisher in ``aiusage worker``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from aiusage.domain.events import AgentEvent, AIDetected, SessionEnded, SessionStarted

log = logging.getLogger("aiusage.realtime.publisher")

SESSION_STARTED = "SessionStarted"
SESSION_ENDED = "SessionEnded"
AI_DETECTED = "AIDetected"
USER_JOINED = "UserJoined"
DASHBOARD_UPDATE = "DashboardUpdate"
ALERT = "Alert"
EXPORT_COMPLETED = "ExportCompleted"


class ClientSender(Protocol):
    """A target that can be sent a method call (``ClientProxy``)."""

    async def send(self, method: str, *args: Any) -> None:
        """Invoke ``method`` on every targeted client."""
        ...


class ClientTargets(Protocol):
    """The ``clients`` of a hub context."""

    def group(self, group: str) -> ClientSender:
        """Every connection in ``group``."""
        ...


class HubContextLike(Protocol):
    """What the publisher needs of :class:`hubserver.HubContext`."""

    @property
    def clients(self) -> ClientTargets:
        """Send targets."""
        ...


def org_group(org_id: str) -> str:
    """Tenant group of an organization (seed "Tenant Isolation")."""
    return f"org:{org_id}"


def user_group(org_id: str, user_id: str) -> str:
    """Group of every connection of one user: ``user:{orgId}:{userId}``, tenant-scoped
    because user ids are unique only within an organization (docs/security.md)."""
    return f"user:{org_id}:{user_id}"


def iso(moment: datetime) -> str:
    """ISO-8601 UTC with a ``Z`` suffix (what JavaScript's ``Date`` parses everywhere)."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def event_payload(org_id: str, event: AgentEvent) -> tuple[str, dict[str, Any]]:
    """The hub method and camelCase payload of one applied agent event."""
    if isinstance(event, SessionStarted):
        return SESSION_STARTED, {
            "sessionId": event.session_id,
            "userId": event.user_id,
            "startTime": iso(event.start_time),
            "tool": event.tool,
            "deviceId": event.device_id,
            "organizationId": org_id,
        }
    if isinstance(event, SessionEnded):
        return SESSION_ENDED, {
            "sessionId": event.session_id,
            "duration": event.duration,
            "aiUsageTime": event.ai_usage_time,
            "userId": event.user_id,
            "endTime": iso(event.end_time),
            "organizationId": org_id,
        }
    assert isinstance(event, AIDetected)
    return AI_DETECTED, {
        "tool": event.tool,
        "duration": event.duration,
        "userId": event.user_id,
        "sessionId": event.session_id,
        "detectedAt": iso(event.occurred_at),
        "organizationId": org_id,
    }


class EventPublisher:
    """Publishes platform events to the right hub groups.

    Args:
        hub_context: The AnalyticsHub's context (``MappedHub.hub_context``).
    """

    def __init__(self, hub_context: HubContextLike) -> None:
        self._hub = hub_context

    async def _to_org(self, org_id: str, method: str, payload: Mapping[str, Any]) -> None:
        await self._hub.clients.group(org_group(org_id)).send(method, payload)

    async def session_started(
        self,
        org_id: str,
        session_id: str,
        user_id: str,
        start_time: datetime,
        *,
        tool: str | None = None,
        device_id: str | None = None,
    ) -> None:
        """SessionStarted ``{sessionId, userId, startTime}`` to ``org:{org_id}``."""
        event = SessionStarted("", start_time, user_id, session_id, start_time, tool, device_id)
        await self.agent_event(org_id, event)

    async def session_ended(
        self,
        org_id: str,
        session_id: str,
        duration: float,
        ai_usage_time: float,
        *,
        user_id: str,
        end_time: datetime,
    ) -> None:
        """SessionEnded ``{sessionId, duration, aiUsageTime}`` to ``org:{org_id}``."""
        event = SessionEnded("", end_time, user_id, session_id, end_time, duration, ai_usage_time)
        await self.agent_event(org_id, event)

    async def ai_detected(
        self,
        org_id: str,
        tool: str,
        duration: float,
        user_id: str,
        *,
        detected_at: datetime,
        session_id: str | None = None,
    ) -> None:
        """AIDetected ``{tool, duration, userId}`` to ``org:{org_id}``."""
        event = AIDetected("", detected_at, user_id, tool, duration, session_id)
        await self.agent_event(org_id, event)

    async def agent_event(self, org_id: str, event: AgentEvent) -> None:
        """Publish one applied agent event with its own method name."""
        method, payload = event_payload(org_id, event)
        await self._to_org(org_id, method, payload)

    async def agent_events(self, org_id: str, events: Sequence[AgentEvent]) -> None:
        """Publish applied agent events in order (ingestion, after the commit)."""
        for event in events:
            await self.agent_event(org_id, event)

    async def user_joined(
        self, org_id: str, user_id: str, email: str | None, timestamp: datetime
    ) -> None:
        """UserJoined ``{userId, email, timestamp}`` to ``org:{org_id}``."""
        await self._to_org(
            org_id,
            USER_JOINED,
            {
                "userId": user_id,
                "email": email,
                "timestamp": iso(timestamp),
                "organizationId": org_id,
            },
        )

    async def dashboard_update(self, org_id: str, snapshot: Mapping[str, Any]) -> None:
        """DashboardUpdate ``{metrics, trends}`` to ``org:{org_id}`` (from the coalescer)."""
        payload = dict(snapshot)
        payload.setdefault("organizationId", org_id)
        await self._to_org(org_id, DASHBOARD_UPDATE, payload)

    async def alert(
        self, org_id: str, payload: Mapping[str, Any], user_id: str | None = None
    ) -> None:
        """Alert ``{type, message, severity}`` to ``user:{org_id}:{user_id}`` when given, else
        to ``org:{org_id}``."""
        body = dict(payload)
        body.setdefault("organizationId", org_id)
        if user_id is not None:
            await self._hub.clients.group(user_group(org_id, user_id)).send(ALERT, body)
        else:
            await self._to_org(org_id, ALERT, body)

    async def export_completed(
        self, org_id: str, user_id: str, job_id: str, download_url: str, **extra: Any
    ) -> None:
        """ExportCompleted ``{jobId, downloadUrl, organizationId}`` (plus camelCase ``extra``)
        to the requesting user's ``user:{orgId}:{userId}`` group (joined by every connection
        of that user of that organization, and no one else)."""
        payload: dict[str, Any] = {"jobId": job_id, "downloadUrl": download_url}
        payload.update(extra)
        payload.setdefault("organizationId", org_id)
        await self._hub.clients.group(user_group(org_id, user_id)).send(EXPORT_COMPLETED, payload)
