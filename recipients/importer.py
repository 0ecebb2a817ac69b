"""``newsletter recipients import``: a CSV of people who consented elsewhere, checked before anything is stored.

Rules (the README lists them for users):

* Columns ``email``, ``consent_at`` and ``consent_source`` are required;
  ``first_name``, ``last_name`` and ``consent_text`` are optional; any other column
  becomes an attribute (header lower-cased, spaces to ``_``).
* UTF-8 with or without a BOM, CRLF or LF, quoted fields holding line breaks.
  Line numbers are the physical line where a record *starts*.
* Every row is checked first. Any bad row and nothing is imported, unless
  ``skip_invalid``; bad rows are listed either way.
* Consent evidence (when and where) is required; dates may be ISO 8601 or UK
  day-first (``18/05/2018``, ``18/05/2018 13:05``, ``18/05/2018 13:05:09``); a time
  without a UTC offset is UK time (Europe/London). Future dates are refused.
* The same address twice (case-insensitively) is merged: the earliest consent is
  kept, empty names and attributes are filled from the other row.
* An address that unsubscribed, bounced, complained or was forgotten is never
  re-activated and keeps its history. Someone already on the list is not
  duplicated; a ``subscribed`` event is added only if the file brings new evidence.
* New people are ``active``: the file is the evidence of consent given elsewhere
  (double opt-in is for web sign-ups). The whole import is one transaction.
"""

from __future__ import annotations

import csv
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from newsletters.errors import RecipientError

from .addresses import InvalidAddress, header_safe_problem, identity, normalize_email
from .schema import ACTIVE, ERASED, EV_SUBSCRIBED, PENDING, consent_events, subscribers, suppressions, utcnow
from .store import LEFT_STATUSES, Store

REQUIRED = ("email", "consent_at", "consent_source")
KNOWN = REQUIRED + ("first_name", "last_name", "consent_text")
ALIASES = {"e_mail": "email", "email_address": "email", "e_mail_address": "email"}
UK_TIME = ZoneInfo("Europe/London")
UK_FORMATS = ("%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M", "%d/%m/%Y")
EARLIEST_YEAR = 1990
MAX_SOURCE = 500
MAX_CONSENT_TEXT = 5000
MAX_ATTRIBUTE = 500
LOOKUP_CHUNK = 500


@dataclass
class ImportRow:
    line: int
    email: str
    first_name: str
    last_name: str
    consent_at: datetime
    consent_source: str
    consent_text: str
    attributes: dict
    merged_lines: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class RowProblem:
    line: int
    reasons: tuple[str, ...]

    def __str__(self) -> str:
        return f"line {self.line}: " + "; ".join(self.reasons)


@dataclass(frozen=True)
class Merge:
    line: int
    into_line: int
    email: str

    def __str__(self) -> str:
        return f"line {self.line}: same address as line {self.into_line} ({self.email}); merged, earliest consent kept"


@dataclass
class ParsedFile:
    path: Path
    rows: list[ImportRow]
    problems: list[RowProblem]
    merges: list[Merge]
    records: int  # non-blank records read, valid or not


@dataclass
class ImportReport:
    parsed: ParsedFile
    added: list[ImportRow] = field(default_factory=list)
    evidence_added: list[ImportRow] = field(default_factory=list)
    activated: list[ImportRow] = field(default_factory=list)
    unchanged: list[ImportRow] = field(default_factory=list)
    refused: list[tuple[ImportRow, str]] = field(default_factory=list)


class ImportRejected(RecipientError):
    """Some rows are invalid and ``skip_invalid`` was not given: nothing was imported."""

    def __init__(self, parsed: ParsedFile):
        count = len(parsed.problems)
        super().__init__(
            f"{count} invalid row{'s' if count != 1 else ''}; nothing was imported",
            where=str(parsed.path),
            hint="fix the rows listed above, or pass --skip-invalid to import only the valid ones",
        )
        self.parsed = parsed


