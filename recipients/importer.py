"""``newsletter recipients import``: a CSV of people who consented elsewhere, checked before anything is stored.

Rules (the README lists them for users):

* Reading the file (encodings, separators, quotes, line numbers) is
  ``csv_table``; which column is which, and columns that say "do not import",
  is ``import_columns``; consent times are ``consent_time``.
* Every row is checked first. Any bad row and nothing is imported, unless
  ``skip_invalid``; bad rows are listed either way, by the line they start on.
* Consent evidence (when and where) is required.
* The same address twice (case-insensitively) is merged: the earliest consent is
  kept, empty names and attributes are filled from the other row.
* An address that unsubscribed, bounced, complained or was forgotten is never
  re-activated and keeps its history. Someone already on the list is not
  duplicated; a ``subscribed`` event is added only if the file brings new evidence.
* New people are ``active``: the file is the evidence of consent given elsewhere
  (double opt-in is for web sign-ups). The whole import is one transaction.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import sqlalchemy as sa

from foundation.errors import RecipientError

from .addresses import InvalidAddress, header_safe_problem, identity, name_problem, normalize_email
from .consent_time import ConsentTime, MonthFirstDate, parse_consent_time, read_consent_time  # noqa: F401
from .csv_table import Table, read_table
from .import_columns import Columns, read_columns
from foundation.tables import ACTIVE, ERASED, EV_SUBSCRIBED, PENDING, consent_events, subscribers, suppressions, utcnow
from .store import Store
from .transaction import LEFT_STATUSES, StoreTransaction

MAX_SOURCE = 500
MAX_CONSENT_TEXT = 5000
MAX_ATTRIBUTE = 500
LOOKUP_CHUNK = 500
# consent_text may keep its line breaks and tabs; no other control character belongs in evidence.
_TEXT_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


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
    format: str = ""  # "UTF-8 with BOM, comma-separated"
    columns: str = ""  # how each heading was understood
    day_first: list[str] = field(default_factory=list)  # "line 4: 05/06/2024 = 5 June 2024" for each ambiguous date


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


@dataclass
class _Checked:
    """One record after its own checks; dates that could be day or month first are settled later."""

    line: int
    values: dict
    reasons: list[str]
    consent_at_raw: str = ""
    ambiguous: bool = False


def _text_problem(name: str, value: str, limit: int, *, one_line: bool) -> str | None:
    if one_line and ("\r" in value or "\n" in value or "\t" in value):
        return f"{name}: holds a line break or tab; write where consent was given on one line"
    if _TEXT_CONTROL.search(value):
        return f"{name}: holds an invisible control character"
    if len(value) > limit:
        return f"{name}: is longer than {limit} characters"
    return None


def _check_row(cells: dict[str, str], columns: Columns, now: datetime) -> _Checked:
    reasons: list[str] = []
    values: dict = {}
    refusal = columns.refusal(cells)
    if refusal:
        reasons.append(refusal)
    try:
        values["email"] = normalize_email(cells.get("email", ""))
    except InvalidAddress as exc:
        reasons.append(f"email: {exc}")
    for name in ("first_name", "last_name"):
        value = cells.get(name, "").strip()
        problem = name_problem(value)
        if problem:
            reasons.append(f"{name}: {problem}")
        values[name] = value
    checked = _Checked(0, values, reasons, consent_at_raw=cells.get("consent_at", ""))
    try:
        when = read_consent_time(cells.get("consent_at", ""), now)
        values["consent_at"], checked.ambiguous = when.at, when.ambiguous
    except ValueError as exc:
        reasons.append(f"consent_at: {exc}")
        checked.ambiguous = isinstance(exc, MonthFirstDate)  # kept as evidence of a month-first file
    source = cells.get("consent_source", "").strip()
    if not source:
        reasons.append("consent_source: missing: where consent was given is part of the evidence")
    else:
        problem = _text_problem("consent_source", source, MAX_SOURCE, one_line=True)
        if problem:
            reasons.append(problem)
    values["consent_source"] = source
    text = cells.get("consent_text", "").strip()
    problem = _text_problem("consent_text", text, MAX_CONSENT_TEXT, one_line=False)
    if problem:
        reasons.append(problem)
    values["consent_text"] = text
    attributes = {}
    for name in columns.attributes:
        value = cells.get(name, "").strip()
        if not value:
            continue
        # Attributes may be merged into a subject line, so they obey the header rules.
        problem = header_safe_problem(value, max_length=MAX_ATTRIBUTE)
        if problem:
            reasons.append(f"{name}: {problem} (attributes may be used in a subject line)")
        attributes[name] = value
    values["attributes"] = attributes
    return checked


def read_csv(path: str | Path, *, now: datetime | None = None) -> ParsedFile:
    """Read and check every row; nothing touches the database here."""
    path = Path(path)
    now = now or datetime.now(timezone.utc)
    table = read_table(path)
    columns = read_columns(path, table.header, table.header_line)
    checked, problems, records = _check_records(table, columns, now)
    day_first = _settle_ambiguous_dates(checked)
    rows: dict[str, ImportRow] = {}
    merges: list[Merge] = []
    for item in checked:
        if item.reasons:
            problems.append(RowProblem(item.line, tuple(item.reasons)))
            continue
        row = ImportRow(line=item.line, **item.values)
        key = identity(row.email)
        if key in rows:
            merges.append(Merge(row.line, rows[key].line, rows[key].email))
            _merge(rows[key], row)
        else:
            rows[key] = row
    problems.sort(key=lambda problem: problem.line)
    return ParsedFile(path, list(rows.values()), problems, merges, records, table.described, columns.described(),
                      day_first)


def _check_records(table: Table, columns: Columns, now: datetime) -> tuple[list[_Checked], list[RowProblem], int]:
    width = len(columns.names)
    checked: list[_Checked] = []
    problems: list[RowProblem] = []
    records = 0
    for record in table.records():
        if record.cells is not None and not any(cell.strip() for cell in record.cells):
            continue
        records += 1
        if record.problem:  # broken quoting: the cells mean nothing
            problems.append(RowProblem(record.start, (record.problem,)))
            continue
        cells = record.cells
        if len(cells) > width and not any(cell.strip() for cell in cells[width:]):
            cells = cells[:width]
        if len(cells) != width:
            span = f" (the record runs to line {record.end}: is a quote not closed?)" if record.end > record.start else ""
            problems.append(RowProblem(record.start, (f"has {len(cells)} cells but the header has {width}{span}",)))
            continue
        item = _check_row(dict(zip(columns.names, cells)), columns, now)
        item.line = record.start
        checked.append(item)
    return checked, problems, records


def _settle_ambiguous_dates(checked: list[_Checked]) -> list[str]:
    """Day-first readings of dates like 05/06/2024, unless the file shows it was written month first.

    One date that only works month first (05/18/2024) means the file's author wrote
    month first, so every date that could be read either way is refused too.
    """
    month_first = [c for c in checked if c.ambiguous and "consent_at" not in c.values]
    ambiguous = [c for c in checked if c.ambiguous and "consent_at" in c.values]
    if month_first and ambiguous:
        evidence = month_first[0]
        for item in ambiguous:
            item.reasons.append(
                f"consent_at: {item.consent_at_raw.strip()!r} could be day or month first, and line {evidence.line} "
                f"({evidence.consent_at_raw.strip()!r}) can only be month first, so this file's dates with slashes "
                "cannot be trusted to be day first; write it as year-month-day, e.g. 2024-06-05"
            )
        return []
    return [f"line {c.line}: " + ConsentTime(c.values["consent_at"]).day_first_reading(c.consent_at_raw)
            for c in ambiguous if not c.reasons]


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
    with store.transaction() as tx:
        for start in range(0, len(parsed.rows), LOOKUP_CHUNK):
            _apply_chunk(tx, parsed.rows[start : start + LOOKUP_CHUNK], label, report)
    return report


def _apply_chunk(tx: StoreTransaction, rows: list[ImportRow], label: str, report: ImportReport) -> None:
    conn = tx.conn
    hashes = {id(row): tx.store.hash(row.email) for row in rows}
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
        tx.event(current.id, EV_SUBSCRIBED, **event)
        if current.status == PENDING:
            tx.set_status(current.id, ACTIVE)
            report.activated.append(row)
        else:
            report.evidence_added.append(row)
    _insert_new(tx, new, report)


def _insert_new(tx: StoreTransaction, new: list[tuple[ImportRow, str, dict]], report: ImportReport) -> None:
    """New people in two multi-row statements rather than two per person (an import may hold 100,000)."""
    if not new:
        return
    conn = tx.conn
    now = utcnow()
    conn.execute(subscribers.insert(), [
        tx.new_subscriber_values(row.email, first_name=row.first_name, last_name=row.last_name,
                                 attributes=row.attributes, status=ACTIVE)
        for row, _email_hash, _event in new
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
