"""Shared fixtures (kept few on purpose; subdirectories add their own conftest files)."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import pytest

from tests.support.hub_client import FakeClock

# Test clients (httpx) log full request URLs at INFO, tokens in query strings included; the
# token-redaction tests are about what the *server* logs, so keep client chatter out.
for _client_logger in ("httpx", "httpcore"):
    logging.getLogger(_client_logger).setLevel(logging.WARNING)


@pytest.fixture(autouse=True)
def _restore_root_logging() -> Iterator[None]:
    """Tests that configure logging (serve, observability) must not leak it into others."""
    root = logging.getLogger()
    level, handlers, filters = root.level, list(root.handlers), list(root.filters)
    yield
    root.setLevel(level)
    root.handlers[:] = handlers
    root.filters[:] = filters


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
