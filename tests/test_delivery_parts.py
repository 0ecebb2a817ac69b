"""The parts of delivery on their own: the ledger's claim, the rate limiter, the retry rules, DKIM."""

from __future__ import annotations

import base64
import threading
import time
from datetime import datetime, timedelta, timezone

import dkim
import pytest
import sqlalchemy as sa

from newsletters.bounces.match import DeliveryIndex
from newsletters.config import Site
from newsletters.delivery.dkim import DKIMSigner
from newsletters.delivery.ledger import (
    DEFERRED, QUEUED, SENDING, SENT, SKIPPED, UNKNOWN, Ledger, Outcome, deliveries, send_runs,
)
from newsletters.delivery.rate import RateLimiter
from newsletters.delivery.retry import RetryPolicy, judge
from newsletters.errors import ConfigError, TransportError
from newsletters.transport import ConnectionLost, SMTPRefused, is_canonical
from alembic import command

from foundation.migrate import alembic_config, current_revision, head_revision, upgrade
from recipients import open_store
from recipients.importer import import_csv
from recipients.handover import Claim, Handover, HandoverWriter
from tests.postgres_server import fresh_database_url
from tests.send_fixtures import SETTINGS, add_subscribers, make_send_site


@pytest.fixture(autouse=True)
def only_dotenv_settings(monkeypatch):
    for name in SETTINGS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def store(site_dir, database_url):
    """Three subscribers in a fresh database: the ledger tests run on SQLite and on PostgreSQL."""
    make_send_site(site_dir, DATABASE_URL=database_url)
    add_subscribers(site_dir, 3)
    with open_store(Site.load(site_dir)) as store:
        yield store


# -- the ledger ---------------------------------------------------------------------------

def test_the_store_migrates_to_the_ledger_revision(store):
    assert current_revision(store.engine) == head_revision()
    assert {"send_runs", "deliveries"} <= set(sa.inspect(store.engine).get_table_names())


def test_claims_change_no_indexed_column_and_the_migration_goes_back_cleanly(store):
    """Migration 0011: nothing a claim or an outcome writes is indexed, so PostgreSQL can update the row in
    place (with room left in each page for it); the (run, subscriber) key stays the only index that leads to
    a row (migration 0009)."""
    engine = store.engine

    def indexed() -> set[tuple[str, ...]]:
        return {tuple(ix["column_names"]) for ix in sa.inspect(engine).get_indexes("deliveries")}

    def fillfactor() -> str | None:
        with engine.connect() as conn:
            options = conn.exec_driver_sql("SELECT reloptions FROM pg_class WHERE relname = 'deliveries'").scalar()
        return next((o.split("=")[1] for o in options or [] if o.startswith("fillfactor=")), None)

    on_postgres = engine.dialect.name == "postgresql"
    assert indexed() <= {("run_id", "subscriber_id")}  # the key's own index, wherever the dialect lists it
    if on_postgres:
        assert fillfactor() == "70"
    with engine.begin() as conn:
        command.downgrade(alembic_config(conn), "0010_delivery_state_enum")
    assert ("handed_at",) in indexed()
    if on_postgres:
        assert fillfactor() is None
    assert upgrade(engine) == head_revision()
    assert ("handed_at",) not in indexed()


def test_only_one_of_many_concurrent_claims_of_a_row_wins(store):
    ledger = Ledger(Handover(store))
    run = ledger.create_run(issue_slug="x", issue_path="x.toml", subject="s", content_digest="", transport="t")
    subscriber = next(store.eligible()).id
    with ledger.connect() as conn:
        ledger.enqueue(conn, run.id, [subscriber])
    results, barrier = [], threading.Barrier(8)

    def claim():
        with ledger.connect() as conn:
            barrier.wait()
            results.append(ledger.writer(conn).record(run.id, None, claim=subscriber).value)

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["claimed"] + ["lost"] * 7
    assert ledger.state_of(run.id, subscriber) == SENDING


