"""Logging for operators: plain text or one JSON object per line, never a credential.

``AIUSAGE_LOG_FORMAT=json`` switches ``aiusage serve``/``aiusage worker`` to JSON lines with
``ts``, ``level``, ``logger``, ``message``, ``request_id`` (when the record belongs to an HTTP
request), ``pid`` and ``exc`` (traceback). Whatever the format, :class:`RedactingFilter` sits on
the handler as the last line of defence (tokens are never logged): it rewrites
``access_token=`` values (browsers must put the token in the URL for WebSockets and SSE,
docs/spec/auth.md §9.1), ``Bearer`` credentials, ``Authorization:`` header values and
anything shaped like a JWT, in the message, its arguments and the traceback.

The engine's access log (``hubserver.access``) writes the routine requests of established
connections (long-polling polls, message POSTs) at DEBUG and everything else at INFO;
``AIUSAGE_ACCESS_LOG_ALL=true`` (``access_all``) prints those too without turning every other
logger to DEBUG (docs/deploy.md "Logs").
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import re
import sys
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import UTC, datetime
from typing import Any, Final, TextIO

__all__ = [
    "REDACTED",
    "JsonFormatter",
    "RedactingFilter",
    "RequestIdMiddleware",
    "configure_logging",
    "current_request_id",
    "redact",
]

REDACTED: Final = "[redacted]"

_ACCESS_TOKEN_RE = re.compile(r"(?i)(access_token=)[^&\s;#\"',]+")
_JSON_TOKEN_RE = re.compile(
    r"(?i)(\"(?:access_token|accessToken|token|password|refresh_token)\"\s*:\s*\")[^\"]*(\")"
)
_BEARER_RE = re.compile(r"(?i)(\bbearer\s+)[A-Za-z0-9\-._~+/]+=*")
# The whole header value (any scheme: Basic, Digest...) up to the end of the quoted value/line.
_AUTH_HEADER_RE = re.compile(
    r"(?i)(\bauthorization[\"']?\s*[:=]\s*[\"']?)(?!bearer\s+\[redacted\])[^\"'\r\n,}]+"
)
# Three base64url segments, the first two starting like a JSON object ("eyJ" = '{"').
_JWT_RE = re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_ACCESS_RID_RE = re.compile(r"\brid=([A-Za-z0-9._:-]{1,64})")
_HINTS = ("access_token", "bearer", "authorization", "eyj", "token", "password")

_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "aiusage_request_id", default=None
)


def current_request_id() -> str | None:
    """Request id of the HTTP request being handled by this task, if any."""
    return _request_id.get()


def redact(text: str) -> str:
    """``text`` with every credential-looking value replaced by ``[redacted]``."""
    lowered = text.lower()
    if not any(hint in lowered for hint in _HINTS):
        return text  # fast path: nothing that could be a credential
    text = _ACCESS_TOKEN_RE.sub(lambda m: m.group(1) + REDACTED, text)
    text = _JSON_TOKEN_RE.sub(lambda m: m.group(1) + REDACTED + m.group(2), text)
    text = _BEARER_RE.sub(lambda m: m.group(1) + REDACTED, text)
    text = _AUTH_HEADER_RE.sub(lambda m: m.group(1) + REDACTED, text)
    return _JWT_RE.sub(REDACTED, text)


class RedactingFilter(logging.Filter):
    """Rewrites each record so no handler can print a token (attach it to handlers: logger
    filters do not see records propagated from child loggers)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: keep the raw template, still redacted
            message = str(record.msg)
        cleaned = redact(message)
        if cleaned != message or record.args:
            record.msg = cleaned
            record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line (UTC timestamps, request id when known)."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process if record.process is not None else os.getpid(),
        }
        rid = getattr(record, "request_id", None) or _request_id.get()
        if rid is None and record.name == "hubserver.access":
            # The engine's access line carries its request id as `rid=` (same id as the
            # X-Request-ID nginx sets), outside any ASGI task.
            found = _ACCESS_RID_RE.search(data["message"])
            rid = found.group(1) if found else None
        if rid is not None:
            data["request_id"] = rid
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            data["exc"] = record.exc_text
        if record.stack_info:
            data["stack"] = record.stack_info
        return json.dumps(data, ensure_ascii=False, default=str)


_TEXT_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_HANDLER_MARK: Final = "_aiusage_handler"
ACCESS_LOGGER: Final = "hubserver.access"


def configure_logging(
    fmt: str = "text",
    level: str | int = "INFO",
    stream: TextIO | None = None,
    *,
    access_all: bool = False,
) -> logging.Handler:
    """Install the process's root handler (idempotent: replaces the one installed before).

    Args:
        fmt: ``text`` or ``json``.
        level: Root level name or number.
        stream: Where to write (default stderr, which systemd sends to the journal).
        access_all: Also print the access lines of routine requests (polls, sends), which
            the engine writes at DEBUG; otherwise they follow the root level.

    Raises:
        ValueError: Unknown ``fmt``.
    """
    if fmt not in ("text", "json"):
        raise ValueError(f"log format must be 'text' or 'json', not {fmt!r}")
    root = logging.getLogger()
    for old in list(root.handlers):
        # Ours from an earlier call, or basicConfig()'s plain stream handler: either would
        # print every record a second time (and without redaction).
        if getattr(old, _HANDLER_MARK, False) or type(old) is logging.StreamHandler:
            root.removeHandler(old)
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    setattr(handler, _HANDLER_MARK, True)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(_TEXT_FORMAT))
    handler.addFilter(RedactingFilter())
    root.addHandler(handler)
    if isinstance(level, str):
        root.setLevel(getattr(logging, level.upper(), logging.INFO))
    else:
        root.setLevel(level)
    # The in-process demo simulator talks HTTP through httpx, which logs every request at
    # INFO: the access log already has them (with tokens redacted).
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    logging.getLogger(ACCESS_LOGGER).setLevel(logging.DEBUG if access_all else logging.NOTSET)
    return handler


_Scope = MutableMapping[str, Any]
_Message = MutableMapping[str, Any]
_Receive = Callable[[], Awaitable[_Message]]
_Send = Callable[[_Message], Awaitable[None]]
_ASGIApp = Callable[[_Scope, _Receive, _Send], Awaitable[None]]


class RequestIdMiddleware:
    """ASGI middleware: every log record of a request carries its request id, which is also
    echoed in the response's ``X-Request-ID``.

    The id is the one hubserver logs in its access line; under another server, a well-formed
    incoming ``X-Request-ID`` (as nginx sets it), else a new one.
    """

    def __init__(self, app: _ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: _Scope, receive: _Receive, send: _Send) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        # hubserver already chose the id of its access-log line (the incoming one when well
        # formed): reuse it so every line of a request carries one id.
        engine_rid = (scope.get("extensions") or {}).get("hubserver.request_id")
        rid: str | None = engine_rid if isinstance(engine_rid, str) and engine_rid else None
        for name, value in () if rid is not None else scope.get("headers", ()):
            if name == b"x-request-id":
                candidate = value.decode("latin-1")
                if _REQUEST_ID_RE.match(candidate):
                    rid = candidate
                break
        if rid is None:
            rid = uuid.uuid4().hex
        encoded = rid.encode("latin-1")

        async def send_with_id(message: _Message) -> None:
            if message.get("type") == "http.response.start":
                headers = list(message.get("headers", ()))
                if not any(k.lower() == b"x-request-id" for k, _ in headers):
                    headers.append((b"x-request-id", encoded))
                    message["headers"] = headers
            await send(message)

        token = _request_id.set(rid)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            _request_id.reset(token)
