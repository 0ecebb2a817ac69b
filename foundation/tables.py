"""Every table of the site's database, in the one place both the list and the pipeline import.

The subscriber list (``recipients``) owns the subscriber, consent and
suppression tables; the pipeline's delivery ledger owns ``send_runs`` and
``deliveries``. Both are defined here, below both packages, because the moment
of handover joins them: a delivery row is claimed only while its subscriber is
eligible, in one statement (``recipients.handover``).

SQLAlchemy Core (no ORM) so the same statements run on SQLite and PostgreSQL.
The migrations (``foundation/migrations/versions/``), not
``metadata.create_all``, are what create a database, so a change here needs a
new revision there.

The consent ledger (``consent_events``) is append-only: rows are inserted and
never updated or deleted, with one exception, ``forget``, which blanks the
personal data (IP, user agent, detail) in that person's rows but keeps each
event's kind and time, the proof that the address was suppressed.
"""

from __future__ import annotations

from datetime import datetime, timezone

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator

# Subscriber statuses. Only `active` may be mailed, and only if `eligible` agrees.
PENDING = "pending"
ACTIVE = "active"
UNSUBSCRIBED = "unsubscribed"
BOUNCED = "bounced"
COMPLAINED = "complained"
ERASED = "erased"
STATUSES = (PENDING, ACTIVE, UNSUBSCRIBED, BOUNCED, COMPLAINED, ERASED)

# Consent ledger events.
EV_SUBSCRIBED = "subscribed"
EV_CONFIRMED = "confirmed"
EV_UNSUBSCRIBED = "unsubscribed"
EV_BOUNCED = "bounced"
EV_COMPLAINED = "complained"
EV_ERASED = "erased"
EVENTS = (EV_SUBSCRIBED, EV_CONFIRMED, EV_UNSUBSCRIBED, EV_BOUNCED, EV_COMPLAINED, EV_ERASED)

# How consent was given (`subscribed` events): double opt-in applies to `web` only.
METHODS = ("web", "import", "admin")
# How someone left (`unsubscribed` events).
CHANNELS = ("one-click", "link", "admin", "reply")


