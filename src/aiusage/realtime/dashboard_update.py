"""The DashboardUpdate schema a client's ``BroadcastDashboardUpdate`` payload must satisfy.

The server's own pushes come from the backend (``DashboardCoalescer``, docs/metrics.md "Push
cadence"); a client broadcast is relayed to every dashboard of the organization, so it is held
to the documented shape (docs/security.md "BroadcastDashboardUpdate"):

* a JSON object of at most :data:`MAX_PAYLOAD_BYTES` (UTF-8), either the ``{metrics, trends}``
  envelope or a bare metrics object (the seed's ``BroadcastDashboardUpdate(orgId, metrics)``);
* top-level keys: ``metrics``, ``trends``, the metric fields of docs/metrics.md, and the
  diagnostic fields ``probe``, ``seq``, ``t0``, ``tag`` that latency probes carry (dashboards
  ignore them); any other key is refused, as is an unknown key inside ``metrics``;
* counts are integers in [0, 10^9], seconds finite numbers in [0, 10^10], ``adoptionRate`` in
  [0, 1] (each may be null); ``organizationId``, when given, is the target organization;
* everywhere: no NaN or infinite numbers, integers within +/-2^53, no lone surrogates,
  strings of at most 256 characters, lists and objects of at most 1,000 items, nesting at most
  6 deep.

:func:`dashboard_update_problem` returns the first problem as a short message naming the
field (never echoing values) so the hub can answer a sanitized ``HubException``.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from typing import Any, Final

from aiusage.auth.principal import ADMIN, SUPER_ADMIN, UserPrincipal
from aiusage.domain.wire import LONE_SURROGATE
from hubserver import HubError

log = logging.getLogger("aiusage.realtime.hub")

BROADCAST_ROLES: Final = frozenset({ADMIN, SUPER_ADMIN})
"""Who may broadcast: an Admin can already change the real figures (enroll agents, post
events), a Manager only reads them, so a Manager's broadcast would be a forgery channel."""

MAX_PAYLOAD_BYTES: Final = 256 * 1024
"""Largest accepted payload once encoded as JSON (a full snapshot is a few KiB to ~100 KiB)."""
MAX_COUNT: Final = 10**9
MAX_SECONDS: Final = 1e10
MAX_STRING: Final = 256
MAX_ITEMS: Final = 1000
MAX_DEPTH: Final = 6
MAX_SAFE_INTEGER: Final = 2**53 - 1

COUNT_FIELDS: Final = frozenset(
    {
        "activeSessions",
        "sessionsToday",
        "sessionsEndedToday",
        "detectionsToday",
        "activeUsersToday",
        "activeUsers7d",
        "activeUsers30d",
        "activeUsers90d",
        "activeUsersPeriod",
        "totalUsers",
        "unapprovedDetectionsToday",
        "unapprovedDetections30d",
        "aiUsersPeriod",
        "monitoredPeople",
        "adoptionNumerator",
        "engagedUsers",
        "casualUsers",
        "periodDays",
        "inactiveCount",
        "seq",
    }
)
SECONDS_FIELDS: Final = frozenset(
    {
        "aiUsageSecondsToday",
        "aiSecondsToday",
        "sessionSecondsToday",
        "aiSecondsPeriod",
        "sessionSecondsPeriod",
        "aiSecondsPerActiveUser",
    }
)
RATIO_FIELDS: Final = frozenset({"adoptionRate"})
TEXT_FIELDS: Final = frozenset(
    {"organizationId", "generatedAt", "timezone", "period", "monitoredBasis", "probe", "tag"}
)
STRUCTURED_FIELDS: Final = frozenset(
    {
        "approvedTools",
        "usageByTool",
        "usageByUser",
        "people",
        "inactivePeople",
        "byTeam",
        "byDevice",
        "shadowAi",
        "engagement",
    }
)
"""Lists and objects of the snapshot: checked by the generic bounds only."""
DIAGNOSTIC_FIELDS: Final = frozenset({"probe", "seq", "t0", "tag"})
METRIC_FIELDS: Final = (
    COUNT_FIELDS | SECONDS_FIELDS | RATIO_FIELDS | TEXT_FIELDS | STRUCTURED_FIELDS
) - DIAGNOSTIC_FIELDS
TOP_LEVEL_FIELDS: Final = METRIC_FIELDS | DIAGNOSTIC_FIELDS | {"metrics", "trends"}
TREND_SERIES: Final = frozenset({"hourly", "daily"})


