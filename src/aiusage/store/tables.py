"""The tables of the aiusage store (SQLAlchemy Core).

Every tenant-owned row carries ``org_id`` and every primary key of agent-supplied ids
(sessions, detections, processed events, users first seen through an agent) is composite with
``org_id``: an agent of one organization can never collide with, or overwrite, another
organization's rows (tenant isolation).

The tables are plain Core :class:`~sqlalchemy.Table` objects: every query in aiusage is a Core
statement, and building mapped classes at start cost a server process about 3 MB for nothing.
:mod:`aiusage.store.models` maps classes onto them for code that wants ORM entities.

Timestamps are :class:`UTCDateTime`: timezone-aware UTC in Python on every dialect (SQLite has no
time zones, so it stores naive UTC; PostgreSQL stores ``timestamptz``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
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


metadata = MetaData()
"""All aiusage tables (alembic's ``target_metadata``)."""


def _org_fk() -> Column[str]:
    return Column(
        "org_id",
        String(ID_LENGTH),
        ForeignKey("organizations.id", ondelete="CASCADE"),
        primary_key=True,
    )


organizations = Table(
    "organizations",
    metadata,
    Column("id", String(ID_LENGTH), primary_key=True),
    Column("name", String(200), nullable=False),
    # active, trialing, past_due or canceled.
    Column("subscription_status", String(16), nullable=False, default="active"),
    Column("approved_tools", JSON, nullable=False, default=list),
    Column("created_at", UTCDateTime(), nullable=False),
    # Seats the organization monitors (the adoption denominator when set; docs/metrics.md).
    Column("seats", Integer, nullable=True),
)
"""A tenant."""

users = Table(
    "users",
    metadata,
    _org_fk(),
    Column("id", String(ID_LENGTH), primary_key=True),
    Column("email", String(254), nullable=True),
    Column("role", String(16), nullable=False, default="Employee"),
    Column("password_hash", String(200), nullable=True),
    Column("active", Boolean, nullable=False, default=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("last_seen_at", UTCDateTime(), nullable=True),
    # Team or department, set by an Admin (breakdowns of docs/metrics.md); None: unassigned.
    Column("team", String(100), nullable=True),
    UniqueConstraint("email", name="uq_users_email"),
)
"""A person in an organization: dashboard users (with a password) and employees (usually
first seen through an agent event, without a password)."""

agents = Table(
    "agents",
    metadata,
    _org_fk(),
    Column("id", String(ID_LENGTH), primary_key=True),
    Column("user_id", String(ID_LENGTH), nullable=True),
    Column("name", String(200), nullable=False, default=""),
    Column("token_id", String(ID_LENGTH), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("revoked_at", UTCDateTime(), nullable=True),
    Column("last_seen_at", UTCDateTime(), nullable=True),
)
"""A device running the desktop agent (or any holder of an Agent token).

``id`` is the Agent token's ``sub``; a row appears on enrollment or on the first batch.
``revoked_at`` set means its tokens are refused (docs/agent.md).
"""

enrollment_codes = Table(
    "enrollment_codes",
    metadata,
    Column("code_hash", String(64), primary_key=True),
    Column(
        "org_id",
        String(ID_LENGTH),
        ForeignKey("organizations.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("user_id", String(ID_LENGTH), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    Column("used_at", UTCDateTime(), nullable=True),
    Column("device_id", String(ID_LENGTH), nullable=True),
)
"""A one-time code an admin hands to an employee to enroll a device (docs/agent.md).

Only the SHA-256 of the code is stored, so a database leak does not leak usable codes.
"""

ai_sessions = Table(
    "ai_sessions",
    metadata,
    _org_fk(),
    Column("id", String(ID_LENGTH), primary_key=True),
    Column("user_id", String(ID_LENGTH), nullable=False),
    Column("device_id", String(ID_LENGTH), nullable=True),
    Column("tool", String(TOOL_LENGTH), nullable=True),
    Column("start_time", UTCDateTime(), nullable=False),
    Column("end_time", UTCDateTime(), nullable=True),
    Column("duration_s", Float, nullable=True),
    Column("ai_usage_s", Float, nullable=True),
    Index("ix_ai_sessions_org_start", "org_id", "start_time", "id"),
    Index("ix_ai_sessions_org_user_start", "org_id", "user_id", "start_time"),
    Index("ix_ai_sessions_org_end", "org_id", "end_time"),
    # The time model re-reads one person's sessions overlapping a range (metrics.cover).
    Index("ix_ai_sessions_org_user_end", "org_id", "user_id", "end_time"),
)
"""One AI-usage session reported by an agent (SessionStarted / SessionEnded).

``end_time`` is NULL while the session is active. A SessionEnded that arrives before its
SessionStarted creates the row with ``start_time = end_time - duration``.
"""

ai_detections = Table(
    "ai_detections",
    metadata,
    _org_fk(),
    Column("id", String(ID_LENGTH), primary_key=True),
    Column("user_id", String(ID_LENGTH), nullable=False),
    Column("session_id", String(ID_LENGTH), nullable=True),
    Column("device_id", String(ID_LENGTH), nullable=True),
    Column("tool", String(TOOL_LENGTH), nullable=False),
    Column("duration_s", Float, nullable=False),
    Column("detected_at", UTCDateTime(), nullable=False),
    Index("ix_ai_detections_org_detected", "org_id", "detected_at"),
    Index("ix_ai_detections_org_tool", "org_id", "tool"),
    # The time model reads one person's detections in a range, and a session's detections
    # (metrics.cover, metrics.rollup).
    Index("ix_ai_detections_org_user_detected", "org_id", "user_id", "detected_at"),
    Index("ix_ai_detections_org_session", "org_id", "session_id", "detected_at"),
)
"""One AIDetected event: a tool seen in use for ``duration_s`` seconds."""

export_jobs = Table(
    "export_jobs",
    metadata,
    Column("id", String(ID_LENGTH), primary_key=True),
    Column(
        "org_id",
        String(ID_LENGTH),
        ForeignKey("organizations.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("user_id", String(ID_LENGTH), nullable=False),
    Column("from_time", UTCDateTime(), nullable=False),
    Column("to_time", UTCDateTime(), nullable=False),
    Column("format", String(8), nullable=False),
    # "events" (raw rows) or "people" (one row per person); docs/metrics.md "Exports".
    Column("kind", String(16), nullable=False, default="events", server_default="events"),
    Column("status", String(16), nullable=False, default="pending"),
    Column("path", Text, nullable=True),
    Column("row_count", Integer, nullable=True),
    Column("error", Text, nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("completed_at", UTCDateTime(), nullable=True),
    Index("ix_export_jobs_status", "status", "created_at"),
)
"""A CSV/JSONL export requested by a dashboard user (status: pending, running, done,
failed)."""

alerts = Table(
    "alerts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "org_id",
        String(ID_LENGTH),
        ForeignKey("organizations.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("user_id", String(ID_LENGTH), nullable=True),
    Column("type", String(32), nullable=False),
    Column("message", Text, nullable=False),
    Column("severity", String(16), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("acknowledged_at", UTCDateTime(), nullable=True),
    Column("acknowledged_by", String(ID_LENGTH), nullable=True),
    Column("dedupe_key", String(200), nullable=True),
    UniqueConstraint("org_id", "dedupe_key", name="uq_alerts_org_dedupe"),
    Index("ix_alerts_org_created", "org_id", "created_at"),
)
"""A stored alert. ``dedupe_key`` (unique per org) keeps a rule from raising the same alert
twice."""

processed_events = Table(
    "processed_events",
    metadata,
    Column("org_id", String(ID_LENGTH), primary_key=True),
    Column("event_id", String(ID_LENGTH), primary_key=True),
    Column("received_at", UTCDateTime(), nullable=False),
    Index("ix_processed_events_received", "received_at"),
)
"""Agent event ids already applied, for idempotent ingestion (eventId unique per org)."""

usage_hourly = Table(
    "usage_hourly",
    metadata,
    Column("org_id", String(ID_LENGTH), primary_key=True),
    Column("hour", UTCDateTime(), primary_key=True),
    Column("user_id", String(ID_LENGTH), primary_key=True),
    Column("tool", String(TOOL_LENGTH), primary_key=True),
    Column("sessions_started", Integer, nullable=False, default=0),
    Column("sessions_ended", Integer, nullable=False, default=0),
    Column("session_duration_s", Float, nullable=False, default=0.0),
    Column("ai_usage_s", Float, nullable=False, default=0.0),
    Column("detections", Integer, nullable=False, default=0),
    Column("detection_duration_s", Float, nullable=False, default=0.0),
    Index("ix_usage_hourly_org_hour", "org_id", "hour"),
)
"""Pre-aggregated usage per (organization, UTC hour, user, tool), maintained in the ingestion
transaction so dashboard KPIs never scan raw history.

``tool`` is ``""`` for sessions reported without a tool. Hour buckets: sessions counted in the
hour they start, session duration and AI-usage time in the hour they end, detections in the
hour they were detected (docs/metrics.md).
"""

_MODELS = frozenset(
    {
        "Organization",
        "User",
        "Agent",
        "EnrollmentCode",
        "AISession",
        "AIDetection",
        "ExportJob",
        "Alert",
        "ProcessedEvent",
        "UsageHourly",
    }
)


def __getattr__(name: str) -> Any:
    # The mapped classes of earlier versions, for callers that still import them from here:
    # built on first use so that a server, which only runs Core statements, never maps them.
    if name in _MODELS:
        from aiusage.store import models

        return getattr(models, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
