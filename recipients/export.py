"""Everything held on each person, ledger included: the answer to a data subject access request.

Records are streamed a batch at a time so a large list never sits in memory.
CSV has one line per ledger event (the person's fields repeated), since a
spreadsheet cannot nest; JSON nests the ledger under each person.

A CSV export is opened in a spreadsheet, and its cells hold what strangers typed
into a form or a file. A cell starting with ``=``, ``+``, ``-`` or ``@`` (or a
tab or CR, which some spreadsheets skip before those) would run as a formula,
e.g. ``=HYPERLINK(…)`` or a DDE command (CSV injection). Such cells are written
with a leading ``'``, which spreadsheets take as "this is text" and do not show.
Programs reading the file should drop one leading ``'`` from such cells. JSON is
written exactly as stored.
"""

from __future__ import annotations

import csv
import json
from typing import IO, Iterator

import sqlalchemy as sa

from foundation.tables import consent_events, subscribers
from .store import Store

PERSON_FIELDS = ("id", "public_id", "email", "first_name", "last_name", "status", "created_at", "attributes")
EVENT_FIELDS = (
    "event", "at", "recorded_at", "method", "source", "consent_text", "channel", "ip", "user_agent", "detail",
)


def _iso(value):
    return value.isoformat() if value is not None else None


def records(store: Store, email: str | None = None, batch_size: int = 500) -> Iterator[dict]:
    """One dict per person (all of them, or the one with ``email``), each with its ``ledger`` list."""
    query = sa.select(subscribers).order_by(subscribers.c.id).limit(batch_size)
    if email is not None:
        query = query.where(subscribers.c.id == store.get(email).id)
    last_id = 0
    while True:
        with store.engine.connect() as conn:
            people = conn.execute(query.where(subscribers.c.id > last_id)).all()
            events = conn.execute(
                sa.select(consent_events)
                .where(consent_events.c.subscriber_id.in_([p.id for p in people]))
                .order_by(consent_events.c.id)
            ).all() if people else []
        ledgers: dict[int, list[dict]] = {}
        for event in events:
            ledgers.setdefault(event.subscriber_id, []).append(
                {name: _iso(getattr(event, name)) if name in ("at", "recorded_at") else getattr(event, name)
                 for name in EVENT_FIELDS}
            )
        for person in people:
            record = {name: getattr(person, name) for name in PERSON_FIELDS}
            record["created_at"] = _iso(person.created_at)
            record["attributes"] = person.attributes or {}
            record["ledger"] = ledgers.get(person.id, [])
            yield record
        if len(people) < batch_size:
            return
        last_id = people[-1].id


def write_json(items: Iterator[dict], out: IO[str]) -> int:
    out.write("[")
    count = 0
    for count, item in enumerate(items, 1):
        out.write(("," if count > 1 else "") + "\n  " + json.dumps(item, ensure_ascii=False))
    out.write("\n]\n" if count else "]\n")
    return count


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value):
    """A cell a spreadsheet shows as text rather than runs: ``'`` before a formula's first character."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def write_csv(items: Iterator[dict], out: IO[str]) -> int:
    columns = [name for name in PERSON_FIELDS] + [f"ledger_{name}" for name in EVENT_FIELDS]
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    count = 0
    for count, item in enumerate(items, 1):
        person = [item[name] if name != "attributes" else json.dumps(item[name], ensure_ascii=False)
                  for name in PERSON_FIELDS]
        for event in item["ledger"] or [{}]:
            writer.writerow([spreadsheet_safe(cell) for cell in person + [event.get(name) for name in EVENT_FIELDS]])
    return count