def test_a_sent_row_cannot_be_claimed_again_and_a_new_session_turns_sending_into_unknown(store):
    ledger = Ledger(Handover(store))
    run = ledger.create_run(issue_slug="x", issue_path="x.toml", subject="s", content_digest="", transport="t")
    first, second = [r.id for r in store.eligible()][:2]
    with ledger.connect() as conn:
        writer = ledger.writer(conn)
        assert ledger.enqueue(conn, run.id, [first, second]) == {first: (QUEUED, 0), second: (QUEUED, 0)}
        assert writer.record(run.id, None, claim=first) is Claim.CLAIMED
        # One commit: the first's outcome and the second's claim.
        assert writer.record(run.id, Outcome(first, SENT, 250, "ok"), claim=second) is Claim.CLAIMED
        assert writer.record(run.id, None, claim=first) is Claim.LOST
        assert ledger.enqueue(conn, run.id, [first]) == {first: (SENT, 1)}
    # The process "dies" here with `second` in flight.
    assert ledger.start_session(run.id, transport="t", content_digest="", sole_sender=True) == 1
    assert ledger.state_of(run.id, second) == UNKNOWN
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(deliveries).where(deliveries.c.subscriber_id == first)).one()
    assert (row.state, row.reply_code, row.attempts) == (SENT, 250, 1)


def test_a_connection_back_from_the_pool_serves_a_new_writer(store):
    """Two sends in one process (a library user's, or a test's) get the same pooled connection in turn:
    the second writer's statements must not collide with what the first left prepared on the server."""
    ledger = Ledger(Handover(store))
    run = ledger.create_run(issue_slug="x", issue_path="x.toml", subject="s", content_digest="", transport="t")
    first, second = [r.id for r in store.eligible()][:2]
    with ledger.connect() as conn:
        ledger.enqueue(conn, run.id, [first, second])
        earlier = ledger.writer(conn)
        assert earlier.record(run.id, None, claim=first) is Claim.CLAIMED
        earlier.close()
        later = ledger.writer(conn)
        assert later.record(run.id, Outcome(first, SENT, 250, "ok"), claim=second) is Claim.CLAIMED
        later.close()
    assert (ledger.state_of(run.id, first), ledger.state_of(run.id, second)) == (SENT, SENDING)

@pytest.mark.parametrize("path", ["fast", "core"])
def test_a_claim_rejudges_consent_and_marks_someone_who_left_skipped(store, path):
    """Read as eligible, unsubscribed before their turn: the claim itself refuses them.

    ``fast`` is the writer the handover picks for its database (the raw driver
    path), ``core`` the SQLAlchemy Core one: both must run the store's rule.
    """
    handover = Handover(store)
    ledger = Ledger(handover)
    run = ledger.create_run(issue_slug="x", issue_path="x.toml", subject="s", content_digest="", transport="t")
    stays, leaves = next(handover.batches(3))[:2]
    with ledger.connect() as conn:
        ledger.enqueue(conn, run.id, [stays.id, leaves.id])
        store.unsubscribe(leaves.public_id, "link")
        writer = handover.writer(conn) if path == "fast" else HandoverWriter(handover, conn)
        assert writer.record(run.id, None, claim=leaves.id) is Claim.SKIPPED
        assert writer.record(run.id, None, claim=stays.id) is Claim.CLAIMED
        assert writer.record(run.id, None, claim=leaves.id) is Claim.SKIPPED  # still not eligible: stays skipped
    assert ledger.state_of(run.id, leaves.id) == SKIPPED
    assert ledger.state_of(run.id, stays.id) == SENDING
    assert ledger.counts(run.id)[SKIPPED] == 1


