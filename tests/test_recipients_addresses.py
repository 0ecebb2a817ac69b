"""What counts as one address, what may go into a name, and how dates in cells are read."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from recipients.addresses import InvalidAddress, name_problem, normalize_email
from recipients.consent_time import MonthFirstDate, read_consent_time
from recipients.export import spreadsheet_safe

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    "typed, stored",
    [
        ("  ann@EXAMPLE.com ", "ann@example.com"),
        ("MAILTO:ann@example.com", "ann@example.com"),
        ("Ann Lee <ann@example.com>", "ann@example.com"),
        ('"Lee, Ann" <ann@example.com>', "ann@example.com"),
        ("<ann@example.com>", "ann@example.com"),
        ("Ann+News@example.com", "Ann+News@example.com"),
        ("ann@bücher.example.org", "ann@xn--bcher-kva.example.org"),
    ],
)
def test_addresses_as_people_paste_them_are_stored_in_one_form(typed, stored):
    assert normalize_email(typed) == stored


@pytest.mark.parametrize(
    "typed, reason",
    [
        ("ann@example.com, bob@example.com", "after the @-sign contains invalid characters: ','"),
        ("Ann <ann@example.com>, Bob <bob@example.com>", "after the @-sign contains invalid characters: ','"),
        ("mailto:ann@example.com?subject=hello", "after the @-sign contains invalid characters: '=', '?'"),
        ("jörg@example.org", "SMTPUTF8"),
        ("ann@example.com.", "cannot end with a period"),
        ("ann..lee@example.com", "two periods in a row"),
        ("ann@example", "should have a period"),
        ("ann@example.com\r\nBcc: x@example.net", "control character"),
        ("", "no e-mail address"),
    ],
)
def test_addresses_that_are_not_one_deliverable_address_are_refused(typed, reason):
    with pytest.raises(InvalidAddress) as caught:
        normalize_email(typed)
    assert reason in str(caught.value)


@pytest.mark.parametrize(
    "name, problem",
    [
        ("Zoë Ó Briain", None),
        ("Anne-Marie O'Neill", None),
        ("Jo\u200dy", None),  # a zero-width joiner belongs to some scripts and emoji
        ("Ann\u2028Bcc: x@example.net", "control character U+2028"),  # Unicode line separator
        ("Ann\x85", "control character U+0085"),  # NEL
        ("\u202eAnn", "control character U+202E"),  # right-to-left override
        ("Ann\tLee", "tab"),
        ("Ann\nLee", "line break"),
        ("=?utf-8?b?QW5u?=", "'=?'"),
        ("Visit www.example.net", "web address"),
        ("https://example.net/win", "web address"),
    ],
)
def test_names_hold_no_header_tricks_and_no_links(name, problem):
    found = name_problem(name)
    if problem is None:
        assert found is None
    else:
        assert problem in found


@pytest.mark.parametrize(
    "text, message",
    [
        ("45366.4375", "Excel date number, not a date (in Excel's usual date system it is 2024-03-15 10:30)"),
        ("5/6/2024 9:00 AM", "24-hour clock"),
        ("1985-05-18", "before 1990"),
        ("18/05/24", "four digits"),
        ("31/04/2024", "not a real date"),
    ],
)
def test_dates_that_cannot_be_trusted_say_what_to_write(text, message):
    with pytest.raises(ValueError) as caught:
        read_consent_time(text, NOW)
    assert message in str(caught.value)


def test_slash_dates_are_day_first_and_say_when_they_could_be_either():
    assert read_consent_time("18/05/2024", NOW).ambiguous is False
    assert read_consent_time("06/06/2024", NOW).ambiguous is False
    either = read_consent_time("05/06/2024 10:00", NOW)
    assert either.ambiguous is True
    assert either.at == datetime(2024, 6, 5, 9, 0, tzinfo=timezone.utc)  # 5 June, BST
    assert read_consent_time("05.06.2024", NOW).ambiguous is False  # dots are day first everywhere
    with pytest.raises(MonthFirstDate):
        read_consent_time("05/18/2024", NOW)


@pytest.mark.parametrize(
    "cell, written",
    [
        ("=HYPERLINK(\"http://example.net\",\"x\")", "'=HYPERLINK(\"http://example.net\",\"x\")"),
        ("+44 7700 900123", "'+44 7700 900123"),
        ("-Hyde", "'-Hyde"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1+1", "'\t=1+1"),
        ("Ann", "Ann"),
        ("", ""),
        (None, None),
        (42, 42),
    ],
)
def test_csv_export_cells_that_a_spreadsheet_would_run_are_written_as_text(cell, written):
    assert spreadsheet_safe(cell) == written
