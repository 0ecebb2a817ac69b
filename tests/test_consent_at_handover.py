"""Issue 8: consent is judged at the moment of handover, and no mail is sent inside a database transaction.

Real parts throughout: aiosmtpd on 127.0.0.1, the real ``newsletter`` command in
its own process (send, unsubscribe), the web app over real HTTP, a SQLite file.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import re
import socket
import threading
import time
from collections import Counter

import pytest

from newsletters.config import Site
from newsletters.delivery import open_ledger
from recipients import open_store
from tests.send_fixtures import (
    ISSUE, ISSUE_SLUG, SECRET, SETTINGS, add_subscribers, latest_report, make_send_site, newsletter, smtp_settings,
    start_newsletter, write_env,
)
from tests.smtp_servers import Inbox, smtp_server
from tests.test_web_pages import start_server


@pytest.fixture(autouse=True)
def only_dotenv_settings(monkeypatch):
    for name in SETTINGS:
        monkeypatch.delenv(name, raising=False)


class TimedInbox(Inbox):
    """Keeps, for each recipient, the moments the server accepted a message for them."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.accepted_at: dict[str, list[float]] = {}

    async def handle_DATA(self, server, session, envelope):
        reply = await super().handle_DATA(server, session, envelope)
        if reply.startswith("250"):
            for address in envelope.rcpt_tos:
                self.accepted_at.setdefault(address, []).append(time.monotonic())
        return reply


def unsubscribe(site_dir, address: str) -> float:
    """The real command; returns the moment it had returned."""
    result = newsletter(site_dir, "recipients", "unsubscribe", address)
    assert result.returncode == 0 and "unsubscribed" in result.stdout, result.stderr
    return time.monotonic()


