"""Which column is which, and columns that say a person must *not* be imported.

Headings are matched loosely (case, spaces, hyphens and invisible characters
don't matter) and common spellings are mapped: ``E-Mail``, ``Email Address`` →
``email``; ``Forename``, ``First Name`` → ``first_name``; ``Surname`` →
``last_name``. Any other column becomes an attribute. The report prints the
mapping, so a surprise shows before anyone is mailed.

Exports from other tools often carry their own answer to "may we mail them?".
Ignoring it would import people who said no, so:

* a ``status`` column (or ``subscription_status`` …) must be empty or say the
  person is subscribed; ``unsubscribed``, ``bounced``, ``pending`` … make the row
  invalid;
* a yes/no consent column (``accepts_email_marketing``, ``opt_in``,
  ``marketing_consent`` …) must say yes;
* an unsubscribe date (``unsubscribed_at`` …) must be empty;
* Mailchimp's unsubscribed and cleaned exports are refused as a whole, and a
  Mailchimp export without consent columns gets instructions rather than a
  silent mapping: Mailchimp's times are sign-up or import times, and only the
  clinic knows which is the evidence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from foundation.errors import RecipientError

REQUIRED = ("email", "consent_at", "consent_source")
KNOWN = REQUIRED + ("first_name", "last_name", "consent_text")
ALIASES = {
    "e_mail": "email", "email_address": "email", "e_mail_address": "email", "emailaddress": "email",
    "mail": "email", "email_addr": "email",
    "firstname": "first_name", "first": "first_name", "forename": "first_name", "forenames": "first_name",
    "given_name": "first_name", "fname": "first_name",
    "lastname": "last_name", "last": "last_name", "surname": "last_name", "family_name": "last_name",
    "lname": "last_name",
    "consent_date": "consent_at", "consent_time": "consent_at", "consented_at": "consent_at",
    "consent_wording": "consent_text",
}
STATUS_COLUMNS = {"status", "subscription_status", "subscriber_status", "member_status", "email_status"}
SUBSCRIBED_WORDS = {"subscribed", "active", "confirmed", "opted in", "opted-in", "opt-in", "yes"}
CONSENT_FLAG_COLUMNS = {
    "consent", "opt_in", "optin", "opted_in", "marketing_consent", "email_consent", "email_opt_in",
    "newsletter_consent", "accepts_marketing", "accepts_email_marketing", "email_marketing_consent",
}
YES_WORDS = {"yes", "y", "true", "1", "subscribed", "opted in", "opted-in", "confirmed"}
LEFT_DATE_COLUMNS = {"unsubscribed_at", "unsubscribe_date", "unsubscribed_date", "unsubscribed_on",
                     "opted_out_at", "opt_out_date", "optout_date"}
_MAILCHIMP_LEFT = {"unsub_time": "unsubscribed", "unsub_campaign_title": "unsubscribed",
                   "clean_time": "were cleaned (hard bounces)", "clean_campaign_title": "were cleaned (hard bounces)"}
_MAILCHIMP_SIGNS = {"optin_time", "confirm_time", "member_rating", "leid", "euid", "optin_ip"}
_INVISIBLE = re.compile(r"[\u200b-\u200f\u2060\ufeff\u00ad]")


def column_name(raw: str) -> str:
    name = "_".join(_INVISIBLE.sub("", raw).strip().lower().replace("-", " ").split())
    return ALIASES.get(name, name)


@dataclass
class Columns:
    names: list[str]  # canonical name per position
    headings: list[str]  # as the file wrote them
    attributes: list[str] = field(default_factory=list)
    rules: list[str] = field(default_factory=list)  # columns checked for "may not be imported"

    def described(self) -> str:
        """``email <- 'E-Mail', …; attributes: phone, notes``: how each heading was understood."""
        mapped = [f"{name} <- {heading.strip()!r}" for name, heading in zip(self.names, self.headings)
                  if name in KNOWN]
        text = ", ".join(mapped)
        if self.attributes:
            text += "; attributes: " + ", ".join(self.attributes)
        if self.rules:
            text += "; checked, not stored: " + ", ".join(self.rules)
        return text

    def refusal(self, cells: dict[str, str]) -> str | None:
        """Why the file's own columns say this person may not be imported, or None."""
        for name in self.rules:
            value = cells.get(name, "").strip()
            if name in STATUS_COLUMNS and value and value.lower() not in SUBSCRIBED_WORDS:
                return f"{name}: says {value!r}; only people who are subscribed may be imported"
            if name in CONSENT_FLAG_COLUMNS and value.lower() not in YES_WORDS:
                said = f"says {value!r}" if value else "is empty"
                return f"{name}: {said}; only rows that say yes may be imported"
            if name in LEFT_DATE_COLUMNS and value:
                return f"{name}: says they left on {value!r}; people who left are not imported"
        return None


def read_columns(path: Path, header: list[str], line: int) -> Columns:
    """Map the heading line, or refuse the file with what to change."""
    where = f"{path}, line {line}"
    names = [column_name(cell) for cell in header]
    while names and not names[-1]:  # spreadsheets often add empty trailing columns
        names.pop()
    headings = header[: len(names)]
    for number, name in enumerate(names, 1):
        if not name:
            raise RecipientError(f"column {number} has no name", where=where, hint="give every column a heading")
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        same = [h.strip() for h, n in zip(headings, names) if n == duplicates[0]]
        raise RecipientError(f"columns {' and '.join(map(repr, same))} both mean {duplicates[0]!r}", where=where,
                             hint="keep one of them")
    for name, what in _MAILCHIMP_LEFT.items():
        if name in names:
            raise RecipientError(
                f"this is Mailchimp's export of people who {what} (it has a {name.upper()} column); "
                "none of them may be imported",
                where=where, hint="import only the subscribed_members file from Mailchimp's export",
            )
    missing = [name for name in REQUIRED if name not in names]
    if missing:
        raise RecipientError(
            f"missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)}; "
            f"the columns found are {', '.join(h.strip() for h in headings)}",
            where=where, hint=_mailchimp_hint() if _MAILCHIMP_SIGNS & set(names) else (
                "the first line must name at least email, consent_at (when they agreed) and consent_source "
                "(where they agreed), and may add first_name, last_name, consent_text and any other columns"),
        )
    rules = [n for n in names if n in STATUS_COLUMNS | CONSENT_FLAG_COLUMNS | LEFT_DATE_COLUMNS]
    attributes = [n for n in names if n not in KNOWN and n not in rules]
    return Columns(names, headings, attributes, rules)


def _mailchimp_hint() -> str:
    return (
        "this looks like a Mailchimp audience export. Add a consent_source column saying where these people "
        "agreed (e.g. 'Mailchimp sign-up form on our website'), and rename OPTIN_TIME to consent_at. "
        "A row with no OPTIN_TIME was imported into Mailchimp, which holds no evidence for it: find the "
        "clinic's own record of their consent. Times without a UTC offset are read as UK time"
    )
