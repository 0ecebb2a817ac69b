"""When consent was given, read from a spreadsheet cell without guessing wrong.

* ISO 8601 (``2018-05-18T13:05:00Z``, ``…+01:00``, ``2018-05-18 13:05``,
  ``2018-05-18``) is read as written.
* Slashes are day first, as in the UK: ``18/05/2018 13:05``. Dots are day first
  everywhere (``18.05.2018``, continental Excel).
* A slash date that only works month first (``05/18/2018``) is refused, and it
  is *evidence*: a file holding one was written month first, so its dates
  that could be read either way (``05/06/2024``) cannot be trusted either. The
  importer refuses those too; in a file without such evidence they are read
  day first and the report says so.
* A time without a UTC offset is UK time (Europe/London, summer time included).
* Excel serial numbers (``45366.4375``), two-digit years, AM/PM times, years
  before 1990 and times in the future are refused, each with what to write
  instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

UK_TIME = ZoneInfo("Europe/London")
EARLIEST_YEAR = 1990
EXAMPLES = "use 2018-05-18T13:05:00Z, 2018-05-18 13:05 or 18/05/2018 13:05, day first"
_SLASHED = re.compile(
    r"^(?P<a>\d{1,2})(?P<sep>[/.])(?P<b>\d{1,2})(?P=sep)(?P<year>\d{2,4})"
    r"(?:[ T]+(?P<hour>\d{1,2}):(?P<minute>\d{2})(?::(?P<second>\d{2})(?:\.\d+)?)?)?$"
)
_AM_PM = re.compile(r"\d\s*[ap]\.?m\.?$", re.IGNORECASE)
_EXCEL_SERIAL = re.compile(r"^\d{5}(?:\.\d+)?$")
_EXCEL_EPOCH = datetime(1899, 12, 30)
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")


class MonthFirstDate(ValueError):
    """A slash date that only makes sense month first: the file was probably written the US way."""


@dataclass(frozen=True)
class ConsentTime:
    at: datetime  # UTC
    ambiguous: bool = False  # a slash date whose day and month could swap, read day first

    def day_first_reading(self, text: str) -> str:
        local = self.at.astimezone(UK_TIME)
        return f"{text.strip()} = {local.day} {_MONTHS[local.month - 1]} {local.year}"


def read_consent_time(text: str, now: datetime) -> ConsentTime:
    """The consent time in UTC, or ValueError (MonthFirstDate for US-order dates) saying what to write."""
    text = text.strip()
    if not text:
        raise ValueError("missing: when consent was given is part of the evidence")
    ambiguous = False
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        value, ambiguous = _day_first(text)
    if value.year < EARLIEST_YEAR:
        raise ValueError(f"{text!r} is before {EARLIEST_YEAR}; no e-mail consent is that old, check the year")
    if value.tzinfo is None:
        value = value.replace(tzinfo=UK_TIME)
    value = value.astimezone(timezone.utc)
    if value > now:
        raise ValueError(f"{text!r} is in the future")
    return ConsentTime(value, ambiguous)


def parse_consent_time(text: str, now: datetime) -> datetime:
    """Just the UTC time (see ``read_consent_time``)."""
    return read_consent_time(text, now).at


def _day_first(text: str) -> tuple[datetime, bool]:
    match = _SLASHED.match(text)
    if not match:
        if _EXCEL_SERIAL.match(text):
            raise ValueError(_excel_serial(text))
        if _AM_PM.search(text):
            raise ValueError(f"cannot read {text!r}: write the time on the 24-hour clock ({EXAMPLES})")
        raise ValueError(f"cannot read {text!r} as a date ({EXAMPLES})")
    a, b, year = int(match["a"]), int(match["b"]), match["year"]
    if len(year) != 4:
        raise ValueError(f"cannot read {text!r}: write the year with four digits ({EXAMPLES})")
    time = [int(match[k] or 0) for k in ("hour", "minute", "second")]
    slashes = match["sep"] == "/"
    if slashes and a <= 12 < b:
        raise MonthFirstDate(
            f"{text!r} is month first (US style); dates with slashes are read day first here: "
            f"write it as {year}-{a:02d}-{b:02d}"
        )
    try:
        value = datetime(int(year), b, a, *time)
    except ValueError:
        raise ValueError(f"{text!r} is not a real date or time ({EXAMPLES})") from None
    return value, slashes and a <= 12 and b <= 12 and a != b


def _excel_serial(text: str) -> str:
    days = float(text)
    guess = _EXCEL_EPOCH + timedelta(days=days)
    return (
        f"{text!r} is an Excel date number, not a date (in Excel's usual date system it is "
        f"{guess:%Y-%m-%d %H:%M}); format the column as a date, e.g. yyyy-mm-dd hh:mm, and save the file again"
    )
