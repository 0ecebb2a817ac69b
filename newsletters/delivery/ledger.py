"""The delivery ledger: one row per (send run, subscriber), the memory that makes resume safe.

A row is written *before* its message is handed to the server and marked with
the server's reply after, so after any crash the ledger says, for each
subscriber, one of:

``queued``    in the run, not handed over yet: safe to send.
``sending``   claimed and being handed over right now (by a live process), or
              handed over by a process that died before the reply was recorded.
              A new process turns the latter into ``unknown``.
``sent``      the server accepted it (2xx after the data). Never sent again.
``deferred``  the server said "later" (4xx) or the connection broke before the
              message was complete; tried again within the run and on resume.
``failed``    refused for good (5xx). Never sent again in this run.
``bounced``   refused because the mailbox does not exist (5.1.x); the subscriber
              is marked bounced in the store as well, so later issues skip them.
``skipped``   queued, but no longer eligible when their turn came.
``unknown``   handed over without a recorded reply. Not resent unless asked.

Where listmonk keeps one "last subscriber id" per campaign (so a pause/resume
skips or repeats people: listmonk #2070, #2313) and Mautic writes a stat row
*after* sending without a uniqueness rule (#9880), here the unique
``(run_id, subscriber_id)`` row and a conditional UPDATE claim it: only one
worker, in one process, can move a row to ``sending``.

Rows hold no address or name: the report joins ``subscribers``, so forgetting a
person (``Store.forget``) leaves nothing personal here.
"""

from __future__ import annotations

import secrets
import threading
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Iterable, Sequence

import sqlalchemy as sa

from recipients.schema import UTCDateTime, metadata, subscribers, utcnow

QUEUED, SENDING, SENT, DEFERRED, FAILED, BOUNCED, SKIPPED, UNKNOWN = (
    "queued", "sending", "sent", "deferred", "failed", "bounced", "skipped", "unknown",
)
STATES = (QUEUED, SENDING, SENT, DEFERRED, FAILED, BOUNCED, SKIPPED, UNKNOWN)
# States from which a row may be claimed for (another) handover.
SENDABLE = (QUEUED, DEFERRED, SKIPPED)

RUNNING, INTERRUPTED, ABORTED, DONE = "running", "interrupted", "aborted", "done"

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
    sa.CheckConstraint("status IN ('running', 'interrupted', 'aborted', 'done')", name="status"),
)

deliveries = sa.Table(
    "deliveries",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.Integer, sa.ForeignKey("send_runs.id"), nullable=False),
    sa.Column("subscriber_id", sa.Integer, sa.ForeignKey("subscribers.id"), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("reply_code", sa.Integer, nullable=True),
    sa.Column("reply_text", sa.String(500), nullable=True),
    sa.Column("queued_at", UTCDateTime, nullable=False),
    sa.Column("handed_at", UTCDateTime, nullable=True),  # last claim: the rate window counts these
    sa.Column("done_at", UTCDateTime, nullable=True),
    sa.UniqueConstraint("run_id", "subscriber_id", name="uq_deliveries_run_id_subscriber_id"),
    sa.Index("ix_deliveries_run_id_state", "run_id", "state"),
    sa.Index("ix_deliveries_handed_at", "handed_at"),
    sa.CheckConstraint(
        "state IN ('queued', 'sending', 'sent', 'deferred', 'failed', 'bounced', 'skipped', 'unknown')", name="state"
    ),
)


@dataclass(frozen=True)
class Run:
    id: int
    issue_slug: str
    issue_path: str
    subject: str
    nonce: str
    content_digest: str
    transport: str
    status: str
    sessions: int
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None


@dataclass(frozen=True)
class Outcome:
    """What one handover ended as, to be written on the row it claimed."""

    subscriber_id: int
    state: str
    code: int | None = None
    text: str | None = None


@dataclass(frozen=True)
class Unresolved:
    """A run's subscriber without an accepted message, for the report."""

    subscriber_id: int
    email: str | None
    state: str
    attempts: int
    reply_code: int | None
    reply_text: str | None


def _run(row) -> Run:
    return Run(**{k: row._mapping[k] for k in Run.__dataclass_fields__})


