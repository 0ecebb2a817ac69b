"""Several senders on one PostgreSQL: ``newsletter send ISSUE --yes`` started three times shares one run.

The real command in separate processes, the session's throwaway PostgreSQL
(its URL in the site's .env, so every process shares it), and an aiosmtpd
server that takes a little while per message, as a real relay does.
"""

from __future__ import annotations

import email
import email.policy
import json
import shutil
import signal
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa

from foundation.tables import SENDABLE, SENDING, SENT, UNKNOWN, deliveries, send_workers
from newsletters.config import Site
from newsletters.delivery import open_ledger
from newsletters.delivery.rate import RateLimiter
from newsletters.errors import DeliveryError
from newsletters.delivery.pipe import DeliveryPipe
from newsletters.delivery.workers import SendWorker, ShareSize, Swept, locked_worker_ids
from newsletters.transport import open_transport
from recipients.claims import Claim, Outcome
from tests import send_fixtures
from tests.postgres_server import fresh_database_url
from tests.send_fixtures import (
    ISSUE, add_ineligible, add_subscribers, make_send_site, newsletter, smtp_settings, start_newsletter,
)
from tests.smtp_servers import Inbox, _sleep, smtp_server

SUBSCRIBERS = 1500
CONNECTIONS = 2  # per sender: what a killed sender may leave of unknown fate


class SlowInbox(Inbox):
    """An Inbox that takes ``delay`` seconds before answering each end of data (a relay's own work)."""

    def __init__(self, delay: float, **kwargs):
        super().__init__(**kwargs)
        self.delay = delay

    async def handle_DATA(self, server, session, envelope):
        await _sleep(self.delay)
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def postgres_site(site_dir, tmp_path, request, monkeypatch):
    """A send-ready site whose .env names a fresh PostgreSQL database (so subprocess senders share it)."""
    url = fresh_database_url("postgresql", tmp_path, request)
    monkeypatch.setattr(send_fixtures, "DATABASE_URL", url)
    return make_send_site(site_dir), url


def add_many(site_dir, count: int) -> list[str]:
    return add_subscribers(site_dir, count)


