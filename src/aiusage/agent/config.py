"""The agent's configuration and credentials, kept in the user's config directory.

``agent.json`` (mode 0600) holds the server URL, the revocable device token and ids returned
by enrollment, plus optional settings (``pollSeconds``, ``idleMinutes``, ``extraSignatures``).
The outbox database lives beside it.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import platformdirs


def default_config_dir() -> Path:
    """``$AIUSAGE_AGENT_HOME``, else the per-user config dir (e.g. ~/.config/aiusage-agent)."""
    env = os.environ.get("AIUSAGE_AGENT_HOME")
    return Path(env) if env else Path(platformdirs.user_config_dir("aiusage-agent"))


@dataclass(slots=True)
class AgentConfig:
    """What ``aiusage agent enroll`` stores and ``aiusage agent run`` reads."""

    server: str
    token: str
    device_id: str
    organization_id: str
    user_id: str
    poll_seconds: float = 5.0
    idle_minutes: float = 5.0
    extra_signatures: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def load(cls, directory: Path) -> AgentConfig:
        """Read ``agent.json``.

        Raises:
            FileNotFoundError: the agent was never enrolled.
            ValueError: the file is not a valid configuration.
        """
        data = json.loads((directory / "agent.json").read_text("utf-8"))
        try:
            return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})
        except TypeError as exc:
            raise ValueError(f"invalid agent.json: {exc}") from exc

    def save(self, directory: Path) -> Path:
        """Write ``agent.json`` readable by the owner only."""
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / "agent.json"
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(asdict(self), f, indent=2)
        os.replace(tmp, path)
        return path
