"""One ``newsletter send``: build, check, find or start the run, send, report.

``prepare_send`` does everything that needs no confirmation (build, checks,
counts, settings) and takes the database's send lock (``lock``); the CLI shows
the plan, asks, and calls ``SendPlan.execute``. The lock is what lets a new
process read a row left in ``sending`` as "the last process died mid-handover"
rather than "someone is sending it right now". On PostgreSQL there is no such
lock: ``execute`` joins the issue's run as one of possibly several senders, and
liveness is per sender (``workers``).
"""

from __future__ import annotations

import hashlib
import signal
import threading
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Callable

import sqlalchemy as sa

from foundation.database import database_error
from recipients import open_store
from recipients.handover import Handover
from recipients.tokens import unsubscribe_url_maker

from ..bounces.verp import make_return_path
from ..build import build_issue
from ..checks import run_checks as check_build
from ..errors import DeliveryError
from ..link_settings import refuse_dead_links
from ..personalize import SAMPLE_RECIPIENT, MessageFactory, check_address
from ..render import FIRST_NAME
from ..review import require_approval
from ..transport import open_transport, smtp_settings
from .backoff import SendBackoff
from .dkim import DKIMSigner
from .lock import AdvisorySendLock, SendLock, send_lock
from .ledger import ABORTED, DONE, INCOMPLETE, INTERRUPTED, SENDABLE, UNKNOWN, Ledger, Run, hour_ago
from .pipe import DeliveryPipe, SessionStats
from .rate import RateLimiter
from .report import SendReport, build_report, write_report
from .settings import DeliverySettings
from .workers import (
    SendWorker, SharedRate, ShareSize, refuse_other_content, uses_workers, worker_counts,
)


def message_id(run: Run, subscriber_id: int, domain: str) -> str:
    """The same Message-ID every time this run sends to this subscriber.

    A resent "unknown" message then carries the ID of the copy that may already
    have arrived, and receivers that drop duplicate Message-IDs (Gmail does) can
    hide the second copy. Keyed by the run's random nonce: not guessable.
    """
    digest = hashlib.blake2b(str(subscriber_id).encode(), key=run.nonce.encode(), digest_size=12).hexdigest()
    return f"<{run.issue_slug}.{run.id}.{digest}@{domain}>"


def claimable_states(resend_unknown: bool) -> tuple[str, ...]:
    """Ledger states a send may (re)send: --resend-unknown adds the messages of unknown fate."""
    return SENDABLE + ((UNKNOWN,) if resend_unknown else ())


def _full_name(recipient) -> str:
    return " ".join(part for part in (recipient.first_name, recipient.last_name) if part)


