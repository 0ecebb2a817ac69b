"""Issue 9: what a send says about itself is true, it backs off as a whole, and it stops on bad settings.

Real aiosmtpd servers on 127.0.0.1 and the real ``newsletter`` command in its own
process: a storm of 451s, a server that never accepts, Ctrl-C twice, a database
on a full disk, two site folders on one database, links that would be dead.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from collections import Counter

import pytest

from newsletters.config import Site
from newsletters.delivery import open_ledger, prepare_send
from newsletters.errors import DeliveryError
from tests.send_fixtures import (
    ISSUE, add_subscribers, latest_report, make_send_site, newsletter, smtp_settings, start_newsletter,
    write_env,
)
from tests.smtp_servers import Inbox, smtp_server



class StormInbox(Inbox):
    """Answers 451 to every recipient until ``calm_at`` (``None``: for ever), then accepts; counts attempts."""

    def __init__(self, storm_seconds: float | None, **kwargs):
        super().__init__(**kwargs)
        self.calm_at = None if storm_seconds is None else time.monotonic() + storm_seconds
        self.refused = 0
        self.attempts_in_storm = 0

    def storming(self) -> bool:
        return self.calm_at is None or time.monotonic() < self.calm_at

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.storming():
            self.attempts_in_storm += 1
            self.refused += 1
            return "451 4.7.1 try again later"
        return await super().handle_RCPT(server, session, envelope, address, rcpt_options)


def test_a_storm_of_451s_pauses_the_whole_send_and_then_delivers_everyone_once(site_dir):
    site_dir = make_send_site(site_dir)
    readers = add_subscribers(site_dir, 60)
    storm = StormInbox(storm_seconds=15)
    with smtp_server(storm) as (host, port):
        write_env(site_dir, **smtp_settings(port, SEND_RETRY_DELAY=1, SEND_MAX_ATTEMPTS=10, SEND_PAUSE_MAX=4))
        result = newsletter(site_dir, "send", ISSUE, "--yes", timeout=120)

    assert result.returncode == 0, result.stdout + result.stderr
    # Without the back-off every address is tried, and retried, at full speed (hundreds of RCPTs).
    assert storm.attempts_in_storm <= 60, storm.attempts_in_storm
    assert storm.copies() == Counter({address: 1 for address in readers})
    report = latest_report(site_dir)
    assert report["status"] == "done" and report["left"] == 0
    assert report["this_session"]["pauses"] >= 3
    assert "paused" in result.stdout  # the log says why it went quiet


def test_a_server_that_never_accepts_ends_non_zero_with_nobody_served(site_dir):
    site_dir = make_send_site(site_dir)
    readers = add_subscribers(site_dir, 20)
    wall = StormInbox(storm_seconds=None)
    with smtp_server(wall) as (host, port):
        write_env(site_dir, **smtp_settings(port, SEND_RETRY_DELAY=0.2, SEND_PAUSE_MAX=1, SEND_PAUSE_LIMIT=3))
        result = newsletter(site_dir, "send", ISSUE, "--yes", timeout=120)

    assert result.returncode == 3, result.stdout + result.stderr  # documented: someone is left
    assert wall.copies() == Counter()
    report = latest_report(site_dir)
    assert report["status"] == "incomplete" and report["left"] == len(readers)
    assert report["summary"]["sent"] == 0 and report["summary"]["deferred"] >= 1
    assert any("run `newsletter send" in hint for hint in report["next_steps"])
    runs = json.loads(newsletter(site_dir, "sends", "--json").stdout)
    assert runs[-1]["status"] == "incomplete" and runs[-1]["queued"] + runs[-1]["deferred"] == len(readers)


def test_ctrl_c_twice_leaves_at_once_but_marks_the_run_and_writes_the_report(site_dir):
    site_dir = make_send_site(site_dir)
    add_subscribers(site_dir, 60)
    # After 5 messages the server holds every reply: the first Ctrl-C would wait for them for ever.
    inbox = Inbox(pipelining=True, stall_after=5)
    with smtp_server(inbox) as (host, port):
        write_env(site_dir, **smtp_settings(port, SMTP_TIMEOUT=60))
        process = start_newsletter(site_dir, "send", ISSUE, "--yes")
        deadline = time.monotonic() + 60
        while inbox.stalled < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        process.send_signal(signal.SIGINT)
        time.sleep(0.3)
        assert process.poll() is None  # once: it waits for the messages in flight
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=20)  # twice: it leaves without them

    assert process.returncode == 130, out + err
    assert "Traceback" not in err
    report = latest_report(site_dir)
    assert report["status"] == "interrupted" and report["left"] == 60 - 5
    assert report["summary"]["unknown"] == 3  # the three held in flight: no reply recorded
    with open_ledger(Site.load(site_dir)) as ledger:
        assert ledger.latest_run("2026-11-send-test").status == "interrupted"


def test_placeholder_public_url_is_refused_before_any_connection_when_mail_leaves_the_machine(site_dir):
    site_dir = make_send_site(site_dir)
    add_subscribers(site_dir, 2)
    # Not a loopback host, and a name that can never resolve (RFC 6761): no traffic leaves this machine.
    write_env(site_dir, SMTP_HOST="smtp.relay-of-the-clinic.invalid", SMTP_PORT=587,
              PUBLIC_URL="https://news.example.com")
    result = newsletter(site_dir, "send", ISSUE, "--yes")
    assert result.returncode == 1
    (line,) = [l for l in result.stderr.splitlines() if l.strip()]
    assert line.startswith("error: PUBLIC_URL:") and "news.example.com" in line
    assert not (site_dir / "reports").exists() or not list((site_dir / "reports").glob("send-*.json"))
    check = newsletter(site_dir, "check", ISSUE)
    assert "settings-dead-links" in check.stdout and check.returncode == 1


def test_the_same_settings_are_fine_while_mail_stays_on_this_machine(site_dir):
    site_dir = make_send_site(site_dir)
    readers = add_subscribers(site_dir, 2)
    inbox = Inbox()
    with smtp_server(inbox) as (host, port):
        write_env(site_dir, **smtp_settings(port), PUBLIC_URL="https://news.example.com")
        result = newsletter(site_dir, "send", ISSUE, "--yes")
    assert result.returncode == 0, result.stderr
    assert inbox.copies() == Counter({address: 1 for address in readers})


def test_a_second_site_folder_on_the_same_database_cannot_relabel_a_live_senders_messages(site_dir, tmp_path):
    site_dir = make_send_site(site_dir)
    add_subscribers(site_dir, 3)
    other = tmp_path / "second-site"
    other.mkdir()
    for name in ("newsletter.toml",):
        (other / name).write_text((site_dir / name).read_text())
    make_send_site(other)
    database = f"sqlite:///{site_dir / 'newsletter.db'}"
    write_env(other, DATABASE_URL=database)
    with prepare_send(Site.load(site_dir), site_dir / ISSUE):
        with pytest.raises(DeliveryError, match="another send is running on this database"):
            prepare_send(Site.load(other), other / ISSUE)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs to fill up needs root (CI runs as root)")
def test_a_full_disk_is_said_in_one_line_and_the_send_resumes_once_space_is_freed(site_dir, tmp_path):
    disk = tmp_path / "small-disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(disk)], check=True)
    try:
        site_dir = make_send_site(site_dir)
        database = disk / "newsletter.db"
        write_env(site_dir, DATABASE_URL=f"sqlite:///{database}")
        readers = add_subscribers(site_dir, 300)
        with sqlite3.connect(database) as db:  # an empty WAL: the next write must grow a file
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        filler = disk / "filler"
        # Unbuffered: a buffered file keeps the tail of a partial write and fails again when closed.
        with open(filler, "wb", buffering=0) as handle:  # take every byte the disk has left
            try:
                while True:
                    handle.write(b"\0" * 65536)
                    handle.flush()
            except OSError:
                pass
        inbox = Inbox()
        with smtp_server(inbox) as (host, port):
            write_env(site_dir, DATABASE_URL=f"sqlite:///{database}", **smtp_settings(port))
            for _attempt in range(2):  # the first failure, then a resume while the disk is still full
                full = newsletter(site_dir, "send", ISSUE, "--yes")
                assert full.returncode == 1, full.stdout + full.stderr
                assert "Traceback" not in full.stderr
                lines = [l for l in full.stderr.splitlines() if l.strip()]
                assert len(lines) == 1 and f"the disk holding {database} is full" in lines[0], full.stderr
                assert lines[0].count("again to resume") == 1, full.stderr  # one hint, not the error's and the CLI's
            assert inbox.messages == []  # no claim could be written, so nothing was handed over
            filler.unlink()
            resumed = newsletter(site_dir, "send", ISSUE, "--yes")
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        assert inbox.copies() == Counter({address: 1 for address in readers})
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)
