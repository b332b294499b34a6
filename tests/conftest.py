"""Shared fixtures (kept few on purpose; subdirectories add their own conftest files)."""

from __future__ import annotations

import os

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


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """With AIUSAGE_FORBID_SKIPS=1 (set by scripts/test, i.e. in CI) a skipped test fails:
    a missing Node client, browser or server must not turn into a silent green run."""
    outcome = yield
    report = outcome.get_result()
    if (
        os.environ.get("AIUSAGE_FORBID_SKIPS") == "1"
        and report.skipped
        and not hasattr(report, "wasxfail")
    ):
        report.outcome = "failed"
        report.longrepr = f"skipped while AIUSAGE_FORBID_SKIPS=1: {report.longrepr}"