@dataclass
class SendPlan:
    site: object
    build: object  # newsletters.build.BuildResult
    handover: Handover  # the list, as delivery sees it
    ledger: Ledger
    settings: DeliverySettings
    transport_description: str
    outbox: bool
    run: Run | None  # the run this send resumes; None: a new one will start
    eligible: int
    to_send: int
    previously_sent: int  # new run: how many got this issue in earlier runs
    content_digest: str
    checks: object | None = None  # newsletters.checks.CheckReport
    resend_unknown: bool = False
    limit: int | None = None
    signer: DKIMSigner | None = None  # loaded while preparing, so a bad key stops the send before the question
    review: object | None = None  # newsletters.review.ReviewStatus when [review] required: who approved, when
    bounce_address: str = ""  # BOUNCE_ADDRESS: each message's envelope sender becomes its signed VERP return path
    latest_known: int | None = None  # the issue's latest run when planned: a newer one was started by another sender
    _lock: SendLock | AdvisorySendLock | None = field(default=None, repr=False)

    @property
    def subject(self) -> str:
        """The subject as the issue file wrote it ({first_name} rather than the internal placeholder)."""
        return self.build.rendered.subject.replace(FIRST_NAME, "{first_name}")

    @property
    def issue(self):
        return self.build.issue

    @property
    def claimable(self) -> tuple[str, ...]:
        return claimable_states(self.resend_unknown)

    @property
    def content_changed(self) -> bool:
        return self.run is not None and bool(self.run.content_digest) and self.run.content_digest != self.content_digest

    def close(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None
        self.handover.store.close()

    def __enter__(self) -> "SendPlan":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- the send --------------------------------------------------------------------
    def execute(
        self,
        *,
        on_tick: Callable[[SessionStats], None] | None = None,
        handle_signals: bool = True,
        transport_factory: Callable[[], object] | None = None,
    ) -> SendReport:
        site, issue = self.site, self.issue
        worker = None
        if uses_workers(self.ledger.engine):  # PostgreSQL: join the run as one of its senders
            worker = SendWorker.join(self.ledger.engine, issue.slug, self._choose_run, self.content_digest)
            run = self.ledger.get_run(worker.run_id)
            self.ledger.start_session(run.id, transport=self.transport_description,
                                      content_digest=self.content_digest, sole_sender=False)
            orphans = worker.sweep().orphans
        else:
            run = self.run or self._create_run()
            orphans = self.ledger.start_session(run.id, transport=self.transport_description,
                                                content_digest=self.content_digest, sole_sender=True)
        try:
            return self._send(run, orphans, worker, on_tick, handle_signals, transport_factory)
        finally:
            if worker is not None:
                worker.close()

    def _create_run(self) -> Run:
        issue = self.issue
        return self.ledger.create_run(
            issue_slug=issue.slug,
            issue_path=str(issue.path),
            subject=self.subject,
            content_digest=self.content_digest,
            transport=self.transport_description,
        )

    def _choose_run(self, latest: int | None) -> int:
        """Which run a sender joins (under the slug's lock): the one it planned to resume, the one another
        sender started since this one was planned, or a new one."""
        if self.run is not None or (latest is not None and latest != self.latest_known):
            return latest
        return self._create_run().id

    def _send(self, run: Run, orphans: int, worker: SendWorker | None, on_tick, handle_signals,
              transport_factory) -> SendReport:
        site, issue = self.site, self.issue
        factory = MessageFactory(site, self.build.rendered, issue_slug=issue.slug)
        signer = self.signer
        domain = site.config.sender_domain
        unsubscribe_url = unsubscribe_url_maker(site)

        def compose(recipient) -> bytes:
            message = factory.build(
                to_email=recipient.email,
                to_name=_full_name(recipient),
                first_name=recipient.first_name,
                unsubscribe_url=unsubscribe_url(recipient.public_id),
                message_id=message_id(run, recipient.id, domain),
            )
            return signer.sign(message) if signer else message

        def return_path(recipient) -> str:
            """The envelope sender: bounces+TOKEN@domain with BOUNCE_ADDRESS, so a bounce names run and subscriber."""
            return make_return_path(self.bounce_address, run.id, recipient.id, site.setting("SECRET_KEY") or "")

        def bounce(subscriber_id: int, detail: str) -> None:
            self.handover.record_bounce(subscriber_id, f"issue {issue.slug} (send run {run.id}): {detail}")

        s = self.settings
        limiter = RateLimiter.with_history(
            s.per_second, s.per_hour, self.ledger.handed_since(hour_ago(), s.per_hour) if s.per_hour else []
        )
        # Keep the gap between "read as eligible" and "sent" short, so an unsubscribe counts at once.
        batch = 1000
        if s.per_second or s.per_hour:
            per_minute = 60 * min(s.per_second or 1e9, (s.per_hour or 1e9) / 3600)
            batch = max(10, min(1000, int(per_minute)))
        batches = self.handover.batches(batch)
        if worker is not None:
            batches = worker.passes(lambda: self.handover.batches(batch))
        pipe = DeliveryPipe(
            ledger=self.ledger,
            run_id=run.id,
            batches=batches,
            compose=compose,
            sender=return_path if self.bounce_address else site.config.sender_address,
            transport_factory=transport_factory or (lambda: open_transport(site)),
            connections=s.connections,
            limiter=limiter,
            backoff=SendBackoff(s.backoff),
            policy=s.retry,
            claimable=self.claimable,
            limit=self.limit,
            on_bounce=bounce,
            canonical=True,  # MessageFactory writes what DATA takes as is (CRLF only, no line-leading dot); so does DKIM
            reserve=(lambda conn, ids, new: worker.reserve(conn, ids, self.claimable, new)) if worker else None,
            share_size=ShareSize(s.connections, s.per_second),  # several senders: what each reserves at a time
            attach=worker.attach if worker else None,
        )
        shared_rate = SharedRate(worker, limiter) if worker is not None else nullcontext()
        with _graceful_stop(pipe, enabled=handle_signals), shared_rate:  # ours while the run is marked and reported
            stats = pipe.run(on_tick=on_tick)
            return self._finish(run, stats, orphans, worker)

    def _finish_run(self, run: Run, stats: SessionStats) -> tuple[int, dict[str, int], str]:
        """The run's end, written by its last sender: skip the no longer eligible, count what is left."""
        skipped = 0
        if stats.error is None and stats.pass_complete and not stats.stopped:
            skipped = self.ledger.skip_ineligible(run.id, self.handover.row_eligible)
        outstanding = self.ledger.outstanding(run.id, self.handover.eligible_ids())
        status = session_status(stats, outstanding)
        self.ledger.finish_session(run.id, status)
        return skipped, outstanding, status

    def _finish(self, run: Run, stats: SessionStats, orphans: int, worker: SendWorker | None = None) -> SendReport:
        """Record how the session ended and write the report, in plain words even if the database fails."""
        try:
            skipped, others_running = 0, False
            if worker is None:
                skipped, outstanding, status = self._finish_run(run, stats)
            else:
                status = worker_status(stats, worker.rows_left())
                with worker.last_word(status) as last:
                    if last:
                        skipped, outstanding, status = self._finish_run(run, stats)
                    else:  # the run goes on with the others; this sender reports its own share
                        others_running = True
                        outstanding = self.ledger.outstanding(run.id, self.handover.eligible_ids())
            report = build_report(
                self.ledger, self.ledger.get_run(run.id), stats, site=self.site, orphans=orphans,
                skipped_now=skipped, outstanding=outstanding, review=self.review,
            )
            if worker is not None:
                report.status = status
                report.worker = worker.id
                report.others_running = others_running
                with self.ledger.engine.connect() as conn:
                    report.workers = worker_counts(conn, run.id)
        except sa.exc.SQLAlchemyError as exc:
            raise database_error(exc, self.site.database_url) or exc from None
        try:
            report.path = write_report(self.site.reports_dir, report)
        except OSError as exc:
            raise DeliveryError(
                f"cannot write the send report: {exc.strerror or exc}", where=str(self.site.reports_dir),
                hint="the run itself is recorded; `newsletter sends` shows it",
            ) from None
        return report


def worker_status(stats: SessionStats, rows_left: int) -> str:
    """One sender of several: ``done`` when its pass completed and none of its own rows is left."""
    if stats.error is not None:
        return ABORTED
    if stats.stopped and not (stats.backoff and stats.backoff.gave_up):
        return INTERRUPTED
    return DONE if stats.pass_complete and not rows_left else INCOMPLETE


def session_status(stats: SessionStats, outstanding: dict[str, int]) -> str:
    """``done`` only when nobody eligible is left; Ctrl-C is ``interrupted``, an error ``aborted``."""
    if stats.error is not None:
        return ABORTED
    if not any(outstanding.values()):
        return DONE
    return INTERRUPTED if stats.stopped and not (stats.backoff and stats.backoff.gave_up) else INCOMPLETE


class _graceful_stop:
    """Ctrl-C (and SIGTERM) once: finish and record the messages in flight.

    Twice: stop waiting for them (their rows stay ``sending`` and become
    ``unknown`` at the next session), but still mark the run interrupted and
    write the report before leaving.
    """

    def __init__(self, pipe: DeliveryPipe, enabled: bool = True):
        self.pipe = pipe
        self.enabled = enabled and threading.current_thread() is threading.main_thread()
        self._old: dict[int, object] = {}

    def _handler(self, signum, frame):
        if self.pipe.stats.stopped:
            self.pipe.abandon()  # twice: leave now; the run is still marked and reported
        else:
            self.pipe.stop()

    def __enter__(self):
        if self.enabled:
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handler)
        return self

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)


