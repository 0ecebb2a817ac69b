"""CSV import: every row checked first, all-or-nothing, merges, and no re-activation, on a real SQLite file and a real PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from newsletters.config import Site
from newsletters.errors import RecipientError
from recipients import open_store
from recipients.importer import ImportRejected, import_csv, parse_consent_time, read_csv

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "csv"
MESSY = FIXTURES / "messy_clinic_export_bom_crlf.csv"
KEY = "test-secret-key-for-recipients-0123456789"

# What a careful person decides for each bad line of the messy export, and why.
MESSY_REJECTED = {
    # 05/01/2023 could be 5 January or 1 May, and line 18 shows someone wrote this file month first.
    3: "consent_at: '05/01/2023 14:30' could be day or month first, and line 18 ('05/18/2018') can only be month first",
    4: "email: An email address must have an @-sign",
    5: "consent_at: missing",
    6: "consent_source: missing",
    7: "consent_at: '31/02/2023' is not a real date",
    8: "consent_at: '2099-01-01T10:00:00Z' is in the future",
    9: "first_name: holds a line break",
    11: "email: non-ASCII characters before the @ need SMTPUTF8",
    13: "first_name: holds '=?'",
    16: "has 2 cells but the header has 7",
    17: "consent_at: cannot read '18/05/18': write the year with four digits",
    18: "consent_at: '05/18/2018' is month first (US style)",
    22: "email: The part after the @-sign is not valid",
}


@pytest.fixture
def site(site_dir, monkeypatch, database_url) -> Site:
    """The example site with a fresh database: each import test runs on SQLite and on PostgreSQL."""
    monkeypatch.setenv("SECRET_KEY", KEY)
    monkeypatch.setenv("DATABASE_URL", database_url)
    return Site.load(site_dir)


@pytest.fixture
def store(site):
    with open_store(site) as store:
        yield store


def test_messy_export_names_every_rejected_row_by_the_line_it_starts_on():
    parsed = read_csv(MESSY)

    reasons = {problem.line: "; ".join(problem.reasons) for problem in parsed.problems}
    assert sorted(reasons) == sorted(MESSY_REJECTED)
    for line, expected in MESSY_REJECTED.items():
        assert expected in reasons[line], (line, reasons[line])
    # Lines 9-10 are one record (a CR/LF inside a quoted name), so the next record is line 11.
    assert parsed.records == 18


def test_messy_export_keeps_the_valid_people_merged_and_normalised():
    parsed = read_csv(MESSY)

    by_line = {row.line: row for row in parsed.rows}
    assert sorted(by_line) == [2, 12, 15, 20]
    assert [(m.line, m.into_line) for m in parsed.merges] == [(19, 15)]

    anna = by_line[2]
    # Line 3's earlier-looking date is refused as ambiguous, so line 2's evidence stands alone.
    assert anna.email == "Anna.Kowalska@example.com"
    assert anna.consent_at == datetime(2023, 1, 10, 9, 0, tzinfo=timezone.utc)
    assert anna.consent_source == "paper form at reception"
    assert anna.first_name == "Anna" and anna.attributes == {"favourite_treatment": "chemical peel"}

    # An internationalised domain is accepted and stored in its ASCII form, lower-cased.
    assert by_line[12].email == "li.wei@xn--bcher-kva.example.org"

    zoe = by_line[15]
    assert (zoe.first_name, zoe.last_name) == ("Zoë", "Ó Briain")
    # 13:05 on 18 May is British Summer Time: 12:05 UTC.
    assert zoe.consent_at == datetime(2018, 5, 18, 12, 5, tzinfo=timezone.utc)
    # The duplicate's attribute fills the gap; the first row's names win.
    assert zoe.attributes == {"favourite_treatment": "skin health"}

    # A quoted consent wording may span lines; the header "Consent Text" maps to consent_text.
    assert by_line[20].consent_text == "Yes please.\r\nI can unsubscribe at any time."


def test_any_invalid_row_means_nothing_is_imported(store):
    with pytest.raises(ImportRejected) as caught:
        import_csv(store, MESSY)

    assert len(caught.value.parsed.problems) == len(MESSY_REJECTED)
    assert "nothing was imported" in str(caught.value)
    assert store.stats()["total"] == 0


def test_skip_invalid_imports_the_valid_rows_as_active_with_their_evidence(store):
    report = import_csv(store, MESSY, skip_invalid=True)

    assert sorted(row.line for row in report.added) == [2, 12, 15, 20]
    assert store.stats()["active"] == 4
    assert store.count_eligible() == 4
    anna = store.get("ANNA.KOWALSKA@example.com")
    [event] = store.ledger(anna.id)
    assert event.event == "subscribed" and event.method == "import"
    assert event.at == datetime(2023, 1, 10, 9, 0, tzinfo=timezone.utc)
    assert event.source == "paper form at reception"
    assert event.consent_text == "consent-v1"
    assert event.detail == "messy_clinic_export_bom_crlf.csv line 2"


def test_an_import_never_reactivates_people_who_left_and_keeps_their_history(site, store):
    first = import_csv(store, site.root / "subscribers.csv")
    assert len(first.added) == 12
    oliver = store.get("oliver.bennett@example.org")
    store.unsubscribe_email("amelia.hart@example.com", "reply")
    store.record_bounce(oliver.id, "550 5.1.1 mailbox unknown")
    store.record_complaint(store.get("priya.raman@example.org").id, "feedback loop")
    store.forget("tom.whitfield@example.com")
    ledgers_before = {e: store.ledger(store.get(e).id) for e in ("amelia.hart@example.com", "oliver.bennett@example.org")}

    again = import_csv(store, site.root / "subscribers.csv")

    refused = {row.email: status for row, status in again.refused}
    assert refused == {
        "amelia.hart@example.com": "unsubscribed",
        "oliver.bennett@example.org": "bounced",
        "priya.raman@example.org": "complained",
        "tom.whitfield@example.com": "erased",
    }
    assert again.added == [] and len(again.unchanged) == 8
    assert store.get("amelia.hart@example.com").status == "unsubscribed"
    assert store.get("oliver.bennett@example.org").status == "bounced"
    for email, ledger in ledgers_before.items():
        assert store.ledger(store.get(email).id) == ledger
    assert store.count_eligible() == 8


def test_people_already_on_the_list_get_new_evidence_only_when_the_file_brings_some(site, store):
    import_csv(store, site.root / "subscribers.csv")
    amelia = store.get("amelia.hart@example.com")

    report = import_csv(store, FIXTURES / "later_evidence_for_amelia_and_new_person.csv")

    assert [r.email for r in report.evidence_added] == ["AMELIA.HART@example.com"]
    assert [r.email for r in report.unchanged] == ["oliver.bennett@example.org"]  # same evidence as before
    assert [r.email for r in report.added] == ["nina.patel@example.org"]
    assert store.stats()["total"] == 13  # Amelia not duplicated despite the capitals
    sources = [e.source for e in store.ledger(amelia.id) if e.event == "subscribed"]
    assert sources == ["website sign-up form (2024 version)", "summer open evening 2025"]
    assert len(store.ledger(store.get("oliver.bennett@example.org").id)) == 1


def test_a_pending_web_sign_up_found_in_an_import_becomes_active(site, store):
    store.subscribe("nina.patel@example.org", "Nina", source="https://clinic/subscribe", consent_text="wording")
    assert store.get("nina.patel@example.org").status == "pending"

    report = import_csv(store, FIXTURES / "later_evidence_for_amelia_and_new_person.csv")

    assert [r.email for r in report.activated] == ["nina.patel@example.org"]
    nina = store.get("nina.patel@example.org")
    assert nina.status == "active"
    assert nina.last_name == "Patel"  # an empty name is filled in, never overwritten
    assert store.count_eligible() == 3


@pytest.mark.parametrize(
    "fixture, message",
    [
        ("windows_1252_encoded_export.csv", "the file is not UTF-8: column 19 holds the byte 0xEB"),
        ("no_consent_columns.csv", "missing columns consent_at, consent_source"),
    ],
)
def test_a_file_that_cannot_be_read_as_a_whole_is_refused_naming_the_file_and_line(store, fixture, message):
    with pytest.raises(RecipientError) as caught:
        import_csv(store, FIXTURES / fixture)

    text = str(caught.value)
    assert message in text
    assert fixture in text
    expected_line = "line 3" if fixture.startswith("windows") else "line 1"
    assert expected_line in text
    assert store.stats()["total"] == 0


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2018-05-18T13:05:00Z", datetime(2018, 5, 18, 13, 5, tzinfo=timezone.utc)),
        ("2018-05-18T13:05:00+02:00", datetime(2018, 5, 18, 11, 5, tzinfo=timezone.utc)),
        ("2018-05-18 13:05", datetime(2018, 5, 18, 12, 5, tzinfo=timezone.utc)),  # UK summer time
        ("2018-12-18", datetime(2018, 12, 18, 0, 0, tzinfo=timezone.utc)),  # UK winter = UTC
        ("18/05/2018 13:05", datetime(2018, 5, 18, 12, 5, tzinfo=timezone.utc)),
        ("18/12/2018 13:05:09", datetime(2018, 12, 18, 13, 5, 9, tzinfo=timezone.utc)),
        ("18/05/2018", datetime(2018, 5, 17, 23, 0, tzinfo=timezone.utc)),
        ("18.05.2018 13:05", datetime(2018, 5, 18, 12, 5, tzinfo=timezone.utc)),  # continental Excel, day first
    ],
)
def test_consent_times_in_iso_or_uk_day_first_form(text, expected):
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert parse_consent_time(text, now) == expected


@pytest.mark.parametrize("text", ["", "yesterday", "05/18/2018", "18-05-2018", "0018-05-18", "2026-01-02"])
def test_consent_times_that_are_missing_unreadable_or_future_are_refused(text):
    with pytest.raises(ValueError):
        parse_consent_time(text, datetime(2026, 1, 1, tzinfo=timezone.utc))
