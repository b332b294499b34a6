"""The whole REST platform in process (tests/aiusage/api/p2b_support.py) with the real access
policy installed, as ``aiusage serve`` wires it, and its caches off so that a store change is
seen at the very next request."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from aiusage.auth.access_policy import AccessPolicy
from aiusage.auth.deps import install_access_policy
from aiusage.realtime.store_access import StoreAccess
from tests.aiusage.api.p2b_support import Platform, open_platform

BACKENDS = [
    "sqlite",
    pytest.param("postgres", marks=[pytest.mark.postgres, pytest.mark.integration]),
]


async def open_checked_platform(tmp_path: Path, kind: str) -> Platform:
    """``open_platform`` (organizations acme and globex) with the store check on."""
    p = await open_platform(tmp_path, kind, now=datetime.now(UTC))
    install_access_policy(p.app, AccessPolicy(StoreAccess(p.db, ttl=0), cache_ttl=0))
    return p
