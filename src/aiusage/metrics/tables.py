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

from datetime import datetime
from typing import cast

from sqlalchemy import Float, Index, Integer, String, Table
from sqlalchemy.orm import Mapped, mapped_column

from aiusage.store.tables import ID_LENGTH, TOOL_LENGTH, Base, UTCDateTime

DIM_LENGTH = 2 + max(ID_LENGTH, TOOL_LENGTH)
"""Length of a cover dimension: ``a``, ``s``, ``t:<tool>`` or ``d:<device>``."""


class UserHour(Base):
    """One user's activity count in one UTC hour (docs/metrics.md "Active users")."""

    __tablename__ = "metrics_user_hour"

    org_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    hour: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    events: Mapped[int] = mapped_column(Integer, default=0)


class OpenSession(Base):
    """A session that has not ended (docs/metrics.md "Active sessions now").

    ``start_time`` is NULL while only detections of the session are known (events may arrive
    out of order); such rows never count as active, and are deleted when the session ends.
    """

    __tablename__ = "metrics_open_sessions"
    __table_args__ = (Index("ix_metrics_open_sessions_org_activity", "org_id", "last_activity"),)

    org_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    session_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    user_id: Mapped[str | None] = mapped_column(String(ID_LENGTH), nullable=True)
    start_time: Mapped[float | None] = mapped_column(Float, nullable=True)
    last_activity: Mapped[float] = mapped_column(Float)


class Cover(Base):
    """One maximal piece of a person's union of intervals in one dimension.

    ``dim`` is ``a`` (AI: clipped detections), ``s`` (sessions and standalone detections),
    ``t:<tool>`` (clipped detections of that tool) or ``d:<device>`` (clipped detections
    reported by that device). Rows of one (org, user, dim) never overlap (they may touch).
    """

    __tablename__ = "metrics_cover"
    __table_args__ = (Index("ix_metrics_cover_user_end", "org_id", "user_id", "end_s"),)

    org_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    dim: Mapped[str] = mapped_column(String(DIM_LENGTH), primary_key=True)
    start_s: Mapped[float] = mapped_column(Float, primary_key=True)
    end_s: Mapped[float] = mapped_column(Float)


class PersonHour(Base):
    """A person's union AI time and union session time inside one UTC hour (seconds)."""

    __tablename__ = "metrics_person_hour"

    org_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    hour: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    ai_s: Mapped[float] = mapped_column(Float, default=0.0)
    session_s: Mapped[float] = mapped_column(Float, default=0.0)


class ToolHour(Base):
    """A person's union time with one tool inside one UTC hour, and the detections of that
    tool made (``detected_at``) in the hour."""

    __tablename__ = "metrics_tool_hour"

    org_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    hour: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    tool: Mapped[str] = mapped_column(String(TOOL_LENGTH), primary_key=True)
    ai_s: Mapped[float] = mapped_column(Float, default=0.0)
    detections: Mapped[int] = mapped_column(Integer, default=0)


class DeviceHour(Base):
    """A person's union AI time from one device inside one UTC hour, and the sessions started
    on that device in the hour."""

    __tablename__ = "metrics_device_hour"

    org_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    hour: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    device_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    ai_s: Mapped[float] = mapped_column(Float, default=0.0)
    sessions: Mapped[int] = mapped_column(Integer, default=0)


class ToolSeen(Base):
    """First and last ``detected_at`` of one tool for one person, and its detections, over all
    history."""

    __tablename__ = "metrics_tool_seen"

    org_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    tool: Mapped[str] = mapped_column(String(TOOL_LENGTH), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime())
    detections: Mapped[int] = mapped_column(Integer, default=0)


class PersonSeen(Base):
    """First and last activity moment (session start or end, detection) of one person."""

    __tablename__ = "metrics_person_seen"

    org_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime())


user_hour = cast(Table, UserHour.__table__)
open_sessions = cast(Table, OpenSession.__table__)
cover = cast(Table, Cover.__table__)
person_hour = cast(Table, PersonHour.__table__)
tool_hour = cast(Table, ToolHour.__table__)
device_hour = cast(Table, DeviceHour.__table__)
tool_seen = cast(Table, ToolSeen.__table__)
person_seen = cast(Table, PersonSeen.__table__)

__all__ = [
    "DIM_LENGTH",
    "Cover",
    "DeviceHour",
    "OpenSession",
    "PersonHour",
    "PersonSeen",
    "ToolHour",
    "ToolSeen",
    "UserHour",
    "cover",
    "device_hour",
    "open_sessions",
    "person_hour",
    "person_seen",
    "tool_hour",
    "tool_seen",
    "user_hour",
]
