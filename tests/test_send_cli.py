"""``newsletter send`` and ``newsletter sends`` as a user runs them: separate processes, real servers.

The kill tests are the point of the ledger: the sender is SIGKILLed while
messages are in flight, and a resume must neither repeat nor lose anyone.
"""

from __future__ import annotations

import json
import os
import pty
import signal
import subprocess
import sys
import time
from collections import Counter

from tests.send_fixtures import (
    ISSUE,
    ISSUE_SLUG,
    ROOT,
    add_ineligible,
    add_subscribers,
    clean_environment,
    latest_report,
    make_send_site,
    newsletter,
    smtp_settings,
    start_newsletter,
    write_env,
)
from tests.smtp_servers import Inbox, make_certificate, server_tls_context, smtp_server

CONNECTIONS = 3


def wait_for(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the sender")
        time.sleep(0.01)


def kill_mid_send(site_dir, inbox: Inbox) -> None:
    """Start the real command, wait until every connection has a message in flight, SIGKILL it."""
    process = start_newsletter(site_dir, "send", ISSUE, "--yes")
    try:
        wait_for(lambda: inbox.stalled >= CONNECTIONS or process.poll() is not None)
        assert process.poll() is None, process.communicate()
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()
    assert process.returncode == -signal.SIGKILL


def test_killed_half_way_then_resumed_sends_nobody_twice_and_accounts_for_everyone(site_dir):
    site_dir = make_send_site(site_dir)
    readers = add_subscribers(site_dir, 60)
    ineligible = add_ineligible(site_dir)
    # After 25 messages the server holds every reply back (and keeps nothing): the sender is
    # killed with one message in flight on each connection.
    inbox = Inbox(pipelining=True, stall_after=25)
    with smtp_server(inbox) as (host, port):
        write_env(site_dir, **smtp_settings(port, SMTP_CONNECTIONS=CONNECTIONS))
        kill_mid_send(site_dir, inbox)
        received_before = set(inbox.copies())
        inbox.stall_after = None
        inbox.release.set()

        resumed = newsletter(site_dir, "send", ISSUE, "--yes")
        # Everyone else served, but some are of unknown fate: not done, and the exit status says so.
        assert resumed.returncode == 3, resumed.stderr
        report = latest_report(site_dir)
        assert report["status"] == "incomplete" and report["left"] == report["summary"]["unknown"]
        copies = inbox.copies()
        assert max(copies.values()) == 1  # nobody twice
        assert not set(ineligible) & set(copies)  # nobody ineligible, ever
        unknown = {row["email"] for row in report["not_sent"] if row["state"] == "unknown"}
        assert set(readers) - set(copies) == unknown  # everyone not received is accounted for
        assert 1 <= len(unknown) <= CONNECTIONS  # at most one per connection in flight
        assert report["unknown_from_earlier_session"] == len(unknown)
        assert report["summary"]["sent"] == 60 - len(unknown)
        assert len(received_before) == 25
        assert "--resend-unknown" in resumed.stdout

        completed = newsletter(site_dir, "send", ISSUE, "--yes", "--resend-unknown")
        assert completed.returncode == 0, completed.stderr

    assert inbox.copies() == Counter({address: 1 for address in readers})
    final = latest_report(site_dir)
    assert final["summary"] == {"sent": 60, "deferred": 0, "failed": 0, "skipped": 0, "unknown": 0}
    assert final["sessions"] == 3 and final["run"] == report["run"]


def test_an_unknown_message_the_server_did_take_is_not_sent_again_by_a_plain_resume(site_dir):
    site_dir = make_send_site(site_dir)
    readers = add_subscribers(site_dir, 30)
    # This time the server has queued each held message; only its reply is late.
    inbox = Inbox(pipelining=True, stall_after=10, keep_stalled=True)
    with smtp_server(inbox) as (host, port):
        write_env(site_dir, **smtp_settings(port, SMTP_CONNECTIONS=CONNECTIONS))
        kill_mid_send(site_dir, inbox)
        inbox.stall_after = None
        inbox.release.set()
        resumed = newsletter(site_dir, "send", ISSUE, "--yes")
        assert resumed.returncode == 3, resumed.stderr  # the unknown ones are left: incomplete

    report = latest_report(site_dir)
    unknown = {row["email"] for row in report["not_sent"] if row["state"] == "unknown"}
    assert len(unknown) == CONNECTIONS
    assert inbox.copies() == Counter({address: 1 for address in readers})  # complete, and nobody twice
    # Which is why "unknown" is not resent by default: these people already have it.
    assert unknown <= set(inbox.copies())


def test_send_refuses_to_start_without_yes_when_nobody_can_be_asked(site_dir):
    site_dir = make_send_site(site_dir)
    add_subscribers(site_dir, 2)
    inbox = Inbox()
    with smtp_server(inbox) as (host, port):
        write_env(site_dir, **smtp_settings(port))
        result = newsletter(site_dir, "send", ISSUE)
    assert result.returncode == 1
    assert "no terminal to ask on" in result.stderr and "--yes" in result.stderr
    assert inbox.messages == []
    assert "Subject:    Winter skin notes for {first_name}" in result.stdout
    assert "Recipients: 2 eligible, 2 to send now" in result.stdout


def test_send_asks_on_a_terminal_and_no_means_nothing_is_sent(site_dir):
    site_dir = make_send_site(site_dir)
    add_subscribers(site_dir, 2)
    inbox = Inbox()
    with smtp_server(inbox) as (host, port):
        write_env(site_dir, **smtp_settings(port))
        controller, terminal = pty.openpty()
        process = subprocess.Popen(
            [sys.executable, "-m", "newsletters", "--site", str(site_dir), "send", ISSUE],
            stdin=terminal, stdout=terminal, stderr=terminal, env=clean_environment(),
        )
        os.close(terminal)
        output = b""
        try:
            while b"Send to 2 subscribers?" not in output:
                output += os.read(controller, 4096)
            os.write(controller, b"n\n")
            process.wait(timeout=60)
            try:
                while chunk := os.read(controller, 4096):
                    output += chunk
            except OSError:
                pass
        finally:
            if process.poll() is None:
                process.kill()
            os.close(controller)
    assert process.returncode == 1
    assert b"Nothing sent." in output
    assert inbox.messages == []
    assert newsletter(site_dir, "sends").stdout.strip() == "No sends yet."


def test_outbox_send_prints_where_mail_went_the_summary_and_sends_lists_the_run(site_dir):
    site_dir = make_send_site(site_dir)
    add_subscribers(site_dir, 3)
    result = newsletter(site_dir, "send", ISSUE, "--yes")
    assert result.returncode == 0, result.stderr
    assert "No SMTP_HOST is set" in result.stdout
    assert f"Run #1 of {ISSUE_SLUG}: done" in result.stdout
    assert len(list((site_dir / "outbox" / "new").iterdir())) == 3
    summary = [line.split("│") for line in result.stdout.splitlines() if "│" in line]
    rows = {cells[1].strip(): cells[2].strip() for cells in summary if len(cells) > 3}
    assert rows["sent (server accepted)"] == "3"
    assert rows["unknown (no reply recorded)"] == "0"
    assert f"reports/send-{ISSUE_SLUG}-run1.json" in result.stdout

    listing = newsletter(site_dir, "sends", "--json")
    (run,) = json.loads(listing.stdout)
    assert (run["run"], run["issue"], run["status"], run["sent"], run["unknown"]) == (1, ISSUE_SLUG, "done", 3, 0)
    table = newsletter(site_dir, "sends").stdout
    assert ISSUE_SLUG in table and "done" in table


def test_send_py_script_is_the_same_command(site_dir):
    site_dir = make_send_site(site_dir)
    add_subscribers(site_dir, 1)
    result = subprocess.run(
        [sys.executable, str(ROOT / "send.py"), ISSUE, "--yes"],
        cwd=site_dir, env=clean_environment(), capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "sent (server accepted)" in result.stdout


def test_untrusted_certificate_stops_the_send_with_a_clear_message_until_trusted(site_dir, tmp_path):
    site_dir = make_send_site(site_dir)
    readers = add_subscribers(site_dir, 2)
    cert, key = make_certificate(tmp_path / "tls")
    inbox = Inbox()
    with smtp_server(inbox, tls_context=server_tls_context(cert, key), require_starttls=True) as (host, port):
        write_env(site_dir, **smtp_settings(port, SMTP_SECURITY="starttls"))
        refused = newsletter(site_dir, "send", ISSUE, "--yes")
        write_env(site_dir, **smtp_settings(port, SMTP_SECURITY="starttls", SMTP_CA_FILE=cert))
        trusted = newsletter(site_dir, "send", ISSUE, "--yes")
    assert refused.returncode == 1
    assert "certificate is not trusted" in refused.stderr and "SMTP_CA_FILE" in refused.stderr
    assert trusted.returncode == 0, trusted.stderr
    assert inbox.copies() == Counter({address: 1 for address in readers})


def test_test_to_on_the_command_line(site_dir):
    site_dir = make_send_site(site_dir)
    inbox = Inbox()
    with smtp_server(inbox) as (host, port):
        write_env(site_dir, **smtp_settings(port))
        result = newsletter(site_dir, "send", ISSUE, "--test-to", "a@example.net", "--test-to", "b@example.net")
    assert result.returncode == 0, result.stderr
    assert inbox.copies() == Counter({"a@example.net": 1, "b@example.net": 1})
    assert "sent a@example.net" in result.stdout


def test_ctrl_c_on_the_command_line_finishes_in_flight_messages_and_says_how_to_resume(site_dir):
    site_dir = make_send_site(site_dir)
    readers = add_subscribers(site_dir, 60)
    inbox = Inbox(pipelining=True)
    with smtp_server(inbox) as (host, port):
        write_env(site_dir, **smtp_settings(port, SEND_RATE=60))
        process = start_newsletter(site_dir, "send", ISSUE, "--yes")
        wait_for(lambda: len(inbox.messages) >= 10 or process.poll() is not None)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
        report = latest_report(site_dir)
        resumed = newsletter(site_dir, "send", ISSUE, "--yes")

    assert process.returncode == 130, err
    assert "Stopped: the messages in flight were finished and recorded." in out
    assert f"run `newsletter send {ISSUE}` again to resume" in out
    assert report["status"] == "interrupted" and report["summary"]["unknown"] == 0
    assert 10 <= report["summary"]["sent"] < 60
    assert resumed.returncode == 0, resumed.stderr
    assert inbox.copies() == Counter({address: 1 for address in readers})


def test_send_to_an_empty_list_says_there_is_nobody_yet_and_how_to_import(site_dir):
    site_dir = make_send_site(site_dir)
    result = newsletter(site_dir, "send", ISSUE, "--yes")
    assert result.returncode == 0, result.stderr
    out = " ".join(result.stdout.split())
    assert "Nobody to send to yet" in out
    assert "newsletter recipients import subscribers.csv" in out
    assert "every eligible subscriber has been handled" not in out
    assert not (site_dir / "outbox").exists() or not any((site_dir / "outbox" / "new").iterdir())


def test_send_names_the_warnings_it_counts(site_dir):
    site_dir = make_send_site(site_dir)
    issue = site_dir / ISSUE
    issue.write_text(issue.read_text(encoding="utf-8").replace('preheader = "Daylight, SPF and you"\n', ""), encoding="utf-8")
    add_subscribers(site_dir, 1)
    result = newsletter(site_dir, "send", ISSUE, "--yes")
    assert result.returncode == 0, result.stderr
    assert "Checks:     0 errors, 1 warning" in result.stdout
    assert "  warning preheader-missing (preheader): the issue file has no preheader" in result.stdout