def _column_name(raw: str) -> str:
    name = "_".join(raw.strip().lower().replace("-", " ").split())
    return ALIASES.get(name, name)


def parse_consent_time(text: str, now: datetime) -> datetime:
    """ISO 8601 or UK day-first; naive times are UK local time. Raises ValueError with the reason."""
    text = text.strip()
    if not text:
        raise ValueError("missing: when consent was given is part of the evidence")
    value = None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        for fmt in UK_FORMATS:
            try:
                value = datetime.strptime(text, fmt)
                break
            except ValueError:
                continue
    if value is None:
        raise ValueError(
            f"cannot read {text!r} as a date (use 2018-05-18T13:05:00Z, 2018-05-18 13:05 or 18/05/2018 13:05, day first)"
        )
    if value.year < EARLIEST_YEAR:
        raise ValueError(f"{text!r} gives the year {value.year}; write the year with four digits")
    if value.tzinfo is None:
        value = value.replace(tzinfo=UK_TIME)
    value = value.astimezone(timezone.utc)
    if value > now:
        raise ValueError(f"{text!r} is in the future")
    return value


def _check_row(cells: dict[str, str], attribute_columns: list[str], now: datetime) -> tuple[dict, list[str]]:
    reasons: list[str] = []
    values: dict = {}
    try:
        values["email"] = normalize_email(cells.get("email", ""))
    except InvalidAddress as exc:
        reasons.append(f"email: {exc}")
    for name in ("first_name", "last_name"):
        value = cells.get(name, "").strip()
        problem = header_safe_problem(value)
        if problem:
            reasons.append(f"{name}: {problem}")
        values[name] = value
    try:
        values["consent_at"] = parse_consent_time(cells.get("consent_at", ""), now)
    except ValueError as exc:
        reasons.append(f"consent_at: {exc}")
    source = cells.get("consent_source", "").strip()
    if not source:
        reasons.append("consent_source: missing: where consent was given is part of the evidence")
    elif "\x00" in source or len(source) > MAX_SOURCE:
        reasons.append(f"consent_source: holds a NUL character or is longer than {MAX_SOURCE} characters")
    values["consent_source"] = source
    text = cells.get("consent_text", "").strip()
    if "\x00" in text or len(text) > MAX_CONSENT_TEXT:
        reasons.append(f"consent_text: holds a NUL character or is longer than {MAX_CONSENT_TEXT} characters")
    values["consent_text"] = text
    attributes = {}
    for name in attribute_columns:
        value = cells.get(name, "").strip()
        if not value:
            continue
        # Attributes may be merged into a subject line, so they obey the header rules.
        problem = header_safe_problem(value, max_length=MAX_ATTRIBUTE)
        if problem:
            reasons.append(f"{name}: {problem}")
        attributes[name] = value
    values["attributes"] = attributes
    return values, reasons


def _open_reader(path: Path):
    try:
        return open(path, encoding="utf-8-sig", newline="")
    except FileNotFoundError:
        raise RecipientError("no such file", where=str(path)) from None
    except OSError as exc:
        raise RecipientError(f"cannot read the file: {exc.strerror}", where=str(path)) from None


def _decode_error(path: Path) -> RecipientError:
    data = path.read_bytes()
    try:
        data.decode("utf-8-sig")
        line = None
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
    return RecipientError(
        "the file is not UTF-8 text",
        where=f"{path}, line {line}" if line else str(path),
        hint='save it as "CSV UTF-8 (Comma delimited)" from Excel, or as UTF-8 from your spreadsheet program',
    )