@pytest.mark.parametrize("path", ["fast", "core"])
def test_an_outcome_recorded_with_a_refused_claim_is_kept_and_the_writer_goes_on(store, path):
    """The previous message's outcome travels with the next claim. When that claim is refused (on
    PostgreSQL the skip is then a second statement), the outcome stays written; a refused claim left
    unread does not stop the next one; and the connection goes back idle."""
    handover = Handover(store)
    ledger = Ledger(handover)
    run = ledger.create_run(issue_slug="x", issue_path="x.toml", subject="s", content_digest="", transport="t")
    first, leaves, third = next(handover.batches(3))[:3]
    with ledger.connect() as conn:
        ledger.enqueue(conn, run.id, [first.id, leaves.id, third.id])
        store.unsubscribe(leaves.public_id, "link")
        writer = handover.writer(conn) if path == "fast" else HandoverWriter(handover, conn)
        assert writer.record(run.id, None, claim=first.id) is Claim.CLAIMED
        assert writer.record(run.id, Outcome(first.id, SENT, 250, "ok"), claim=leaves.id) is Claim.SKIPPED
        writer.begin(run.id, None, claim=leaves.id)  # refused again, and nobody reads it
        assert writer.record(run.id, None, claim=third.id) is Claim.CLAIMED
        writer.begin(run.id, Outcome(third.id, SENT, 250, "ok"), claim=leaves.id)  # unread at close
        writer.close()
        assert conn.exec_driver_sql("SELECT 1").scalar() == 1  # idle: a statement of its own goes through
        conn.rollback()
    states = {sid: ledger.state_of(run.id, sid) for sid in (first.id, leaves.id, third.id)}
    assert states == {first.id: SENT, leaves.id: SKIPPED, third.id: SENT}


@pytest.mark.parametrize("path", ["fast", "core"])
def test_a_retry_right_after_its_own_deferral_is_claimed_again(store, path):
    """The outcome of one try and the claim of the next try of the same person, in one call."""
    handover = Handover(store)
    ledger = Ledger(handover)
    run = ledger.create_run(issue_slug="x", issue_path="x.toml", subject="s", content_digest="", transport="t")
    person, other = [r.id for r in store.eligible()][:2]
    with ledger.connect() as conn:
        ledger.enqueue(conn, run.id, [person, other])
        writer = handover.writer(conn) if path == "fast" else HandoverWriter(handover, conn)
        assert writer.record(run.id, None, claim=person) is Claim.CLAIMED
        assert writer.record(run.id, Outcome(person, DEFERRED, 451, "try later"), claim=person) is Claim.CLAIMED
        assert writer.record(run.id, Outcome(person, SENT, 250, "ok"), claim=other) is Claim.CLAIMED
        assert writer.record(run.id, Outcome(other, SENT, 250, "ok")) is Claim.CLAIMED
        assert ledger.enqueue(conn, run.id, [person, other]) == {person: (SENT, 2), other: (SENT, 1)}


def test_a_claim_sent_ahead_is_answered_later_and_one_left_unread_does_not_block_the_next(store):
    """``begin`` is what the pipe uses: on PostgreSQL it only sends the statement; ``result`` reads the answer."""
    ledger = Ledger(Handover(store))
    run = ledger.create_run(issue_slug="x", issue_path="x.toml", subject="s", content_digest="", transport="t")
    first, second, third = [r.id for r in store.eligible()][:3]
    reply = "250 2.0.0 Ok: queued as 4Xz 100% ünïcode"
    with ledger.connect() as conn:
        ledger.enqueue(conn, run.id, [first, second, third])
        writer = ledger.writer(conn)
        ahead = writer.begin(run.id, None, claim=first)
        assert ahead.result() is Claim.CLAIMED and ahead.result() is Claim.CLAIMED  # read once, then kept
        writer.begin(run.id, Outcome(first, SENT, 250, reply), claim=second)  # its caller failed to read it
        assert writer.record(run.id, Outcome(second, SENT, 250, "ok"), claim=third) is Claim.CLAIMED
        writer.close()
    with store.engine.connect() as conn:
        rows = {row.subscriber_id: row for row in conn.execute(sa.select(deliveries))}
    assert (rows[first].state, rows[first].reply_code, rows[first].reply_text) == (SENT, 250, reply)
    assert (rows[second].state, rows[third].state) == (SENT, SENDING)
    assert abs((rows[first].handed_at - datetime.now(timezone.utc)).total_seconds()) < 60


