"""Delivery ledger: send runs and one row per (run, subscriber).

Revision ID: 0002_delivery_ledger
Revises: 0001_baseline
Create Date: 2026-11-23

Owned by ``newsletters.delivery.ledger`` (which defines the same tables on
``foundation.tables.metadata``); spelled out here so this revision keeps
creating exactly these tables however the code grows later.
"""

from alembic import op
import sqlalchemy as sa

revision = "0002_delivery_ledger"
down_revision = "0001_baseline"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "send_runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("issue_slug", sa.String(100), nullable=False),
        sa.Column("issue_path", sa.String(1000), nullable=False),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("nonce", sa.String(32), nullable=False),
        sa.Column("content_digest", sa.String(64), nullable=False, server_default=""),
        sa.Column("transport", sa.String(300), nullable=False, server_default=""),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("sessions", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_send_runs"),
        sa.CheckConstraint("status IN ('running', 'interrupted', 'aborted', 'done')", name="ck_send_runs_status"),
    )
    op.create_index("ix_send_runs_issue_slug", "send_runs", ["issue_slug"])
    op.create_table(
        "deliveries",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.Integer, nullable=False),
        sa.Column("subscriber_id", sa.Integer, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("reply_code", sa.Integer, nullable=True),
        sa.Column("reply_text", sa.String(500), nullable=True),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("handed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_deliveries"),
        sa.ForeignKeyConstraint(["run_id"], ["send_runs.id"], name="fk_deliveries_run_id_send_runs"),
        sa.ForeignKeyConstraint(["subscriber_id"], ["subscribers.id"], name="fk_deliveries_subscriber_id_subscribers"),
        sa.UniqueConstraint("run_id", "subscriber_id", name="uq_deliveries_run_id_subscriber_id"),
        sa.CheckConstraint(
            "state IN ('queued', 'sending', 'sent', 'deferred', 'failed', 'bounced', 'skipped', 'unknown')",
            name="ck_deliveries_state",
        ),
    )
    op.create_index("ix_deliveries_run_id_state", "deliveries", ["run_id", "state"])
    op.create_index("ix_deliveries_handed_at", "deliveries", ["handed_at"])


def downgrade() -> None:
    op.drop_index("ix_deliveries_handed_at", table_name="deliveries")
    op.drop_index("ix_deliveries_run_id_state", table_name="deliveries")
    op.drop_table("deliveries")
    op.drop_index("ix_send_runs_issue_slug", table_name="send_runs")
    op.drop_table("send_runs")
