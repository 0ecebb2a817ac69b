"""Issue 8: the confirmation mail is sent after the sign-up commits, never inside a transaction.

The web app (``create_app`` served over real HTTP by ``make_web_server`` in a
thread of the test) reads the site's ``.env``, which points at a mail server
that stalls 30 s on the confirmation mail; a ``newsletter send`` runs meanwhile
in its own process, its environment pointing at a fast server (the environment
wins over ``.env``). When the sign-up held the database's write lock while it
mailed, the send's ledger waited for it and gave up with "database is locked".

And when the mail server is down, the sign-up is kept, pending, with its mail
owed; ``newsletter recipients resend-confirmations`` sends it once the server
is back, and the link in it confirms the person.
"""

from __future__ import annotations

import email
import http.client
import re
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from email import policy
from typing import Iterator
from urllib.parse import urlencode

from newsletters.config import Site
from newsletters.web import create_app
from newsletters.web.serve import make_web_server
from recipients import Store, open_store
from tests.send_fixtures import (
    ISSUE,
    add_subscribers,
    clean_environment,
    latest_report,
    make_send_site,
    newsletter,
    smtp_settings,
    write_env,
)
from tests.smtp_servers import Inbox, StallingInbox, smtp_server

NEWCOMER = "nell.newcomer@example.org"
STALL_SECONDS = 30  # what the issue asks for: longer than SQLite's 10 s busy timeout, three times over
READERS = 120


@dataclass
class Reply:
    status: int
    body: str


@dataclass
class Web:
    base: str
    site: Site
    store: Store  # the app's own store: reading through it takes no lock

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None) -> Reply:
        conn = http.client.HTTPConnection("127.0.0.1", int(self.base.rpartition(":")[2]), timeout=120)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            reply = conn.getresponse()
            return Reply(reply.status, reply.read().decode("utf-8"))
        finally:
            conn.close()

    def subscribe(self, address: str, first_name: str) -> Reply:
        """What a person does: open the form, fill it in, send it (with the form's signed token)."""
        form = self.request("GET", "/subscribe").body
        token = re.search(r'name="form_token" value="([^"]+)"', form).group(1)
        fields = {"email": address, "first_name": first_name, "consent": "yes", "adult": "yes",
                  "form_token": token, "website": ""}
        return self.request("POST", "/subscribe", urlencode(fields).encode(),
                            {"Content-Type": "application/x-www-form-urlencoded"})


@contextmanager
def web_app(site_dir, monkeypatch, **settings) -> Iterator[Web]:
    """The public pages over HTTP on 127.0.0.1, the site's .env holding ``settings`` and the server's own URL."""
    app = {}
    server = make_web_server(Site.load(site_dir), "127.0.0.1", 0, app=lambda environ, start: app["wsgi"](environ, start))
    base = f"http://127.0.0.1:{server.server_port}"
    write_env(site_dir, PUBLIC_URL=base, **settings)  # links in the mail lead back to this server
    site = Site.load(site_dir)
    store = open_store(site)
    app["wsgi"] = create_app(site, store=store)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield Web(base, site, store)
    finally:
        server.shutdown()
        thread.join(10)
        server.server_close()
        store.close()


