"""Shared fixtures (kept few on purpose; subdirectories add their own conftest files)."""

from __future__ import annotations

import pytest

from tests.support.hub_client import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    """A manually advanced monotonic clock for timeouts and keep-alives."""
    return FakeClock()


@pytest.fixture
def wall_clock() -> FakeClock:
    """A manually advanced Unix-time clock (token expiry)."""
    return FakeClock(start=1_700_000_000.0)