def read_csv(path: str | Path, *, now: datetime | None = None) -> ParsedFile:
    """Read and check every row; nothing touches the database here."""
    path = Path(path)
    now = now or datetime.now(timezone.utc)
    rows: dict[str, ImportRow] = {}
    problems: list[RowProblem] = []
    merges: list[Merge] = []
    records = 0
    with _open_reader(path) as stream:
        reader = csv.reader(stream)
        try:
            header = next(reader, None)
            if header is None or not any(cell.strip() for cell in header):
                raise RecipientError("the file is empty; the first line must name the columns", where=str(path))
            columns = [_column_name(cell) for cell in header]
            while columns and not columns[-1]:  # spreadsheets often add empty trailing columns
                columns.pop()
            _check_header(path, header, columns)
            attribute_columns = [name for name in columns if name not in KNOWN]
            end = reader.line_num
            for record in reader:
                start, end = end + 1, reader.line_num
                if not any(cell.strip() for cell in record):
                    continue
                records += 1
                if len(record) > len(columns) and not any(cell.strip() for cell in record[len(columns) :]):
                    record = record[: len(columns)]
                if len(record) != len(columns):
                    span = f" (the record runs to line {end}: an unclosed quote?)" if end > start else ""
                    problems.append(
                        RowProblem(start, (f"has {len(record)} cells but the header has {len(columns)}{span}",))
                    )
                    continue
                values, reasons = _check_row(dict(zip(columns, record)), attribute_columns, now)
                if reasons:
                    problems.append(RowProblem(start, tuple(reasons)))
                    continue
                row = ImportRow(line=start, **values)
                key = identity(row.email)
                if key in rows:
                    merges.append(Merge(start, rows[key].line, rows[key].email))
                    _merge(rows[key], row)
                else:
                    rows[key] = row
        except UnicodeDecodeError:
            raise _decode_error(path) from None
        except csv.Error as exc:
            raise RecipientError(f"not readable as CSV: {exc}", where=f"{path}, line {reader.line_num}") from None
    return ParsedFile(path, list(rows.values()), problems, merges, records)


def _check_header(path: Path, header: list[str], columns: list[str]) -> None:
    where = f"{path}, line 1"
    if len(header) == 1 and ";" in header[0]:
        raise RecipientError(
            "the columns are separated by semicolons, not commas", where=where, hint="export the file as comma-separated CSV"
        )
    for number, name in enumerate(columns, 1):
        if not name:
            raise RecipientError(f"column {number} has no name", where=where, hint="give every column a heading")
    duplicates = sorted({name for name in columns if columns.count(name) > 1})
    if duplicates:
        raise RecipientError(f"column {duplicates[0]!r} appears more than once", where=where)
    missing = [name for name in REQUIRED if name not in columns]
    if missing:
        raise RecipientError(
            f"missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)}",
            where=where,
            hint="the first line must name at least: email, consent_at, consent_source "
            "(and may add first_name, last_name, consent_text and any attributes)",
        )


def _merge(kept: ImportRow, other: ImportRow) -> None:
    """Fold a later duplicate into the first row: earliest consent wins, blanks are filled."""
    kept.merged_lines.append(other.line)
    if other.consent_at < kept.consent_at:
        kept.email = other.email
        kept.consent_at, kept.consent_source, kept.consent_text = (
            other.consent_at, other.consent_source, other.consent_text,
        )
    kept.first_name = kept.first_name or other.first_name
    kept.last_name = kept.last_name or other.last_name
    for name, value in other.attributes.items():
        kept.attributes.setdefault(name, value)


def import_csv(store: Store, path: str | Path, *, skip_invalid: bool = False, now: datetime | None = None) -> ImportReport:
    """Check the file, then import it in one transaction; ImportRejected when rows are bad and not skipped."""
    parsed = read_csv(path, now=now)
    if parsed.problems and not skip_invalid:
        raise ImportRejected(parsed)
    report = ImportReport(parsed)
    label = Path(path).name
    with store._write() as conn:
        for start in range(0, len(parsed.rows), LOOKUP_CHUNK):
            _apply_chunk(store, conn, parsed.rows[start : start + LOOKUP_CHUNK], label, report)
    return report


