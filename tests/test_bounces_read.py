"""Reading returned messages: our fixtures in the shapes of 20+ MTAs, per family, and hostile input.

The fixtures (tests/fixtures/bounces/*.eml) and their expected readings
(expected.toml) are our own writing; make_fixtures.py there writes them.
"""

from __future__ import annotations

import random
import tomllib
from collections import defaultdict

import pytest

from newsletters.bounces.reader import read_message
from newsletters.bounces.reading import KINDS
from newsletters.bounces.accuracy import score
from newsletters.bounces.classify import classify
from newsletters.bounces.mime import MAX_MESSAGE_BYTES

from conftest import FIXTURES

BOUNCES = FIXTURES / "bounces"
EXPECTED = tomllib.loads((BOUNCES / "expected.toml").read_text(encoding="utf-8"))
READINGS = {name: read_message((BOUNCES / name).read_bytes()) for name in EXPECTED}
FAMILIES: dict[str, list[str]] = defaultdict(list)
for _name, _expected in EXPECTED.items():
    FAMILIES[_expected["mta"]].append(_name)


def test_the_fixture_set_is_what_the_issue_asks_for():
    on_disk = {path.name for path in BOUNCES.glob("*.eml")}
    assert on_disk == set(EXPECTED), "every .eml has an expected reading and every reading a file"
    assert len(on_disk) >= 70
    assert len(set(FAMILIES) - {"none"}) >= 15
    kinds = {expected["kind"] for expected in EXPECTED.values()}
    assert kinds == set(KINDS)


def test_accuracy_over_all_fixtures_meets_the_bar():
    accuracy = score([(EXPECTED[name], READINGS[name]) for name in EXPECTED])
    report = "\n".join(accuracy.lines())
    assert accuracy.recipient_found >= 0.95, report
    assert accuracy.hard_as_hard >= 0.90, report
    assert accuracy.soft_as_hard <= 0.03, report
    assert accuracy.complaints_found >= 0.90, report
    assert accuracy.auto_replies_as_hard == 0, report


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_each_family_reads_kind_recipients_status_and_reason(family):
    wrong = []
    for name in FAMILIES[family]:
        expected, reading = EXPECTED[name], READINGS[name]
        got = dict(kind=reading.kind, recipients=sorted(reading.recipients), status=reading.status, reason=reading.reason)
        want = dict(kind=expected["kind"], recipients=sorted(expected["recipients"]), status=expected["status"],
                    reason=expected["reason"])
        if got != want:
            wrong.append(f"{name}: got {got}, expected {want}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("name", sorted(n for n, e in EXPECTED.items() if "message_id" in e or "verp" in e))
def test_what_we_sent_is_found_in_the_returned_part(name):
    expected, ids = EXPECTED[name], READINGS[name].ids
    if "message_id" in expected:
        assert expected["message_id"] in ids.message_ids
    if "verp" in expected:
        assert ids.verp_token == expected["verp"]


def test_a_returned_copy_gives_our_list_headers():
    ids = READINGS["postfix_user_unknown.eml"].ids
    assert ids.list_id == "Larkfield Skin & Laser Clinic <newsletter.larkfield-clinic.example.com>"
    assert "https://www.larkfield-clinic.example.com/unsubscribe/" in ids.list_unsubscribe
    assert ids.original_to == "j.okafor@example.org"


def _dsn(groups: str) -> bytes:
    return (
        "From: MAILER-DAEMON@relay.example.net\nTo: news@example.com\nSubject: Undelivered Mail Returned to Sender\n"
        'MIME-Version: 1.0\nContent-Type: multipart/report; report-type=delivery-status; boundary="b"\n\n'
        "--b\nContent-Type: text/plain\n\nSee below.\n\n"
        f"--b\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; relay.example.net\n\n{groups}\n--b--\n"
    ).encode()


def test_a_dsn_with_one_hard_and_one_soft_recipient_is_soft_and_names_both():
    reading = read_message(_dsn(
        "Final-Recipient: rfc822; gone@example.org\nAction: failed\nStatus: 5.1.1\n"
        "Diagnostic-Code: smtp; 550 5.1.1 User unknown\n\n"
        "Final-Recipient: rfc822; Full@Example.org\nAction: failed\nStatus: 5.2.2\n"
        "Diagnostic-Code: smtp; 552 5.2.2 Mailbox full\n"
    ))
    assert reading.kind == "soft"
    assert reading.recipients == ["gone@example.org", "full@example.org"]  # normalised to lower case
    assert reading.reason == "mailbox-full"


def test_a_5xx_that_speaks_of_both_non_existence_and_a_block_is_soft():
    reading = read_message(_dsn(
        "Final-Recipient: rfc822; someone@example.org\nAction: failed\nStatus: 5.1.1\n"
        "Diagnostic-Code: smtp; 550 5.1.1 user unknown or sender blocked by local policy\n"
    ))
    assert (reading.kind, reading.reason) == ("soft", "blocked")


def test_an_auto_reply_that_says_the_mailbox_no_longer_exists_is_still_an_auto_reply():
    raw = (
        b"From: Old Staff <old.staff@example.com>\nTo: news@example.com\nSubject: Automatic reply: March news\n"
        b"Auto-Submitted: auto-replied\n\nThis mailbox does not exist any more: user unknown. 550 5.1.1\n"
    )
    reading = read_message(raw)
    assert reading.kind == "auto-reply"
    assert reading.recipients == ["old.staff@example.com"]


def test_a_generic_status_gives_way_to_the_diagnostic_code_and_junk_in_fields_is_dropped():
    exchange = read_message(_dsn(
        "Final-Recipient: rfc822; gone@example.org\nAction: failed\nStatus: 5.0.0\n"
        "Diagnostic-Code: smtp; 550 5.1.1 RESOLVER.ADR.RecipNotFound; not found\n"
    ))
    assert (exchange.kind, exchange.status) == ("hard", "5.1.1")
    junk = read_message(_dsn(
        "Final-Recipient: rfc822; someone@example.org\nAction: failed\nStatus: [red]boom[/red]\n"
    ))
    assert junk.status == "" and junk.kind == "soft", "no code, no words: not proven hard"


def test_a_complaint_with_an_odd_feedback_type_reads_as_other():
    raw = (
        "From: fbl@example.net\nTo: abuse@example.com\nSubject: report\nMIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type=feedback-report; boundary="f"\n\n'
        "--f\nContent-Type: message/feedback-report\n\nFeedback-Type: [blink]spam!\n"
        "Original-Rcpt-To: <Reader@Example.org>\n\n--f--\n"
    ).encode()
    reading = read_message(raw)
    assert (reading.kind, reading.reason, reading.recipients) == ("complaint", "other", ["reader@example.org"])


def test_a_success_notification_is_not_a_bounce():
    reading = read_message(_dsn("Final-Recipient: rfc822; ok@example.org\nAction: delivered\nStatus: 2.0.0\n"))
    assert (reading.kind, reading.reason) == ("not-a-bounce", "delivered")


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\xff\xfe\x00\x01garbage without headers",
        b"Content-Type: multipart/report; report-type=delivery-status; boundary=x\n\n--x\n"
        b"Content-Type: message/delivery-status\n\n\x00\x00Final-Recipient:\n\n--x",
        b"From: MAILER-DAEMON@x.example\nContent-Type: multipart/mixed; boundary=b0\n\n"
        + b"".join(b"--b%d\nContent-Type: multipart/mixed; boundary=b%d\n\n" % (i, i + 1) for i in range(3000)),
        b"From: MAILER-DAEMON@x.example\nSubject: Undeliverable\nContent-Type: text/plain; charset=x-klingon\n\n"
        + b"\xe9" * 1000,
        b"From: =?x-unknown?q?=FF?= <a@b.example>\nSubject: =?utf-8?b?!!!?=\nAuto-Submitted: auto-replied\n\nhi",
        b"From: MAILER-DAEMON@x.example\nSubject: Undeliverable\n\nThe following address(es) failed:\n"
        + b"".join(b"u%d@example.org 550 5.1.1 x\n" % i for i in range(20000)),
        b"From: MAILER-DAEMON@x.example\nSubject: Undeliverable\n\nfailed:\nb@" + b"a." * 50000,
    ],
    ids=["empty", "binary", "nul-bytes", "deep-nesting", "unknown-charset", "broken-encoded-words", "many-addresses",
         "endless-domain"],
)
def test_hostile_input_gives_a_reading_not_an_exception(raw):
    reading = read_message(raw)
    assert reading.kind in KINDS


