"""Delivery rows are found by their (run, subscriber) key only: the (run, state) index goes.

Revision ID: 0009_deliveries_by_key
Revises: 0008_worker_content
Create Date: 2026-12-05

A claim and an outcome each touch one row, by its key. On PostgreSQL their plan
is made once per connection, and in a first send (the senders queue the list a
share at a time) it is made while the run holds a few rows: the planner then
took the (run, state) index, which walks every row of the run for each claim.
Without it the key is the only way in. Each claim and each outcome also
changed that index (``state`` changes both times). What read it (counts by
state, the sweep for messages in flight) reads the run's rows through the key,
once per sender and per report.
"""

from alembic import op

revision = "0009_deliveries_by_key"
down_revision = "0008_worker_content"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_deliveries_run_id_state", table_name="deliveries")


def downgrade() -> None:
    op.create_index("ix_deliveries_run_id_state", "deliveries", ["run_id", "state"])
