"""Baseline: subscribers, the consent ledger, the suppression list and store facts.

Revision ID: 0001_baseline
Revises:
Create Date: 2026-11-23

Spelled out here rather than taken from ``foundation.tables`` so that this
revision keeps creating exactly the baseline however the schema grows later.
"""

from alembic import op
import sqlalchemy as sa

revision = "0001_baseline"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "subscribers",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("public_id", sa.String(32), nullable=False),
        sa.Column("email", sa.String(320), nullable=True),
        sa.Column("email_hash", sa.String(64), nullable=False),
        sa.Column("first_name", sa.String(100), nullable=False, server_default=""),
        sa.Column("last_name", sa.String(100), nullable=False, server_default=""),
        sa.Column("attributes", sa.JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_subscribers"),
        sa.UniqueConstraint("public_id", name="uq_subscribers_public_id"),
        sa.UniqueConstraint("email", name="uq_subscribers_email"),
        sa.UniqueConstraint("email_hash", name="uq_subscribers_email_hash"),
        sa.CheckConstraint(
            "status IN ('pending', 'active', 'unsubscribed', 'bounced', 'complained', 'erased')",
            name="ck_subscribers_status",
        ),
    )
    op.create_table(
        "consent_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("subscriber_id", sa.Integer, nullable=False),
        sa.Column("event", sa.String(16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("method", sa.String(16), nullable=True),
        sa.Column("source", sa.String(500), nullable=True),
        sa.Column("consent_text", sa.Text, nullable=True),
        sa.Column("channel", sa.String(16), nullable=True),
        sa.Column("ip", sa.String(64), nullable=True),
        sa.Column("user_agent", sa.String(500), nullable=True),
        sa.Column("detail", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_consent_events"),
        sa.ForeignKeyConstraint(
            ["subscriber_id"], ["subscribers.id"], name="fk_consent_events_subscriber_id_subscribers"
        ),
        sa.CheckConstraint(
            "event IN ('subscribed', 'confirmed', 'unsubscribed', 'bounced', 'complained', 'erased')",
            name="ck_consent_events_event",
        ),
    )
    op.create_index("ix_consent_events_subscriber_id", "consent_events", ["subscriber_id"])
    op.create_table(
        "suppressions",
        sa.Column("email_hash", sa.String(64), nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("email_hash", name="pk_suppressions"),
    )
    op.create_table(
        "store_meta",
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("value", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_store_meta"),
    )


def downgrade() -> None:
    op.drop_table("store_meta")
    op.drop_table("suppressions")
    op.drop_index("ix_consent_events_subscriber_id", table_name="consent_events")
    op.drop_table("consent_events")
    op.drop_table("subscribers")
