"""Everything held on each person, ledger included: the answer to a data subject access request.

Records are streamed a batch at a time so a large list never sits in memory.
CSV has one line per ledger event (the person's fields repeated), since a
spreadsheet cannot nest; JSON nests the ledger under each person.
"""

from __future__ import annotations

import csv
import json
from typing import IO, Iterator

import sqlalchemy as sa

from .schema import consent_events, subscribers
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


def write_csv(items: Iterator[dict], out: IO[str]) -> int:
    columns = [name for name in PERSON_FIELDS] + [f"ledger_{name}" for name in EVENT_FIELDS]
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    count = 0
    for count, item in enumerate(items, 1):
        person = [item[name] if name != "attributes" else json.dumps(item[name], ensure_ascii=False)
                  for name in PERSON_FIELDS]
        for event in item["ledger"] or [{}]:
            writer.writerow(person + [event.get(name) for name in EVENT_FIELDS])
    return count
