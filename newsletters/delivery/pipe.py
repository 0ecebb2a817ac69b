"""One send session as a pipe: N workers, one SMTP connection each, draw subscribers
from the eligible stream, which is read and queued in the ledger a batch at a time.

Shaped like listmonk's campaign pipe (internal/manager/pipe.go) with the
difference that matters after a crash: progress is not a cursor over the list
but the per-subscriber ledger. Each worker, for each message:

1. builds the message (no database, no network);
2. waits while the whole send is paused (``backoff``: the server has been
   saying "later" to most messages), then for the shared rate limiter;
3. commits, in one transaction, the previous message's outcome and the claim of
   this one (``queued`` → ``sending``), through the list's ``Handover``: the
   claim succeeds only if the subscriber is eligible at that instant, so someone
   who unsubscribed after their batch was read, or while waiting for a retry, is
   marked ``skipped`` instead (on PostgreSQL by a second statement that follows
   only a refused claim); a claim that loses (another process, an earlier
   session) means: do not send either;
4. hands the message over and keeps the outcome, to be committed with step 3 of
   the next message, or at once when the worker is about to wait. When the next
   message can go at once (no rate limit, no pause, a subscriber in hand), it
   is built now and its envelope rides behind this message's end-of-data dot
   (``Transport.send(then=...)``): the server answers this message and opens
   the next one in one round trip. The next one is still claimed only after
   this one's outcome is known; if its claim is refused, the connection is
   dropped before its data, as in step 3.

So each connection has at most one row in ``sending`` at any moment, which is
the bound on "unknown" after a kill. Temporary failures go to a retry heap with
backoff; the pipe ends when the list is read, the buffer and heap are empty and
no message is in flight, or when ``stop()`` is called (Ctrl-C): then every
worker finishes the message in hand, records it, and leaves.

Threads, not processes or asyncio: the work per message is small (about 0.3 ms
of CPU for a 60 KB message) and the rest is waiting on sockets, which releases
the GIL; the ledger allows one writer at a time anyway.
"""

from __future__ import annotations

import collections
import heapq
import itertools
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Iterator

from foundation.database import database_error

from ..errors import DeliveryError, NewsletterError
from ..transport import Transport, is_canonical
from .backoff import PROBE, STOP, SendBackoff
from .ledger import BOUNCED, DEFERRED, FAILED, QUEUED, SENT, SENDABLE, SKIPPED, UNKNOWN, Claim, Ledger, Outcome
from .rate import RateLimiter
from .retry import RetryPolicy, judge
from .workers import ShareSize


@dataclass
class Work:
    recipient: object  # recipients.Recipient
    state: str  # the ledger state it was claimable from
    tries: int = 0  # handovers in this session
    queued: bool = True  # has a row in the run (several senders queue theirs when they reserve them)
    holder: int | None = None  # several senders: the worker that held its row when the list was read
    message: bytes | None = None  # built ahead, while the message before it went (``_envelope_ahead``)


@dataclass
class SessionStats:
    """What this session did (the ledger holds the run's totals)."""

    counts: Counter = field(default_factory=Counter)
    already: Counter = field(default_factory=Counter)  # rows found finished, by state
    fed: int = 0
    pass_complete: bool = False
    limited: bool = False
    stopped: bool = False
    abandoned: bool = False  # Ctrl-C twice: left without waiting for the messages in flight
    backoff: SendBackoff | None = None  # whether the whole send is paused, and why
    error: NewsletterError | None = None

    def pause_note(self) -> str | None:
        """What the progress line says while the whole send is paused, else None."""
        left = self.backoff.paused_for() if self.backoff else None
        if left is None:
            return None
        reason = self.backoff.reason[:80]
        wait = f"{left:.0f} s more" if left >= 1 else "probing with one message"
        return f"paused ({wait}): the server keeps refusing{': ' + reason if reason else ''}"

    @property
    def handled(self) -> int:
        c = self.counts
        return c[SENT] + c[FAILED] + c[BOUNCED] + c[SKIPPED] + c["unknown"] + c["deferred"] + c["lost_claim"]