def wait_for(condition, what: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def start_send(site_dir, smtp_port: int) -> subprocess.Popen:
    """``newsletter send ISSUE --yes`` in its own process, its environment naming the fast server."""
    env = clean_environment()
    env.update({k: str(v) for k, v in smtp_settings(smtp_port, SEND_RATE=10).items()})
    return subprocess.Popen(
        [sys.executable, "-m", "newsletters", "--site", str(site_dir), "send", ISSUE, "--yes"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
    )


def confirm_path(message: bytes, base: str) -> str:
    text = email.message_from_bytes(message, policy=policy.default).get_body(("plain",)).get_content()
    return re.search(rf"{re.escape(base)}(/confirm/\S+)", text).group(1)


def test_a_send_runs_normally_while_the_mail_server_stalls_30s_on_a_confirmation(site_dir, monkeypatch):
    site_dir = make_send_site(site_dir)
    readers = add_subscribers(site_dir, READERS)
    fast = Inbox()
    stalling = StallingInbox(address=NEWCOMER, seconds=STALL_SECONDS)
    with smtp_server(fast) as (_, fast_port), smtp_server(stalling) as (_, slow_port):
        with web_app(site_dir, monkeypatch, **smtp_settings(slow_port, SMTP_TIMEOUT=STALL_SECONDS * 3)) as web:
            send = start_send(site_dir, fast_port)  # 120 messages at 10/s: about 12 s
            try:
                wait_for(lambda: len(fast.messages) >= 5 or send.poll() is not None, "the send to be under way")
                assert send.poll() is None, send.communicate()
                with ThreadPoolExecutor(max_workers=1) as pool:
                    posted = pool.submit(web.subscribe, NEWCOMER, "Nell")
                    wait_for(lambda: stalling.stall_began.is_set() or posted.done(), "the confirmation mail")
                    assert not posted.done(), posted.result()
                    # Committed before the mail: another connection sees it while the server stalls.
                    assert web.store.get(NEWCOMER).status == "pending"
                    assert [due.email for due in web.store.confirmations_due()] == [NEWCOMER]
                    assert stalling.messages == []  # the mail is still being handed over
                    stdout, stderr = send.communicate(timeout=180)
                    page = posted.result(timeout=STALL_SECONDS * 3)
            finally:
                if send.poll() is None:
                    send.kill()
                    send.communicate()

    assert send.returncode == 0, stderr
    assert fast.copies() == {address: 1 for address in readers}
    assert latest_report(site_dir)["summary"] == {"sent": READERS, "deferred": 0, "failed": 0, "skipped": 0,
                                                   "unknown": 0}
    [mailed_at] = stalling.accepted_at[NEWCOMER]
    during_stall = [t for address in readers for t in fast.accepted_at[address] if stalling.stall_started < t < mailed_at]
    assert during_stall  # the send's ledger kept writing while the confirmation mail was stalled

    assert page.status == 200 and "check your inbox" in page.body.lower()
    assert list(stalling.copies()) == [NEWCOMER]
    with open_store(web.site) as store:
        assert store.get(NEWCOMER).status == "pending"  # until they open the link
        assert store.confirmations_due() == []


def test_when_the_mail_server_is_down_the_owed_confirmation_is_sent_by_resend_confirmations(site_dir, monkeypatch):
    people = {NEWCOMER: "Nell", "omar.other@example.org": "Omar"}
    with socket.socket() as reserved:  # bound but not listening: connections to it are refused
        reserved.bind(("127.0.0.1", 0))
        port = reserved.getsockname()[1]
        with web_app(site_dir, monkeypatch, **smtp_settings(port)) as web:
            for address, first_name in people.items():
                page = web.subscribe(address, first_name)
                assert page.status == 503 and "could not be sent yet" in page.body
            assert [web.store.get(address).status for address in people] == ["pending", "pending"]
            assert [due.email for due in web.store.confirmations_due()] == list(people)

            still_down = newsletter(site_dir, "recipients", "resend-confirmations")
            assert still_down.returncode == 1
            [line] = still_down.stderr.splitlines()  # one line, naming the server, what is owed, what to do
            assert line.startswith(f"error: 127.0.0.1:{port}: ") and "Connection refused" in line
            assert "0 sent, 2 still owed" in line and "run `newsletter recipients resend-confirmations` again" in line
            assert [due.email for due in web.store.confirmations_due()] == list(people)

            reserved.close()
            inbox = Inbox()
            with smtp_server(inbox, port=port):
                back_up = newsletter(site_dir, "recipients", "resend-confirmations")
            assert back_up.returncode == 0, back_up.stderr
            assert "2 confirmation e-mails sent, 0 still owed" in back_up.stdout
            assert web.store.confirmations_due() == []
            assert sorted(inbox.copies()) == sorted(people)

            confirmed = web.request("GET", confirm_path(inbox.message_for(NEWCOMER), web.base))
            assert confirmed.status == 200 and "You are subscribed" in confirmed.body
            assert [web.store.get(address).status for address in people] == ["active", "pending"]