def test_a_huge_message_is_read_from_its_start_only():
    head = (BOUNCES / "postfix_user_unknown.eml").read_bytes()
    reading = read_message(head + b"X" * (MAX_MESSAGE_BYTES * 2))
    assert reading.kind == "hard"
    assert reading.recipients == ["j.okafor@example.org"]


def test_damaged_fixtures_never_crash_the_reader_nor_turn_a_non_bounce_hard():
    rng = random.Random(11)  # seeded: the same damage every run
    for name in sorted(EXPECTED):
        raw = (BOUNCES / name).read_bytes()
        for _ in range(8):
            damaged = bytearray(raw)
            for _ in range(rng.randint(1, 30)):
                if not damaged:
                    break
                at = rng.randrange(len(damaged))
                if rng.random() < 0.5:
                    damaged[at] = rng.randrange(256)
                else:
                    del damaged[at : at + rng.randint(1, 120)]
            reading = read_message(bytes(damaged))
            assert reading.kind in KINDS
            if EXPECTED[name]["kind"] in ("auto-reply", "not-a-bounce"):
                assert reading.kind != "hard", name


@pytest.mark.parametrize(
    "status, words, expected",
    [
        ("5.1.1", "550 5.1.1 <a@example.org>: Recipient address rejected: User unknown", ("hard", "user-unknown")),
        ("", "550 Host or domain name not found. Name service error for name=x.example", ("hard", "host-unknown")),
        ("4.1.1", "450 4.1.1 user unknown, try again later", ("soft", "temporary")),
        ("", "551 bounce as<the destination mailbox <x@example.org> is full> queue", ("soft", "mailbox-full")),
        ("5.0.0", "550 Requested action not taken: mailbox unavailable", ("soft", "unavailable")),
        ("5.7.1", "554 5.7.1 Service unavailable; Client host blocked using a DNSBL", ("soft", "blocked")),
        ("5.7.26", "550 5.7.26 unauthenticated mail has been blocked", ("soft", "policy")),
        ("5.1.1", "550 5.1.1 mailbox does not exist or the sender is on a block list", ("soft", "blocked")),
        ("5.0.0", "550 message refused", ("soft", "policy")),
        ("5.0.0", "550 rejected", ("soft", "other")),
    ],
)
def test_hard_only_when_non_existence_is_the_whole_story(status, words, expected):
    kind, reason, _status = classify(status, words, permanent=True)
    assert (kind, reason) == expected
