"""Each sender of a run records the digest of the issue it renders, so senders never mix two versions.

Revision ID: 0008_worker_content
Revises: 0007_send_workers
Create Date: 2026-12-04

A sender joining a run while another is alive compares its rendering with
theirs; a different one (a machine with an older copy of the site folder)
refuses to start instead of mailing the rest of the list a different issue.
Rows from before this revision have none and compare with nothing.
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_worker_content"
down_revision = "0007_send_workers"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("send_workers") as batch:
        batch.add_column(sa.Column("content_digest", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("send_workers") as batch:
        batch.drop_column("content_digest")
