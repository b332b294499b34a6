"""``configure_logging(access_all=...)``: the engine's routine access lines, on demand only."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from aiusage.observability.logs import ACCESS_LOGGER, configure_logging
from hubserver.server.access_log import ROUTINE, log_access

CLIENT = ("127.0.0.1", 5000)


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    access = logging.getLogger(ACCESS_LOGGER)
    handlers, level, access_level = list(root.handlers), root.level, access.level
    yield
    for h in list(root.handlers):
        if h not in handlers:
            root.removeHandler(h)
    root.setLevel(level)
    access.setLevel(access_level)


def emit_poll_negotiate_and_other_debug() -> None:
    log_access(CLIENT, "GET", "/hubs/analytics?id=abc", 200, 0.001, "r1", ROUTINE)
    log_access(CLIENT, "POST", "/hubs/analytics/negotiate", 200, 0.001, "r2")
    logging.getLogger("aiusage.something").debug("an unrelated debug line")


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_routine_lines_are_printed_only_with_access_all(restore_logging: None, fmt: str) -> None:
    default = io.StringIO()
    configure_logging(fmt, "INFO", stream=default)
    emit_poll_negotiate_and_other_debug()
    assert "rid=r2" in default.getvalue()
    assert "rid=r1" not in default.getvalue()

    everything = io.StringIO()
    configure_logging(fmt, "INFO", stream=everything, access_all=True)
    emit_poll_negotiate_and_other_debug()
    text = everything.getvalue()
    assert "rid=r1" in text and "rid=r2" in text
    assert "unrelated" not in text  # the root level is unchanged

    # Configuring again without the flag takes it back.
    again = io.StringIO()
    configure_logging(fmt, "INFO", stream=again)
    emit_poll_negotiate_and_other_debug()
    assert "rid=r1" not in again.getvalue()


def test_a_debug_root_level_prints_routine_lines_too(restore_logging: None) -> None:
    stream = io.StringIO()
    configure_logging("text", "DEBUG", stream=stream)
    emit_poll_negotiate_and_other_debug()
    assert "rid=r1" in stream.getvalue()
