"""Applying what comes back after a real send: VERP return paths, ``bounces process``, the soft-bounce rule,
the next send skipping whoever left, forged bounces removing nobody, and an operator's undo.

Everything is real: the subscriber store (SQLite file), the built issue, the SMTP client and an aiosmtpd
server on 127.0.0.1; the returned messages are built from the messages that server really received.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from newsletters.bounces.verp import read_return_path
from newsletters.cli import cli
from newsletters.config import Site
from newsletters.delivery import prepare_send
from recipients import open_store
from tests import returned_mail
from tests.send_fixtures import ISSUE, SECRET, SENDER, add_subscribers, make_send_site, smtp_settings
from tests.smtp_servers import Inbox, smtp_server

BOUNCE_ADDRESS = "bounces@larkfield-clinic.example.com"



@pytest.fixture
def smtp():
    inbox = Inbox()
    with smtp_server(inbox) as (_host, port):
        yield inbox, port


def send(site_dir, inbox, **options) -> dict[str, object]:
    """A real send of the test issue; returns recipient address -> the message the server received."""
    before = len(inbox.messages)
    with prepare_send(Site.load(site_dir), site_dir / ISSUE, run_checks=False, **options) as plan:
        plan.execute(handle_signals=False)
    return {m.rcpt_tos[0]: m for m in inbox.messages[before:]}


def run(site_dir, *args: str):
    result = CliRunner().invoke(cli, ["--site", str(site_dir), *args])
    assert result.exit_code == 0, result.output
    return result


def status(site_dir, address: str) -> str:
    with open_store(Site.load(site_dir)) as store:
        return store.get(address).status


def ledger_events(site_dir, address: str) -> list:
    with open_store(Site.load(site_dir)) as store:
        return store.ledger(store.get(address).id)


def files(folder) -> list[str]:
    return [str(path) for path in sorted(folder.iterdir())]


def write(folder, name: str, raw: bytes):
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_bytes(raw)
    return path


@pytest.fixture
def verp_site(site_dir, smtp):
    """Six subscribers, a soft-bounce limit of 2 sends out of 3, BOUNCE_ADDRESS set, SMTP to aiosmtpd."""
    inbox, port = smtp
    site_dir = make_send_site(site_dir, **smtp_settings(port, BOUNCE_ADDRESS=BOUNCE_ADDRESS))
    with (site_dir / "newsletter.toml").open("a") as toml:
        toml.write("\n[bounces]\nsoft_limit = 2\nsoft_issues = 3\n")
    readers = add_subscribers(site_dir, 6)
    return site_dir, inbox, readers


def test_each_message_leaves_with_its_own_signed_return_path(verp_site):
    site_dir, inbox, readers = verp_site
    sent = send(site_dir, inbox)

    with open_store(Site.load(site_dir)) as store:
        ids = {address: store.get(address).id for address in readers}
    assert sorted(sent) == sorted(readers)
    for address, message in sent.items():
        assert message.mail_from.startswith("bounces+") and message.mail_from.endswith("@larkfield-clinic.example.com")
        assert read_return_path(message.mail_from, SECRET) == (1, ids[address])
        assert b"From: " in message.content and SENDER.encode() in message.content  # From: unchanged


def test_without_bounce_address_the_envelope_sender_is_the_sender(site_dir, smtp):
    inbox, port = smtp
    site_dir = make_send_site(site_dir, **smtp_settings(port))
    add_subscribers(site_dir, 2)

    sent = send(site_dir, inbox)

    assert {m.mail_from for m in sent.values()} == {SENDER}


def test_a_malformed_bounce_address_stops_the_send_before_anything_leaves(site_dir, smtp):
    inbox, port = smtp
    site_dir = make_send_site(site_dir, **smtp_settings(port, BOUNCE_ADDRESS="bounces+x@example.com"))
    add_subscribers(site_dir, 2)

    result = CliRunner().invoke(cli, ["--site", str(site_dir), "send", ISSUE, "--yes"])

    assert result.exit_code == 1
    assert "BOUNCE_ADDRESS" in result.output and inbox.messages == []


def test_the_plan_names_the_return_path(verp_site):
    site_dir, inbox, _readers = verp_site

    output = run(site_dir, "send", ISSUE, "--yes").output

    assert "Bounces:    to bounces+TOKEN@larkfield-clinic.example.com" in output
    assert len(inbox.messages) == 6


def test_processed_bounces_take_people_off_and_the_next_send_skips_them(verp_site, tmp_path):
    site_dir, inbox, readers = verp_site
    gone_hard, complainer, full_mailbox, away, forged_target, untouched = readers
    sent = send(site_dir, inbox)
    returned = tmp_path / "returned"
    write(returned, "hard.eml", returned_mail.hard(sent[gone_hard]))
    write(returned, "complaint.eml", returned_mail.complaint(sent[complainer]))
    write(returned, "soft.eml", returned_mail.soft(sent[full_mailbox]))
    write(returned, "away.eml", returned_mail.auto_reply(sent[away]))
    write(returned, "forged.eml", returned_mail.forged_hard(
        forged_target, to="bounces+1-6-aaaaaaaaaaaaaaaa@larkfield-clinic.example.com"))

    rows = json.loads(run(site_dir, "bounces", "process", *files(returned), "--json").output)

    outcomes = {row["evidence"].rsplit("/", 1)[-1]: row["outcome"] for row in rows}
    assert outcomes == {"hard.eml": "bounced", "complaint.eml": "complained", "soft.eml": "counted",
                        "away.eml": "ignored", "forged.eml": "unmatched"}
    assert [status(site_dir, a) for a in readers] == ["bounced", "complained", "active", "active", "active", "active"]
    bounce_event = ledger_events(site_dir, gone_hard)[-1]
    assert bounce_event.event == "bounced"
    assert "5.1.1" in bounce_event.detail and "bounce event #" in bounce_event.detail and "hard.eml" in bounce_event.detail

    # The same messages again (a second run, or the same file copied): nothing changes.
    events_before = [len(ledger_events(site_dir, a)) for a in readers]
    again = json.loads(run(site_dir, "bounces", "process", *files(returned), "--json").output)
    assert {row["outcome"] for row in again} == {"duplicate"}
    assert [len(ledger_events(site_dir, a)) for a in readers] == events_before

    second = send(site_dir, inbox, new_run=True)
    assert sorted(second) == sorted([full_mailbox, away, forged_target, untouched])


def test_soft_bounces_take_someone_off_only_at_the_limit(verp_site, tmp_path):
    site_dir, inbox, readers = verp_site
    full_mailbox = readers[2]

    first = send(site_dir, inbox)
    # The receiving server's warnings and its final notice about the same message count as one soft send.
    write(tmp_path / "one", "warning.eml", returned_mail.soft(first[full_mailbox]))
    write(tmp_path / "one", "again.eml", returned_mail.dsn(first[full_mailbox], "4.2.2", "452 4.2.2 over quota (2)"))
    run(site_dir, "bounces", "process", *files(tmp_path / "one"))
    assert status(site_dir, full_mailbox) == "active"

    second = send(site_dir, inbox, new_run=True)
    assert full_mailbox in second
    write(tmp_path / "two", "soft.eml", returned_mail.soft(second[full_mailbox]))
    rows = json.loads(run(site_dir, "bounces", "process", *files(tmp_path / "two"), "--json").output)

    assert [row["outcome"] for row in rows] == ["bounced"]
    assert status(site_dir, full_mailbox) == "bounced"
    assert "2 of the last 3 sends came back soft" in ledger_events(site_dir, full_mailbox)[-1].detail
    assert full_mailbox not in send(site_dir, inbox, new_run=True)


def test_an_operator_undoes_a_wrong_bounce_with_a_ledger_event(verp_site, tmp_path):
    site_dir, inbox, readers = verp_site
    sent = send(site_dir, inbox)
    write(tmp_path / "r", "hard.eml", returned_mail.hard(sent[readers[0]]))
    run(site_dir, "bounces", "process", *files(tmp_path / "r"))
    assert status(site_dir, readers[0]) == "bounced"

    result = run(site_dir, "recipients", "reinstate", readers[0], "--reason", "their server misreported the address")

    assert "active again" in result.output
    assert status(site_dir, readers[0]) == "active"
    undo = ledger_events(site_dir, readers[0])[-1]
    assert (undo.event, undo.method, undo.detail) == ("subscribed", "admin", "their server misreported the address")
    assert [e.event for e in ledger_events(site_dir, readers[0])] == ["subscribed", "bounced", "subscribed"]
    assert readers[0] in send(site_dir, inbox, new_run=True)


def test_reinstate_refuses_someone_who_unsubscribed_themselves(verp_site):
    site_dir, _inbox, readers = verp_site
    with open_store(Site.load(site_dir)) as store:
        store.unsubscribe_email(readers[0])

    result = CliRunner().invoke(cli, ["--site", str(site_dir), "recipients", "reinstate", readers[0], "--reason", "x"])

    assert result.exit_code == 1
    assert "only a bounced or complained subscriber can be reinstated" in result.output
    assert status(site_dir, readers[0]) == "unsubscribed"


def test_sends_and_the_list_show_counts_rates_and_warnings(verp_site, tmp_path):
    site_dir, inbox, readers = verp_site
    sent = send(site_dir, inbox)
    write(tmp_path / "r", "hard.eml", returned_mail.hard(sent[readers[0]]))
    write(tmp_path / "r", "complaint.eml", returned_mail.complaint(sent[readers[1]]))
    write(tmp_path / "r", "soft.eml", returned_mail.soft(sent[readers[2]]))
    run(site_dir, "bounces", "process", *files(tmp_path / "r"))

    (row,) = json.loads(run(site_dir, "sends", "--json").output)
    table = run(site_dir, "sends").output
    listed = json.loads(run(site_dir, "bounces", "list", "--json").output)

    assert (row["sent"], row["hard"], row["soft"], row["complaint"]) == (6, 1, 1, 1)
    assert row["hard_rate"] == pytest.approx(1 / 6) and row["complaint_rate"] == pytest.approx(1 / 6)
    assert len(row["warnings"]) == 2
    assert "1 (16.67%)" in table and "complaint rate 16.67% reaches 0.1%" in table
    assert "hard-bounce rate 16.67% reaches 2%" in table
    assert [(e["kind"], e["action"], e["email"], e["run_id"]) for e in listed] == [
        ("soft", "counted", readers[2], 1), ("hard", "bounced", readers[0], 1),
        ("complaint", "complained", readers[1], 1),
    ]  # newest first; the files were processed in name order


def test_the_run_report_of_the_next_session_carries_the_counts(verp_site, tmp_path):
    site_dir, inbox, readers = verp_site
    sent = send(site_dir, inbox, limit=3)
    write(tmp_path / "r", "hard.eml", returned_mail.hard(sent[readers[0]]))
    run(site_dir, "bounces", "process", *files(tmp_path / "r"))

    send(site_dir, inbox)  # resumes run 1 for the other three
    report = json.loads(next((site_dir / "reports").glob("send-*-run1.json")).read_text())

    assert report["bounces"]["hard"] == 1
    assert report["bounces"]["hard_rate"] == pytest.approx(1 / 6)
    assert any("hard-bounce rate" in w for w in report["bounces"]["warnings"])
