"""Claims on PostgreSQL through libpq's asynchronous calls: one round trip per message, sent early.

Through Core a claim-and-record on PostgreSQL is BEGIN, two or three UPDATEs
and COMMIT, each a round trip to the server, and the COMMIT waits for the WAL
to reach the disk: measured in bench/send.py that made a send 0.23x as fast as
on SQLite. Here the outcome and the claim are one statement (data-modifying
CTEs, compiled once from ``Handover.claim_statements`` so the eligibility rule
is the store's, not a copy), prepared once per connection and run as its own
transaction; the skip that marks a refused subscriber follows only a refusal.

It goes through ``psycopg.pq``, the libpq wrapper psycopg itself is built on,
for one reason: ``begin`` sends the statement and returns at once, ``result``
waits for the answer. The delivery pipe sends the claim, then the message's
envelope (MAIL, RCPT, DATA), then reads both answers, so the database's round
trip runs during the mail server's; only then does the message itself go out
(or, when the claim was refused, the connection is dropped before it does).
Through psycopg's cursors the same statement cost the sender 35 µs of Python
per message, and its wait came on top of the mail server's.

The claim judges eligibility in the statement that takes the row; a
concurrent claimer of the same row waits for the row lock, then re-checks
``state`` and finds it taken. A refused claim is followed by the skip in a
transaction of its own (see ``_InFlight``): it marks the row ``skipped`` if
the subscriber is still not eligible, and otherwise the row was another's: LOST.

Durability: each such transaction commits with ``synchronous_commit = off``
(set for that transaction only, by ``set_config(..., true)``). A crash of
the sender loses nothing (the commit is done when the answer arrives); only a
crash of the *database server* can lose the last fraction of a second of
claims and outcomes. Those rows then read as before the claim, so a resume may
send those few messages again: the same trade SQLite makes here with
``synchronous=NORMAL`` (see ``Ledger.connect``).
"""

from __future__ import annotations

import itertools
import re
import select
from datetime import datetime

import sqlalchemy as sa

from foundation.tables import SENDABLE, deliveries, utcnow

from .claims import Claim, Outcome, resolve_statement

_PLACEHOLDER = re.compile(r"%%\((\w+)\)s")  # ours, as the psycopg dialect writes them (doubled)
# Prepared statements live as long as the server session, which outlives a writer when its connection goes
# back to the pool: each writer's names are new in the process, so a later writer there never collides.
_NAMES = itertools.count()


