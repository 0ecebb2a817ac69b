"""Claims and outcomes update a delivery row in place: no index on ``handed_at``; room left in each page.

Revision ID: 0011_deliveries_hot_updates
Revises: 0010_delivery_state_enum
Create Date: 2026-12-05

PostgreSQL writes an updated row as a new version. When no indexed column
changes and the page has room for it, that version stays on the same page and
no index is touched (a "HOT" update); otherwise every index of the table gets
a new entry. A claim sets ``handed_at``, which was indexed, and the rows were
queued into full pages, so most claims and outcomes went to every index: of
the 20,000 updates of a send of 10,000 messages, 8,100 were HOT. Without the
``handed_at`` index and with pages filled to 70% (``fillfactor``), 19,000 were,
and the server spent 10% less CPU on the send (bench/send.py's two senders,
alternated runs: 3.01 -> 2.71 CPU seconds).

What read that index: the hourly limit and the fallback of bounce matching by
address (a bounce with neither its VERP return path nor our Message-ID), which
now find the runs active in the window and read their rows by the run's key
(``newsletters.delivery.ledger.runs_active_since``). No index on
``subscriber_id`` replaces it: a claim's plan, made once per connection, took
that one over the (run, subscriber) key, and a subscriber has a row in every
run, so each claim would have read one row per issue ever sent (migration 0009
keeps the key the only way in). SQLite has no fillfactor.
"""

from alembic import op

revision = "0011_deliveries_hot_updates"
down_revision = "0010_delivery_state_enum"
branch_labels = None
depends_on = None

FILLFACTOR = 70


def upgrade() -> None:
    op.drop_index("ix_deliveries_handed_at", table_name="deliveries")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE deliveries SET (fillfactor = {FILLFACTOR})")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE deliveries RESET (fillfactor)")
    op.create_index("ix_deliveries_handed_at", "deliveries", ["handed_at"])
