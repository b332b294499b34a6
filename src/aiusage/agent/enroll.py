"""Trade a one-time enrollment code for a device token (``POST /api/agent/enroll``)."""

from __future__ import annotations

import getpass
import platform
from pathlib import Path

import httpx

from aiusage.agent.config import AgentConfig


class EnrollmentError(Exception):
    """The server refused the code, or could not be reached."""


async def enroll(
    server: str,
    code: str,
    config_dir: Path,
    *,
    device_name: str | None = None,
    client: httpx.AsyncClient | None = None,
) -> AgentConfig:
    """Enroll this device and store its credentials in ``config_dir``.

    Raises:
        EnrollmentError: invalid/expired/used code, or the server is unreachable.
    """
    own = client is None
    http = client or httpx.AsyncClient()
    try:
        resp = await http.post(
            server.rstrip("/") + "/api/agent/enroll",
            json={"code": code, "deviceName": device_name or platform.node()},
            timeout=30.0,
        )
    except httpx.HTTPError as exc:
        raise EnrollmentError(f"cannot reach {server}: {exc}") from exc
    finally:
        if own:
            await http.aclose()
    if resp.status_code != 200:
        try:
            detail = resp.json().get("detail", resp.text)
        except ValueError:
            detail = resp.text
        raise EnrollmentError(f"enrollment refused ({resp.status_code}): {detail}")
    body = resp.json()
    config = AgentConfig(
        server=server.rstrip("/"),
        token=body["token"],
        device_id=body["deviceId"],
        organization_id=body["organizationId"],
        # A code not bound to a user: the workstation's login name.
        user_id=body.get("userId") or getpass.getuser(),
    )
    config.save(config_dir)
    return config