class Ledger:
    """The ledger's statements, on the store's engine.

    On SQLite every connection from here runs with ``synchronous=NORMAL``: in WAL
    mode a commit then survives the death of the process (what a resume needs),
    only a power cut may lose the last few, and it costs no fsync per message.
    """

    def __init__(self, engine: sa.Engine):
        self.engine = engine
        self.sqlite = engine.dialect.name == "sqlite"
        # SQLite has one writer at a time, and makes the others wait by sleeping (its busy
        # handler naps for milliseconds). Our own threads queue on this lock instead.
        self.write_lock = threading.Lock() if self.sqlite else nullcontext()

    def connect(self) -> sa.Connection:
        conn = self.engine.connect()
        if self.sqlite:
            # Outside any transaction (the store runs pysqlite with isolation_level=None).
            conn.connection.dbapi_connection.execute("PRAGMA synchronous=NORMAL")
            # Take the write lock at BEGIN, so two writers never deadlock upgrading a read lock.
            conn = conn.execution_options(sqlite_begin="IMMEDIATE")
        return conn

    # -- runs ----------------------------------------------------------------------
    def latest_run(self, issue_slug: str) -> Run | None:
        query = sa.select(send_runs).where(send_runs.c.issue_slug == issue_slug).order_by(send_runs.c.id.desc())
        with self.engine.connect() as conn:
            row = conn.execute(query.limit(1)).first()
        return _run(row) if row else None

    def get_run(self, run_id: int) -> Run | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(send_runs).where(send_runs.c.id == run_id)).first()
        return _run(row) if row else None

    def runs(self) -> list[Run]:
        with self.engine.connect() as conn:
            return [_run(row) for row in conn.execute(sa.select(send_runs).order_by(send_runs.c.id))]

    def create_run(self, *, issue_slug: str, issue_path: str, subject: str, content_digest: str, transport: str) -> Run:
        now = utcnow()
        with self.connect() as conn, conn.begin():
            run_id = conn.execute(
                send_runs.insert().values(
                    issue_slug=issue_slug,
                    issue_path=issue_path,
                    subject=subject,
                    nonce=secrets.token_hex(16),
                    content_digest=content_digest,
                    transport=transport,
                    status=RUNNING,
                    sessions=0,
                    created_at=now,
                    updated_at=now,
                )
            ).inserted_primary_key[0]
        return self.get_run(run_id)

    def start_session(self, run_id: int, *, transport: str, content_digest: str) -> int:
        """Mark the run as running again; rows a dead process left in ``sending`` become ``unknown``.

        Only call this holding the site's send lock: then no live process is
        handing any of them over, and "sending" can only mean "died mid-handover".
        """
        now = utcnow()
        with self.connect() as conn, conn.begin():
            orphans = conn.execute(
                deliveries.update()
                .where(deliveries.c.run_id == run_id, deliveries.c.state == SENDING)
                .values(
                    state=UNKNOWN,
                    reply_text="handed over by a process that stopped before the server's reply was recorded",
                    done_at=now,
                )
            ).rowcount
            conn.execute(
                send_runs.update()
                .where(send_runs.c.id == run_id)
                .values(
                    status=RUNNING,
                    sessions=send_runs.c.sessions + 1,
                    transport=transport,
                    content_digest=content_digest,
                    updated_at=now,
                    finished_at=None,
                )
            )
        return orphans

    def finish_session(self, run_id: int, status: str) -> None:
        now = utcnow()
        values = dict(status=status, updated_at=now)
        if status == DONE:
            values["finished_at"] = now
        with self.connect() as conn, conn.begin():
            conn.execute(send_runs.update().where(send_runs.c.id == run_id).values(**values))

    # -- batches ---------------------------------------------------------------------
    def enqueue(self, conn: sa.Connection, run_id: int, subscriber_ids: Sequence[int]) -> dict[int, tuple[str, int]]:
        """Make sure each subscriber has a row in the run; return ``{id: (state, attempts)}`` for all of them."""
        if not subscriber_ids:
            return {}
        with self.write_lock, conn.begin():
            existing = {
                row.subscriber_id: (row.state, row.attempts)
                for row in conn.execute(
                    sa.select(deliveries.c.subscriber_id, deliveries.c.state, deliveries.c.attempts).where(
                        deliveries.c.run_id == run_id, deliveries.c.subscriber_id.in_(subscriber_ids)
                    )
                )
            }
            now = utcnow()
            new = [
                dict(run_id=run_id, subscriber_id=sid, state=QUEUED, attempts=0, queued_at=now)
                for sid in subscriber_ids
                if sid not in existing
            ]
            if new:
                conn.execute(deliveries.insert(), new)
        for row in new:
            existing[row["subscriber_id"]] = (QUEUED, 0)
        return existing

    # -- one message -------------------------------------------------------------------
    _claim = (
        deliveries.update()
        .where(
            deliveries.c.run_id == sa.bindparam("run"),
            deliveries.c.subscriber_id == sa.bindparam("sub"),
            deliveries.c.state.in_(sa.bindparam("from_states", expanding=True)),
        )
        .values(state=SENDING, attempts=deliveries.c.attempts + 1, handed_at=sa.bindparam("now"))
    )
    _resolve = (
        deliveries.update()
        .where(
            deliveries.c.run_id == sa.bindparam("run"),
            deliveries.c.subscriber_id == sa.bindparam("sub"),
            deliveries.c.state == SENDING,
        )
        .values(
            state=sa.bindparam("new_state"),
            reply_code=sa.bindparam("code"),
            reply_text=sa.bindparam("text"),
            done_at=sa.bindparam("now"),
        )
    )

    def record(
        self,
        conn: sa.Connection,
        run_id: int,
        outcome: Outcome | None,
        claim: int | None = None,
        claimable: Iterable[str] = SENDABLE,
    ) -> bool:
        """In one commit: write the previous message's outcome, and claim the next subscriber.

        Returns whether the claim succeeded (False: another process or an earlier
        session already holds or finished that row, so it must not be sent).
        Doing both in one transaction halves the commits per message without
        weakening the guarantee: each connection still has at most one row in
        ``sending`` at any moment.
        """
        now = utcnow()
        claimed = True
        with self.write_lock, conn.begin():
            if outcome is not None:
                conn.execute(
                    self._resolve,
                    dict(run=run_id, sub=outcome.subscriber_id, new_state=outcome.state, code=outcome.code,
                         text=outcome.text, now=now),
                )
            if claim is not None:
                result = conn.execute(self._claim, dict(run=run_id, sub=claim, from_states=list(claimable), now=now))
                claimed = result.rowcount == 1
        return claimed

    def writer(self, conn: sa.Connection) -> "HandoverWriter":
        """What a worker records claims and outcomes with: the fast SQLite path, or Core statements."""
        return SQLiteHandoverWriter(conn, self.write_lock) if self.sqlite else HandoverWriter(self, conn)

    def release(self, conn: sa.Connection, run_id: int, subscriber_id: int, state: str = QUEUED) -> None:
        """Undo a claim whose message never left (the connection could not even be opened)."""
        with self.write_lock, conn.begin():
            conn.execute(
                deliveries.update()
                .where(
                    deliveries.c.run_id == run_id,
                    deliveries.c.subscriber_id == subscriber_id,
                    deliveries.c.state == SENDING,
                )
                .values(state=state, attempts=deliveries.c.attempts - 1)
            )

    # -- the end of a pass -----------------------------------------------------------------
    def skip_ineligible(self, run_id: int, eligible_ids: sa.Select) -> int:
        """Rows still waiting whose subscriber is no longer eligible (unsubscribed, bounced …) become skipped."""
        eligible = sa.select(eligible_ids.subquery().c.id)
        with self.connect() as conn, conn.begin():
            return conn.execute(
                deliveries.update()
                .where(
                    deliveries.c.run_id == run_id,
                    deliveries.c.state.in_((QUEUED, DEFERRED)),
                    deliveries.c.subscriber_id.not_in(eligible),
                )
                .values(state=SKIPPED, reply_text="no longer eligible (unsubscribed, bounced or removed)")
            ).rowcount

    def counts(self, run_id: int) -> dict[str, int]:
        counts = dict.fromkeys(STATES, 0)
        query = (
            sa.select(deliveries.c.state, sa.func.count())
            .where(deliveries.c.run_id == run_id)
            .group_by(deliveries.c.state)
        )
        with self.engine.connect() as conn:
            counts.update({state: n for state, n in conn.execute(query)})
        return counts

    def count_waiting(self, run_id: int, eligible_query: sa.Select, claimable: Sequence[str]) -> int:
        """Eligible subscribers this run has not finished with: what a resume would send."""
        eligible = eligible_query.subquery()
        finished = sa.exists().where(
            deliveries.c.run_id == run_id,
            deliveries.c.subscriber_id == eligible.c.id,
            deliveries.c.state.not_in(list(claimable)),
        )
        with self.engine.connect() as conn:
            return conn.scalar(sa.select(sa.func.count()).select_from(eligible).where(~finished))

    def count_sent(self, issue_slug: str) -> int:
        """Subscribers whose server accepted this issue in any run so far."""
        query = (
            sa.select(sa.func.count(sa.distinct(deliveries.c.subscriber_id)))
            .join(send_runs, send_runs.c.id == deliveries.c.run_id)
            .where(send_runs.c.issue_slug == issue_slug, deliveries.c.state == SENT)
        )
        with self.engine.connect() as conn:
            return conn.scalar(query)

    def unresolved(self, run_id: int) -> list[Unresolved]:
        """Everyone in the run without an accepted message, with the last reply."""
        query = (
            sa.select(
                deliveries.c.subscriber_id,
                subscribers.c.email,
                deliveries.c.state,
                deliveries.c.attempts,
                deliveries.c.reply_code,
                deliveries.c.reply_text,
            )
            .join(subscribers, subscribers.c.id == deliveries.c.subscriber_id)
            .where(deliveries.c.run_id == run_id, deliveries.c.state != SENT)
            .order_by(deliveries.c.subscriber_id)
        )
        with self.engine.connect() as conn:
            return [Unresolved(*row) for row in conn.execute(query)]

    def handed_since(self, since: datetime, limit: int) -> list[datetime]:
        """When the most recent handovers happened (all runs), to seed the hourly limit."""
        query = (
            sa.select(deliveries.c.handed_at)
            .where(deliveries.c.handed_at > since)
            .order_by(deliveries.c.handed_at.desc())
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [row[0] for row in conn.execute(query)]

    def state_of(self, run_id: int, subscriber_id: int) -> str | None:
        with self.engine.connect() as conn:
            return conn.scalar(
                sa.select(deliveries.c.state).where(
                    deliveries.c.run_id == run_id, deliveries.c.subscriber_id == subscriber_id
                )
            )


class HandoverWriter:
    """Claims and outcomes through SQLAlchemy Core: any database the store runs on."""

    def __init__(self, ledger: Ledger, conn: sa.Connection):
        self.ledger = ledger
        self.conn = conn

    def record(self, run_id: int, outcome: Outcome | None, claim: int | None = None, claimable=SENDABLE) -> bool:
        return self.ledger.record(self.conn, run_id, outcome, claim, claimable)


class SQLiteHandoverWriter:
    """The same two statements on the raw sqlite3 connection: the per-message hot path.

    Through SQLAlchemy a claim-and-record commit costs about 140 µs here, on the
    bare driver about 55 µs, and at 2,000 messages a second that difference is
    most of what separates a send from the raw SMTP limit. The statements
    mirror ``Ledger._claim`` and ``Ledger._resolve``; times are stored in the
    format SQLAlchemy's SQLite DateTime uses, so both paths read alike.
    """

    _RESOLVE = (
        "UPDATE deliveries SET state = ?, reply_code = ?, reply_text = ?, done_at = ? "
        "WHERE run_id = ? AND subscriber_id = ? AND state = 'sending'"
    )
    _CLAIM = (
        "UPDATE deliveries SET state = 'sending', attempts = attempts + 1, handed_at = ? "
        "WHERE run_id = ? AND subscriber_id = ? AND state IN ({})"
    )

    def __init__(self, conn: sa.Connection, lock):
        self.conn = conn
        self.lock = lock
        # The store's engine runs pysqlite with isolation_level=None: BEGIN and COMMIT are ours to issue.
        self.db = conn.connection.dbapi_connection
        self._claims: dict[tuple, str] = {}

    def record(self, run_id: int, outcome: Outcome | None, claim: int | None = None, claimable=SENDABLE) -> bool:
        now = utcnow().replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
        with self.lock:
            return self._record(now, run_id, outcome, claim, claimable)

    def _record(self, now, run_id, outcome, claim, claimable) -> bool:
        cursor = self.db.cursor()
        cursor.execute("BEGIN IMMEDIATE")
        try:
            if outcome is not None:
                cursor.execute(
                    self._RESOLVE, (outcome.state, outcome.code, outcome.text, now, run_id, outcome.subscriber_id)
                )
            claimed = True
            if claim is not None:
                states = tuple(claimable)
                sql = self._claims.get(states)
                if sql is None:
                    sql = self._claims[states] = self._CLAIM.format(", ".join("?" * len(states)))
                cursor.execute(sql, (now, run_id, claim, *states))
                claimed = cursor.rowcount == 1
            cursor.execute("COMMIT")
        except BaseException:
            cursor.execute("ROLLBACK")
            raise
        finally:
            cursor.close()
        return claimed


def hour_ago() -> datetime:
    return utcnow() - timedelta(hours=1)
