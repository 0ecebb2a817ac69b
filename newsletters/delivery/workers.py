"""Several senders on one PostgreSQL: each ``newsletter send`` joins the issue's run as a worker.

PostgreSQL itself is the coordinator; there is no other server:

* **Joining.** The run is found or created under a transaction-level advisory
  lock on the issue slug, so senders started together join one run. Each
  worker has a ``send_workers`` row (host, pid, status).
* **Liveness.** A worker holds a shared session advisory lock keyed by its id,
  on a connection of its own, for its whole life, and on every connection it
  claims or reserves rows with (``attach``, and in ``reserve``'s transaction).
  The server drops each when its session ends, as it does for a killed
  process (SIGKILL included). "Alive" is read from ``pg_locks``, inside the
  statement that acts on it: no lease to renew, no clock to trust, and no
  sender counts as dead while a statement of its can still commit.
* **Shares.** A worker reads the list a batch at a time and *reserves* it a
  share at a time: subscribers with no row in the run yet are queued as its
  own (an ``ON CONFLICT``-safe INSERT: one queued meanwhile by another is
  theirs), and rows already there are taken unless a worker still marked
  running holds them (``FOR UPDATE SKIP LOCKED``: two workers never wait for
  each other; a killed one is marked dead by the sweep below). It
  sends only those. The claim itself is the list's, unchanged: consent is
  still re-judged at the instant of sending.
* **Sweeping.** Rows held by a worker that is no longer alive are released:
  its ``sending`` rows become ``unknown`` (at most one per connection it had),
  its reserved waiting rows go back to everyone. A live worker's rows are never
  touched. A worker sweeps when it joins and when its pass ends (and reads the
  list again if anything was released).
* **The end.** Only the last live worker of a run writes the run's final
  status; the others record their own and leave the run ``running``.

SQLite keeps one sender per database file (``lock.SendLock``); none of this runs there.
"""

from __future__ import annotations

import collections
import os
import socket
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator, Mapping, Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from foundation.tables import (
    DEFERRED, QUEUED, SENDING, SKIPPED, UNKNOWN, WORKER_DEAD, WORKER_RUNNING, deliveries, send_runs, send_workers,
    utcnow,
)

from ..errors import DeliveryError
from .ledger import ORPHAN_TEXT, insert_queued
from .rate import RateLimiter

# Advisory lock namespaces (the first of the two int4 keys): the issue slug's run, and one worker's life.
RUN_NAMESPACE = 0x4E52  # "NR"
WORKER_NAMESPACE = 0x4E57  # "NW"
# How often a worker re-reads how many workers are alive, to take its share of the rate limit.
RATE_REFRESH_SECONDS = 0.5
SHARE_SECONDS = 0.5  # a sender's share of the run, in its own sending time: about what the others may wait for it
# The largest share, of a batch read and enqueued. The batch stays as large as with one sender: each read is a list
# query whose cost hardly depends on its size (measured: batches of 200 made one sender on PostgreSQL 0.59x its
# SQLite speed, against 0.77x with 1,000).
SHARE_MOST = 200
SHARE_PACE_WINDOW = 5.0  # seconds of recent sending a share's size is read from
# Rows not served yet; a dead worker's become anyone's (unknown ones for --resend-unknown).
WAITING = (QUEUED, DEFERRED, SKIPPED, UNKNOWN)
LEFT = (QUEUED, DEFERRED, SENDING, UNKNOWN)  # a worker's rows that keep its share from being done


def uses_workers(engine: sa.Engine) -> bool:
    """Several senders per run only on PostgreSQL; SQLite is one machine's file, one sender."""
    return engine.dialect.name == "postgresql"