def check_broadcast(user: UserPrincipal, org_id: str, payload: object) -> None:
    """Refuse a ``BroadcastDashboardUpdate`` by role, then by schema (one log line each).

    Raises:
        HubError: A sanitized message for the caller; nothing is sent to anyone.
    """
    if not user.has_any_role(BROADCAST_ROLES):
        log.info("BroadcastDashboardUpdate refused for %s of %s: role", user.sub, user.org)
        raise HubError("Forbidden: only Admin and SuperAdmin may broadcast dashboard updates")
    problem = dashboard_update_problem(org_id, payload)
    if problem is not None:
        log.info("BroadcastDashboardUpdate refused for %s of %s: %s", user.sub, user.org, problem)
        raise HubError(f"Invalid DashboardUpdate: {problem}")


def dashboard_update_problem(org_id: str, payload: object) -> str | None:
    """The first reason ``payload`` is not a valid DashboardUpdate for ``org_id``, or None."""
    if not isinstance(payload, Mapping):
        return "payload must be a JSON object"
    problem = _bounds(payload)
    if problem is not None:
        return problem
    try:
        size = len(json.dumps(payload, ensure_ascii=False, allow_nan=False).encode("utf-8"))
    except (TypeError, ValueError):  # bytes, sets... from MessagePack; NaN already refused
        return "payload must hold JSON values only"
    if size > MAX_PAYLOAD_BYTES:
        return f"payload exceeds {MAX_PAYLOAD_BYTES} bytes"
    problem = _fields(org_id, payload, TOP_LEVEL_FIELDS, "")
    if problem is not None:
        return problem
    metrics = payload.get("metrics")
    if metrics is not None:
        if not isinstance(metrics, Mapping):
            return "metrics must be an object"
        problem = _fields(org_id, metrics, METRIC_FIELDS, "metrics.")
        if problem is not None:
            return problem
    return _trends(payload.get("trends"))


def _bounds(payload: Mapping[Any, Any]) -> str | None:
    """Generic limits over the whole value (iterative: nesting is bounded, not recursed)."""
    stack: list[tuple[object, int]] = [(payload, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if len(item) > MAX_STRING:
                return f"strings must be at most {MAX_STRING} characters"
            if not item.isascii() and LONE_SURROGATE.search(item):
                return "strings must not contain lone UTF-16 surrogates"
        elif isinstance(item, float):
            if not math.isfinite(item):
                return "numbers must be finite"
        elif isinstance(item, int) and not -MAX_SAFE_INTEGER <= item <= MAX_SAFE_INTEGER:
            return "integers must be within +/-2^53 (JavaScript's exact range)"
        elif isinstance(item, Mapping | list | tuple):
            if depth > MAX_DEPTH:
                return f"payload is nested deeper than {MAX_DEPTH} levels"
            if len(item) > MAX_ITEMS:
                return f"lists and objects must hold at most {MAX_ITEMS} items"
            if isinstance(item, Mapping):
                for key, value in item.items():
                    if not isinstance(key, str):
                        return "object keys must be strings"
                    stack.append((key, depth))
                    stack.append((value, depth + 1))
            else:
                stack.extend((value, depth + 1) for value in item)
    return None


def _fields(
    org_id: str, fields: Mapping[str, Any], allowed: frozenset[str], prefix: str
) -> str | None:
    for key, value in fields.items():
        name = f"{prefix}{key}"
        if key not in allowed:
            return f"unknown field {name[:64]!r}"
        if value is None:
            continue
        if key in COUNT_FIELDS:
            if isinstance(value, bool) or not isinstance(value, int):
                return f"{name} must be an integer"
            if not 0 <= value <= MAX_COUNT:
                return f"{name} must be between 0 and {MAX_COUNT}"
        elif key in SECONDS_FIELDS or key in RATIO_FIELDS:
            top = 1.0 if key in RATIO_FIELDS else MAX_SECONDS
            if isinstance(value, bool) or not isinstance(value, int | float):
                return f"{name} must be a number"
            if not 0 <= value <= top:
                return f"{name} must be between 0 and {top:g}"
        elif key in TEXT_FIELDS:
            if not isinstance(value, str):
                return f"{name} must be a string"
            if key == "organizationId" and value != org_id:
                return f"{name} must be the target organization"
        elif key == "t0" and (isinstance(value, bool) or not isinstance(value, int | float)):
            return f"{name} must be a number"
    return None


def _trends(trends: object) -> str | None:
    if trends is None:
        return None
    if not isinstance(trends, Mapping):
        return "trends must be an object"
    for key, series in trends.items():
        if key not in TREND_SERIES:
            return f"unknown field {('trends.' + key)[:64]!r}"
        if not isinstance(series, list) or not all(isinstance(p, Mapping) for p in series):
            return f"trends.{key} must be a list of objects"
    return None


__all__ = [
    "BROADCAST_ROLES",
    "MAX_PAYLOAD_BYTES",
    "METRIC_FIELDS",
    "TOP_LEVEL_FIELDS",
    "check_broadcast",
    "dashboard_update_problem",
]
