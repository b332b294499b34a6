"""ORM classes mapped onto the Core tables of :mod:`aiusage.store.tables` and
:mod:`aiusage.metrics.tables`.

aiusage itself runs Core statements only; these classes exist for code that prefers ORM
entities and attributes (``select(AISession).where(AISession.user_id == ...)``); a server
process never imports this module.
"""

from __future__ import annotations

from sqlalchemy.orm import DeclarativeBase

from aiusage.metrics import tables as metrics_tables
from aiusage.store import tables


class Base(DeclarativeBase):
    """Declarative base over the store's shared metadata."""

    metadata = tables.metadata


class Organization(Base):
    """Mapped onto ``organizations``."""

    __table__ = tables.organizations


class User(Base):
    """Mapped onto ``users``."""

    __table__ = tables.users


class Agent(Base):
    """Mapped onto ``agents``."""

    __table__ = tables.agents


class EnrollmentCode(Base):
    """Mapped onto ``enrollment_codes``."""

    __table__ = tables.enrollment_codes


class AISession(Base):
    """Mapped onto ``ai_sessions``."""

    __table__ = tables.ai_sessions


class AIDetection(Base):
    """Mapped onto ``ai_detections``."""

    __table__ = tables.ai_detections


class ExportJob(Base):
    """Mapped onto ``export_jobs``."""

    __table__ = tables.export_jobs


class Alert(Base):
    """Mapped onto ``alerts``."""

    __table__ = tables.alerts


class ProcessedEvent(Base):
    """Mapped onto ``processed_events``."""

    __table__ = tables.processed_events


class UsageHourly(Base):
    """Mapped onto ``usage_hourly``."""

    __table__ = tables.usage_hourly


class UserHour(Base):
    """Mapped onto ``metrics_user_hour``."""

    __table__ = metrics_tables.user_hour


class OpenSession(Base):
    """Mapped onto ``metrics_open_sessions``."""

    __table__ = metrics_tables.open_sessions


class Cover(Base):
    """Mapped onto ``metrics_cover``."""

    __table__ = metrics_tables.cover


class PersonHour(Base):
    """Mapped onto ``metrics_person_hour``."""

    __table__ = metrics_tables.person_hour


class ToolHour(Base):
    """Mapped onto ``metrics_tool_hour``."""

    __table__ = metrics_tables.tool_hour


class DeviceHour(Base):
    """Mapped onto ``metrics_device_hour``."""

    __table__ = metrics_tables.device_hour


class ToolSeen(Base):
    """Mapped onto ``metrics_tool_seen``."""

    __table__ = metrics_tables.tool_seen


class PersonSeen(Base):
    """Mapped onto ``metrics_person_seen``."""

    __table__ = metrics_tables.person_seen