def locked_worker_ids() -> sa.TextualSelect:
    """Ids of workers (of any run) whose life lock some session holds right now.

    That is: their process is alive, or a statement of theirs may still commit.
    Use it inside the statement that acts on the answer, never as a list read
    beforehand: a sender that joins in between would look dead. (Its row commits
    after its lock is taken, so a statement that sees the row also sees the lock.)
    Advisory locks belong to one database, but ``pg_locks`` lists the whole
    server's: a clinic's sender with the same id in another database is not ours.
    """
    return sa.text(
        "SELECT l.objid::int FROM pg_locks l WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2 "
        f"AND l.classid = {WORKER_NAMESPACE} "
        "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    ).columns(sa.column("objid", sa.Integer))


def live_worker_ids(run_id) -> sa.Select:
    """Ids of the run's workers still sending: marked running, and their life lock held."""
    return sa.select(send_workers.c.id).where(_running(run_id), send_workers.c.id.in_(locked_worker_ids()))


@dataclass(frozen=True)
class Swept:
    orphans: int  # rows in ``sending`` of dead workers, now ``unknown``
    released: int  # rows dead workers had reserved and not served (waiting, or unknown), now anyone's


class SendWorker:
    """This process as one worker of a run: its row, its life lock, its share."""

    def __init__(self, engine: sa.Engine, conn: sa.Connection, run_id: int, worker_id: int, slug: str):
        self.engine = engine
        self.conn = conn  # holds the life lock; used for nothing slow
        self.run_id = run_id
        self.id = worker_id
        self.slug = slug
        self._reserve_sql: dict[tuple, sa.Update] = {}
        self._queue_as_mine = insert_queued(run_id, worker_id).returning(deliveries.c.subscriber_id)
        self._life_lock_and_workers = sa.select(
            sa.func.pg_advisory_xact_lock_shared(WORKER_NAMESPACE, worker_id),
            sa.select(sa.func.array_agg(send_workers.c.id)).where(_running(run_id)).scalar_subquery(),
            sa.exists().where(_ended(run_id)),
            sa.func.set_config("synchronous_commit", "off", True),
        )

    @classmethod
    def join(cls, engine: sa.Engine, slug: str, choose_run: Callable[[int | None], int],
             content_digest: str | None = None) -> "SendWorker":
        """Find or create the run and register as its worker, in one transaction under the slug's lock.

        ``choose_run(latest_run_id)`` returns the run
        to join (creating one if it must); it runs while the lock is held, so a
        second sender starting at the same moment waits and then joins it.
        ``content_digest`` is what this sender renders: if a live sender of that run
        renders something else, this one refuses (``DeliveryError``) rather than mail
        the rest of the list another version of the issue.
        """
        conn = engine.connect()
        try:
            with conn.begin():
                _lock_slug(conn, slug)
                latest = conn.scalar(
                    sa.select(sa.func.max(send_runs.c.id)).where(send_runs.c.issue_slug == slug)
                )
                run_id = choose_run(latest)
                refuse_other_content(conn, run_id, content_digest)
                worker_id = conn.execute(
                    send_workers.insert().values(
                        run_id=run_id, host=socket.gethostname()[:255], pid=os.getpid(), started_at=utcnow(),
                        status=WORKER_RUNNING, content_digest=content_digest,
                    ).returning(send_workers.c.id)
                ).scalar_one()
                # Session-level: outlives this transaction, ends with the connection (or the process).
                # Shared, so this sender's other connections can hold it too (``attach``).
                conn.execute(_LIFE_LOCK, {"ns": WORKER_NAMESPACE, "id": worker_id})
        except BaseException:
            conn.close()
            raise
        return cls(engine, conn, run_id, worker_id, slug)

    def close(self) -> None:
        """Leave: ending the session drops the life lock (invalidated, not returned to the pool, where
        the session and its lock would live on)."""
        try:
            self.conn.invalidate()
            self.conn.close()
        except Exception:
            pass

    def attach(self, conn: sa.Connection) -> Callable[[], None]:
        """Hold this worker's life lock on ``conn`` too, until the returned call.

        For the connections that claim and record messages. When a sender is
        killed, its idle life connection ends at once, but a claim it had just
        sent (the outcome of one message and the claim of the next) may still
        be running on the server and commit afterwards. Were the sender dead
        by then, a sweep could turn its message in flight ``unknown`` and the
        late claim put another row in ``sending``: two of unknown fate on one
        connection. Held here, the lock outlives the last statement of the
        sender's that can still commit.
        """
        try:
            with conn.begin():
                conn.execute(_LIFE_LOCK, {"ns": WORKER_NAMESPACE, "id": self.id})
        except BaseException:
            conn.invalidate()  # taken or not (a session lock outlives a failed commit), this session ends
            raise

        def detach() -> None:
            try:
                with conn.begin():
                    conn.execute(_LIFE_UNLOCK, {"ns": WORKER_NAMESPACE, "id": self.id})
            except BaseException as exc:
                conn.invalidate()  # never back to the pool still holding it: this session ends instead
                if not isinstance(exc, (sa.exc.SQLAlchemyError, OSError)):  # a broken connection is expected
                    raise

        return detach

    # -- the share ---------------------------------------------------------------------
    def reserve(self, conn: sa.Connection, held: Mapping[int, int | None], claimable: tuple[str, ...],
                unqueued: Sequence[int] = ()) -> set[int]:
        """Of these subscribers, the ones this worker now holds.

        ``held`` maps subscribers that had rows in the run when the list was read
        to the worker that held each then (or None): those free, ours, or a
        finished worker's become ours. ``unqueued`` had none when the list was read:
        they are queued now, already ours, by one INSERT. Queueing a batch and then
        reserving it by an UPDATE wrote each row twice before its claim (one sender,
        10,000 messages: 150 ms of the server's 1.2 s in statements, by
        pg_stat_statements), and several senders each tried to queue the whole list.

        Rows a worker still marked running holds stay its own (only a finished or
        swept worker's are taken), so they are left out of the UPDATE rather than
        sent to the server to be refused: with two senders that was every UPDATE of
        a first send (68 statements per 10,000 messages, none of them taking a row).
        Whoever queued one of ``unqueued`` meanwhile is unknown: those go to the
        UPDATE only when no other worker is running or some worker of the run has
        ended (it may be the one that queued them, and then they are anyone's).

        The reservation commits without waiting for the disk (``synchronous_commit``
        off for this transaction): a crash of the database server can lose it, and
        with it only rows nobody has claimed yet (a claim commits after it, and the
        server writes its log in order), which the list's next reading queues again.
        The sender no longer waits for a disk flush each time it takes a share.
        """
        if not held and not unqueued:
            return set()
        with conn.begin():
            # Alive until this commits (see ``attach``): rows reserved for a sender already swept would wait
            # for a reader of the list that never comes. The same statement reads who else is running.
            _, running, any_ended, _ = conn.execute(self._life_lock_and_workers).one()
            others = set(running or ()) - {self.id}
            mine: set[int] = set()
            if unqueued:
                mine.update(conn.scalars(self._queue_as_mine, {"ids": list(unqueued), "now": utcnow()}))
            # Each statement sees what committed before it began: the rows a sender queued meanwhile, too.
            free = [sid for sid, holder in held.items() if holder not in others]
            if not others or any_ended:
                free.extend(sid for sid in unqueued if sid not in mine)
            if free:
                mine.update(conn.scalars(self._reserve_statement(claimable), {"ids": free}))
            return mine

    def _reserve_statement(self, claimable: tuple[str, ...]) -> sa.Update:
        """Take the run's rows of ``:ids`` that nobody alive holds; skip, never wait for, rows being taken."""
        statement = self._reserve_sql.get(claimable)
        if statement is None:
            ended = sa.select(send_workers.c.id).where(_ended(self.run_id))
            free = (
                sa.select(deliveries.c.id)
                .where(
                    deliveries.c.run_id == self.run_id,
                    deliveries.c.subscriber_id == sa.func.any(sa.bindparam("ids", type_=postgresql.ARRAY(sa.Integer))),
                    deliveries.c.state.in_(claimable),
                    sa.or_(deliveries.c.worker_id.is_(None), deliveries.c.worker_id == self.id,
                           deliveries.c.worker_id.in_(ended)),
                )
                .with_for_update(skip_locked=True)
            )
            statement = self._reserve_sql[claimable] = (
                deliveries.update()
                .where(deliveries.c.id.in_(free.scalar_subquery()))
                .values(worker_id=self.id)
                .returning(deliveries.c.subscriber_id)
            )
        return statement

    def sweep(self) -> Swept:
        """Release what workers that are no longer alive held; never a live worker's rows."""
        now = utcnow()
        with self.engine.begin() as conn:
            # Each decision in one statement, with the locks read inside it (``locked_worker_ids``).
            dead = list(conn.scalars(
                sa.select(send_workers.c.id)
                .where(_running(self.run_id), send_workers.c.id.not_in(locked_worker_ids()))
                .with_for_update(skip_locked=True)
            ))
            # Whatever status a sender wrote (one stopped by a second Ctrl-C writes ``interrupted`` with
            # claims still on their way), its messages in flight are not orphans while its locks are held.
            not_live = sa.or_(deliveries.c.worker_id.is_(None), deliveries.c.worker_id.not_in(locked_worker_ids()))
            orphans = conn.execute(
                deliveries.update()
                .where(deliveries.c.run_id == self.run_id, deliveries.c.state == SENDING, not_live)
                .values(state=UNKNOWN, reply_text=ORPHAN_TEXT, done_at=now)
            ).rowcount
            released = 0
            if dead:
                # Marked dead, their rows are anyone's to reserve (``reserve``); they keep their worker_id
                # until then, so the report still says whose messages ended unknown.
                released = conn.scalar(
                    sa.select(sa.func.count()).where(
                        deliveries.c.run_id == self.run_id, deliveries.c.worker_id.in_(dead),
                        deliveries.c.state.in_(WAITING),
                    )
                )
                conn.execute(
                    send_workers.update().where(send_workers.c.id.in_(dead)).values(status=WORKER_DEAD, finished_at=now)
                )
        return Swept(orphans, released)

    def passes(self, read_list: Callable[[], Iterator[list]]) -> Iterator[list]:
        """The list, read again after a pass whenever the sweep at its end gave rows back."""
        while True:
            yield from read_list()
            if not self.sweep().released:
                return

    # -- the others --------------------------------------------------------------------
    def live_count(self) -> int:
        with self.engine.connect() as conn:
            return max(1, conn.scalar(sa.select(sa.func.count()).select_from(live_worker_ids(self.run_id).subquery())))

    def rows_left(self) -> int:
        """This worker's rows not served yet (waiting, in flight, or of unknown fate)."""
        query = sa.select(sa.func.count()).where(
            deliveries.c.run_id == self.run_id, deliveries.c.worker_id == self.id, deliveries.c.state.in_(LEFT)
        )
        with self.engine.connect() as conn:
            return conn.scalar(query)

    @contextmanager
    def last_word(self, status: str) -> Iterator[bool]:
        """Record this worker's end; yield True when no other worker of the run is alive.

        Held under the slug's lock (until the block ends), so two workers ending
        together cannot both think the other will write the run's status, and a
        sender joining meanwhile waits until the run's status is written.
        """
        with self.conn.begin():
            _lock_slug(self.conn, self.slug)
            self.conn.execute(
                send_workers.update().where(send_workers.c.id == self.id).values(status=status, finished_at=utcnow())
            )
            others = self.conn.scalar(
                sa.select(sa.func.count()).select_from(live_worker_ids(self.run_id).subquery())
            )
            yield not others


class SharedRate:
    """Keeps this worker's limiter at its share of SEND_RATE / SEND_MAX_PER_HOUR: the total divided by the
    workers alive, re-read every ``RATE_REFRESH_SECONDS`` (a worker joining or ending shifts the shares)."""

    def __init__(self, worker: SendWorker, limiter: RateLimiter, interval: float = RATE_REFRESH_SECONDS):
        self.worker = worker
        self.limiter = limiter
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="send-rate-share", daemon=True)

    def __enter__(self) -> "SharedRate":
        if self.limiter.limited:
            self.limiter.share(self.worker.live_count())
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.limiter.share(self.worker.live_count())
            except Exception:
                pass  # a failed read keeps the last share: still within the limit with the same workers


