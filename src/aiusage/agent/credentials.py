"""Keep the device token fresh: ``POST /api/agent/token`` when it nears expiry."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import httpx

from aiusage.agent.config import AgentConfig

REFRESH_BEFORE_S = 7 * 24 * 3600
"""Refresh a device token when it has less than a week left (it lasts 30 days)."""


def token_expiry(token: str) -> float | None:
    """The ``exp`` claim of a JWT, read without verifying (the server verifies)."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return None
    exp = claims.get("exp")
    return float(exp) if isinstance(exp, int | float) else None


async def refresh_if_needed(
    config: AgentConfig, config_dir: Path, client: httpx.AsyncClient, now: float | None = None
) -> bool:
    """Swap the token for a fresh one when it expires within REFRESH_BEFORE_S.

    Returns True when a new token was stored. Network errors are left to the next attempt
    (the old token keeps working until it expires); a 401 means the device was revoked and
    is left to the sender to report.
    """
    exp = token_expiry(config.token)
    moment = time.time() if now is None else now
    if exp is not None and exp - moment > REFRESH_BEFORE_S:
        return False
    try:
        resp = await client.post(
            config.server + "/api/agent/token",
            headers={"Authorization": f"Bearer {config.token}"},
            timeout=30,
        )
    except httpx.HTTPError:
        return False
    if resp.status_code != 200:
        return False
    config.token = resp.json()["token"]
    config.save(config_dir)
    return True
