"""Several senders on one PostgreSQL: one ``send_workers`` row per sender that joined a run.

Revision ID: 0007_send_workers
Revises: 0006_bounces
Create Date: 2026-12-04

``deliveries.worker_id`` names the worker that reserved a row, so each sender
sends only its share, and a dead sender's in-flight rows (and only those)
become ``unknown``.
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_send_workers"
down_revision = "0006_bounces"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "send_workers",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.Integer, sa.ForeignKey("send_runs.id", name="fk_send_workers_run_id_send_runs"),
                  nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_send_workers"),
    )
    op.create_index("ix_send_workers_run_id", "send_workers", ["run_id"])
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("worker_id", sa.Integer, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("worker_id")
    op.drop_index("ix_send_workers_run_id", table_name="send_workers")
    op.drop_table("send_workers")