def _apply_chunk(store: Store, conn: sa.Connection, rows: list[ImportRow], label: str, report: ImportReport) -> None:
    hashes = {id(row): store.hash(row.email) for row in rows}
    wanted = list(hashes.values())
    existing = {r.email_hash: r for r in conn.execute(sa.select(subscribers).where(subscribers.c.email_hash.in_(wanted)))}
    suppressed = set(conn.scalars(sa.select(suppressions.c.email_hash).where(suppressions.c.email_hash.in_(wanted))))
    evidence: dict[int, set] = {}
    if existing:
        query = sa.select(
            consent_events.c.subscriber_id, consent_events.c.at, consent_events.c.source, consent_events.c.consent_text
        ).where(
            consent_events.c.subscriber_id.in_([r.id for r in existing.values()]),
            consent_events.c.event == EV_SUBSCRIBED,
        )
        for subscriber_id, at, source, text in conn.execute(query):
            evidence.setdefault(subscriber_id, set()).add((at, source or "", text or ""))
    new: list[tuple[ImportRow, str, dict]] = []
    for row in rows:
        email_hash = hashes[id(row)]
        current = existing.get(email_hash)
        if email_hash in suppressed or (current is not None and current.status == ERASED):
            report.refused.append((row, ERASED))
            continue
        if current is not None and current.status in LEFT_STATUSES:
            report.refused.append((row, current.status))
            continue
        detail = f"{label} line {row.line}" + (
            f" (merged with line {', '.join(map(str, row.merged_lines))})" if row.merged_lines else ""
        )
        event = dict(
            at=row.consent_at, method="import", source=row.consent_source, consent_text=row.consent_text, detail=detail
        )
        if current is None:
            new.append((row, email_hash, event))
            continue
        _fill_blanks(conn, current, row)
        if (row.consent_at, row.consent_source, row.consent_text) in evidence.get(current.id, set()):
            report.unchanged.append(row)
            continue
        store._event(conn, current.id, EV_SUBSCRIBED, **event)
        if current.status == PENDING:
            store._set_status(conn, current.id, ACTIVE)
            report.activated.append(row)
        else:
            report.evidence_added.append(row)
    _insert_new(store, conn, new, report)


def _insert_new(store: Store, conn: sa.Connection, new: list[tuple[ImportRow, str, dict]], report: ImportReport) -> None:
    """New people in two multi-row statements rather than two per person (an import may hold 100,000)."""
    if not new:
        return
    now = utcnow()
    conn.execute(subscribers.insert(), [
        dict(public_id=secrets.token_urlsafe(16), email=row.email, email_hash=email_hash, first_name=row.first_name,
             last_name=row.last_name, attributes=row.attributes, status=ACTIVE, created_at=now)
        for row, email_hash, _event in new
    ])
    ids = dict(conn.execute(sa.select(subscribers.c.email_hash, subscribers.c.id).where(
        subscribers.c.email_hash.in_([email_hash for _row, email_hash, _event in new]))).all())
    conn.execute(consent_events.insert(), [
        dict(subscriber_id=ids[email_hash], event=EV_SUBSCRIBED, recorded_at=now, **event)
        for _row, email_hash, event in new
    ])
    report.added.extend(row for row, _hash, _event in new)


def _fill_blanks(conn: sa.Connection, current, row: ImportRow) -> None:
    """Add what the store lacks; never overwrite what someone already gave."""
    changes = {}
    if not current.first_name and row.first_name:
        changes["first_name"] = row.first_name
    if not current.last_name and row.last_name:
        changes["last_name"] = row.last_name
    attributes = dict(current.attributes or {})
    added = {k: v for k, v in row.attributes.items() if k not in attributes}
    if added:
        changes["attributes"] = {**attributes, **added}
    if changes:
        conn.execute(subscribers.update().where(subscribers.c.id == current.id).values(**changes))
