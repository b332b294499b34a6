"""What the comparison servers share with the platform's ingestion endpoint: they accept the
same ``POST /api/agent/events`` body, take the organization from the agent token's ``org``
claim (decoded without verification: these are benchmark stand-ins, never exposed), and push
each event to the organization's connections with the platform's SessionStarted payload, so
the load tester measures all three stacks with the same client, driver and accounting."""

from __future__ import annotations

import base64
import json
from typing import Any


def org_of(authorization: str) -> str | None:
    """The ``org`` claim of ``Bearer <jwt>``, unverified."""
    token = authorization.removeprefix("Bearer ").strip()
    parts = token.split(".")
    if len(parts) != 3:
        return None
    body = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(body))
    except ValueError:
        return None
    org = claims.get("org") if isinstance(claims, dict) else None
    return org if isinstance(org, str) else None


def payloads(org: str, body: bytes) -> list[dict[str, Any]]:
    """The SessionStarted payloads of a batch (same fields as the platform's publisher)."""
    obj = json.loads(body)
    out = []
    for e in obj.get("events", []):
        out.append(
            {
                "sessionId": e.get("sessionId"),
                "userId": e.get("userId"),
                "startTime": e.get("startTime"),
                "tool": e.get("tool"),
                "deviceId": e.get("deviceId"),
                "organizationId": org,
            }
        )
    return out
