"""Access log: one line per request, never containing a credential.

The ``access_token`` query value is replaced by ``[redacted]`` (browsers must put the token in
the query for WebSockets and SSE, signalr-protocol.md §1.6) and headers are never logged, so
``Authorization`` cannot leak.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import secrets

access_logger = logging.getLogger("hubserver.access")

_TOKEN_RE = re.compile(r"(?i)((?:^|[?&;])access_token=)[^&;#]*")
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_PREFIX = f"{os.getpid():x}{secrets.token_hex(3)}"
_counter = itertools.count(1)

REDACTED = "[redacted]"


def redact_target(target: str) -> str:
    """``target`` (path + query) with every ``access_token`` value redacted."""
    if "access_token" not in target.lower():
        return target
    return _TOKEN_RE.sub(lambda m: m.group(1) + REDACTED, target)


def request_id(incoming: str | None) -> str:
    """The client's ``X-Request-ID`` when well-formed, else a new process-unique id."""
    if incoming and _REQUEST_ID_RE.match(incoming):
        return incoming
    return f"{_PREFIX}-{next(_counter):x}"


def log_access(
    client: tuple[str, int] | None,
    method: str,
    target: str,
    status: int,
    duration: float,
    rid: str,
) -> None:
    """Emit one access line: client, method, redacted target, status, duration, request id."""
    if not access_logger.isEnabledFor(logging.INFO):
        return
    who = f"{client[0]}:{client[1]}" if client else "-"
    access_logger.info(
        '%s "%s %s" %d %.1fms rid=%s',
        who,
        method,
        redact_target(target),
        status,
        duration * 1000.0,
        rid,
    )
