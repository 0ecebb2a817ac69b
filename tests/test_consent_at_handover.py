"""Issue 8: consent is judged again at the moment each message is handed over.

A rate-limited ``newsletter send`` runs in its own process against a real
aiosmtpd server on 127.0.0.1, and people leave while it runs, each with the
real ``newsletter recipients unsubscribe`` in a process of its own:

* people already read into the batch the send is working through (at 20/s
  ``session.py`` reads up to a minute of sending at once, 1,000 people, so the
  whole list of 120 is one batch), late in it, so read but not yet sent;
* people waiting in the retry heap after the server answered 451 to their
  first attempt.

The server holds every reply for a moment while they unsubscribe (the
``GatedInbox``), so on a slow, busy machine too they are certainly read and not
yet sent when they leave; nothing is accepted until all their commands have
returned. Then nobody who left may be accepted at all, and the ledger, the run's
report and ``newsletter sends`` must say they were skipped.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from newsletters.config import Site
from newsletters.delivery import open_ledger
from recipients import open_store
from recipients.handover import SKIPPED_TEXT
from tests.send_fixtures import (
    ISSUE,
    ISSUE_SLUG,
    add_subscribers,
    clean_environment,
    latest_report,
    make_send_site,
    newsletter,
    smtp_settings,
    start_newsletter,
    write_env,
)
from tests.smtp_servers import GatedInbox, smtp_server

READERS = 120
RATE = 20  # messages a second: 60 * 20 = 1,200 a minute, so one batch of 1,000 holds the whole list
GREYLISTED = (0, 2, 5, 9)  # positions answered 451 at their first attempt
READ_AHEAD = (100, 104, 108, 112, 116, 119)  # late in the batch
HOLD_AFTER = 20  # accepted messages before the server holds its replies


def wait_for(condition, what: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def unsubscribe(site_dir, address: str) -> tuple[subprocess.CompletedProcess, float]:
    """The real command in its own process; returns it and the moment it returned."""
    result = subprocess.run(
        [sys.executable, "-m", "newsletters", "--site", str(site_dir), "recipients", "unsubscribe", address],
        env=clean_environment(), capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )
    return result, time.monotonic()


def test_people_who_leave_during_a_rate_limited_send_are_skipped_read_ahead_or_waiting_for_a_retry(site_dir):
    site_dir = make_send_site(site_dir)
    readers = add_subscribers(site_dir, READERS)
    greylisted = [readers[n] for n in GREYLISTED]
    read_ahead = [readers[n] for n in READ_AHEAD]
    leavers = greylisted + read_ahead
    with open_store(Site.load(site_dir)) as store:
        ids = {address: store.get(address).id for address in leavers}

    inbox = GatedInbox(
        rcpt_script={address: ["451 4.7.1 greylisted, please try again later"] for address in greylisted},
        # Hold once enough went through and every greylisted person had their 451.
        hold_when=lambda box: len(box.messages) >= HOLD_AFTER and all(box.rcpt_attempts[a] for a in greylisted),
    )
    with smtp_server(inbox) as (host, port):
        # A retry waits 4-8 s (SEND_RETRY_DELAY, halved at random): the greylisted stay in the heap meanwhile.
        write_env(site_dir, **smtp_settings(port, SEND_RATE=RATE, SEND_RETRY_DELAY=8, SMTP_TIMEOUT=120))
        send = start_newsletter(site_dir, "send", ISSUE, "--yes")
        try:
            wait_for(lambda: inbox.holding or send.poll() is not None, "the server to hold its replies")
            assert send.poll() is None, send.communicate()
            site = Site.load(site_dir)
            with open_ledger(site) as ledger:
                run = ledger.latest_run(ISSUE_SLUG)
                before = {address: ledger.state_of(run.id, ids[address]) for address in leavers}
            # Read into the batch, not handed over yet; and waiting for a retry after their 451.
            assert before == {**dict.fromkeys(greylisted, "deferred"), **dict.fromkeys(read_ahead, "queued")}

            with ThreadPoolExecutor(max_workers=4) as pool:
                left = dict(zip(leavers, pool.map(lambda a: unsubscribe(site_dir, a), leavers)))
            for address, (result, _returned) in left.items():
                assert result.returncode == 0 and f"unsubscribed {address}" in result.stdout, result.stderr
            assert send.poll() is None  # the send was still running when the last of them left
            inbox.release.set()
            stdout, stderr = send.communicate(timeout=180)
        finally:
            inbox.release.set()
            if send.poll() is None:
                send.kill()
                send.communicate()

    assert send.returncode == 0, stderr
    # Nobody who left was accepted after their unsubscribe returned (nor, here, at all).
    for address, (_result, returned) in left.items():
        assert [t for t in inbox.accepted_at[address] if t > returned] == [], address
    everyone_else = [a for a in readers if a not in leavers]
    assert inbox.copies() == Counter(dict.fromkeys(everyone_else, 1))
    assert all(inbox.rcpt_attempts[a] == 1 for a in greylisted)  # their retry never reached the server

    with open_ledger(Site.load(site_dir)) as ledger:
        assert {address: ledger.state_of(run.id, ids[address]) for address in leavers} == dict.fromkeys(leavers, "skipped")
        counts = ledger.counts(run.id)
    assert (counts["sent"], counts["skipped"]) == (len(everyone_else), len(leavers))

    report = latest_report(site_dir)
    assert report["status"] == "done"
    assert report["summary"] == {"sent": len(everyone_else), "deferred": 0, "failed": 0,
                                 "skipped": len(leavers), "unknown": 0}
    assert report["this_session"]["skipped"] == len(leavers)
    skipped_rows = {row["email"]: row for row in report["not_sent"] if row["state"] == "skipped"}
    assert set(skipped_rows) == set(leavers)
    assert all(SKIPPED_TEXT in row["reply"] for row in skipped_rows.values())  # judged when their turn came
    assert "skipped (no longer eligible)" in stdout

    sends = newsletter(site_dir, "sends", "--json")
    assert sends.returncode == 0, sends.stderr
    [listed] = json.loads(sends.stdout)
    assert (listed["run"], listed["status"]) == (run.id, "done")
    assert (listed["sent"], listed["skipped"], listed["unknown"]) == (len(everyone_else), len(leavers), 0)