class PostgresHandoverWriter:
    """Claims and outcomes on one worker's psycopg connection, which it leaves idle between statements."""

    def __init__(self, handover, conn: sa.Connection):
        self.handover = handover
        self.conn = conn
        self.pg = conn.connection.dbapi_connection.pgconn
        # Imported here, with the first writer: psycopg comes with the ``postgres`` extra, which a SQLite
        # site need not have, nor spend 50 ms of each command's start-up importing.
        from psycopg import errors, pq

        self._pq, self._errors = pq, errors
        self._prepared: dict[tuple, dict[str, tuple[bytes, tuple[str, ...]]]] = {}
        self._in_flight: _InFlight | None = None

    def close(self) -> None:
        """Read an answer still on its way, so the connection goes back to its owner idle; one that cannot be
        made idle (an answer interrupted half-read) is invalidated instead of going back to a pool busy."""
        self._read_in_flight()
        if self._prepared:  # the planner setting of ``_statements`` goes no further than this writer
            try:
                self.pg.send_query(b"RESET enable_seqscan")
                self._flush()
                self._receive()
            except Exception:
                pass  # the connection is broken: its owner finds out on its next use
        status = self._pq.TransactionStatus
        if self.pg.transaction_status in (status.ACTIVE, status.UNKNOWN):  # an answer still coming, or broken
            self.conn.invalidate()

    def _read_in_flight(self) -> None:
        if self._in_flight is not None:
            try:
                self._in_flight.result()
            except Exception:
                pass  # the connection is broken: its owner finds out on its next use

    def record(self, run_id: int, outcome: Outcome | None, claim: int | None = None, claimable=SENDABLE) -> Claim:
        """In one statement: write the previous message's outcome, and claim the next subscriber."""
        return self.begin(run_id, outcome, claim, claimable).result()

    def begin(self, run_id: int, outcome: Outcome | None, claim: int | None = None, claimable=SENDABLE):
        """What ``record`` does, sent now and answered by ``result()`` on what this returns."""
        if outcome is None and claim is None:
            return Claim.CLAIMED
        self._read_in_flight()  # a claim nobody read (its caller failed): read it, or libpq refuses the next
        statements = self._statements(tuple(claimable))
        values = dict(run=run_id, sub=claim, now=utcnow())
        if outcome is not None:
            values.update(previous=outcome.subscriber_id, new_state=outcome.state, code=outcome.code,
                          text=outcome.text)
        # One statement sees one snapshot: an outcome and a claim of the same row go one after the other.
        if outcome is not None and (claim is None or claim == outcome.subscriber_id):
            self._send(statements["resolve"], values)
            self._receive()
            outcome = None
        if claim is None:
            return Claim.CLAIMED
        self._send(statements["both" if outcome is not None else "claim"], values)
        self._in_flight = _InFlight(self, statements["skip"], values)
        return self._in_flight

    # -- the statements ------------------------------------------------------------------
    def _statements(self, states: tuple[str, ...]) -> dict[str, tuple[bytes, tuple[str, ...]]]:
        found = self._prepared.get(states)
        if found is None:
            # The plan is prepared once and kept for the whole send. In a first send, where senders
            # queue the list a share at a time, it is made while the run holds a few rows, and a
            # sequential scan is then cheapest: once the run has grown it reads the whole table for
            # each claim (measured: 790 µs a claim, against 76). A claim touches one row, found by
            # its (run, subscriber) key, the only index that leads to it (migration 0009; before,
            # the planner also took the (run, state) one and walked the whole run per message).
            self.pg.send_query(b"SET enable_seqscan = off")
            self._flush()
            self._receive()
            found = {}
            for kind, text in self._texts(states).items():
                name = f"newsletters_{kind}_{next(_NAMES)}".encode()
                sql, order = _numbered(text)
                self.pg.send_prepare(name, sql)
                self._flush()
                self._receive()
                found[kind] = (name, order)
            self._prepared[states] = found
        return found

    def _texts(self, states: tuple[str, ...]) -> dict[str, str]:
        dialect = self.handover.engine.dialect
        names = ("run", "sub", "previous", "new_state", "code", "text", "now")
        placeholder = {name: sa.literal_column(f"%({name})s") for name in names}

        def sql(statement) -> str:
            return str(statement.returning(deliveries.c.subscriber_id).compile(
                dialect=dialect, compile_kwargs={"literal_binds": True}))

        run, sub, previous, new_state, code, text, now = placeholder.values()
        claim, skip = (sql(statement) for statement in self.handover.claim_statements(run, sub, now, states))
        resolve = sql(resolve_statement(run, previous, new_state, code, text, now))
        lazy_commit = "set_config('synchronous_commit', 'off', true)"
        # The skip goes only after a refusal (``_InFlight.result``), on its own: carried in every claim,
        # where it is almost never needed, it made the server set up a second eligibility check each
        # time (measured: 152 µs of the server's CPU per claim, against 127 without; six alternated
        # rounds of 3,000 claims).
        claims = f"claimed AS ({claim}) SELECT count(*), 0, {lazy_commit} FROM claimed"
        return {
            "both": f"WITH resolved AS ({resolve}), {claims}",
            "claim": f"WITH {claims}",
            "resolve": f"WITH resolved AS ({resolve}) SELECT count(*), 0, {lazy_commit} FROM resolved",
            "skip": f"WITH skipped AS ({skip}) SELECT 0, count(*), {lazy_commit} FROM skipped",
        }

    # -- libpq -----------------------------------------------------------------------------
    def _send(self, statement: tuple[bytes, tuple[str, ...]], values: dict) -> None:
        if self.pg.transaction_status != self._pq.TransactionStatus.IDLE:
            raise RuntimeError("a claim must be its own transaction, and this connection is inside one")
        name, order = statement
        self.pg.send_query_prepared(name, [_as_text(values[key]) for key in order])
        self._flush()

    def _flush(self) -> None:
        while self.pg.flush():  # 1: the socket took only part of it (psycopg runs libpq non-blocking)
            select.select([], [self.pg.socket], [])

    def _receive(self) -> tuple[int, int] | None:
        """The statement's one row, once the server has answered: (claimed, 0) from a claim, (0, skipped)
        from a skip; its error, raised."""
        row, error = None, None
        while True:
            self.pg.consume_input()
            while self.pg.is_busy():
                select.select([self.pg.socket], [], [])
                self.pg.consume_input()
            result = self.pg.get_result()
            if result is None:
                break
            if result.status == self._pq.ExecStatus.TUPLES_OK:
                row = (int(result.get_value(0, 0)), int(result.get_value(0, 1)))
            elif result.status != self._pq.ExecStatus.COMMAND_OK and error is None:
                error = self._errors.error_from_result(result)
        if error is not None:
            raise error
        return row


class _InFlight:
    """A claim sent and not answered yet; ``result`` reads the answer (once) and says how it ended.

    A refused claim is followed by the skip, in its own transaction: a row still
    waiting whose subscriber is not eligible now becomes ``skipped``; one it leaves
    alone is another's (LOST). The two see different snapshots, so a subscriber
    who consents again in between is neither claimed nor skipped this time: the
    row stays queued for a later session, and nobody ineligible is ever mailed.
    """

    def __init__(self, writer: PostgresHandoverWriter, skip: tuple[bytes, tuple[str, ...]], values: dict):
        self.writer = writer
        self._skip, self._values = skip, values
        self._claim: Claim | None = None
        self._error: BaseException | None = None

    def result(self) -> Claim:
        if self._claim is None and self._error is None:
            try:
                claimed, _ = self.writer._receive()
                if not claimed:
                    self.writer._send(self._skip, self._values)
                    _, skipped = self.writer._receive()
            except BaseException as exc:
                self._error = exc
            finally:
                self.writer._in_flight = None
            if self._error is None:
                self._claim = Claim.CLAIMED if claimed else Claim.SKIPPED if skipped else Claim.LOST
        if self._error is not None:
            raise self._error
        return self._claim


def _numbered(text: str) -> tuple[bytes, tuple[str, ...]]:
    """``%(name)s`` placeholders as libpq's ``$1 … $n``, and the names in that order."""
    order: list[str] = []

    def number(match: re.Match) -> str:
        if match.group(1) not in order:
            order.append(match.group(1))
        return f"${order.index(match.group(1)) + 1}"

    # Constants were written as literals with any '%' doubled, as psycopg's own placeholders need.
    return _PLACEHOLDER.sub(number, text).replace("%%", "%").encode(), tuple(order)


def _as_text(value) -> bytes | None:
    """A parameter in PostgreSQL's text form; the server types it by where it stands in the statement."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat().encode()
    return str(value).encode()