class ShareSize:
    """How many subscribers a sender reserves at a time: about ``SHARE_SECONDS`` of its own recent pace.

    A sender keeps the share it reserved until it has sent it, so when the list runs
    out the others wait for the last shares to drain. A fixed 200 was 2.5 s of work
    against a relay taking 50 ms a message on four connections: measured with four
    senders on 2,000 subscribers, the first to finish ended 2 s before the last. So a
    share is sized from this sender's pace over about the last ``SHARE_PACE_WINDOW``
    seconds (a relay that slows down late in a long run shrinks the shares at once),
    between one per connection and ``SHARE_MOST`` (or, under ``SEND_RATE``, about two
    seconds of the whole send's rate, so senders that join later still find some).
    A fast relay reaches shares of 200 within the first messages; a slow one gets
    small shares, one short statement each.
    """

    def __init__(self, connections: int = 1, per_second: float | None = None, *, most: int = SHARE_MOST,
                 seconds: float = SHARE_SECONDS, window: float = SHARE_PACE_WINDOW,
                 clock: Callable[[], float] = time.monotonic):
        if per_second:
            most = max(10, min(most, int(2 * per_second)))
        self.most = max(1, most)
        self.least = max(1, min(connections, self.most))
        self.seconds = seconds
        self.window = window
        self.clock = clock
        self._seen: collections.deque[tuple[float, int]] = collections.deque()  # (when, done) at each share

    def next(self, done: int) -> int:
        """The size of the share to reserve now, ``done`` messages having been handed over (or given up)."""
        now = self.clock()
        seen = self._seen
        while len(seen) > 1 and now - seen[1][0] >= self.window:  # the pace since the newest share that old
            seen.popleft()
        size = self.least
        if seen:
            since, before = seen[0]
            if now > since and done > before:
                size = int(min(self.most, max(self.least, (done - before) / (now - since) * self.seconds)))
        seen.append((now, done))
        return size