def wait_for(condition, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_unsubscribing_during_a_send_stops_read_ahead_and_retrying_people_at_once(site_dir):
    site_dir = make_send_site(site_dir)
    readers = add_subscribers(site_dir, 120)
    # These three get a 451 on their first try, so they wait in the retry heap (10-20 s at this delay).
    retrying = readers[3:6]
    # At 10/s the whole list is read in one batch at the start: these are read ahead, due in about 11 s.
    read_ahead = readers[110:115]
    inbox = TimedInbox(rcpt_script={address: ["451 4.7.1 greylisted, try again later"] for address in retrying})
    with smtp_server(inbox) as (host, port):
        write_env(site_dir, **smtp_settings(port, SEND_RATE=10, SEND_RETRY_DELAY=20, SMTP_CONNECTIONS=2))
        process = start_newsletter(site_dir, "send", ISSUE, "--yes")
        wait_for(lambda: all(inbox.rcpt_attempts[a] >= 1 for a in retrying) and len(inbox.messages) >= 10)
        left_at: dict[str, float] = {}
        commands = [threading.Thread(target=lambda a=a: left_at.__setitem__(a, unsubscribe(site_dir, a)))
                    for a in retrying + read_ahead]  # all at once, as several people would
        for command in commands:
            command.start()
        for command in commands:
            command.join(60)
        assert all(inbox.rcpt_attempts[a] == 1 for a in retrying)  # still waiting for their retry
        out, err = process.communicate(timeout=120)

    assert process.returncode == 0, out + err
    assert set(left_at) == set(retrying + read_ahead)
    for address, when in left_at.items():
        late = [t for t in inbox.accepted_at.get(address, []) if t > when]
        assert late == [], f"{address} was mailed after their unsubscribe returned"
    spared = {a for a in left_at if not inbox.accepted_at.get(a)}
    assert set(retrying) <= spared and len(spared & set(read_ahead)) >= 3  # nobody of these was due yet
    assert inbox.copies() == Counter({a: 1 for a in readers if a not in spared})
    with open_ledger(Site.load(site_dir)) as ledger:
        run = ledger.latest_run(ISSUE_SLUG)
        assert {ledger.state_of(run.id, sid) for sid in _ids(site_dir, spared)} == {"skipped"}
    report = latest_report(site_dir)
    assert report["summary"]["skipped"] == len(spared) and report["status"] == "done"
    assert {row["email"] for row in report["not_sent"] if row["state"] == "skipped"} == spared
    runs = json.loads(newsletter(site_dir, "sends", "--json").stdout)
    assert runs[-1]["skipped"] == len(spared)


def _ids(site_dir, addresses) -> list[int]:
    with open_store(Site.load(site_dir)) as store:
        return [store.get(address).id for address in addresses]


class StallingInbox(Inbox):
    """Holds the reply to one recipient's message for ``stall`` seconds; everyone else is answered at once."""

    def __init__(self, slow_address: str, stall: float, **kwargs):
        super().__init__(**kwargs)
        self.slow_address = slow_address
        self.stall = stall
        self.stalling = threading.Event()

    async def handle_DATA(self, server, session, envelope):
        if self.slow_address in envelope.rcpt_tos:
            self.stalling.set()
            await asyncio.sleep(self.stall)
        return await super().handle_DATA(server, session, envelope)


def test_a_stalled_confirmation_mail_holds_no_lock_a_send_needs(site_dir, monkeypatch):
    signer = "new.signup@example.org"
    site_dir = make_send_site(site_dir)
    readers = add_subscribers(site_dir, 150)
    inbox = StallingInbox(signer, stall=30)
    with smtp_server(inbox) as (host, port):
        settings = smtp_settings(port, SMTP_TIMEOUT=60, SEND_RATE=50)
        write_env(site_dir, **settings)
        live, stop = start_server(site_dir, monkeypatch, SECRET_KEY=SECRET, **{k: str(v) for k, v in settings.items()})
        live.timeout = 90  # the sign-up's answer waits for its (stalled) mail
        try:
            answer: dict = {}
            form = threading.Thread(target=lambda: answer.setdefault("page", live.subscribe(signer)), daemon=True)
            form.start()
            wait_for(inbox.stalling.is_set)  # the sign-up's mail is now stuck at the server
            # Committed before the mail: the person is already pending, and the database is free.
            assert live.store.get(signer).status == "pending"
            started = time.monotonic()
            result = newsletter(site_dir, "send", ISSUE, "--yes", timeout=120)
            took = time.monotonic() - started
            assert form.is_alive(), "the stall should outlast the send"
            form.join(60)
        finally:
            stop()

    assert result.returncode == 0, result.stdout + result.stderr
    assert took < 25  # the send never waited for the stalled mail (150 at 50/s is about 3 s)
    assert Counter(a for a in inbox.copies() if a != signer) == Counter({a: 1 for a in readers})
    assert answer["page"].status == 200
    with open_store(Site.load(site_dir)) as store:
        assert store.get(signer).status == "pending"  # pending until the link is opened
        assert store.confirmations_due() == []  # its mail went out after the stall
    assert inbox.copies()[signer] == 1


def test_a_confirmation_owed_while_the_server_was_down_is_sent_by_resend_confirmations(site_dir, monkeypatch):
    with socket.socket() as probe:  # a port on which nothing listens yet
        probe.bind(("127.0.0.1", 0))
        down_port = probe.getsockname()[1]
    down = smtp_settings(down_port, SMTP_TIMEOUT=3)
    write_env(site_dir, **down)
    live, stop = start_server(site_dir, monkeypatch, SECRET_KEY=SECRET, **{k: str(v) for k, v in down.items()})
    try:
        page = live.subscribe("late.mail@example.org")
        assert page.status == 503 and "could not be sent yet" in page.body
        assert live.store.get("late.mail@example.org").status == "pending"
    finally:
        stop()
    still_down = newsletter(site_dir, "recipients", "resend-confirmations")
    assert still_down.returncode == 1
    assert "late.mail@example.org" in still_down.stderr and "1 still owed" in still_down.stdout

    inbox = Inbox()
    with smtp_server(inbox) as (host, port):
        write_env(site_dir, **smtp_settings(port))
        sent = newsletter(site_dir, "recipients", "resend-confirmations")
        assert sent.returncode == 0, sent.stderr
        assert "1 confirmation e-mail sent, 0 still owed" in sent.stdout
        again = newsletter(site_dir, "recipients", "resend-confirmations")
        assert "0 confirmation e-mails sent" in again.stdout
    assert inbox.copies() == Counter({"late.mail@example.org": 1})
    mail = email.message_from_bytes(inbox.message_for("late.mail@example.org"), policy=email.policy.default)
    path = re.search(r"https?://\S+?(/confirm/\S+)", mail.get_body(("plain",)).get_content()).group(1)
    live, stop = start_server(site_dir, monkeypatch, SECRET_KEY=SECRET)  # the person opens the link from that mail
    try:
        assert live.get(path).status == 200
        assert live.store.get("late.mail@example.org").status == "active"
    finally:
        stop()
