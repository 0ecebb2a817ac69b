"""A confirmation link belongs to one sign-up, and the store knows whether its mail went out.

Revision ID: 0003_confirmation_per_sign_up
Revises: 0002_delivery_ledger
Create Date: 2026-12-04

``confirm_nonce`` is drawn anew at every sign-up and cleared when the person
leaves: a link made for an earlier sign-up no longer matches. ``confirm_mailed_at``
is set only after the confirmation mail was handed over, which happens after
the sign-up committed (no network inside a transaction); NULL on a pending
subscriber means the mail is still owed (``newsletter recipients
resend-confirmations``). Pending sign-ups from before this revision have no
nonce: their old links stop working and a new sign-up sends a fresh one.
"""

from alembic import op
import sqlalchemy as sa

revision = "0003_confirmation_per_sign_up"
down_revision = "0002_delivery_ledger"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("subscribers") as batch:
        batch.add_column(sa.Column("confirm_nonce", sa.String(32), nullable=True))
        batch.add_column(sa.Column("confirm_mailed_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("subscribers") as batch:
        batch.drop_column("confirm_mailed_at")
        batch.drop_column("confirm_nonce")
