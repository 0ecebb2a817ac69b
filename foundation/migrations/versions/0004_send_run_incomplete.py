"""A send run may end ``incomplete``: served as far as it could, with people left deferred, unknown or unsent.

Revision ID: 0004_send_run_incomplete
Revises: 0003_confirmation_per_sign_up
Create Date: 2026-12-04

``done`` now means nobody eligible is left; a session that ends with anyone
deferred, unknown or not yet queued leaves the run ``incomplete``, so
``newsletter sends`` and a cron job's exit status tell the truth.
"""

from alembic import op

revision = "0004_send_run_incomplete"
down_revision = "0003_confirmation_per_sign_up"
branch_labels = None
depends_on = None

OLD = "status IN ('running', 'interrupted', 'aborted', 'done')"
NEW = "status IN ('running', 'interrupted', 'aborted', 'incomplete', 'done')"


def _replace_check(condition: str) -> None:
    with op.batch_alter_table("send_runs") as batch:
        batch.drop_constraint("ck_send_runs_status", type_="check")
        batch.create_check_constraint("ck_send_runs_status", condition)


def upgrade() -> None:
    _replace_check(NEW)


def downgrade() -> None:
    op.execute("UPDATE send_runs SET status = 'interrupted' WHERE status = 'incomplete'")
    _replace_check(OLD)
