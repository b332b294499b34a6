"""Rollup tables owned by the metrics package, on the store's shared metadata.

``usage_hourly`` (sums per organization, UTC hour, user and tool) lives in
:mod:`aiusage.store.tables`; the two tables here hold what sums cannot express:

* ``metrics_user_hour``: which users were active in which UTC hour (distinct-user KPIs). The
  ``events`` counter lets a session update retract an activity it had added earlier.
* ``metrics_open_sessions``: sessions not ended yet, with their last activity, so "active
  sessions now" is an index range over recent activity instead of a scan of all sessions.

Timestamps are epoch seconds (``Float``) in ``metrics_open_sessions`` so comparisons are plain
numeric ones on every dialect.
"""

from __future__ import annotations

from datetime import datetime
from typing import cast

from sqlalchemy import Float, Index, Integer, String, Table
from sqlalchemy.orm import Mapped, mapped_column

from aiusage.store.tables import ID_LENGTH, Base, UTCDateTime


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
    out of order); such rows never count as active.
    """

    __tablename__ = "metrics_open_sessions"
    __table_args__ = (Index("ix_metrics_open_sessions_org_activity", "org_id", "last_activity"),)

    org_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    session_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    user_id: Mapped[str | None] = mapped_column(String(ID_LENGTH), nullable=True)
    start_time: Mapped[float | None] = mapped_column(Float, nullable=True)
    last_activity: Mapped[float] = mapped_column(Float)


user_hour = cast(Table, UserHour.__table__)
open_sessions = cast(Table, OpenSession.__table__)

__all__ = ["OpenSession", "UserHour", "open_sessions", "user_hour"]
