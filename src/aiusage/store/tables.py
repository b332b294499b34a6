"""SQLAlchemy 2 typed table models of the aiusage store.

Every tenant-owned row carries ``org_id`` and every primary key of agent-supplied ids
(sessions, detections, processed events, users first seen through an agent) is composite with
``org_id``: an agent of one organization can never collide with, or overwrite, another
organization's rows (tenant isolation).

Timestamps are :class:`UTCDateTime`: timezone-aware UTC in Python on every dialect (SQLite has no
time zones, so it stores naive UTC; PostgreSQL stores ``timestamptz``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

ID_LENGTH = 64
"""Maximum length of every id (org, user, session, event, device)."""

TOOL_LENGTH = 64
"""Maximum length of an AI tool name."""


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every dialect.

    Naive datetimes are refused on bind: a silent local-time interpretation would shift KPIs.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):  # raw SQLite text (e.g. from a func.* expression)
            value = datetime.fromisoformat(value)
        assert isinstance(value, datetime)
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base of every aiusage table."""


def _org_fk() -> Mapped[str]:
    return mapped_column(
        String(ID_LENGTH), ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True
    )


class Organization(Base):
    """A tenant. ``subscription_status``: active, trialing, past_due or canceled."""

    __tablename__ = "organizations"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    subscription_status: Mapped[str] = mapped_column(String(16), default="active")
    approved_tools: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Seats the organization monitors (the adoption denominator when set; docs/metrics.md).
    seats: Mapped[int | None] = mapped_column(Integer, nullable=True)