def test_what_is_left_of_a_run_is_counted_and_skipped_in_one_pass_even_with_stale_statistics(
        site_dir, database_url, tmp_path):
    """A sender joining a run in progress (or a resume right after one) counts what is left;
    the run's last sender marks the waiting rows of people who left ``skipped``.

    The ledger's statistics then date from when everyone was queued, and on a
    big list the eligible ids outgrow PostgreSQL's work_mem. The count used to
    read the run's rows once per subscriber (millions of rows here, 50 million
    for 10,000 subscribers: seconds before the send began), the skip to rescan
    the list once per waiting row. The same answers on SQLite; on PostgreSQL
    the rows each plan read are checked, with work_mem as small as it goes.
    """
    n = 6000
    make_send_site(site_dir, DATABASE_URL=database_url)
    csv = tmp_path / "list.csv"
    csv.write_text("email,first_name,consent_at,consent_source\n" + "".join(
        f"reader{k:04d}@example.org,R{k},2024-03-02T10:14:00Z,test list\n" for k in range(n)))
    with open_store(Site.load(site_dir)) as store:
        import_csv(store, csv)
        handover = Handover(store)
        ledger = Ledger(handover)
        run = ledger.create_run(issue_slug="x", issue_path="x.toml", subject="s", content_digest="", transport="t")
        ids = [r.id for r in next(handover.batches(n))]  # as a send reads it (on PostgreSQL: the list analysed)
        with ledger.connect() as conn:
            ledger.enqueue(conn, run.id, ids)
        postgres = store.engine.dialect.name == "postgresql"
        if postgres:  # what the first claim does: statistics taken while the whole run is queued
            with store.engine.begin() as conn:
                conn.exec_driver_sql("ANALYZE deliveries")
        with store.engine.begin() as conn:  # then the run goes out: all sent but 300 deferred and 10 unknown
            conn.execute(deliveries.update().where(deliveries.c.run_id == run.id).values(state=SENT))
            for state, chunk in ((DEFERRED, ids[-300:]), (UNKNOWN, ids[-310:-300])):  # the last: scanned to the end
                conn.execute(deliveries.update().where(deliveries.c.subscriber_id.in_(chunk)).values(state=state))
        statements = []
        sa.event.listen(store.engine, "before_cursor_execute",
                        lambda conn, cursor, statement, parameters, context, many: statements.append(
                            (statement, parameters)))
        sendable = ("queued", "deferred", "skipped")
        assert ledger.count_waiting(run.id, handover.eligible_ids(), sendable) == 300
        counted = statements[-1]
        assert ledger.count_waiting(run.id, handover.eligible_ids(), (*sendable, UNKNOWN)) == 310
        store.unsubscribe(next(r for r in store.eligible() if r.id == ids[-1]).public_id, "link")
        assert ledger.count_waiting(run.id, handover.eligible_ids(), sendable) == 299
        assert ledger.skip_ineligible(run.id, handover.row_eligible) == 1
        skipped = next(s for s in reversed(statements) if s[0].lstrip().upper().startswith("UPDATE"))
        assert ledger.state_of(run.id, ids[-1]) == SKIPPED and ledger.state_of(run.id, ids[-2]) == DEFERRED
        if postgres:
            for statement, parameters in (counted, skipped):
                assert rows_read(explain(store.engine, statement, parameters)) < 20 * n, statement