def content_digest(rendered) -> str:
    h = hashlib.sha256()
    for part in (rendered.subject, rendered.html, rendered.text):
        h.update(part.encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()


def prepare_send(
    site,
    issue_path,
    *,
    new_run: bool = False,
    resend_unknown: bool = False,
    limit: int | None = None,
    run_checks: bool = True,
) -> SendPlan:
    """Build and check the issue, open the store, pick the run; hold the send lock until ``close()``."""
    if limit is not None and limit < 1:
        raise DeliveryError(f"--limit must be at least 1, not {limit}")
    refuse_dead_links(site)  # before anything else: links to example.com must never reach real people
    build = build_issue(site, issue_path)
    checks = None
    if run_checks:
        checks = check_build(site, build)
        checks.raise_if_blocking(str(build.issue.path))
    digest = content_digest(build.rendered)  # what staff approved, what live senders render, what the run records
    review = require_approval(site, build, digest)  # before any connection
    outbox = smtp_settings(site) is None
    settings = DeliverySettings.from_site(site, outbox=outbox)
    signer = DKIMSigner.from_site(site)  # a bad key stops us here, before anything is sent
    bounce_address = (site.setting("BOUNCE_ADDRESS") or "").strip()
    if bounce_address:  # a malformed address or a missing SECRET_KEY stops us here too
        make_return_path(bounce_address, 1, 1, site.setting("SECRET_KEY") or "")
    transport = open_transport(site)
    description = transport.description
    try:  # a wrong host, port, certificate or password shows now, before the question
        transport.verify()
    finally:
        transport.close()
    store = open_store(site)
    # PostgreSQL: no lock; several senders join the run as workers (``workers``, in ``execute``).
    lock = None if uses_workers(store.engine) else send_lock(store.engine, site.reports_dir)
    try:
        if lock is not None:
            lock.acquire()
    except BaseException:
        store.close()
        raise
    try:
        handover = Handover(store)
        ledger = Ledger(handover)
        latest = ledger.latest_run(build.issue.slug)
        run = None if new_run else latest
        if run is not None and uses_workers(store.engine):  # said before the question; joining checks it again
            with store.engine.connect() as conn:
                refuse_other_content(conn, run.id, digest)
        eligible = handover.count_eligible()
        to_send = ledger.count_waiting(run.id, handover.eligible_ids(), claimable_states(resend_unknown)) if run else eligible
        if limit is not None:
            to_send = min(to_send, limit)
        previously = ledger.count_sent(build.issue.slug) if new_run else 0
        return SendPlan(
            site=site,
            build=build,
            handover=handover,
            ledger=ledger,
            settings=settings,
            transport_description=description,
            outbox=outbox,
            run=run,
            eligible=eligible,
            to_send=to_send,
            previously_sent=previously,
            content_digest=digest,
            checks=checks,
            resend_unknown=resend_unknown,
            limit=limit,
            signer=signer,
            review=review,
            bounce_address=bounce_address,
            latest_known=latest.id if latest else None,
            _lock=lock,
        )
    except BaseException:
        if lock is not None:
            lock.release()
        store.close()
        raise


@dataclass(frozen=True)
class TestResult:
    address: str
    ok: bool
    reply: str


def send_test(site, issue_path, addresses: list[str], *, transport_factory=None) -> tuple[object, list[TestResult], str]:
    """Send the issue, personalised with sample data and marked ``[TEST]``, to any addresses.

    Nothing is read from or written to the subscriber list or the ledger: a test
    can go to a colleague who is not subscribed (listmonk only allows existing
    subscribers, #774). Returns ``(build, results, transport description)``.
    """
    if not addresses:
        raise DeliveryError("no test address given")
    for address in addresses:
        check_address(address, "--test-to")
    build = build_issue(site, issue_path)
    factory = MessageFactory(site, build.rendered, issue_slug=build.issue.slug)
    signer = DKIMSigner.from_site(site)
    transport = transport_factory() if transport_factory else open_transport(site)
    _name, _address, first = SAMPLE_RECIPIENT
    results = []
    try:
        for address in addresses:
            message = factory.build(
                to_email=address,
                first_name=first,
                unsubscribe_url=f"{site.public_url}/unsubscribe/test-message",
                subject_prefix="[TEST] ",
            )
            if signer:
                message = signer.sign(message)
            try:
                reply = transport.send(site.config.sender_address, [address], message)
                results.append(TestResult(address, True, str(reply)))
            except DeliveryError as exc:
                results.append(TestResult(address, False, exc.message))
    finally:
        transport.close()
    return build, results, transport.description