def worker_counts(conn: sa.Connection, run_id: int) -> list[dict]:
    """Each worker of a run with what its rows came to (for ``newsletter sends`` and the report)."""
    workers = conn.execute(
        sa.select(send_workers).where(send_workers.c.run_id == run_id).order_by(send_workers.c.id)
    ).all()
    if not workers:
        return []
    counts: dict[int, dict[str, int]] = {}
    query = (
        sa.select(deliveries.c.worker_id, deliveries.c.state, sa.func.count())
        .where(deliveries.c.run_id == run_id, deliveries.c.worker_id.is_not(None))
        .group_by(deliveries.c.worker_id, deliveries.c.state)
    )
    for worker_id, state, n in conn.execute(query):
        counts.setdefault(worker_id, {})[state] = n
    # "running" is what the worker last wrote; its life lock says whether its process still is.
    alive = set(conn.scalars(live_worker_ids(run_id)))
    return [
        {
            "worker": w.id, "host": w.host, "pid": w.pid, "status": w.status, "alive": w.id in alive,
            "started_at": w.started_at.isoformat(), "finished_at": w.finished_at.isoformat() if w.finished_at else None,
            "counts": counts.get(w.id, {}),
        }
        for w in workers
    ]


def refuse_other_content(conn: sa.Connection, run_id: int, content_digest: str | None) -> None:
    """A live sender of the run renders another version of the issue: say which one, and do not join.

    Two machines with different copies of the site folder (an article edited on
    one, a template on the other) would otherwise split the list between two
    versions. A sender that is no longer alive does not count: resuming with
    changed content is allowed, and the plan says that the rest get the new version.
    """
    if content_digest is None:
        return
    other = conn.execute(
        sa.select(send_workers.c.id, send_workers.c.host, send_workers.c.pid)
        .where(send_workers.c.id.in_(live_worker_ids(run_id)),
               send_workers.c.content_digest.is_not(None), send_workers.c.content_digest != content_digest)
        .limit(1)
    ).first()
    if other is not None:
        raise DeliveryError(
            f"sender {other.id} on {other.host} (pid {other.pid}) is sending a different version of this issue "
            f"in run #{run_id}; this one renders it differently and did not join",
            hint="give every sending machine the same site folder (issue, articles, templates, newsletter.toml) "
                 "and the same version of newsletters, or wait for that sender to finish and run this again",
        )


_LIFE_LOCK = sa.text("SELECT pg_advisory_lock_shared(:ns, :id)")
_LIFE_UNLOCK = sa.text("SELECT pg_advisory_unlock_shared(:ns, :id)")


def _running(run_id: int) -> sa.ColumnElement[bool]:
    """A worker of the run still marked running: its rows are its own (a killed one's until the sweep)."""
    return sa.and_(send_workers.c.run_id == run_id, send_workers.c.status == WORKER_RUNNING)


def _ended(run_id: int) -> sa.ColumnElement[bool]:
    """A worker of the run that has ended (finished, stopped, or swept as dead): its waiting rows are anyone's."""
    return sa.and_(send_workers.c.run_id == run_id, send_workers.c.status != WORKER_RUNNING)


def _lock_slug(conn: sa.Connection, slug: str) -> None:
    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:ns, hashtext(:slug))"), {"ns": RUN_NAMESPACE, "slug": slug})
