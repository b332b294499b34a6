"""Bounded, strict JSON request bodies: size, depth, UTF-8, finite numbers, no lone surrogates.

Every JSON body the REST API accepts passes through :func:`decode_json` before anything
builds structures from it:

* ``POST /api/agent/events`` calls it itself (it streams its body under its own size limit,
  and validates strings and numbers per event so one bad event gets the documented per-event
  422, which agents act on);
* every other ``/api/`` request with a JSON body goes through :class:`JsonBodyGuard`, a pure
  ASGI middleware that reads the body once (bounded), refuses it with a clear 400 or 413, and
  hands the same bytes to the route.

Why each rule: the stdlib decoder recurses once per nesting level, so a body nested 100,000
deep raises ``RecursionError`` (depth is checked on the raw bytes first); ``NaN``, ``Infinity``
and ``1e400`` decode to floats that JSON answers cannot carry back (``allow_nan=False``); a
lone surrogate (``"\\ud800"``) decodes to a ``str`` that cannot be encoded as UTF-8. Each of
these used to end as a 500 in a database write or in the 422 that echoed the input.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from typing import Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from aiusage.domain.wire import has_lone_surrogate
from aiusage.errors import ValidationError

MAX_JSON_DEPTH: Final = 32
"""Deepest nesting of arrays and objects accepted in a request body (agent batches use 3)."""
MAX_GUARDED_BODY_BYTES: Final = 1024 * 1024
"""Body limit of the JSON endpoints other than ingestion (which has ``max_body_bytes``)."""

_GONE: Final = b"\x00client gone"
"""Sentinel of :meth:`JsonBodyGuard._read` (compared by identity)."""
_NOT_SKELETON: Final = bytes(b for b in range(256) if b not in b'"[]{}')
_STRING: Final = re.compile(rb'"[^"]*"')
_INNERMOST_PAIR: Final = re.compile(rb"\[\]|\{\}")
# A surrogate escape (\uD800-\uDFFF) anywhere in the text: only then are strings walked.
_SURROGATE_ESCAPE: Final = re.compile(r"\\u[dD][89a-fA-F]")


class JsonInputError(ValidationError):
    """A request body that is not acceptable JSON (answered 400, nothing applied)."""

    code = "invalid_json"
    status = 400


def nesting_problem(body: bytes, max_depth: int = MAX_JSON_DEPTH) -> str | None:
    """Why the arrays/objects of ``body`` are nested too deep or unbalanced, or None.

    Works on the bytes, before any decoder recurses. Escaped backslashes and quotes are cut
    first (so ``"\\\\"`` and ``"\\""`` are handled), then everything but quotes and brackets,
    then string contents; each round then removes the innermost ``[]``/``{}`` pairs, one level
    per round, at most ``max_depth`` rounds. All the work is in C-level bytes operations.
    """
    if b"\\" in body:
        body = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    skeleton = body.translate(None, _NOT_SKELETON)
    if skeleton.count(b"[") + skeleton.count(b"{") <= max_depth:
        return None  # cannot nest deeper than the number of openers; json reports the rest
    # Fast path: strings without brackets inside leave '""' pairs, removed in one scan; a
    # quote left over means some string holds a bracket, and the exact scan cuts contents.
    brackets = skeleton.replace(b'""', b"")
    if b'"' in brackets:
        brackets = _STRING.sub(b"", skeleton)
    too_deep = f"body is nested deeper than {max_depth} levels"
    if b"[" * (max_depth + 1) in brackets or b"{" * (max_depth + 1) in brackets:
        return too_deep  # the usual attack, a long run of openers, found in one scan
    for _ in range(max_depth):
        if not brackets:
            return None
        inner = _INNERMOST_PAIR.sub(b"", brackets)
        if len(inner) == len(brackets):
            return "body is not valid JSON: unbalanced brackets"
        brackets = inner
    return too_deep if brackets else None


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number out of range: {text[:20]}")
    return value


def decode_json(body: bytes, *, max_depth: int = MAX_JSON_DEPTH, strict: bool = True) -> object:
    """Decode a request body, refusing what the platform cannot safely handle.

    Args:
        body: The raw bytes (RFC 8259: UTF-8).
        max_depth: Deepest nesting accepted.
        strict: Also refuse ``NaN``/``Infinity``/overflowing numbers and lone surrogates
            anywhere in the body. Ingestion passes False: it checks the fields it uses per
            event (so the agent learns which event was bad) and ignores unknown fields.

    Raises:
        JsonInputError: Not UTF-8, too deep or unbalanced, not JSON, or (strict) a
            non-finite number or lone surrogate.
    """
    try:
        text = body.decode("utf-8-sig")  # a leading BOM is tolerated, as json.loads(bytes) did
    except UnicodeDecodeError:
        raise JsonInputError("body is not valid UTF-8") from None
    problem = nesting_problem(body, max_depth)
    if problem is not None:
        raise JsonInputError(problem)
    try:
        if strict:
            value = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
        else:
            value = json.loads(text)
    except (ValueError, RecursionError) as exc:
        # ValueError covers JSONDecodeError, the constants refused above and integers over
        # the interpreter's digit limit; messages name a position or quote at most the first
        # 20 characters of a number, never a string of the body.
        raise JsonInputError(f"body is not valid JSON: {_reason(exc)}") from None
    if strict and _SURROGATE_ESCAPE.search(text) and has_lone_surrogate(value):
        raise JsonInputError("body holds a lone UTF-16 surrogate (\\ud800-\\udfff) in a string")
    return value


def _reason(exc: BaseException) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at line {exc.lineno} column {exc.colno}"
    if isinstance(exc, RecursionError):
        return "nested too deep"
    return str(exc)[:100]


class JsonBodyGuard:
    """ASGI middleware applying :func:`decode_json` to ``/api/`` request bodies.

    Requests with a body method (POST, PUT, PATCH) under ``/api/`` are read completely, up to
    ``max_body_bytes`` (413 beyond, stopped at the limit), checked, and replayed unchanged to
    the application. A non-empty body must be JSON: another declared content type gets 415
    (no content type counts as JSON, as FastAPI decodes it), and a refused body gets 400
    ``{"detail": ..., "code": "invalid_json"}``.

    Args:
        app: The wrapped application.
        skip_paths: Exact paths whose routes decode their own bodies with :func:`decode_json`
            (the ingestion endpoint).
        max_body_bytes: Largest body read.
        max_depth: Deepest nesting accepted.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        skip_paths: Iterable[str] = (),
        max_body_bytes: int = MAX_GUARDED_BODY_BYTES,
        max_depth: int = MAX_JSON_DEPTH,
    ) -> None:
        self.app = app
        self.skip_paths = frozenset(skip_paths)
        self.max_body_bytes = max_body_bytes
        self.max_depth = max_depth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self._applies(scope):
            await self.app(scope, receive, send)
            return
        body = await self._read(scope, receive)
        if body is _GONE:
            return
        if body is None:
            await _answer(send, 413, f"body exceeds {self.max_body_bytes} bytes", "too_large")
            return
        if body:
            content_type = _header(scope, b"content-type")
            if content_type is not None and b"json" not in content_type.lower():
                # FastAPI would echo such a body in its 422, and crash on bytes that are not
                # UTF-8: every /api/ body is JSON, so say so instead.
                message = "content type must be application/json"
                await _answer(send, 415, message, "unsupported_media_type")
                return
            try:
                decode_json(body, max_depth=self.max_depth)
            except JsonInputError as exc:
                await _answer(send, exc.status, exc.message, exc.code)
                return
        await self.app(scope, _replay(body, receive), send)

    def _applies(self, scope: Scope) -> bool:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            return False
        path: str = scope["path"]
        return path.startswith("/api/") and path not in self.skip_paths

    async def _read(self, scope: Scope, receive: Receive) -> bytes | None:
        """The body; None when it exceeds the limit; :data:`_GONE` when the client left."""
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            return None
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return _GONE
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return value  # type: ignore[no-any-return]
    return None


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # later reads wait for the disconnect, as Starlette expects

    return replay


async def _answer(send: Send, status: int, detail: str, code: str) -> None:
    payload = json.dumps({"detail": detail, "code": code}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


__all__ = [
    "MAX_GUARDED_BODY_BYTES",
    "MAX_JSON_DEPTH",
    "JsonBodyGuard",
    "JsonInputError",
    "decode_json",
    "nesting_problem",
]
