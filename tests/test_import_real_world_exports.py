"""`newsletter recipients import` on files as real tools write them, through the real CLI and a real SQLite file.

Each fixture is named after the case it shows; each test states the outcome a careful
person would choose for it, line by line.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner

from newsletters.cli import cli
from newsletters.config import Site
from recipients import open_store
from recipients.importer import read_csv

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "csv"
RECEPTION = FIXTURES / "excel_csv_utf8_reception_list_bom_crlf_every_kind_of_bad_row.csv"
KEY = "test-secret-key-for-recipients-0123456789"

# The Excel "CSV UTF-8" reception list: every line a careful person refuses, and why.
RECEPTION_REJECTED = {
    7: "email: non-ASCII characters before the @ need SMTPUTF8",  # søren@
    8: "email: An email address cannot end with a period.",
    9: "email: An email address cannot have two periods in a row.",
    10: "email: The part after the @-sign is not valid. It should have a period.",  # owen@example
    11: "consent_at: '45366.4375' is an Excel date number, not a date (in Excel's usual date system it is "
        "2024-03-15 10:30)",
    12: "consent_at: '2099-01-01T09:00:00Z' is in the future",
    13: "consent_at: missing",
    14: "consent_source: missing",
    15: "first_name: holds '=?'",
    16: "first_name: holds a line break (CR/LF)",  # "Uma<LF>Bcc: …", a quoted cell over lines 16-17
    18: "first_name: holds a tab character",
    19: "first_name: holds a NUL character",
    20: "first_name: holds a web address",  # =HYPERLINK("http://…")
    25: "has 11 cells but the header has 8",  # a value beyond the last column
    26: "has 3 cells but the header has 8",
}


@pytest.fixture
def site(site_dir, monkeypatch) -> Site:
    monkeypatch.setenv("SECRET_KEY", KEY)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    return Site.load(site_dir)


@pytest.fixture
def run(site):
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(cli, ["--site", str(site.root), "recipients", *args])

    return invoke


@pytest.fixture
def people_who_left(site):
    """Zach unsubscribed by phone; forgotten.person asked to be forgotten before ever being added."""
    with open_store(site) as store:
        store.add("zach.morgan@example.com", first_name="Zach", source="reception desk")
        store.unsubscribe_email("zach.morgan@example.com", "admin")
        store.forget("forgotten.person@example.org")
        yield store


def problems_by_line(stderr: str, name: str) -> dict[int, str]:
    found = {}
    for line in stderr.splitlines():
        if line.startswith(f"{name}: line ") or f"/{name}: line " in line:
            number, reason = line.split(": line ", 1)[1].split(": ", 1)
            found[int(number)] = reason
    return found


def test_reception_list_through_the_installed_command_refuses_exactly_these_lines(site, people_who_left):
    env = {**os.environ, "SECRET_KEY": KEY}
    env.pop("DATABASE_URL", None)
    command = [sys.executable, "-m", "newsletters", "--site", str(site.root), "recipients", "import", str(RECEPTION)]

    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)

    assert done.returncode == 1
    found = problems_by_line(done.stderr, RECEPTION.name)
    assert sorted(found) == sorted(RECEPTION_REJECTED)
    for line, reason in RECEPTION_REJECTED.items():
        assert reason in found[line], (line, found[line])
    assert "25 records read (UTF-8 with BOM, comma-separated)" in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith(f"error: {RECEPTION}: 15 invalid rows; nothing was imported")
    assert "Traceback" not in done.stderr
    assert people_who_left.stats()["total"] == 1  # only Zach, still unsubscribed


def test_reception_list_with_skip_invalid_stores_the_right_people_in_the_right_form(run, people_who_left):
    zach = people_who_left.get("zach.morgan@example.com")
    zach_ledger = people_who_left.ledger(zach.id)

    result = run("import", str(RECEPTION), "--skip-invalid")

    assert result.exit_code == 0, result.output
    out = result.output
    # The odd headings were understood, and the report says how.
    assert ("columns: email <- 'E-Mail', first_name <- 'Forename', last_name <- 'SURNAME', consent_at <- "
            "'Consent At', consent_source <- 'Consent source', consent_text <- 'Consent Text'; "
            "attributes: phone, notes") in out
    # 01/03/2024 could be 1 March or 3 January; nothing in the file says month first, so day first, said aloud.
    assert "line 22: 01/03/2024 09:00 = 1 March 2024" in out
    assert "merged   line 22: same address as line 2" in out
    assert "refused  line 23: zach.morgan@example.com is unsubscribed; not re-activated" in out
    assert "refused  line 24: forgotten.person@example.org is erased; not re-activated" in out
    assert "7 added" in out and "1 duplicates merged, 15 invalid rows skipped" in out
    assert sorted(found for found in problems_by_line(out.replace("  skipped  ", f"{RECEPTION.name}: "),
                                                      RECEPTION.name)) == sorted(RECEPTION_REJECTED)

    store = people_who_left
    stored = sorted(person.email for person in store.subscribers("active"))
    assert stored == sorted([
        "HANNAH.MOSS@example.org",  # spaces trimmed, domain lower-cased; line 22's earlier consent (and spelling) kept
        "ian.price@example.com",  # "mailto:" dropped
        "julia.reyes@example.org",  # "Julia Reyes <…>" reduced to the address
        "kofi+newsletter@example.com",  # plus-addressing kept as typed
        "lena@xn--bckerei-5wa.example.org",  # Bäckerei.Example.org in its ASCII form
        "yara.haddad@example.org",
        "carl.fox@example.com",
    ])
    hannah = store.get("hannah.moss@example.org")
    assert (hannah.first_name, hannah.last_name) == ("Hannah", "Moss")
    assert hannah.attributes == {"phone": "+44 7700 900123", "notes": "prefers evening appointments"}
    [evidence] = store.ledger(hannah.id)
    assert evidence.at == datetime(2024, 3, 1, 9, 0, tzinfo=timezone.utc)  # GMT in March
    assert evidence.source == "winter open evening"
    assert store.ledger(store.get("ian.price@example.com").id)[0].at == datetime(2024, 3, 14, 10, 0,
                                                                                 tzinfo=timezone.utc)
    assert store.ledger(store.get("lena@bäckerei.example.org").id)[0].at == datetime(2024, 4, 2, 8, 30,
                                                                                     tzinfo=timezone.utc)  # BST
    carl = store.ledger(store.get("carl.fox@example.com").id)[0]
    assert carl.consent_text == 'I said "yes please" to the\nmonthly newsletter'
    # The spreadsheet-formula note is only text here; the CSV export neutralises it (see below).
    assert store.get("yara.haddad@example.org").attributes == {"notes": "=cmd|' /C calc'!A0"}
    assert store.get("zach.morgan@example.com").status == "unsubscribed"
    assert store.ledger(zach.id) == zach_ledger
    assert store.find("forgotten.person@example.org") is None
    assert store.count_eligible() == 7


def test_excel_unicode_text_is_utf16_with_tabs_and_is_read_as_such():
    parsed = read_csv(FIXTURES / "excel_unicode_text_utf16le_tab_separated.txt")

    assert parsed.format == "UTF-16, tab-separated"
    assert [(row.line, row.email, row.first_name, row.last_name) for row in parsed.rows] == [
        (2, "dara.nolan@example.com", "Dára", "Nolan"),
        (3, "eun-ji.park@example.org", "Eun-ji", "박"),
    ]
    assert [str(problem) for problem in parsed.problems] == [
        "line 4: consent_at: '31/04/2024' is not a real date or time "
        "(use 2018-05-18T13:05:00Z, 2018-05-18 13:05 or 18/05/2018 13:05, day first)"
    ]


def test_european_excel_semicolons_with_its_sep_line_and_dotted_dates_are_read(run, site):
    result = run("import", str(FIXTURES / "excel_european_semicolons_with_sep_line_and_dotted_dates.csv"))

    assert result.exit_code == 0, result.output
    assert "3 records read (UTF-8 with BOM, semicolon-separated)" in result.output
    assert "3 added" in result.output
    with open_store(site) as store:
        hugo = store.ledger(store.get("hugo.lefevre@example.org").id)[0]
        greta = store.ledger(store.get("greta.jung@example.org").id)[0]
        ines = store.ledger(store.get("ines.moreau@example.org").id)[0]
    assert hugo.source == "salon; stand 4"  # a quoted semicolon stays in its cell
    assert hugo.detail.endswith("line 4")  # the "sep=;" line counts: the heading is line 2
    assert greta.at == datetime(2024, 5, 18, 12, 5, tzinfo=timezone.utc)  # 18.05.2024 13:05 in BST
    assert ines.at == datetime(2024, 5, 18, 11, 5, tzinfo=timezone.utc)  # +02:00 as written
    assert read_csv(FIXTURES / "semicolon_separated_excel_export.csv").rows[0].email == "ann@example.com"


def test_google_sheets_with_a_us_date_refuses_the_dates_that_could_be_either(run):
    result = run("import", str(FIXTURES / "google_sheets_us_locale_month_first_dates.csv"))

    assert result.exit_code == 1
    found = problems_by_line(result.stderr, "google_sheets_us_locale_month_first_dates.csv")
    assert sorted(found) == [2, 3]
    assert found[2] == ("consent_at: '5/18/2024 13:05:00' is month first (US style); dates with slashes are read "
                        "day first here: write it as 2024-05-18")
    assert found[3].startswith("consent_at: '5/6/2024 9:00:00' could be day or month first, and line 2 "
                               "('5/18/2024 13:05:00') can only be month first")
    # 6/6/2024 reads the same either way; 2024-06-01 is ISO. Neither is refused.
    assert "line 4" not in result.stderr and "line 5" not in result.stderr


def test_plain_excel_csv_in_windows_1252_is_refused_naming_line_byte_and_the_fix(run):
    result = run("import", str(FIXTURES / "excel_plain_csv_windows_1252_accented_name_on_line_4.csv"))

    assert result.exit_code == 1
    [message] = result.stderr.strip().splitlines()
    assert "excel_plain_csv_windows_1252_accented_name_on_line_4.csv, line 4: the file is not UTF-8" in message
    assert "column 30 holds the byte 0xE9" in message and "'Chloé'" in message
    assert 'Save As > "CSV UTF-8 (Comma delimited) (*.csv)"' in message
    assert "Chlo\ufffd" not in message and "ChloÃ" not in message
    assert run("stats").output.splitlines()[-1].split() == ["eligible:", "0"]


def test_mailchimp_export_gets_instructions_not_a_silent_mapping(run):
    result = run("import", str(FIXTURES / "mailchimp_subscribed_members_export.csv"))

    assert result.exit_code == 1
    message = result.stderr
    assert "line 1: missing columns consent_at, consent_source" in message
    assert "looks like a Mailchimp audience export" in message
    assert "rename OPTIN_TIME to consent_at" in message and "Add a consent_source column" in message


def test_mailchimp_unsubscribed_export_is_refused_even_with_consent_columns(run):
    result = run("import", str(FIXTURES / "mailchimp_unsubscribed_members_with_consent_columns_added.csv"),
                 "--skip-invalid")

    assert result.exit_code == 1
    assert "Mailchimp's export of people who unsubscribed (it has a UNSUB_TIME column)" in result.stderr
    assert run("stats").output.splitlines()[-1].split() == ["eligible:", "0"]


def test_a_status_column_saying_they_left_makes_the_row_invalid(run, site):
    path = FIXTURES / "booking_system_export_with_status_column.csv"

    refused = run("import", str(path))
    skipped = run("import", str(path), "--skip-invalid")

    assert refused.exit_code == 1
    found = problems_by_line(refused.stderr, path.name)
    assert found == {
        3: "status: says 'Unsubscribed'; only people who are subscribed may be imported",
        4: "status: says 'bounced'; only people who are subscribed may be imported",
        6: "status: says 'pending'; only people who are subscribed may be imported",
    }
    assert skipped.exit_code == 0 and "2 added" in skipped.output
    assert "checked, not stored: status" in skipped.output
    with open_store(site) as store:
        assert sorted(p.email for p in store.subscribers()) == ["rita.sol@example.com", "umar.aziz@example.com"]
        assert store.get("rita.sol@example.com").attributes == {}


def test_a_quote_never_closed_refuses_the_whole_file_even_when_skipping(run):
    result = run("import", str(FIXTURES / "unclosed_quote_swallows_the_rest_of_the_file.csv"), "--skip-invalid")

    assert result.exit_code == 1
    assert ("unclosed_quote_swallows_the_rest_of_the_file.csv, line 3: a quote opened on line 3 is never closed, "
            "so lines 3-5 would be one cell") in result.stderr
    assert run("stats").output.splitlines()[-1].split() == ["eligible:", "0"]


def test_stray_quotes_name_the_rows_they_swallow(run):
    path = FIXTURES / "stray_quotes_join_lines_and_close_mid_cell.csv"

    result = run("import", str(path))

    assert result.exit_code == 1
    found = problems_by_line(result.stderr, path.name)
    assert sorted(found) == [2, 5]
    assert found[2].startswith("lines 2-4 were read as one record because of a quote on line 2, but line 3 "
                               "looks like a row of its own")
    assert found[5].startswith("a quote ends in the middle of a cell")


@pytest.mark.parametrize(
    "fixture, message",
    [
        ("utf16le_without_byte_order_mark.csv", "the file looks like UTF-16 text without a byte-order mark"),
        ("excel_workbook_xlsx_renamed_to_csv.csv", "this is a spreadsheet workbook (.xlsx or .ods), not a CSV file"),
    ],
)
def test_files_that_are_not_csv_text_say_what_they_are(run, fixture, message):
    result = run("import", str(FIXTURES / fixture))

    assert result.exit_code == 1
    assert f"{fixture}: {message}" in result.stderr
    assert "CSV UTF-8" in result.stderr


def test_csv_export_writes_formula_cells_as_text_and_json_as_stored(run, site):
    assert run("add", "eve@example.org", "--first-name", "=2+5", "--last-name", "-Hyde",
               "--source", "@front desk").exit_code == 0

    exported = list(csv.DictReader(io.StringIO(run("export", "--format", "csv").stdout)))
    as_json = json.loads(run("export", "--format", "json").stdout)

    [row] = exported
    assert (row["first_name"], row["last_name"], row["ledger_source"]) == ("'=2+5", "'-Hyde", "'@front desk")
    assert row["email"] == "eve@example.org"
    assert (as_json[0]["first_name"], as_json[0]["last_name"]) == ("=2+5", "-Hyde")
