"""Bounces and complaints received after a send, one row per piece of evidence.

Revision ID: 0006_bounces
Revises: 0005_staff_review
Create Date: 2026-12-04

``bounce_events`` keeps every returned message or relay event that was
processed (matched to a run and subscriber or not) and what applying it did,
so the same evidence is never applied twice and ``newsletter sends`` can count
hard, soft and complaint reports per run.
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_bounces"
down_revision = "0005_staff_review"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bounce_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("evidence", sa.String(300), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default=""),
        sa.Column("reason", sa.String(32), nullable=False, server_default=""),
        sa.Column("summary", sa.String(500), nullable=False, server_default=""),
        sa.Column("run_id", sa.Integer, sa.ForeignKey("send_runs.id", name="fk_bounce_events_run_id_send_runs"),
                  nullable=True),
        sa.Column("subscriber_id", sa.Integer,
                  sa.ForeignKey("subscribers.id", name="fk_bounce_events_subscriber_id_subscribers"), nullable=True),
        sa.Column("action", sa.String(16), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_bounce_events"),
        sa.UniqueConstraint("evidence", name="uq_bounce_events_evidence"),
    )
    op.create_index("ix_bounce_events_subscriber_id_kind", "bounce_events", ["subscriber_id", "kind"])
    op.create_index("ix_bounce_events_run_id", "bounce_events", ["run_id"])


def downgrade() -> None:
    op.drop_index("ix_bounce_events_run_id", table_name="bounce_events")
    op.drop_index("ix_bounce_events_subscriber_id_kind", table_name="bounce_events")
    op.drop_table("bounce_events")