class UTCDateTime(TypeDecorator):
    """An aware UTC datetime on every backend (SQLite would hand back naive values)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

subscribers = sa.Table(
    "subscribers",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    # Random and opaque: the only identifier that leaves the database (in tokens).
    sa.Column("public_id", sa.String(32), nullable=False, unique=True),
    # As given, domain lower-cased (ASCII/punycode); NULL once erased.
    sa.Column("email", sa.String(320), nullable=True, unique=True),
    # HMAC-SHA256(SECRET_KEY, address lower-cased): the identity used for lookups,
    # duplicates and the suppression list, so case never makes two people of one.
    sa.Column("email_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("first_name", sa.String(100), nullable=False, server_default=""),
    sa.Column("last_name", sa.String(100), nullable=False, server_default=""),
    sa.Column("attributes", sa.JSON, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    # Drawn anew at each sign-up, cleared on leaving: a confirm link only works for its own sign-up.
    sa.Column("confirm_nonce", sa.String(32), nullable=True),
    # When the confirmation mail of the current sign-up was handed over; NULL while it is owed.
    sa.Column("confirm_mailed_at", UTCDateTime, nullable=True),
    sa.CheckConstraint(
        "status IN ('pending', 'active', 'unsubscribed', 'bounced', 'complained', 'erased')", name="status"
    ),
)

consent_events = sa.Table(
    "consent_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("subscriber_id", sa.Integer, sa.ForeignKey("subscribers.id"), nullable=False, index=True),
    sa.Column("event", sa.String(16), nullable=False),
    # When it happened (for an import: when consent was given, from the file).
    sa.Column("at", UTCDateTime, nullable=False),
    # When this row was written.
    sa.Column("recorded_at", UTCDateTime, nullable=False),
    sa.Column("method", sa.String(16), nullable=True),  # subscribed: web, import, admin
    sa.Column("source", sa.String(500), nullable=True),  # form URL, "paper form at reception", ...
    sa.Column("consent_text", sa.Text, nullable=True),  # the exact wording shown, or its version
    sa.Column("channel", sa.String(16), nullable=True),  # unsubscribed: one-click, link, admin, reply
    sa.Column("ip", sa.String(64), nullable=True),
    sa.Column("user_agent", sa.String(500), nullable=True),
    sa.Column("detail", sa.Text, nullable=True),  # import file and line, bounce reply, ...
    sa.CheckConstraint(
        "event IN ('subscribed', 'confirmed', 'unsubscribed', 'bounced', 'complained', 'erased')", name="event"
    ),
)

# Keyed hashes of erased addresses: enough to refuse them again, nothing to read back.
suppressions = sa.Table(
    "suppressions",
    metadata,
    sa.Column("email_hash", sa.String(64), primary_key=True),
    sa.Column("reason", sa.String(32), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

# Small facts about the store itself, e.g. a check value for the SECRET_KEY the
# hashes were made with (a changed key would silently empty the suppression list).
store_meta = sa.Table(
    "store_meta",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.String(200), nullable=False),
)


# -- the delivery ledger: one row per (send run, subscriber) ------------------------
# States of a delivery row; what each means is told in ``newsletters.delivery.ledger``.
QUEUED, SENDING, SENT, DEFERRED, FAILED, BOUNCED, SKIPPED, UNKNOWN = (
    "queued", "sending", "sent", "deferred", "failed", "bounced", "skipped", "unknown",
)
STATES = (QUEUED, SENDING, SENT, DEFERRED, FAILED, BOUNCED, SKIPPED, UNKNOWN)
# States from which a row may be claimed for (another) handover.
SENDABLE = (QUEUED, DEFERRED, SKIPPED)

# PostgreSQL: an enum type; SQLite: text under a CHECK. Why not a CHECK on PostgreSQL too: migration 0010.
DELIVERY_STATE = sa.Enum(*STATES, name="delivery_state", native_enum=True, create_constraint=True, length=16)

RUNNING, INTERRUPTED, ABORTED, INCOMPLETE, DONE = "running", "interrupted", "aborted", "incomplete", "done"
# States in which a row is finished with: its subscriber has been served, for good or ill.
FINISHED = (SENT, FAILED, BOUNCED, SKIPPED)

send_runs = sa.Table(
    "send_runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("issue_slug", sa.String(100), nullable=False, index=True),
    sa.Column("issue_path", sa.String(1000), nullable=False),
    sa.Column("subject", sa.Text, nullable=False),
    # Random per run: makes Message-IDs unguessable yet the same when a message is resent.
    sa.Column("nonce", sa.String(32), nullable=False),
    # Digest of the rendered issue, to tell the user when a resumed run's content changed.
    sa.Column("content_digest", sa.String(64), nullable=False, server_default=""),
    sa.Column("transport", sa.String(300), nullable=False, server_default=""),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("sessions", sa.Integer, nullable=False, server_default="0"),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("finished_at", UTCDateTime, nullable=True),
    sa.CheckConstraint("status IN ('running', 'interrupted', 'aborted', 'incomplete', 'done')", name="status"),
)

deliveries = sa.Table(
    "deliveries",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.Integer, sa.ForeignKey("send_runs.id"), nullable=False),
    sa.Column("subscriber_id", sa.Integer, sa.ForeignKey("subscribers.id"), nullable=False),
    sa.Column("state", DELIVERY_STATE, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("reply_code", sa.Integer, nullable=True),
    sa.Column("reply_text", sa.String(500), nullable=True),
    sa.Column("queued_at", UTCDateTime, nullable=False),
    sa.Column("handed_at", UTCDateTime, nullable=True),  # last claim: the rate window counts these
    sa.Column("done_at", UTCDateTime, nullable=True),
    # PostgreSQL, several senders: the send_workers row that reserved this row (None: nobody yet, or SQLite).
    sa.Column("worker_id", sa.Integer, nullable=True),
    # How every statement finds a run's rows (migration 0009 says why there is no (run, state) index).
    sa.UniqueConstraint("run_id", "subscriber_id", name="uq_deliveries_run_id_subscriber_id"),
    # No index on a column a claim or an outcome changes, and (on PostgreSQL, fillfactor 70) room in each
    # page: both update the row in place there (migration 0011, which is what sets the fillfactor).
)


# -- several senders on one PostgreSQL: one row per ``newsletter send`` process that joined a run -----------
WORKER_RUNNING, WORKER_DEAD = "running", "dead"  # else the status it ended with (done, incomplete, ...)

send_workers = sa.Table(
    "send_workers",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.Integer, sa.ForeignKey("send_runs.id"), nullable=False),
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("finished_at", UTCDateTime, nullable=True),
    sa.Column("status", sa.String(16), nullable=False),
    # What this sender renders (``delivery.session.content_digest``): a joining sender must render the same.
    sa.Column("content_digest", sa.String(64), nullable=True),
    sa.Index("ix_send_workers_run_id", "run_id"),
)

# -- staff review: accounts, their sign-in sessions, and what they did to an issue -------
# Staff are not subscribers: they sign in to the staff pages of `newsletter serve`
# (``newsletters.review``). Reviewers approve; editors view, comment and test-send.
REVIEWER, EDITOR = "reviewer", "editor"
STAFF_ROLES = (REVIEWER, EDITOR)
# Kinds of review event; only `approved` and `changes_requested` are decisions.
APPROVED, CHANGES_REQUESTED, COMMENTED, TEST_SENT = "approved", "changes_requested", "commented", "test_sent"
REVIEW_KINDS = (APPROVED, CHANGES_REQUESTED, COMMENTED, TEST_SENT)

staff_accounts = sa.Table(
    "staff_accounts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("email", sa.String(320), nullable=False, unique=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("password_hash", sa.String(200), nullable=False),  # argon2id, with its own salt and parameters
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("password_changed_at", UTCDateTime, nullable=False),
    sa.CheckConstraint("role IN ('reviewer', 'editor')", name="role"),
)

# A signed-in browser: the cookie holds a random token, the table only its SHA-256.
staff_sessions = sa.Table(
    "staff_sessions",
    metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("staff_id", sa.Integer, sa.ForeignKey("staff_accounts.id", ondelete="CASCADE"), nullable=False),
    sa.Column("csrf_token", sa.String(64), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("seen_at", UTCDateTime, nullable=False),
)

# Failed sign-ins, counted per account (e-mail as typed) and per client address for throttling.
staff_sign_in_failures = sa.Table(
    "staff_sign_in_failures",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("email", sa.String(320), nullable=False, index=True),
    sa.Column("address", sa.String(64), nullable=False, index=True),
    sa.Column("at", UTCDateTime, nullable=False, index=True),
)

# Append-only: approvals, requests for changes, comments and test sends, each bound to the
# digest of the build the person saw. The name and role are copied so history survives a removal.
review_events = sa.Table(
    "review_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("issue_slug", sa.String(100), nullable=False, index=True),
    sa.Column("content_digest", sa.String(64), nullable=False),
    sa.Column("staff_id", sa.Integer, nullable=False, index=True),
    sa.Column("staff_email", sa.String(320), nullable=False),
    sa.Column("staff_name", sa.String(100), nullable=False),
    sa.Column("staff_role", sa.String(16), nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("comment", sa.Text, nullable=False, server_default=""),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.CheckConstraint("kind IN ('approved', 'changes_requested', 'commented', 'test_sent')", name="kind"),
)

# -- bounces and complaints received after a send ------------------------------------
# What applying one received report did (``newsletters.bounces.apply``); NULL while it is being applied.
BOUNCE_ACTIONS = ("bounced", "complained", "counted", "already", "ignored", "unmatched")

# One row per piece of evidence (a returned message, a relay's event), matched or not. No address is
# stored: a matched row points at its subscriber (whose address ``forget`` blanks); an unmatched one at nobody.
bounce_events = sa.Table(
    "bounce_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    # "sha256:<digest of the raw message>" or "<relay>:<relay's event id>": the same evidence is applied once.
    sa.Column("evidence", sa.String(300), nullable=False, unique=True),
    sa.Column("source", sa.String(16), nullable=False),  # file, mailbox, ses, postmark, mailgun, sendgrid
    sa.Column("kind", sa.String(16), nullable=False),  # hard, soft, complaint, auto-reply, not-a-bounce
    sa.Column("status", sa.String(16), nullable=False, server_default=""),  # RFC 3463 code
    sa.Column("reason", sa.String(32), nullable=False, server_default=""),
    sa.Column("summary", sa.String(500), nullable=False, server_default=""),  # file name / relay id, format
    sa.Column("run_id", sa.Integer, sa.ForeignKey("send_runs.id"), nullable=True),
    sa.Column("subscriber_id", sa.Integer, sa.ForeignKey("subscribers.id"), nullable=True),
    sa.Column("action", sa.String(16), nullable=True),
    sa.Column("received_at", UTCDateTime, nullable=False),
    sa.Index("ix_bounce_events_subscriber_id_kind", "subscriber_id", "kind"),
    sa.Index("ix_bounce_events_run_id", "run_id"),
)
