"""``newsletter bounces read``: a real send to the outbox, its messages returned as bounces, read and matched."""

from __future__ import annotations

import hashlib
import json
import mailbox
import shutil
from pathlib import Path

import pytest

from newsletters.bounces.verp import make_return_path
from newsletters.config import Site
from recipients import open_store

from conftest import FIXTURES
from send_fixtures import ISSUE, SECRET, add_subscribers, make_send_site, newsletter

BOUNCES = FIXTURES / "bounces"


def _bounce_of(sent: bytes, recipient: str, *, to: str = "news@larkfield-clinic.example.com") -> bytes:
    """A Postfix-shaped DSN returning the message we really sent (the way a receiving MTA would)."""
    return (
        f"From: MAILER-DAEMON@mx.example.org (Mail Delivery System)\nTo: {to}\n"
        "Subject: Undelivered Mail Returned to Sender\nMIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="XYZ"\n\n'
        "--XYZ\nContent-Type: text/plain\n\nI'm sorry to have to inform you that your message could not\n"
        f"be delivered to one or more recipients.\n\n<{recipient}>: 550 5.1.1 User unknown\n\n"
        "--XYZ\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.org\n\n"
        f"Final-Recipient: rfc822; {recipient}\nAction: failed\nStatus: 5.1.1\n"
        f"Diagnostic-Code: smtp; 550 5.1.1 <{recipient}>: Recipient address rejected: User unknown\n\n"
        "--XYZ\nContent-Type: message/rfc822\n\n"
    ).encode() + sent + b"\n--XYZ--\n"


@pytest.fixture
def sent_site(site_dir):
    """The example site after a real send of the test issue to three subscribers (into the outbox)."""
    site_dir = make_send_site(site_dir)
    add_subscribers(site_dir, 3)
    result = newsletter(site_dir, "send", ISSUE, "--yes")
    assert result.returncode == 0, result.stderr
    return site_dir


def _sent_messages(site_dir: Path) -> dict[str, bytes]:
    """Recipient address -> the bytes our sender handed over."""
    out = {}
    for path in (site_dir / "outbox" / "new").iterdir():
        message = mailbox.MaildirMessage(path.read_bytes())
        out[message["To"].split("<")[-1].strip(">").lower()] = path.read_bytes()
    return out


def _subscriber_id(site_dir: Path, address: str) -> int:
    with open_store(Site.load(site_dir)) as store:
        return store.get(address).id


def _fingerprint(site_dir: Path) -> tuple:
    database = site_dir / "newsletter.db"
    with open_store(Site.load(site_dir)) as store:
        stats = store.stats()
    return stats, hashlib.sha256(database.read_bytes()).hexdigest()


def test_bounces_of_real_sends_in_a_maildir_match_their_run_and_subscriber_and_change_nothing(sent_site, tmp_path):
    sent = _sent_messages(sent_site)
    first, second, third = sorted(sent)
    box = mailbox.Maildir(tmp_path / "bounces", create=True)
    box.add(_bounce_of(sent[first], first))
    verp = make_return_path("bounces@larkfield-clinic.example.com", 1, _subscriber_id(sent_site, second), SECRET)
    box.add(_bounce_of(b"Subject: headers lost\n\n", second, to=verp))  # only the VERP address identifies it
    # A forged bounce: right address, a Message-ID of our shape but not one we made.
    forged = _forge_message_id(sent[third])
    box.add(_bounce_of(forged, third))
    box.add(_bounce_of(b"Subject: x\n\n", third, to="bounces+1-1-aaaaaaaaaaaaaaaa@larkfield-clinic.example.com"))
    before = _fingerprint(sent_site)

    result = newsletter(sent_site, "bounces", "read", str(tmp_path / "bounces"), "--json")
    assert result.returncode == 0, result.stderr
    rows = {(row["recipients"][0], row["verp_token"] != ""): row for row in json.loads(result.stdout)}
    assert len(rows) == 4
    assert all(row["kind"] == "hard" and row["status"] == "5.1.1" for row in rows.values())
    assert (rows[first, False]["run_id"], rows[first, False]["subscriber_id"]) == (1, _subscriber_id(sent_site, first))
    assert (rows[second, True]["run_id"], rows[second, True]["subscriber_id"]) == (1, _subscriber_id(sent_site, second))
    assert rows[third, False]["run_id"] is None, "a Message-ID we did not make matches nothing"
    assert rows[third, True]["run_id"] is None, "a VERP token with a bad signature matches nothing"
    assert _fingerprint(sent_site) == before
    assert len(list((tmp_path / "bounces" / "new").iterdir())) == 4, "messages stay where they are"