class DeliveryPipe:
    def __init__(
        self,
        *,
        ledger: Ledger,
        run_id: int,
        batches: Iterator[list],
        compose: Callable[[object], bytes],
        sender: str | Callable[[object], str],
        transport_factory: Callable[[], Transport],
        connections: int = 1,
        limiter: RateLimiter | None = None,
        backoff: SendBackoff | None = None,
        policy: RetryPolicy = RetryPolicy(),
        claimable: tuple[str, ...] = SENDABLE,
        limit: int | None = None,
        on_bounce: Callable[[int, str], None] | None = None,
        canonical: bool = False,
        reserve: Callable[[object, dict[int, int | None], list[int]], set[int]] | None = None,
        share_size: ShareSize | None = None,
        attach: Callable[[object], Callable[[], None]] | None = None,
    ):
        self.ledger = ledger
        self.run_id = run_id
        self.compose = compose
        self.sender = sender
        self.transport_factory = transport_factory
        self.connections = max(1, connections)
        self.limiter = limiter or RateLimiter()
        self.backoff = backoff or SendBackoff()
        self.policy = policy
        self.claimable = claimable
        self.limit = limit
        self.on_bounce = on_bounce
        # Several senders on one run (PostgreSQL, ``workers.SendWorker.reserve``): of a chunk of the list
        # (ids with a row in the run and who held each, ids without), the subscribers this process holds;
        # the others are another sender's share.
        self.reserve = reserve
        self.share_size = share_size or ShareSize(self.connections)
        # ... and what ties each connection's claims to this sender being alive (``SendWorker.attach``).
        self.attach = attach
        self._skip = 0  # the least size of the next chunk to reserve: see ``_reserve_next``
        self._unreserved: collections.deque[Work] = collections.deque()  # read, claimable, not reserved yet
        # compose() vouches for CRLF-only output (MessageFactory's is, by construction); each
        # worker still checks its first message, and one failure withdraws the promise.
        self.canonical = canonical
        self._checked_canonical = threading.local()
        self.stats = SessionStats(backoff=self.backoff)
        self._stop = threading.Event()
        self._abandoned = threading.Event()
        self._lock = threading.Lock()
        # Signalled when a message in flight is done or a retry is due to be scheduled: a worker with
        # nothing left to take waits on it, so the last messages' end is noticed at once, not at a poll.
        self._changed = threading.Condition(self._lock)
        self._source_lock = threading.Lock()
        self._source = batches
        self._buffer: collections.deque[Work] = collections.deque()
        self._low_water = 0  # read the next chunk of the list once fewer than this are buffered
        self._source_done = False
        self._heap: list[tuple[float, int, Work]] = []
        self._seq = itertools.count()
        self._inflight = 0
        self._rng = random.Random()

    # -- control -----------------------------------------------------------------
    def stop(self) -> None:
        """Finish the messages in flight, record them, and end (what Ctrl-C does)."""
        self.stats.stopped = True
        self._stop.set()

    def abandon(self) -> None:
        """Leave now, without waiting for the messages in flight (Ctrl-C twice).

        Their rows stay ``sending``; the next session reports them ``unknown``.
        """
        self.stop()
        self.stats.abandoned = True
        self._abandoned.set()

    def _abort(self, error: NewsletterError) -> None:
        with self._lock:
            if self.stats.error is None:
                self.stats.error = error
        self._stop.set()

    def _database_failed(self, exc: Exception, what: str) -> NewsletterError:
        """The cause in plain words (disk full, read-only, locked, gone) when it is the database's."""
        return database_error(exc, self.ledger.engine.url) or DeliveryError(
            f"{what}: {exc!r}", hint="run the same command again to resume")

    def _count(self, key: str) -> None:
        with self._lock:
            self.stats.counts[key] += 1

    def run(self, on_tick: Callable[[SessionStats], None] | None = None, tick: float = 0.2) -> SessionStats:
        threads = [
            threading.Thread(target=self._work, name=f"send-connection-{n}", daemon=True)
            for n in range(self.connections)
        ]
        for t in threads:
            t.start()
        # The main thread only watches (and so stays free for Ctrl-C and the progress bar).
        while (alive := [t for t in threads if t.is_alive()]) and not self._abandoned.is_set():
            alive[-1].join(tick)
            if on_tick:
                on_tick(self.stats)
        return self.stats

    # -- the source: eligible subscribers, a batch at a time -------------------------------
    def _take(self) -> Work | None:
        """The next subscriber to send to, or None when the list is done (or the limit reached).

        No feeder thread: a worker that takes one of the last buffered
        subscribers (below ``_low_water``) reads the next batch from the store
        and queues it in the ledger before it sends, while the others go on with
        what is buffered; only when the buffer is empty does everyone wait for
        the read. So messages never cross threads one at a time, and reading the
        list (tens of ms per thousand, more with several senders reserving their
        shares, more again over a network) stalls one connection, not all: when
        each read stalled all four, they spent a tenth of their time waiting
        (cProfile, PostgreSQL). bench/send.py, medians of six runs alternated
        with the old way: 3,870 -> 4,030 msg/s on SQLite, 2,880 -> 2,990 on
        PostgreSQL. The claim re-judges consent, so reading ahead changes
        nothing for someone who leaves meanwhile.
        """
        while True:
            try:
                work = self._buffer.popleft()  # deque: safe from any thread without a lock
            except IndexError:
                work = None
            if work is not None:
                self._read_if_low()
                return work
            with self._source_lock:
                if self._buffer:
                    continue  # another worker has just read a batch
                if self._stop.is_set() or (self._source_done and not self._unreserved):
                    return None
                self._read_ahead()

    def _read_if_low(self) -> None:
        """Read the next chunk now if the buffer runs low and no other worker is reading one."""
        if len(self._buffer) < self._low_water and self._source_lock.acquire(blocking=False):
            try:
                self._read_ahead()
            finally:
                self._source_lock.release()

    def _read_ahead(self) -> None:
        """Buffer the next chunk of the list (reserving it, when several senders share the run)."""
        if self._stop.is_set() or (self._source_done and not self._unreserved):
            return
        before = len(self._buffer)
        try:
            if self._unreserved:
                self._reserve_next()
            else:
                self._load_batch()
        except NewsletterError as exc:
            self._source_done = True
            self._abort(exc)
        except Exception as exc:  # the database went away, a bug: stop cleanly, report it
            self._source_done = True
            self._abort(self._database_failed(exc, "reading the subscriber list failed"))
        # Read again once half of what came in is gone: enough left for the others while one reads.
        self._low_water = max(self._low_water, (len(self._buffer) - before) // 2)

    def _load_batch(self) -> None:
        batch = next(self._source, None)
        if batch is None:
            self._source_done = True
            self.stats.pass_complete = not self._stop.is_set()
            return
        ids = [r.id for r in batch]
        with self.ledger.connect() as conn:
            # Several senders: the rows missing are queued by whoever reserves them (``_reserve_next``).
            states = self.ledger.enqueue(conn, self.run_id, ids) if self.reserve is None else \
                self.ledger.existing(conn, self.run_id, ids)
        for recipient in batch:
            state, holder = states.get(recipient.id, (QUEUED, None))
            if state not in self.claimable:
                self.stats.already[state] += 1
                continue
            if self.reserve is not None:  # reserved a chunk at a time, when the buffer runs dry
                self._unreserved.append(Work(recipient, state, queued=recipient.id in states, holder=holder))
                continue
            if self.limit is not None and self.stats.fed >= self.limit:
                self.stats.limited = True
                self._source_done = True
                return
            self._buffer.append(Work(recipient, state))
            self.stats.fed += 1

    def _reserve_next(self) -> None:
        """Reserve the next chunk of the batch read: what another live sender holds is its share.

        A chunk, not the whole batch, so the batch read (a list query per
        thousand) stays large while senders split the list finely.
        """
        # A chunk all another sender's means it is ahead in the list: skip faster. Chunks of a fresh
        # sender's first size (one per connection) fell behind one sending at full speed, so a sender
        # that started 40 ms later spent the whole send reading, and sent nothing (measured).
        size = max(self.share_size.next(self.stats.handled), self._skip)
        chunk = [self._unreserved.popleft() for _ in range(min(size, len(self._unreserved)))]
        queued = {work.recipient.id: work.holder for work in chunk if work.queued}
        unqueued = [work.recipient.id for work in chunk if not work.queued]
        with self.ledger.connect() as conn:
            mine = self.reserve(conn, queued, unqueued)
        self._skip = 0 if mine else min(2 * len(chunk), self.share_size.most)
        for work in chunk:
            if work.recipient.id not in mine:
                self.stats.counts["elsewhere"] += 1  # another live sender's share
                continue
            if self.limit is not None and self.stats.fed >= self.limit:
                self.stats.limited = True
                self._source_done = True
                self._unreserved.clear()
                return
            self._buffer.append(work)
            self.stats.fed += 1

    # -- workers ---------------------------------------------------------------------
    def _next(self, flush: Callable[[], None]) -> Work | None:
        flushed = False
        while True:
            if self._stop.is_set():
                return None
            if (work := self._due_retry()) is not None:
                return work
            work = self._take()
            if work is not None:
                with self._lock:
                    self._inflight += 1
                return work
            with self._lock:  # the list is done; only retries may remain
                if self._stop.is_set() or (not self._heap and self._inflight == 0):
                    return None
                if flushed:  # until a message in flight ends, a retry is due, or (at most 50 ms) a stop
                    wait = min(0.05, self._heap[0][0] - time.monotonic()) if self._heap else 0.05
                    self._changed.wait(max(wait, 0.001))
                    continue
            flush()  # about to wait: record the last outcome now, not later
            flushed = True

    def _following(self) -> Work | None:
        """The subscriber this connection sends to next, if that message can go right after this one.

        None whenever anything would come between them (a rate limit, a pause, a
        stop, an empty buffer): then the next message starts on its own turn.
        """
        if self.limiter.limited or self.backoff.paused_for() is not None or self._stop.is_set():
            return None
        if (work := self._due_retry()) is not None:
            return work
        try:
            work = self._buffer.popleft()  # the read that may follow waits until this message is out
        except IndexError:
            return None
        with self._lock:
            self._inflight += 1
        return work

    def _due_retry(self) -> Work | None:
        """A deferred message whose retry time has come, now in flight; else None."""
        with self._lock:
            if self._heap and self._heap[0][0] <= time.monotonic():
                self._inflight += 1
                return heapq.heappop(self._heap)[2]
        return None

    def _sender_of(self, recipient) -> str:
        return self.sender(recipient) if callable(self.sender) else self.sender  # per recipient: VERP

    def _done(self, work: Work, retry_at: float | None = None) -> None:
        with self._lock:
            if retry_at is not None:
                heapq.heappush(self._heap, (retry_at, next(self._seq), work))
            self._inflight -= 1
            self._changed.notify_all()

    def _work(self) -> None:
        conn, detach = None, None
        try:
            transport = self.transport_factory()
            conn = self.ledger.connect()
            detach = self.attach(conn) if self.attach is not None else None
            writer = self.ledger.writer(conn)
        except Exception as exc:  # no database connection for this thread: stop the send, said in one line
            if detach is not None:
                detach()
            if conn is not None:
                conn.close()
            said = exc if isinstance(exc, NewsletterError) else self._database_failed(exc, "the delivery ledger failed")
            self._abort(said)
            return
        pending: list[Outcome | None] = [None]

        def flush() -> None:
            if pending[0] is not None:
                writer.record(self.run_id, pending[0])
                pending[0] = None

        try:
            work = self._next(flush)
            while work is not None:
                following = self._one(work, conn, writer, transport, pending, flush)
                if following is None:
                    work = self._next(flush)
                elif self._stop.is_set():
                    self._done(following)  # never claimed: it stays queued for a later session
                    work = None
                else:
                    self._read_if_low()  # between two messages, as ``_take`` does
                    work = following
        except Exception as exc:  # a database error: the ledger can no longer be trusted to go on
            self._abort(self._database_failed(exc, "the delivery ledger failed"))
        finally:
            try:
                flush()
            except Exception:
                pass  # the row stays "sending" and will be reported as unknown: still safe
            try:
                transport.close()
            finally:
                try:
                    writer.close()
                finally:
                    if detach is not None:
                        detach()  # before the connection goes back to the pool
                    conn.close()

    def _one(
        self, work: Work, conn, writer, transport: Transport, pending: list, flush: Callable[[], None],
    ) -> Work | None:
        """Claim, send and keep the outcome of one message; returns the subscriber whose message follows
        at once on this connection (its envelope already sent behind this one), if any."""
        recipient = work.recipient
        sid = recipient.id
        if self.backoff.paused_for() is not None:
            flush()  # about to wait: record the last outcome now, not after the pause
        turn = self.backoff.wait_turn(self._stop)
        if turn == STOP:
            self._stop.set()  # the back-off gave up (or Ctrl-C): everyone left stays for a later run
            self._done(work)
            return
        probe = turn == PROBE
        if self.limiter.limited:
            if pending[0] is not None and self.limiter.wait_time() > 0:
                flush()
            if not self.limiter.acquire(self._stop):
                self._give_back(probe)
                self._done(work)
                return
        # The claim is sent now and answered while the message is composed and the server takes the
        # envelope; the message goes only once it is answered, and only if it was ours (``ready``).
        claim = writer.begin(self.run_id, pending[0], claim=sid, claimable=self.claimable)
        pending[0] = None
        message, work.message = work.message, None
        try:
            if message is None:
                message = self.compose(recipient)
        except NewsletterError as exc:
            # Refused before sending (e.g. a name holding a header injection): fail it if it is ours.
            ours = claim.result()
            pending[0] = Outcome(sid, FAILED, None, f"not sent: {exc.message}"[:500]) if ours else None
            self._count(FAILED if ours else _not_claimed(ours))
            self._give_back(probe)
            self._done(work)
            return
        if self.canonical and not getattr(self._checked_canonical, "done", False):
            self._checked_canonical.done = True
            if not is_canonical(message):
                self.canonical = False
        reply, failure, following = None, None, None
        if claim is not Claim.SKIPPED and claim is not Claim.LOST:  # a refusal decided at once sends nothing
            following = self._following()
            then = self._envelope_ahead(following) if following is not None else None
            try:
                reply = transport.send(self._sender_of(recipient), [recipient.email], message,
                                       canonical=self.canonical, ready=claim.result, then=then)
            except Exception as exc:
                failure = exc
        if not claim.result():  # no longer eligible (now marked skipped), or someone else's: nothing went
            self._count(_not_claimed(claim.result()))
            self._give_back(probe)
            self._done(work)
            return following
        work.tries += 1
        if failure is not None:
            self._failed(failure, work, conn, pending, flush, probe)
            return following
        self.backoff.record(False, probe=probe)
        pending[0] = Outcome(sid, SENT, reply.code, _without_address(reply.text, recipient.email)[:500])
        self._count(SENT)
        self._done(work)
        return following

    def _envelope_ahead(self, work: Work):
        """Build ``work``'s message now, for its envelope to go ahead; None if it cannot be built."""
        try:
            work.message = self.compose(work.recipient)
        except Exception:  # refused (or failing) on its own turn, like any other: not during this message's
            work.message = None
            return None
        return self._sender_of(work.recipient), [work.recipient.email], work.message


    def _give_back(self, probe: bool) -> None:
        """A probe turn that sent nothing (stopped, or the row was not ours): let another worker probe."""
        if probe:
            self.backoff.cancel_probe()

    def _failed(self, exc: Exception, work: Work, conn, pending: list, flush: Callable[[], None], probe: bool) -> None:
        """Record a handover that did not end in acceptance; retry it, fail it, or stop the session."""
        recipient, sid = work.recipient, work.recipient.id
        verdict = judge(exc)
        text = _without_address(verdict.text, recipient.email)
        if verdict.released:
            self._give_back(probe)
            self.ledger.release(conn, self.run_id, sid, work.state)
            work.tries -= 1
            self._abort(exc if isinstance(exc, NewsletterError) else DeliveryError(str(exc)))
            self._done(work)
            return
        # 4xx, 421, a refused or reset connection: the server wants less of us, whoever the recipient.
        self.backoff.record(verdict.state in (DEFERRED, UNKNOWN), f"{verdict.code or ''} {text}".strip(), probe=probe)
        if verdict.state == DEFERRED and verdict.retry and self.policy.may_retry(work.tries):
            pending[0] = Outcome(sid, DEFERRED, verdict.code, text)
            work.state = DEFERRED
            self._count("retried")
            flush()  # about to do something else for a while; and the row must be claimable again
            self._done(work, retry_at=time.monotonic() + self.policy.delay(work.tries, self._rng))
            return
        if verdict.state == BOUNCED and self.on_bounce is not None:
            try:
                self.on_bounce(sid, f"{verdict.code} {text}")
            except NewsletterError:
                pass  # the ledger still says bounced; the report shows it
        pending[0] = Outcome(sid, verdict.state, verdict.code, text)
        self._count(verdict.state)
        if verdict.abort:
            self._abort(DeliveryError(f"stopped after an unexpected error: {text}"))
        self._done(work)


def _not_claimed(claim: Claim) -> str:
    return SKIPPED if claim is Claim.SKIPPED else "lost_claim"


def _without_address(text: str, address: str) -> str:
    """Server replies often quote the address; the ledger keeps no personal data of its own."""
    if address and address.lower() in text.lower():
        lowered = text.lower()
        out, i = [], 0
        while (j := lowered.find(address.lower(), i)) >= 0:
            out.append(text[i:j] + "<recipient>")
            i = j + len(address)
        text = "".join(out) + text[i:]
    return text
