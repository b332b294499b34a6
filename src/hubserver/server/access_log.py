"""Access log: one line per request, never containing a credential.

Every line goes to the ``hubserver.access`` logger at INFO, except the routine traffic of an
established connection (a long-polling poll, a message POST, the closing DELETE, their CORS
preflights: hub-endpoint requests that are not a negotiate and were answered below 400), which
goes at :data:`ROUTINE`, DEBUG. A long-polling client polls once per batch and a fallback client
POSTs once per invocation, so at INFO those lines would cost more than the messages they carry
(docs/deploy.md "Logs"); negotiates, WebSocket upgrades, event streams, errors and every
non-hub request stay at INFO. Set the logger to DEBUG to see every request.

The ``access_token`` query value is replaced by ``[redacted]`` (browsers must put the token in
the query for WebSockets and SSE, docs/spec/auth.md §9.1) and headers are never logged, so
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
ROUTINE = logging.DEBUG
"""Level of a connection's routine requests (polls, sends) that succeeded."""


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
    level: int = logging.INFO,
) -> None:
    """Emit one access line at ``level``: client, method, redacted target, status, duration,
    request id (nothing is formatted when the logger does not take ``level``)."""
    if not access_logger.isEnabledFor(level):
        return
    who = f"{client[0]}:{client[1]}" if client else "-"
    access_logger.log(
        level,
        '%s "%s %s" %d %.1fms rid=%s',
        who,
        method,
        redact_target(target),
        status,
        duration * 1000.0,
        rid,
    )