def test_a_send_analyses_the_list_when_its_statistics_are_missing_or_stale_and_only_then(
        site_dir, tmp_path, request):
    """PostgreSQL only (SQLite plans these queries without statistics): a fresh import has none, and reading
    the list without them took 2.5x as long per batch; analysing fresh ones again only made every sender's
    start wait (recipients/handover.py)."""
    make_send_site(site_dir, DATABASE_URL=fresh_database_url("postgresql", tmp_path, request))

    def load(first: int, count: int) -> None:
        csv = tmp_path / f"list{first}.csv"
        csv.write_text("email,first_name,consent_at,consent_source\n" + "".join(
            f"reader{k:05d}@example.org,R{k},2024-03-02T10:14:00Z,test list\n" for k in range(first, first + count)))
        with open_store(Site.load(site_dir)) as store:  # as `newsletter recipients import` would, in its own process
            import_csv(store, csv)

    def analysed_at(engine, table: str = "subscribers"):
        with engine.connect() as conn:
            return conn.exec_driver_sql(
                "SELECT last_analyze FROM pg_stat_user_tables WHERE relname = %(table)s", {"table": table}).scalar()

    def all_analysed_at(engine) -> list:
        return [analysed_at(engine, table) for table in ("subscribers", "consent_events", "suppressions")]

    with open_store(Site.load(site_dir)) as store:  # the tables, with autovacuum kept out of the test's way
        with store.engine.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE subscribers SET (autovacuum_enabled = off)")
    load(0, 500)
    with open_store(Site.load(site_dir)) as store:
        handover = Handover(store)
        assert analysed_at(store.engine) is None
        next(handover.batches(100))
        first = analysed_at(store.engine)
        assert first is not None
        before = all_analysed_at(store.engine)  # the empty suppressions table too: analysed once, not each time
        assert None not in before
        next(handover.batches(100))
        assert all_analysed_at(store.engine) == before  # fresh: left alone
        with store.engine.begin() as conn:  # what a crash does to the activity counters: the statistics stay
            conn.exec_driver_sql("SELECT pg_stat_reset()")
        assert analysed_at(store.engine) is None
        next(handover.batches(100))
        assert analysed_at(store.engine) is None  # still fresh: not analysed again
    load(500, 400)  # most of the list is new since
    with open_store(Site.load(site_dir)) as store:
        deadline = time.monotonic() + 10  # the importer's counts reach the statistics once its connections close
        while time.monotonic() < deadline:
            with store.engine.connect() as conn:
                if conn.exec_driver_sql("SELECT n_mod_since_analyze FROM pg_stat_user_tables "
                                        "WHERE relname = 'subscribers'").scalar() >= 400:
                    break
            time.sleep(0.05)
        next(Handover(store).batches(100))
        assert analysed_at(store.engine) > first

def explain(engine: sa.Engine, statement: str, parameters) -> dict:
    """The plan PostgreSQL ran for ``statement``, with work_mem at its minimum; any change rolled back."""
    with engine.connect() as conn, conn.begin() as transaction:
        conn.exec_driver_sql("SET LOCAL work_mem = '64kB'")
        plan = conn.exec_driver_sql("EXPLAIN (ANALYZE, FORMAT JSON) " + statement, parameters).scalar()
        transaction.rollback()
    return plan[0]["Plan"]


def rows_read(node: dict) -> int:
    """Rows a plan's nodes produced or threw away, over all their loops: the work it did."""
    own = node.get("Actual Rows", 0) * node.get("Actual Loops", 1)
    own += node.get("Rows Removed by Filter", 0) + node.get("Rows Removed by Join Filter", 0)
    return own + sum(rows_read(child) for child in node.get("Plans", []))


# -- the rate limiter -------------------------------------------------------------------------

class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def test_per_second_limit_spaces_handovers_evenly_across_threads():
    clock = FakeClock()
    limiter = RateLimiter(per_second=5, clock=clock, sleep=clock.sleep)
    times = []
    for _ in range(10):
        limiter.acquire()
        times.append(clock.now)
    gaps = {round(b - a, 6) for a, b in zip(times, times[1:])}
    assert gaps == {0.2}


def test_hourly_limit_holds_the_next_message_until_the_window_frees():
    clock = FakeClock()
    limiter = RateLimiter(per_hour=3, clock=clock, sleep=clock.sleep)
    start = clock.now
    for _ in range(3):
        limiter.acquire()
    assert clock.now == start
    limiter.acquire()
    assert clock.now == start + 3600


def test_hourly_limit_counts_what_the_ledger_says_was_sent_in_the_last_hour():
    clock = FakeClock()
    recent = [datetime.now(timezone.utc) - timedelta(minutes=m) for m in (50, 40)]
    limiter = RateLimiter.with_history(None, 3, recent, clock=clock, sleep=clock.sleep)
    start = clock.now
    limiter.acquire()  # the third of the hour: at once
    assert clock.now == start
    limiter.acquire()  # the fourth waits until the one from 50 minutes ago is an hour old
    assert clock.now - start == pytest.approx(600, abs=2)