def _forge_message_id(sent: bytes) -> bytes:
    head, _, rest = sent.partition(b"Message-ID: <")
    local, _, tail = rest.partition(b"@")
    slug_run, _, digest = local.rpartition(b".")
    return head + b"Message-ID: <" + slug_run + b"." + bytes(reversed(digest)) + b"@" + tail


def test_mbox_and_eml_files_are_read_and_the_table_names_each_message(sent_site, tmp_path):
    mbox = tmp_path / "bounces.mbox"
    box = mailbox.mbox(mbox)
    for name in ("exim_user_unknown.eml", "arf_yahoo.eml", "auto_french_reponse.eml"):
        box.add((BOUNCES / name).read_bytes())
    box.flush()
    eml = tmp_path / "one.eml"
    shutil.copy(BOUNCES / "gmail_over_quota.eml", eml)

    result = newsletter(sent_site, "bounces", "read", str(mbox), str(eml), "--json")
    assert result.returncode == 0, result.stderr
    got = [(row["file"], row["kind"], row["recipients"]) for row in json.loads(result.stdout)]
    assert got == [
        (f"{mbox}#1", "hard", ["leo.marsh@example.org"]),
        (f"{mbox}#2", "complaint", ["nell.t@yahoo.example.com"]),
        (f"{mbox}#3", "auto-reply", ["julie.martin@orange.example.fr"]),
        (str(eml), "soft", ["lucia.f@example.net"]),
    ]
    table = newsletter(sent_site, "bounces", "read", str(mbox), str(eml))
    assert table.returncode == 0, table.stderr
    assert "leo.marsh@example.org" in table.stdout and "mailbox-full" in table.stdout
    assert "1 hard, 1 complaint, 1 auto-reply, 1 soft; 0 matched a message we sent" in table.stdout


def test_a_folder_that_is_not_a_maildir_is_one_clear_error(site_dir, tmp_path):
    (tmp_path / "loose").mkdir()
    result = newsletter(make_send_site(site_dir), "bounces", "read", str(tmp_path / "loose"))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'loose'}: is a folder but not a maildir (no cur/ or new/ inside) "
        "(give the maildir itself (the folder holding cur/ and new/), or the .eml files)"
    ]


def test_reading_without_a_database_creates_none(site_dir):
    site_dir = make_send_site(site_dir)
    result = newsletter(site_dir, "bounces", "read", str(BOUNCES / "qmail_no_mailbox.eml"), "--json")
    assert result.returncode == 0, result.stderr
    (row,) = json.loads(result.stdout)
    assert (row["kind"], row["run_id"]) == ("hard", None)
    assert "not matched: no subscriber database yet" in result.stderr
    assert not (site_dir / "newsletter.db").exists()


def test_a_signed_bounce_for_someone_whose_message_never_left_matches_nothing(site_dir, tmp_path):
    site_dir = make_send_site(site_dir)
    add_subscribers(site_dir, 3)
    result = newsletter(site_dir, "send", ISSUE, "--yes", "--limit", "1")
    assert result.returncode == 3, result.stderr  # two are left: the run is incomplete
    sent = _sent_messages(site_dir)
    (reached,) = sent
    waiting = next(a for a in ("reader0000@example.org", "reader0001@example.org") if a != reached)
    bounces = []
    for address in (reached, waiting):
        verp = make_return_path("bounces@larkfield-clinic.example.com", 1, _subscriber_id(site_dir, address), SECRET)
        bounces.append(tmp_path / f"{address}.eml")
        bounces[-1].write_bytes(_bounce_of(b"Subject: lost\n\n", address, to=verp))

    result = newsletter(site_dir, "bounces", "read", *map(str, bounces), "--json")
    assert result.returncode == 0, result.stderr
    rows = {row["recipients"][0]: row for row in json.loads(result.stdout)}
    assert rows[reached]["subscriber_id"] == _subscriber_id(site_dir, reached)
    assert rows[waiting]["run_id"] is None, "still queued: nothing of ours can have bounced"