def wait_for(condition, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


@contextmanager
def pg_connection(url: str) -> Iterator[sa.Connection]:
    """A connection to the test's database, from outside the senders (as an operator's psql would be)."""
    if url.startswith("postgresql://"):
        url = url.replace("postgresql://", "postgresql+psycopg://", 1)
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            yield conn
    finally:
        engine.dispose()


def workers_by_pid(url: str) -> dict[int, dict]:
    with pg_connection(url) as conn:
        return {row.pid: dict(row._mapping) for row in conn.execute(sa.select(send_workers))}


def unknown_rows(url: str) -> list[tuple[int, str]]:
    """Each message of unknown fate: the pid of the sender that held it, and the reply recorded."""
    with pg_connection(url) as conn:
        return [tuple(row) for row in conn.execute(
            sa.select(send_workers.c.pid, deliveries.c.reply_text)
            .join(send_workers, send_workers.c.id == deliveries.c.worker_id, isouter=True)
            .where(deliveries.c.state.in_((UNKNOWN, SENDING)))
        )]


def life_locks(url: str) -> dict[int, int]:
    """Per worker id, how many sessions of this database hold its life lock now."""
    with pg_connection(url) as conn:
        return dict(Counter(conn.scalars(locked_worker_ids())))


def new_run(ledger, content_digest: str = ""):
    """A run of issue "s", as ``newsletter send`` would create it (the parts these tests do not look at, dummies)."""
    return ledger.create_run(issue_slug="s", issue_path="p", subject="x", content_digest=content_digest,
                             transport="t")


@contextmanager
def ledger_and_run(postgres_site, subscribers: int) -> Iterator[tuple]:
    """The test database with ``subscribers`` subscribers: its ledger, and a new run of issue "s" to join."""
    site_dir, _url = postgres_site
    add_many(site_dir, subscribers)
    with open_ledger(Site.load(site_dir)) as ledger:
        yield ledger, new_run(ledger)


def join(engine: sa.Engine, content_digest: str | None = None) -> SendWorker:
    """Join the latest run of issue "s" as one more sender."""
    return SendWorker.join(engine, "s", lambda latest: latest, content_digest)


def worker_status(engine: sa.Engine, worker: SendWorker) -> str:
    with engine.connect() as conn:
        return conn.scalar(sa.select(send_workers.c.status).where(send_workers.c.id == worker.id))


def sends_json(site_dir) -> list[dict]:
    result = newsletter(site_dir, "sends", "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def finish(process, timeout: float = 90) -> tuple[int, str, str]:
    stdout, stderr = process.communicate(timeout=timeout)
    return process.returncode, stdout, stderr


def test_three_senders_share_a_run_one_is_killed_and_a_resume_serves_everyone_once(postgres_site):
    site_dir, url = postgres_site
    readers = add_many(site_dir, SUBSCRIBERS)
    ineligible = add_ineligible(site_dir)
    inbox = SlowInbox(0.02)
    with smtp_server(inbox) as (_host, port):
        send_fixtures.write_env(site_dir, **smtp_settings(port, SMTP_CONNECTIONS=CONNECTIONS))
        senders = [start_newsletter(site_dir, "send", ISSUE, "--yes") for _ in range(3)]
        try:
            wait_for(lambda: len(inbox.messages) >= SUBSCRIBERS // 2, "half the list to be accepted")
            victim = senders[0]
            victim.send_signal(signal.SIGKILL)
            victim.wait(10)
            survivors = [finish(p) for p in senders[1:]]
        finally:
            for p in senders:
                if p.poll() is None:
                    p.kill()
        after_kill = inbox.copies()
        workers = workers_by_pid(url)
        # The survivors served their shares and what the killed one left; the last one ends the run.
        codes = sorted(code for code, _out, _err in survivors)
        for code, out, err in survivors:
            assert code in (0, 3), (out, err)
        runs = sends_json(site_dir)
        assert len(runs) == 1  # all three joined one run
        (run,) = runs
        unknown = run["unknown"]
        of_unknown_fate = unknown_rows(url)
        assert len(of_unknown_fate) == unknown
        # At most the killed sender's messages in flight, one per connection, and nobody else's.
        assert unknown <= CONNECTIONS and {pid for pid, _text in of_unknown_fate} <= {victim.pid}, of_unknown_fate
        assert codes == ([0, 0] if unknown == 0 else [0, 3])
        assert workers[victim.pid]["status"] == "dead"
        assert {w["status"] for pid, w in workers.items() if pid != victim.pid} == {"done"} or unknown
        shares = {w["pid"]: w["counts"].get("sent", 0) for w in run["workers"]}
        assert all(shares[p.pid] > 0 for p in senders), shares  # each sender sent some
        assert run["sent"] + unknown == SUBSCRIBERS
        print(f"shares (sent per sender, the first killed): {[shares[p.pid] for p in senders]}, unknown {unknown}, "
              f"exits {codes}")
        # Nobody got two copies before the resume: the shares never overlapped.
        assert max(after_kill.values()) == 1

        resume = newsletter(site_dir, "send", ISSUE, "--yes", "--resend-unknown")
        assert resume.returncode == 0, resume.stdout + resume.stderr

    copies = inbox.copies()
    assert set(copies) == set(readers)  # every eligible subscriber served, nobody ineligible mailed
    assert not set(copies) & set(ineligible)
    twice = [address for address, n in copies.items() if n > 1]
    assert len(twice) <= unknown <= CONNECTIONS  # only the killed sender's in-flight messages, at most once more
    assert sends_json(site_dir)[0]["status"] == "done"


def test_a_sender_that_joins_late_takes_a_share(postgres_site):
    site_dir, url = postgres_site
    readers = add_many(site_dir, 900)
    inbox = SlowInbox(0.02)
    with smtp_server(inbox) as (_host, port):
        send_fixtures.write_env(site_dir, **smtp_settings(port, SMTP_CONNECTIONS=CONNECTIONS))
        first = start_newsletter(site_dir, "send", ISSUE, "--yes")
        try:
            wait_for(lambda: len(inbox.messages) >= 200, "the first sender to be under way")
            # Its life lock, on its own connection and on each SMTP connection's (and briefly while it reserves).
            assert list(life_locks(url).values()) in ([1 + CONNECTIONS], [2 + CONNECTIONS])
            late = start_newsletter(site_dir, "send", ISSUE, "--yes")
            results = [finish(first), finish(late)]
        finally:
            for p in (first, late):
                if p.poll() is None:
                    p.kill()
    for code, out, err in results:
        assert code == 0, out + err
    assert life_locks(url) == {}  # both ended: no session holds a lock of theirs
    (run,) = sends_json(site_dir)
    assert run["status"] == "done"
    shares = {w["pid"]: w["counts"].get("sent", 0) for w in run["workers"]}
    assert shares[late.pid] > 0 and shares[first.pid] > 0, shares
    assert shares[late.pid] + shares[first.pid] == len(readers)
    assert inbox.copies() == Counter({address: 1 for address in readers})
    listing = newsletter(site_dir, "sends")
    assert listing.returncode == 0, listing.stderr
    assert "2 sender(s)" in listing.stdout
    for p in (first, late):
        assert f"pid {p.pid}: done; {shares[p.pid]} sent" in listing.stdout


def plain_text(message: bytes) -> str:
    return email.message_from_bytes(message, policy=email.policy.default).get_body(("plain",)).get_content()


def test_a_sender_with_another_version_of_the_issue_does_not_join_a_live_senders_run(postgres_site):
    site_dir, _url = postgres_site
    readers = add_many(site_dir, 600)
    inbox = SlowInbox(0.05)  # 40 a second on two connections: the first sender is still at it below
    issue = site_dir / ISSUE
    with smtp_server(inbox) as (_host, port):
        send_fixtures.write_env(site_dir, **smtp_settings(port, SMTP_CONNECTIONS=CONNECTIONS))
        first = start_newsletter(site_dir, "send", ISSUE, "--yes")
        try:
            wait_for(lambda: len(inbox.messages) >= 20, "the first sender to be under way")
            # A second machine whose copy of the folder has a later edit of the issue.
            issue.write_text(issue.read_text().replace("a short note this month", "an edited note this month"))
            other = newsletter(site_dir, "send", ISSUE, "--yes")
            assert first.poll() is None, "the first sender ended too soon for this test"
            first.send_signal(signal.SIGKILL)  # then that machine is lost
            first.wait(10)
            time.sleep(10 * inbox.delay)  # a message whose DATA was in when it died is still kept after the delay
            before = len(inbox.messages)
            inbox.delay = 0
            # Nobody is sending it now: running again with the edit resumes, and the plan says what changed.
            again = newsletter(site_dir, "send", ISSUE, "--yes", "--resend-unknown")
        finally:
            if first.poll() is None:
                first.kill()
    assert other.returncode == 1, other.stdout + other.stderr
    error = [line for line in other.stderr.splitlines() if line.strip()]
    assert len(error) == 1 and "is sending a different version of this issue" in error[0], other.stderr
    assert f"(pid {first.pid})" in error[0] and "same site folder" in error[0]
    assert "Sending" not in other.stdout  # refused before the question, not after its plan said otherwise

    assert again.returncode == 0, again.stdout + again.stderr
    assert "The issue changed since this run started" in again.stdout
    (run,) = sends_json(site_dir)
    assert len(run["workers"]) == 2  # the killed one and the resume; the refused one never joined
    copies = inbox.copies()
    assert set(copies) == set(readers)
    assert sum(copies.values()) - len(readers) <= CONNECTIONS  # only the killed sender's messages in flight, again
    texts = [plain_text(m.content) for m in inbox.messages]
    assert all("a short note this month" in text for text in texts[:before])  # the first sender's version only
    assert all("an edited note this month" in text for text in texts[before:])  # the resume's, once nobody else ran


def test_joining_a_run_checks_the_content_against_live_senders_only(postgres_site):
    """The check that holds under the slug's lock, whatever a sender's plan saw earlier."""
    site_dir, _url = postgres_site
    with open_ledger(Site.load(site_dir)) as ledger:
        engine = ledger.engine
        new_run(ledger, "a" * 64)
        first = join(engine, "a" * 64)
        second = join(engine, "a" * 64)  # the same version joins
        second.close()
        with pytest.raises(DeliveryError, match=f"sender {first.id} on .* is sending a different version"):
            join(engine, "b" * 64)
        first.close()  # its process ends: the server drops its life lock
        third = join(engine, "b" * 64)  # a resume with the new version
        try:
            with engine.connect() as conn:
                digests = conn.execute(sa.select(send_workers.c.content_digest).order_by(send_workers.c.id)).scalars()
                assert [d[0] for d in digests] == ["a", "a", "b"]  # the refused one left no row
        finally:
            third.close()


def test_the_rate_limit_holds_for_three_senders_together(postgres_site):
    site_dir, _url = postgres_site
    rate, count = 40, 320
    add_many(site_dir, count)
    inbox = Inbox()
    with smtp_server(inbox) as (_host, port):
        send_fixtures.write_env(site_dir, **smtp_settings(port, SMTP_CONNECTIONS=CONNECTIONS, SEND_RATE=rate))
        senders = [start_newsletter(site_dir, "send", ISSUE, "--yes") for _ in range(3)]
        try:
            results = [finish(p) for p in senders]
        finally:
            for p in senders:
                if p.poll() is None:
                    p.kill()
    for code, out, err in results:
        assert code == 0, out + err
    times = sorted(t for ts in inbox.accepted_at.values() for t in ts)
    assert len(times) == count
    measured = (len(times) - 1) / (times[-1] - times[0])
    print(f"three senders, SEND_RATE={rate}: {measured:.1f} messages/s at the server")
    assert rate * 0.90 <= measured <= rate * 1.10, f"{measured:.1f} messages/s against SEND_RATE={rate}"
    (run,) = sends_json(site_dir)
    assert sum(1 for w in run["workers"] if w["counts"].get("sent")) == 3  # all three sent



def test_a_joining_sender_leaves_a_live_senders_messages_in_flight_alone(postgres_site):
    """A joining sender's start (``start_session``, then the sweep) leaves ``sending`` alone while its sender lives."""
    with ledger_and_run(postgres_site, 2) as (ledger, run):
        engine = ledger.engine
        first = join(engine)
        with ledger.connect() as conn:
            ledger.enqueue(conn, run.id, [1, 2])
            assert first.reserve(conn, {1: None, 2: None}, SENDABLE) == {1, 2}
            with conn.begin():
                conn.execute(deliveries.update().where(deliveries.c.subscriber_id == 1).values(state=SENDING))
        second = join(engine)
        try:
            with ledger.connect() as conn:
                assert second.reserve(conn, {1: first.id, 2: first.id}, SENDABLE) == set()  # the first one's share
            # What a joining sender's session does first (``SendSession.execute``).
            ledger.start_session(run.id, transport="t", content_digest="", sole_sender=False)
            assert second.sweep().orphans == 0
            assert ledger.state_of(run.id, 1) == SENDING

            first.close()  # its process ends: the server drops its life lock
            swept = second.sweep()
            assert (swept.orphans, swept.released) == (1, 2)  # its message in flight, and its two rows
            assert ledger.state_of(run.id, 1) == UNKNOWN
            with ledger.connect() as conn:
                # the dead one's waiting row is free again
                assert second.reserve(conn, {1: first.id, 2: first.id}, SENDABLE) == {2}
        finally:
            second.close()


def test_a_share_not_queued_yet_is_queued_as_the_reserving_senders_own(postgres_site):
    """A sender queues the subscribers it takes with its own mark on them (each row written once, not
    queued and then reserved); another sender that read the list before those rows existed finds them
    taken while their sender lives, and free once it is gone."""
    with ledger_and_run(postgres_site, 3) as (ledger, run):
        engine = ledger.engine
        first, second = join(engine), join(engine)
        try:
            with ledger.connect() as conn:
                assert first.reserve(conn, {}, SENDABLE, unqueued=[1, 2]) == {1, 2}
                assert second.reserve(conn, {}, SENDABLE, unqueued=[1, 2, 3]) == {3}  # 1 and 2: the first's
            with ledger.connect() as conn:
                rows = conn.execute(
                    sa.select(deliveries.c.subscriber_id, deliveries.c.worker_id, deliveries.c.state)
                    .where(deliveries.c.run_id == run.id)
                ).all()
            assert sorted(rows) == [(1, first.id, "queued"), (2, first.id, "queued"), (3, second.id, "queued")]

            first.close()  # its process ends: what it queued is anyone's
            assert second.sweep().released == 2
            with ledger.connect() as conn:  # read before the sweep, as still unqueued: taken all the same
                assert second.reserve(conn, {}, SENDABLE, unqueued=[1, 2]) == {1, 2}
        finally:
            second.close()
            first.close()


def test_rows_a_running_sender_holds_are_left_to_it_without_asking_the_server(postgres_site):
    """What the list read showed as another running sender's is its share: reserving it again is not even
    sent (with two senders that was every reserving UPDATE of a first send, none taking a row). Once that
    sender has finished, what it left waiting is taken, statement and all."""
    with ledger_and_run(postgres_site, 3) as (ledger, run):
        engine = ledger.engine
        first, second = join(engine), join(engine)
        updates: list[str] = []

        def count_updates(_conn, _cursor, statement, *_args) -> None:
            if statement.lstrip().upper().startswith("UPDATE DELIVERIES"):
                updates.append(statement)

        try:
            with ledger.connect() as conn:
                assert first.reserve(conn, {}, SENDABLE, unqueued=[1, 2]) == {1, 2}
                sa.event.listen(engine, "after_cursor_execute", count_updates)
                assert second.reserve(conn, {1: first.id, 2: first.id}, SENDABLE, unqueued=[3]) == {3}
                assert updates == []
                with first.last_word("stopped"):  # it ends with its share not served (Ctrl-C, say)
                    pass
                assert second.reserve(conn, {1: first.id, 2: first.id}, SENDABLE) == {1, 2}
                assert len(updates) == 1
                # What a reservation sets for itself (commits without waiting for the disk) ends with it.
                assert conn.exec_driver_sql("SHOW synchronous_commit").scalar() == "on"
        finally:
            sa.event.remove(engine, "after_cursor_execute", count_updates)
            second.close()
            first.close()


def test_rows_queued_meanwhile_by_a_sender_that_has_ended_are_taken_while_a_third_still_runs(postgres_site):
    """Three senders. One queues rows as its share after another read the list, then stops (Ctrl-C,
    --limit) with them not served. The reader finds them queued by someone it cannot name: with a
    third sender still running, they must still be taken, not left for a later session."""
    with ledger_and_run(postgres_site, 3) as (ledger, run):
        engine = ledger.engine
        stopped, running, reader = join(engine), join(engine), join(engine)
        try:
            with ledger.connect() as conn:
                assert stopped.reserve(conn, {}, SENDABLE, unqueued=[1, 2]) == {1, 2}
                with stopped.last_word("stopped"):
                    pass
                assert reader.reserve(conn, {}, SENDABLE, unqueued=[1, 2, 3]) == {1, 2, 3}
        finally:
            for worker in (reader, running, stopped):
                worker.close()


def test_a_sender_behind_another_in_the_list_catches_up_and_takes_the_rest(postgres_site):
    """Two senders read the list in the same order. One that starts late finds the first stretch
    taken: it must skip it in growing steps, not a connection's worth at a time. (Measured before:
    a sender 40 ms behind spent the whole send skipping, while the other sent all 10,000.)"""
    site_dir, _url = postgres_site
    addresses = add_many(site_dir, 1000)
    inbox = Inbox()
    with smtp_server(inbox) as (_host, port):
        send_fixtures.write_env(site_dir, **smtp_settings(port))
        site = Site.load(site_dir)
        with open_ledger(site) as ledger:
            run = new_run(ledger)
            ahead, behind = join(ledger.engine), join(ledger.engine)
            try:
                people = [person for batch in ledger.handover.batches(1000) for person in batch]
                with ledger.connect() as conn:  # the first sender has taken the first 600 as its shares
                    assert len(ahead.reserve(conn, {}, SENDABLE, unqueued=[p.id for p in people[:600]])) == 600
                calls = []

                def reserve(conn, queued, unqueued):
                    calls.append(len(queued) + len(unqueued))
                    return behind.reserve(conn, queued, SENDABLE, unqueued)

                pipe = DeliveryPipe(
                    ledger=ledger, run_id=run.id, batches=iter([people]),
                    compose=lambda person: f"Subject: hello\r\nTo: {person.email}\r\n\r\nHello.\r\n".encode(),
                    sender="news@example.com", transport_factory=lambda: open_transport(site), connections=2,
                    reserve=reserve, attach=behind.attach,
                )
                stats = pipe.run()
            finally:
                behind.close()
                ahead.close()
    assert stats.error is None
    assert (stats.counts["sent"], stats.counts["elsewhere"]) == (400, 600)
    assert inbox.copies() == Counter({address: 1 for address in addresses[600:]})
    assert len(calls) <= 30, calls  # in steps of two (one per connection): 300 to skip the 600


def test_claims_planned_while_a_first_run_has_few_rows_still_go_by_the_subscribers_key(postgres_site):
    """In a first send the senders queue the list a share at a time, so a connection's first claim may
    find the run a few rows long. The plan made then serves the whole send: were it a sequential scan,
    each claim would read the whole table once the run had grown (measured: 790 µs a claim against 76).
    The setting that prevents it must not outlive the writer on the pooled connection."""
    with ledger_and_run(postgres_site, 300) as (ledger, run):
        worker = join(ledger.engine)
        try:
            with ledger.connect() as conn:
                assert worker.reserve(conn, {}, SENDABLE, unqueued=[1, 2]) == {1, 2}
            with ledger.connect() as conn:
                writer = ledger.writer(conn)
                assert writer.record(run.id, None, claim=1) is Claim.CLAIMED
                with ledger.connect() as other:
                    assert len(worker.reserve(other, {}, SENDABLE, unqueued=list(range(3, 301)))) == 298
                name, order = writer._prepared[tuple(SENDABLE)]["both"]
                values = dict(run=run.id, sub=2, previous=1, new_state=SENT, code=250, text="ok", now="2026-12-05T00:00:00+00:00")
                arguments = ", ".join("NULL" if values[key] is None else f"'{values[key]}'" for key in order)
                with conn.begin():
                    conn.exec_driver_sql("SET LOCAL plan_cache_mode = force_generic_plan")
                    plan = "\n".join(conn.exec_driver_sql(f"EXPLAIN EXECUTE {name.decode()}({arguments})").scalars())
                assert "Seq Scan on deliveries" not in plan, plan
                assert "uq_deliveries_run_id_subscriber_id" in plan, plan
                writer.close()
                assert conn.exec_driver_sql("SHOW enable_seqscan").scalar() == "on"
                conn.rollback()
        finally:
            worker.close()


def test_a_killed_sender_stays_alive_until_the_last_connection_it_claims_on_has_ended(postgres_site):
    """Its idle life connection ends first; a claim still running on the server must not find it swept.

    Otherwise the sweep turns its message in flight ``unknown``, the late statement
    (the outcome of that message, the claim of the next) puts a second row in
    ``sending``, and one connection leaves two messages of unknown fate.
    """
    with ledger_and_run(postgres_site, 2) as (ledger, run):
        engine = ledger.engine
        first = join(engine)
        claiming, finished = ledger.connect(), ledger.connect()
        first.attach(claiming)
        first.attach(finished)()  # a connection the sender is done with: back to the pool, lock released
        finished.close()
        with ledger.connect() as conn:
            ledger.enqueue(conn, run.id, [1, 2])
            assert first.reserve(conn, {1: None, 2: None}, SENDABLE) == {1, 2}
        writer = ledger.writer(claiming)
        assert writer.record(run.id, None, claim=1) is Claim.CLAIMED
        second = join(engine)
        try:
            first.close()  # killed: its life connection is gone ...
            assert second.sweep() == Swept(orphans=0, released=0)  # ... but not its claiming one
            assert ledger.state_of(run.id, 1) == SENDING
            # The statement it sent last commits now: message 1 accepted, message 2 claimed.
            assert writer.record(run.id, Outcome(1, SENT, 250, "ok"), claim=2) is Claim.CLAIMED
            claiming.invalidate()  # that backend ends too: now the sender is dead
            assert second.sweep() == Swept(orphans=1, released=1)  # message 2, now unknown (anyone's to resend)
            assert (ledger.state_of(run.id, 1), ledger.state_of(run.id, 2)) == (SENT, UNKNOWN)
        finally:
            second.close()


def test_a_sender_that_joins_while_another_sweeps_is_not_taken_for_dead(postgres_site):
    """Three senders started together each sweep as they join: one joining mid-sweep must stay alive.

    Were "who is alive" read in one statement and acted on in the next, the
    newcomer would be marked dead, and every later sweep would turn its messages
    in flight ``unknown`` while it is still sending them.
    """
    with ledger_and_run(postgres_site, 1) as (ledger, run):
        engine = ledger.engine
        sweeper = join(engine)
        joined: list[SendWorker] = []

        def join_meanwhile(_conn, _cursor, statement, *_args) -> None:
            if "pg_locks" in statement and not joined:  # the sweep has just read the locks
                joined.append(join(engine))

        sa.event.listen(engine, "after_cursor_execute", join_meanwhile)
        try:
            assert sweeper.sweep() == Swept(orphans=0, released=0)
        finally:
            sa.event.remove(engine, "after_cursor_execute", join_meanwhile)
        (newcomer,) = joined
        try:
            with ledger.connect() as conn:
                ledger.enqueue(conn, run.id, [1])
                assert newcomer.reserve(conn, {1: None}, SENDABLE) == {1}
                with conn.begin():
                    conn.execute(deliveries.update().where(deliveries.c.subscriber_id == 1).values(state=SENDING))
            assert sweeper.sweep() == Swept(orphans=0, released=0)
            assert ledger.state_of(run.id, 1) == SENDING  # still the newcomer's message in flight
            assert worker_status(engine, newcomer) == "running"
        finally:
            newcomer.close()
            sweeper.close()


def test_a_live_sender_on_another_database_of_the_server_does_not_keep_a_dead_one_here_alive(
        postgres_site, tmp_path, request):
    """One PostgreSQL server, a database per clinic (an agency's setup): worker ids repeat across them."""
    site_dir, _url = postgres_site
    add_many(site_dir, 1)
    other_site = shutil.copytree(site_dir, tmp_path / "other-clinic")
    send_fixtures.write_env(other_site, DATABASE_URL=fresh_database_url("postgresql", tmp_path, request))
    add_many(other_site, 1)
    with open_ledger(Site.load(site_dir)) as here, open_ledger(Site.load(other_site)) as there:
        run = new_run(here)
        new_run(there)
        theirs = join(there.engine)
        killed = join(here.engine)
        assert killed.id == theirs.id  # each database numbers its senders from 1
        with here.connect() as conn:
            here.enqueue(conn, run.id, [1])
            assert killed.reserve(conn, {1: None}, SENDABLE) == {1}
        killed.close()
        resumed = join(here.engine)
        try:
            assert resumed.sweep() == Swept(orphans=0, released=1)  # the killed one's row is anyone's again
            assert worker_status(here.engine, killed) == "dead"
        finally:
            resumed.close()
            theirs.close()


def test_a_senders_limiter_takes_its_share_of_the_rate_and_the_hour():
    clock = [0.0]
    limiter = RateLimiter(10, 90, clock=lambda: clock[0], sleep=lambda s: clock.__setitem__(0, clock[0] + s))
    limiter.share(3)  # three senders alive: 10/3 a second each, 30 an hour each
    for _ in range(4):
        limiter.acquire()
    assert clock[0] == pytest.approx(0.9)  # slots at 0, 0.3, 0.6, 0.9
    assert limiter.per_hour == 30
    limiter.share(1)  # the others ended: the whole rate again
    limiter.acquire()
    limiter.acquire()
    assert clock[0] == pytest.approx(1.3)  # the next slot 0.3 after 0.9 (taken before the change), then 0.1


def test_a_senders_share_is_about_half_a_second_of_its_recent_sending_so_the_others_never_wait_long_at_the_end():
    clock = [0.0]

    def sending(share: ShareSize, per_second: float, seconds: float, done: int) -> tuple[int, int]:
        """Reserve a share every half second while sending ``per_second``; the last share's size, and done."""
        size = 0
        for _ in range(int(seconds * 2)):
            clock[0] += 0.5
            done += int(per_second / 2)
            size = share.next(done)
        return size, done

    share = ShareSize(4, clock=lambda: clock[0])  # four connections, no rate limit
    assert share.next(done=0) == 4  # nothing sent yet: one per connection
    clock[0] += 0.1
    assert share.next(done=0) == 4  # still nothing back from the relay
    size, done = sending(share, 80, 10, 0)
    assert size == 40  # a relay taking 50 ms a message on four connections, 80 a second: half a second's worth
    size, done = sending(share, 3_000, 10, done)
    assert size == 200  # a fast relay: capped, so a batch still splits between senders
    size, done = sending(share, 20, 6, done)
    assert size == 10  # it slowed down late in the run: the shares shrink within seconds
    clock[0] += 120
    assert share.next(done + 50) == 4  # a long back-off pause: never less than a message per connection

    rate_limited = ShareSize(4, per_second=10, clock=lambda: clock[0])  # SEND_RATE=10 for all senders together
    rate_limited.next(done=0)
    assert sending(rate_limited, 10, 10, 0)[0] == 5  # sending at that rate: half a second of it
    assert sending(rate_limited, 100, 10, 100)[0] == 20  # never more than two seconds of the rate


def test_the_database_going_away_mid_send_is_said_in_one_line_with_one_hint(postgres_site):
    site_dir, url = postgres_site
    readers = add_many(site_dir, 60)
    inbox = Inbox(pipelining=True)
    with smtp_server(inbox) as (host, port):
        send_fixtures.write_env(site_dir, **smtp_settings(port, SMTP_CONNECTIONS=2, SEND_RATE=30))
        sender = start_newsletter(site_dir, "send", ISSUE, "--yes")
        wait_for(lambda: len(inbox.messages) >= 5, "the first messages")
        with pg_connection(url) as conn:  # what a database restart does to the sender's connections
            conn.execute(sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                 "WHERE datname = current_database() AND pid <> pg_backend_pid()"))
        out, err = sender.communicate(timeout=60)
        resumed = newsletter(site_dir, "send", ISSUE, "--yes")

    assert sender.returncode == 1, out + err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("error: ") and lines[0].count(" again") == 1, err  # one hint, not two
    assert resumed.returncode in (0, 3), resumed.stdout + resumed.stderr  # 3: a message in flight is unknown
    copies = inbox.copies()
    assert max(copies.values()) == 1 and set(copies) <= set(readers)
    assert len(set(readers) - set(copies)) <= 2  # at most one in flight per connection, left unknown


def test_sends_says_when_a_run_has_no_live_sender_left(postgres_site):
    site_dir, _url = postgres_site
    readers = add_many(site_dir, 300)
    inbox = SlowInbox(0.02)
    with smtp_server(inbox) as (_host, port):
        send_fixtures.write_env(site_dir, **smtp_settings(port, SMTP_CONNECTIONS=CONNECTIONS))
        sender = start_newsletter(site_dir, "send", ISSUE, "--yes")
        try:
            wait_for(lambda: len(inbox.messages) >= 20, "the sender to be under way")
            during = newsletter(site_dir, "sends")
            sender.send_signal(signal.SIGKILL)
            sender.wait(timeout=30)
        finally:
            if sender.poll() is None:
                sender.kill()
        after = newsletter(site_dir, "sends")
        (run,) = sends_json(site_dir)
        resumed = newsletter(site_dir, "send", ISSUE, "--yes")

    assert during.returncode == 0 and f"pid {sender.pid}: running;" in during.stdout, during.stdout
    assert "no sender is running it" not in during.stdout
    assert run["status"] == "running" and [w["alive"] for w in run["workers"]] == [False]
    assert f"pid {sender.pid}: running no more" in after.stdout, after.stdout
    assert "no sender is running it any more: run `newsletter send" in after.stdout
    assert resumed.returncode in (0, 3), resumed.stdout + resumed.stderr  # 3: its messages in flight are unknown
    assert set(inbox.copies()) <= set(readers) and max(inbox.copies().values()) == 1


def test_losing_the_ledger_connections_mid_send_writes_the_report_and_says_it_once(postgres_site):
    site_dir, url = postgres_site
    add_many(site_dir, 60)
    inbox = Inbox(pipelining=True)
    with smtp_server(inbox) as (host, port):
        send_fixtures.write_env(site_dir, **smtp_settings(port, SMTP_CONNECTIONS=2, SEND_RATE=30))
        sender = start_newsletter(site_dir, "send", ISSUE, "--yes")
        wait_for(lambda: len(inbox.messages) >= 5, "the first messages")
        with pg_connection(url) as conn:  # only the connections recording claims and outcomes
            ended = conn.execute(sa.text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                "AND query LIKE 'WITH resolved AS (UPDATE deliveries%%'")).scalar()
        out, err = sender.communicate(timeout=60)

    assert ended >= 1
    assert sender.returncode == 1, out + err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].count(" again") == 1, err  # the error's own hint, not a second one from the command
    assert "Run #1 of" in out  # the report was still written and shown