def test_the_hourly_limit_starts_from_the_handovers_of_every_run_active_in_the_last_hour(store):
    """What ``SEND_MAX_PER_HOUR`` counts at start: a finished run's and a running run's handovers of the last
    hour, newest first; not those of a run whose last session ended before the hour began."""
    ledger = Ledger(Handover(store))
    subscriber = next(store.eligible()).id
    runs = [ledger.create_run(issue_slug=slug, issue_path="x.toml", subject="s", content_digest="", transport="t")
            for slug in ("old", "finished", "running")]
    with ledger.connect() as conn:
        writer = ledger.writer(conn)
        for run in runs:
            ledger.enqueue(conn, run.id, [subscriber])
            writer.record(run.id, None, claim=subscriber)
            writer.record(run.id, Outcome(subscriber, SENT, 250, "ok"))
        writer.close()
    for run in runs[:2]:
        ledger.finish_session(run.id, "done")
    old, finished, running = runs
    two_hours_ago = datetime.now(timezone.utc) - timedelta(hours=2)
    with store.engine.begin() as conn:  # the old run's one session ended two hours ago; the running one's began then
        conn.execute(deliveries.update().where(deliveries.c.run_id == old.id).values(handed_at=two_hours_ago))
        conn.execute(send_runs.update().where(send_runs.c.id.in_([old.id, running.id])).values(updated_at=two_hours_ago))
        handed = dict(conn.execute(sa.select(deliveries.c.run_id, deliveries.c.handed_at)).all())
    since = datetime.now(timezone.utc) - timedelta(hours=1)
    assert ledger.handed_since(since, 10) == [handed[running.id], handed[finished.id]]
    assert ledger.handed_since(since, 1) == [handed[running.id]]

def test_a_bounce_known_only_by_its_address_is_tied_to_the_latest_run_that_mailed_them_recently(store):
    """A relay event without our Message-ID names only the address: the latest run of the last days that
    handed them a message, finished or still running; not one before the window, not one that never sent."""
    ledger = Ledger(Handover(store))
    subscriber = next(store.eligible()).id
    old, finished, running, unsent = [
        ledger.create_run(issue_slug=slug, issue_path="x.toml", subject="s", content_digest="", transport="t")
        for slug in ("old", "finished", "running", "unsent")]
    with ledger.connect() as conn:
        writer = ledger.writer(conn)
        for run in (old, finished, running):
            ledger.enqueue(conn, run.id, [subscriber])
            writer.record(run.id, None, claim=subscriber)
            writer.record(run.id, Outcome(subscriber, SENT, 250, "ok"))
        writer.close()
        ledger.enqueue(conn, unsent.id, [subscriber])  # queued, never handed over
    ledger.finish_session(finished.id, "done")
    index = DeliveryIndex(store.engine)
    week_ago = datetime.now(timezone.utc) - timedelta(days=7)
    assert index.latest_handed_over(subscriber, week_ago) == running.id
    a_month_ago = datetime.now(timezone.utc) - timedelta(days=30)
    with store.engine.begin() as conn:  # the running one began a month ago and still runs; the old one ended then
        conn.execute(deliveries.update().where(deliveries.c.run_id.in_([old.id, running.id]))
                     .values(handed_at=a_month_ago))
        conn.execute(send_runs.update().where(send_runs.c.id.in_([old.id, running.id])).values(updated_at=a_month_ago))
    assert index.latest_handed_over(subscriber, week_ago) == finished.id
    assert index.latest_handed_over(subscriber, a_month_ago - timedelta(days=1)) == running.id

def test_no_limits_means_no_waiting():
    assert RateLimiter().acquire() is True
    assert not RateLimiter().limited


# -- retries ------------------------------------------------------------------------------

def test_backoff_grows_and_is_capped():
    policy = RetryPolicy(max_attempts=5, base=10, cap=60)
    upper = [policy.delay(n, rng=type("R", (), {"random": lambda self: 1.0})()) for n in range(1, 6)]
    lower = [policy.delay(n, rng=type("R", (), {"random": lambda self: 0.0})()) for n in range(1, 6)]
    assert upper == [10, 20, 40, 60, 60]
    assert lower == [5, 10, 20, 30, 30]
    assert policy.may_retry(4) and not policy.may_retry(5)


