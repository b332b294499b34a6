"""Where a bearer token comes from (docs/spec/auth.md §9.1).

Every hub-endpoint request may carry the token in ``Authorization: Bearer <t>`` or, because
browsers cannot set headers on a WebSocket or EventSource, in the ``access_token`` query
parameter. The header wins when both are present.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

ACCESS_TOKEN_PARAM = "access_token"  # noqa: S105 - a parameter name, not a secret

_REDACT = re.compile(r"(?i)(access_token=)[^&\s]*")


def bearer_token(headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
    """The request's bearer token, or None.

    Args:
        headers: Request headers with lower-case names (``HttpRequestInfo.headers``); a
            Starlette ``Headers`` object works as well (it is case-insensitive).
        query: Query parameters (first value of each).
    """
    auth = headers.get("authorization")
    if auth:
        scheme, _, value = auth.strip().partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    token = query.get(ACCESS_TOKEN_PARAM)
    if token:
        return token
    return None


def redact_query_string(query_string: str) -> str:
    """``query_string`` with the value of every ``access_token`` replaced by ``***``.

    For log lines: tokens must never be written anywhere (docs/spec/auth.md §9.6).
    """
    return _REDACT.sub(r"\1***", query_string)
