"""Rollup tables owned by the metrics package, on the store's shared metadata.

``usage_hourly`` (event counters per organization, UTC hour, user and tool) lives in
:mod:`aiusage.store.tables`. The tables here hold what plain sums cannot express (the time
model of docs/metrics.md "Time model" and "Rollups"):

* ``metrics_user_hour``: which users had an activity moment in which UTC hour. The ``events``
  counter lets a session update retract an activity it had added earlier.
* ``metrics_open_sessions``: sessions not ended yet, with their last activity, so "active
  sessions now" is an index range over recent activity instead of a scan of all sessions.
* ``metrics_cover``: the union of each person's intervals per dimension (AI, session, one
  tool, one device), as disjoint ``[start_s, end_s]`` rows. It is the exact state that makes
  union time incremental: a new interval only reads the few rows it overlaps.
* ``metrics_person_hour`` / ``metrics_tool_hour`` / ``metrics_device_hour``: the measure of
  those unions inside each UTC hour, plus counters, summed by the snapshot.
* ``metrics_tool_seen`` / ``metrics_person_seen``: first and last moment per (tool, person)
  and per person, over all history.

Timestamps are epoch seconds (``Float``) where the rollup compares them arithmetically
(``metrics_open_sessions``, ``metrics_cover``), so comparisons are plain numeric ones on every
dialect; hour buckets and first/last-seen moments are :class:`UTCDateTime`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Column, Float, Index, Integer, String, Table

from aiusage.store.tables import ID_LENGTH, TOOL_LENGTH, UTCDateTime, metadata

DIM_LENGTH = 2 + max(ID_LENGTH, TOOL_LENGTH)
"""Length of a cover dimension: ``a``, ``s``, ``t:<tool>`` or ``d:<device>``."""

user_hour = Table(
    "metrics_user_hour",
    metadata,
    Column("org_id", String(ID_LENGTH), primary_key=True),
    Column("hour", UTCDateTime(), primary_key=True),
    Column("user_id", String(ID_LENGTH), primary_key=True),
    Column("events", Integer, nullable=False, default=0),
)
"""One user's activity count in one UTC hour (docs/metrics.md "Active users")."""

open_sessions = Table(
    "metrics_open_sessions",
    metadata,
    Column("org_id", String(ID_LENGTH), primary_key=True),
    Column("session_id", String(ID_LENGTH), primary_key=True),
    Column("user_id", String(ID_LENGTH), nullable=True),
    Column("start_time", Float, nullable=True),
    Column("last_activity", Float, nullable=False),
    Index("ix_metrics_open_sessions_org_activity", "org_id", "last_activity"),
)
"""A session that has not ended (docs/metrics.md "Active sessions now").

``start_time`` is NULL while only detections of the session are known (events may arrive out
of order); such rows never count as active, and are deleted when the session ends.
"""

cover = Table(
    "metrics_cover",
    metadata,
    Column("org_id", String(ID_LENGTH), primary_key=True),
    Column("user_id", String(ID_LENGTH), primary_key=True),
    Column("dim", String(DIM_LENGTH), primary_key=True),
    Column("start_s", Float, primary_key=True),
    Column("end_s", Float, nullable=False),
    Index("ix_metrics_cover_user_end", "org_id", "user_id", "end_s"),
)
"""One maximal piece of a person's union of intervals in one dimension.

``dim`` is ``a`` (AI: clipped detections), ``s`` (sessions and standalone detections),
``t:<tool>`` (clipped detections of that tool) or ``d:<device>`` (clipped detections reported
by that device). Rows of one (org, user, dim) never overlap (they may touch).
"""

person_hour = Table(
    "metrics_person_hour",
    metadata,
    Column("org_id", String(ID_LENGTH), primary_key=True),
    Column("hour", UTCDateTime(), primary_key=True),
    Column("user_id", String(ID_LENGTH), primary_key=True),
    Column("ai_s", Float, nullable=False, default=0.0),
    Column("session_s", Float, nullable=False, default=0.0),
)
"""A person's union AI time and union session time inside one UTC hour (seconds)."""

tool_hour = Table(
    "metrics_tool_hour",
    metadata,
    Column("org_id", String(ID_LENGTH), primary_key=True),
    Column("hour", UTCDateTime(), primary_key=True),
    Column("user_id", String(ID_LENGTH), primary_key=True),
    Column("tool", String(TOOL_LENGTH), primary_key=True),
    Column("ai_s", Float, nullable=False, default=0.0),
    Column("detections", Integer, nullable=False, default=0),
)
"""A person's union time with one tool inside one UTC hour, and the detections of that tool
made (``detected_at``) in the hour."""

device_hour = Table(
    "metrics_device_hour",
    metadata,
    Column("org_id", String(ID_LENGTH), primary_key=True),
    Column("hour", UTCDateTime(), primary_key=True),
    Column("device_id", String(ID_LENGTH), primary_key=True),
    Column("user_id", String(ID_LENGTH), primary_key=True),
    Column("ai_s", Float, nullable=False, default=0.0),
    Column("sessions", Integer, nullable=False, default=0),
)
"""A person's union AI time from one device inside one UTC hour, and the sessions started on
that device in the hour."""

tool_seen = Table(
    "metrics_tool_seen",
    metadata,
    Column("org_id", String(ID_LENGTH), primary_key=True),
    Column("tool", String(TOOL_LENGTH), primary_key=True),
    Column("user_id", String(ID_LENGTH), primary_key=True),
    Column("first_seen", UTCDateTime(), nullable=False),
    Column("last_seen", UTCDateTime(), nullable=False),
    Column("detections", Integer, nullable=False, default=0),
)
"""First and last ``detected_at`` of one tool for one person, and its detections, over all
history."""

person_seen = Table(
    "metrics_person_seen",
    metadata,
    Column("org_id", String(ID_LENGTH), primary_key=True),
    Column("user_id", String(ID_LENGTH), primary_key=True),
    Column("first_seen", UTCDateTime(), nullable=False),
    Column("last_seen", UTCDateTime(), nullable=False),
)
"""First and last activity moment (session start or end, detection) of one person."""

_MODELS = frozenset(
    {"UserHour", "OpenSession", "Cover", "PersonHour", "ToolHour", "DeviceHour", "ToolSeen"}
    | {"PersonSeen"}
)


def __getattr__(name: str) -> Any:
    # Mapped classes on first use only (see aiusage.store.tables: the server runs Core alone).
    if name in _MODELS:
        from aiusage.store import models

        return getattr(models, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DIM_LENGTH",
    "cover",
    "device_hour",
    "open_sessions",
    "person_hour",
    "person_seen",
    "tool_hour",
    "tool_seen",
    "user_hour",
]