@pytest.mark.parametrize(
    "error, state, retry, abort",
    [
        (SMTPRefused(451, "4.7.1 greylisted", stage="rcpt"), "deferred", True, False),
        (SMTPRefused(421, "4.3.2 closing", stage="end"), "deferred", True, False),
        (SMTPRefused(550, "5.1.1 no such user", stage="rcpt"), "bounced", False, False),
        (SMTPRefused(554, "5.7.1 spam", stage="end"), "failed", False, False),
        (SMTPRefused(550, "5.7.1 sender rejected", stage="mail"), "failed", False, True),
        (ConnectionLost("reset", handed_over=False), "deferred", True, False),
        (ConnectionLost("no reply", handed_over=True), "unknown", False, False),
        (TransportError("certificate"), "failed", False, True),
    ],
)
def test_each_answer_is_judged_so_that_nothing_possibly_delivered_is_retried(error, state, retry, abort):
    verdict = judge(error)
    assert (verdict.state, verdict.retry, verdict.abort) == (state, retry, abort)


# -- DKIM -------------------------------------------------------------------------------------

def rsa_key_pair():
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)


def test_dkim_signature_covers_list_unsubscribe_and_verifies_with_the_public_key(site_dir):
    from newsletters.build import build_issue
    from newsletters.personalize import MessageFactory

    private, dns_record = rsa_key_pair()
    make_send_site(site_dir)
    (site_dir / "dkim.pem").write_bytes(private)
    env = (site_dir / ".env").read_text()
    (site_dir / ".env").write_text(
        env + "DKIM_PRIVATE_KEY_FILE=dkim.pem\nDKIM_SELECTOR=nl2026\nDKIM_DOMAIN=larkfield-clinic.example.com\n"
    )
    site = Site.load(site_dir)
    build = build_issue(site, site_dir / "issues/issue_for_send_tests.toml")
    message = MessageFactory(site, build.rendered).build(
        to_email="ann@example.org", first_name="Ann", unsubscribe_url="https://news.example.com/unsubscribe/abc"
    )
    signed = DKIMSigner.from_site(site).sign(message)

    def dns(name, timeout=5):  # the DNS lookup of the selector, answered here (no network in tests)
        assert name == b"nl2026._domainkey.larkfield-clinic.example.com."
        return dns_record

    assert dkim.verify(signed, dnsfunc=dns)
    assert is_canonical(signed)  # the pipe promises the SMTP client CRLF-only messages
    header = signed.split(b"\r\n\r\n", 1)[0].replace(b"\r\n ", b" ").replace(b"\r\n\t", b" ")
    signed_headers = header.split(b"h=", 1)[1].split(b";", 1)[0].replace(b" ", b"").split(b":")
    assert b"list-unsubscribe" in signed_headers and b"list-unsubscribe-post" in signed_headers
    # A List-Unsubscribe added in transit breaks the signature (the header is over-signed).
    tampered = signed.replace(b"\r\nMIME-Version", b"\r\nList-Unsubscribe: <https://evil.example.net/>\r\nMIME-Version", 1)
    assert not dkim.verify(tampered, dnsfunc=dns)


def test_dkim_half_configured_or_with_a_bad_key_stops_before_sending(site_dir):
    make_send_site(site_dir, DKIM_SELECTOR="nl2026")
    with pytest.raises(ConfigError, match="DKIM_PRIVATE_KEY_FILE, DKIM_DOMAIN not set"):
        DKIMSigner.from_site(Site.load(site_dir))
    (site_dir / "dkim.pem").write_text("not a key")
    make_send_site(site_dir, DKIM_SELECTOR="nl2026", DKIM_PRIVATE_KEY_FILE="dkim.pem", DKIM_DOMAIN="larkfield-clinic.example.com")
    with pytest.raises(ConfigError, match="cannot sign"):
        DKIMSigner.from_site(Site.load(site_dir))
    make_send_site(site_dir, DKIM_SELECTOR="nl2026", DKIM_PRIVATE_KEY_FILE="dkim.pem", DKIM_DOMAIN="other.example.net")
    with pytest.raises(ConfigError, match="does not match the sender"):
        DKIMSigner.from_site(Site.load(site_dir))


def test_send_duration_estimate_follows_the_tighter_limit():
    from newsletters.delivery.settings import DeliverySettings

    assert DeliverySettings(per_second=10).duration(600) == 60
    assert DeliverySettings(per_hour=500).duration(1200) == 2 * 3600  # two more hours after the first 500
    assert DeliverySettings(per_second=1, per_hour=5000).duration(4000) == 4000
    assert DeliverySettings().duration(10_000) is None
