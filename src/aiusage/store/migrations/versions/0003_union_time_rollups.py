"""union-time rollups, raw-row indexes they read, orphan open-session rows removed

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04 16:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _key(*names: str) -> list[sa.Column[str]]:
    return [sa.Column(n, sa.String(length=64), nullable=False) for n in names]


def upgrade() -> None:
    op.create_table(
        "metrics_cover",
        *_key("org_id", "user_id"),
        sa.Column("dim", sa.String(length=66), nullable=False),
        sa.Column("start_s", sa.Float(), nullable=False),
        sa.Column("end_s", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("org_id", "user_id", "dim", "start_s"),
    )
    with op.batch_alter_table("metrics_cover", schema=None) as batch_op:
        batch_op.create_index("ix_metrics_cover_user_end", ["org_id", "user_id", "end_s"])
    op.create_table(
        "metrics_person_hour",
        sa.Column("org_id", sa.String(length=64), nullable=False),
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("ai_s", sa.Float(), nullable=False),
        sa.Column("session_s", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("org_id", "hour", "user_id"),
    )
    op.create_table(
        "metrics_tool_hour",
        sa.Column("org_id", sa.String(length=64), nullable=False),
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("tool", sa.String(length=64), nullable=False),
        sa.Column("ai_s", sa.Float(), nullable=False),
        sa.Column("detections", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("org_id", "hour", "user_id", "tool"),
    )
    op.create_table(
        "metrics_device_hour",
        sa.Column("org_id", sa.String(length=64), nullable=False),
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("ai_s", sa.Float(), nullable=False),
        sa.Column("sessions", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("org_id", "hour", "device_id", "user_id"),
    )
    op.create_table(
        "metrics_tool_seen",
        sa.Column("org_id", sa.String(length=64), nullable=False),
        sa.Column("tool", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("detections", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("org_id", "tool", "user_id"),
    )
    op.create_table(
        "metrics_person_seen",
        sa.Column("org_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("org_id", "user_id"),
    )
    with op.batch_alter_table("ai_detections", schema=None) as batch_op:
        batch_op.create_index(
            "ix_ai_detections_org_user_detected", ["org_id", "user_id", "detected_at"]
        )
        batch_op.create_index(
            "ix_ai_detections_org_session", ["org_id", "session_id", "detected_at"]
        )
    with op.batch_alter_table("ai_sessions", schema=None) as batch_op:
        batch_op.create_index("ix_ai_sessions_org_user_end", ["org_id", "user_id", "end_time"])
    # Detections processed after their session ended used to leave an open-session row that
    # nothing would ever delete.
    op.execute(
        "DELETE FROM metrics_open_sessions WHERE EXISTS (SELECT 1 FROM ai_sessions s "
        "WHERE s.org_id = metrics_open_sessions.org_id "
        "AND s.id = metrics_open_sessions.session_id AND s.end_time IS NOT NULL)"
    )
    from aiusage.metrics.backfill import backfill  # only when upgrading: keeps alembic light

    backfill(op.get_bind())


def downgrade() -> None:
    with op.batch_alter_table("ai_sessions", schema=None) as batch_op:
        batch_op.drop_index("ix_ai_sessions_org_user_end")
    with op.batch_alter_table("ai_detections", schema=None) as batch_op:
        batch_op.drop_index("ix_ai_detections_org_session")
        batch_op.drop_index("ix_ai_detections_org_user_detected")
    for table in (
        "metrics_person_seen",
        "metrics_tool_seen",
        "metrics_device_hour",
        "metrics_tool_hour",
        "metrics_person_hour",
    ):
        op.drop_table(table)
    with op.batch_alter_table("metrics_cover", schema=None) as batch_op:
        batch_op.drop_index("ix_metrics_cover_user_end")
    op.drop_table("metrics_cover")
