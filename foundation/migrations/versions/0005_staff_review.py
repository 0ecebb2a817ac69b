"""Staff review: staff accounts, their sign-in sessions and failures, and review events.

Revision ID: 0005_staff_review
Revises: 0004_send_run_incomplete
Create Date: 2026-12-04

Used by ``newsletters.review`` (accounts, approvals) and the staff pages of
``newsletter serve``. Spelled out here, not taken from ``foundation.tables``,
so this revision keeps creating exactly these tables however the code grows.
"""

from alembic import op
import sqlalchemy as sa

revision = "0005_staff_review"
down_revision = "0004_send_run_incomplete"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "staff_accounts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("password_hash", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("password_changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_staff_accounts"),
        sa.UniqueConstraint("email", name="uq_staff_accounts_email"),
        sa.CheckConstraint("role IN ('reviewer', 'editor')", name="ck_staff_accounts_role"),
    )
    op.create_table(
        "staff_sessions",
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("staff_id", sa.Integer, nullable=False),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("token_hash", name="pk_staff_sessions"),
        sa.ForeignKeyConstraint(
            ["staff_id"], ["staff_accounts.id"], name="fk_staff_sessions_staff_id_staff_accounts", ondelete="CASCADE"
        ),
    )
    op.create_table(
        "staff_sign_in_failures",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("address", sa.String(64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_staff_sign_in_failures"),
    )
    for column in ("email", "address", "at"):
        op.create_index(f"ix_staff_sign_in_failures_{column}", "staff_sign_in_failures", [column])
    op.create_table(
        "review_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("issue_slug", sa.String(100), nullable=False),
        sa.Column("content_digest", sa.String(64), nullable=False),
        sa.Column("staff_id", sa.Integer, nullable=False),
        sa.Column("staff_email", sa.String(320), nullable=False),
        sa.Column("staff_name", sa.String(100), nullable=False),
        sa.Column("staff_role", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("comment", sa.Text, nullable=False, server_default=""),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_review_events"),
        sa.CheckConstraint(
            "kind IN ('approved', 'changes_requested', 'commented', 'test_sent')", name="ck_review_events_kind"
        ),
    )
    op.create_index("ix_review_events_issue_slug", "review_events", ["issue_slug"])
    op.create_index("ix_review_events_staff_id", "review_events", ["staff_id"])


def downgrade() -> None:
    op.drop_table("review_events")
    op.drop_table("staff_sign_in_failures")
    op.drop_table("staff_sessions")
    op.drop_table("staff_accounts")