class User(Base):
    """A person in an organization: dashboard users (with a password) and employees
    (usually first seen through an agent event, without a password)."""

    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("email", name="uq_users_email"),)

    org_id: Mapped[str] = _org_fk()
    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    email: Mapped[str | None] = mapped_column(String(254), nullable=True)
    role: Mapped[str] = mapped_column(String(16), default="Employee")
    password_hash: Mapped[str | None] = mapped_column(String(200), nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # Team or department, set by an Admin (breakdowns of docs/metrics.md); None: unassigned.
    team: Mapped[str | None] = mapped_column(String(100), nullable=True)


class Agent(Base):
    """A device running the desktop agent (or any holder of an Agent token).

    ``id`` is the Agent token's ``sub``; a row appears on enrollment or on the first batch.
    ``revoked_at`` set means its tokens are refused (docs/agent.md).
    """

    __tablename__ = "agents"

    org_id: Mapped[str] = _org_fk()
    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    user_id: Mapped[str | None] = mapped_column(String(ID_LENGTH), nullable=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    token_id: Mapped[str | None] = mapped_column(String(ID_LENGTH), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class EnrollmentCode(Base):
    """A one-time code an admin hands to an employee to enroll a device (docs/agent.md).

    Only the SHA-256 of the code is stored, so a database leak does not leak usable codes.
    """

    __tablename__ = "enrollment_codes"

    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    org_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("organizations.id", ondelete="CASCADE")
    )
    user_id: Mapped[str | None] = mapped_column(String(ID_LENGTH), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    device_id: Mapped[str | None] = mapped_column(String(ID_LENGTH), nullable=True)


class AISession(Base):
    """One AI-usage session reported by an agent (SessionStarted / SessionEnded).

    ``end_time`` is NULL while the session is active. A SessionEnded that arrives before its
    SessionStarted creates the row with ``start_time = end_time - duration``.
    """

    __tablename__ = "ai_sessions"
    __table_args__ = (
        Index("ix_ai_sessions_org_start", "org_id", "start_time", "id"),
        Index("ix_ai_sessions_org_user_start", "org_id", "user_id", "start_time"),
        Index("ix_ai_sessions_org_end", "org_id", "end_time"),
        # The time model re-reads one person's sessions overlapping a range (metrics.cover).
        Index("ix_ai_sessions_org_user_end", "org_id", "user_id", "end_time"),
    )

    org_id: Mapped[str] = _org_fk()
    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    device_id: Mapped[str | None] = mapped_column(String(ID_LENGTH), nullable=True)
    tool: Mapped[str | None] = mapped_column(String(TOOL_LENGTH), nullable=True)
    start_time: Mapped[datetime] = mapped_column(UTCDateTime())
    end_time: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    duration_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    ai_usage_s: Mapped[float | None] = mapped_column(Float, nullable=True)


class AIDetection(Base):
    """One AIDetected event: a tool seen in use for ``duration_s`` seconds."""

    __tablename__ = "ai_detections"
    __table_args__ = (
        Index("ix_ai_detections_org_detected", "org_id", "detected_at"),
        Index("ix_ai_detections_org_tool", "org_id", "tool"),
        # The time model reads one person's detections in a range, and a session's detections
        # (metrics.cover, metrics.rollup).
        Index("ix_ai_detections_org_user_detected", "org_id", "user_id", "detected_at"),
        Index("ix_ai_detections_org_session", "org_id", "session_id", "detected_at"),
    )

    org_id: Mapped[str] = _org_fk()
    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    session_id: Mapped[str | None] = mapped_column(String(ID_LENGTH), nullable=True)
    device_id: Mapped[str | None] = mapped_column(String(ID_LENGTH), nullable=True)
    tool: Mapped[str] = mapped_column(String(TOOL_LENGTH))
    duration_s: Mapped[float] = mapped_column(Float)
    detected_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ExportJob(Base):
    """A CSV/JSONL export requested by a dashboard user (status: pending, running, done,
    failed)."""

    __tablename__ = "export_jobs"
    __table_args__ = (Index("ix_export_jobs_status", "status", "created_at"),)

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    org_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    from_time: Mapped[datetime] = mapped_column(UTCDateTime())
    to_time: Mapped[datetime] = mapped_column(UTCDateTime())
    format: Mapped[str] = mapped_column(String(8))
    # "events" (raw rows) or "people" (one row per person); docs/metrics.md "Exports".
    kind: Mapped[str] = mapped_column(String(16), default="events", server_default="events")
    status: Mapped[str] = mapped_column(String(16), default="pending")
    path: Mapped[str | None] = mapped_column(Text, nullable=True)
    row_count: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class Alert(Base):
    """A stored alert. ``dedupe_key`` (unique per org) keeps a rule from raising the same
    alert twice."""

    __tablename__ = "alerts"
    __table_args__ = (
        UniqueConstraint("org_id", "dedupe_key", name="uq_alerts_org_dedupe"),
        Index("ix_alerts_org_created", "org_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    org_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("organizations.id", ondelete="CASCADE")
    )
    user_id: Mapped[str | None] = mapped_column(String(ID_LENGTH), nullable=True)
    type: Mapped[str] = mapped_column(String(32))
    message: Mapped[str] = mapped_column(Text)
    severity: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    acknowledged_by: Mapped[str | None] = mapped_column(String(ID_LENGTH), nullable=True)
    dedupe_key: Mapped[str | None] = mapped_column(String(200), nullable=True)


class ProcessedEvent(Base):
    """Agent event ids already applied, for idempotent ingestion (eventId unique per org)."""

    __tablename__ = "processed_events"
    __table_args__ = (Index("ix_processed_events_received", "received_at"),)

    org_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())


class UsageHourly(Base):
    """Pre-aggregated usage per (organization, UTC hour, user, tool), maintained in the
    ingestion transaction so dashboard KPIs never scan raw history.

    ``tool`` is ``""`` for sessions reported without a tool. Hour buckets: sessions counted in
    the hour they start, session duration and AI-usage time in the hour they end, detections
    in the hour they were detected (docs/metrics.md).
    """

    __tablename__ = "usage_hourly"
    __table_args__ = (Index("ix_usage_hourly_org_hour", "org_id", "hour"),)

    org_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    hour: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    tool: Mapped[str] = mapped_column(String(TOOL_LENGTH), primary_key=True)
    sessions_started: Mapped[int] = mapped_column(Integer, default=0)
    sessions_ended: Mapped[int] = mapped_column(Integer, default=0)
    session_duration_s: Mapped[float] = mapped_column(Float, default=0.0)
    ai_usage_s: Mapped[float] = mapped_column(Float, default=0.0)
    detections: Mapped[int] = mapped_column(Integer, default=0)
    detection_duration_s: Mapped[float] = mapped_column(Float, default=0.0)


metadata = Base.metadata
"""All aiusage tables (alembic's ``target_metadata``)."""
