"""Which send run and subscriber a reading is about, from the delivery ledger: or None, never a guess.

Two proofs count, both unforgeable by a stranger:

* the signed VERP token of the return path (``verp.read_token`` with the site's
  SECRET_KEY), for a (run, subscriber) whose message left us (not queued or skipped);
* the Message-ID of the returned copy, when it is one our sender made. The
  ledger does not store Message-IDs; ``delivery.session.message_id`` derives
  them from the run's secret nonce and the subscriber id
  (``<slug.run.digest@domain>``), so the run comes from the ID and the
  subscriber is found by deriving the IDs of that run's deliveries once per run.

An address in the report is never enough: anyone can write one. This module
is the only place that knows how the ledger stores runs and deliveries for
matching, so it can be re-pointed when the ledger changes (a stored
Message-ID column would make the second proof a single indexed lookup).
"""

from __future__ import annotations

import re

import sqlalchemy as sa

from foundation.tables import QUEUED, SKIPPED, deliveries, send_runs

from ..delivery.ledger import Run, runs_active_since
from ..delivery.session import message_id
from . import verp
from .reading import Reading

# Rows whose message never left us: a bounce cannot be about them, however well signed.
NEVER_HANDED_OVER = (QUEUED, SKIPPED)
OUR_MESSAGE_ID_RE = re.compile(r"^<(?P<slug>[^\s<>@]+)\.(?P<run>\d{1,12})\.(?P<digest>[0-9a-f]{24})@(?P<domain>[^\s<>@]+)>$")


class DeliveryIndex:
    """The ledger, read only, with each run's Message-IDs derived once and kept."""

    def __init__(self, engine: sa.Engine, secret: str = ""):
        self.engine = engine
        self.secret = secret
        self._runs: dict[int, Run | None] = {}
        self._ids: dict[tuple[int, str], dict[str, int]] = {}
        self.ready = self._has_ledger()

    def _has_ledger(self) -> bool:
        try:
            inspector = sa.inspect(self.engine)
            return inspector.has_table("send_runs") and inspector.has_table("deliveries")
        except sa.exc.SQLAlchemyError:
            return False

    def run(self, run_id: int) -> Run | None:
        if run_id not in self._runs:
            with self.engine.connect() as conn:
                row = conn.execute(sa.select(send_runs).where(send_runs.c.id == run_id)).first()
            self._runs[run_id] = Run(**{k: row._mapping[k] for k in Run.__dataclass_fields__}) if row else None
        return self._runs[run_id]

    def subscriber_for(self, run: Run, domain: str, wanted: str) -> int | None:
        key = (run.id, domain)
        if key not in self._ids:
            query = sa.select(deliveries.c.subscriber_id).where(
                deliveries.c.run_id == run.id, deliveries.c.state.not_in(NEVER_HANDED_OVER)
            )
            with self.engine.connect() as conn:
                self._ids[key] = {message_id(run, sid, domain): sid for (sid,) in conn.execute(query)}
        return self._ids[key].get(wanted)

    def handed_over(self, run_id: int, subscriber_id: int) -> bool:
        query = sa.select(deliveries.c.state).where(
            deliveries.c.run_id == run_id, deliveries.c.subscriber_id == subscriber_id
        )
        with self.engine.connect() as conn:
            state = conn.scalar(query)
        return state is not None and state not in NEVER_HANDED_OVER

    def latest_handed_over(self, subscriber_id: int, since) -> int | None:
        """The latest run that handed this subscriber a message at or after ``since``, if any."""
        query = (
            sa.select(deliveries.c.run_id)
            .where(
                deliveries.c.run_id.in_(runs_active_since(since)),  # by the run's key, not the whole table
                deliveries.c.subscriber_id == subscriber_id,
                deliveries.c.state.not_in(NEVER_HANDED_OVER),
                deliveries.c.handed_at >= since,
            )
            .order_by(deliveries.c.run_id.desc())
            .limit(1)
        )
        with self.engine.connect() as conn:
            return conn.scalar(query)


def _by_verp(reading: Reading, index: DeliveryIndex) -> tuple[int, int] | None:
    if not reading.ids.verp_token or not index.secret:
        return None
    pair = verp.read_token(reading.ids.verp_token, index.secret)
    return pair if pair and index.handed_over(*pair) else None


def _by_message_id(reading: Reading, index: DeliveryIndex) -> tuple[int, int] | None:
    for candidate in reading.ids.message_ids:
        parsed = OUR_MESSAGE_ID_RE.match(candidate)
        if not parsed:
            continue
        run = index.run(int(parsed["run"]))
        if run is None or run.issue_slug != parsed["slug"]:
            continue
        subscriber_id = index.subscriber_for(run, parsed["domain"], candidate)
        if subscriber_id is not None:
            return run.id, subscriber_id
    return None


def is_ours(message_id: str) -> bool:
    """Whether a Message-ID has the shape our sender gives (``<slug.run.digest@domain>``)."""
    return bool(OUR_MESSAGE_ID_RE.match(message_id or ""))


def match_reading(reading: Reading, database: DeliveryIndex | sa.Engine, secret: str = "") -> tuple[int, int] | None:
    """(run_id, subscriber_id) of the message a reading is about, or None when nothing we sent is proven.

    Pass a ``DeliveryIndex`` when matching many readings (it keeps each run's
    derived Message-IDs); an engine works for one.
    """
    index = database if isinstance(database, DeliveryIndex) else DeliveryIndex(database, secret)
    if not index.ready:
        return None
    return _by_verp(reading, index) or _by_message_id(reading, index)
