"""The subscriber store: one small interface in front of the database.

Everything that changes a subscriber's status also appends to the consent
ledger in the same transaction, so the status can always be explained. Who may
be mailed is decided in exactly one place, ``eligible_query``; sending takes its
recipients from ``Store.eligible`` and claims each one through
``recipients.handover``, which re-applies the same rule at the moment of handover.

No method here talks to the network: a sign-up commits first and says whether a
confirmation mail is owed (``SignUp.confirmation``); the caller sends it and
then calls ``confirmation_sent``.
"""

from __future__ import annotations

import hmac
import hashlib
from contextlib import contextmanager
from datetime import timedelta
from typing import Iterator

import sqlalchemy as sa

from foundation import migrate
from foundation.database import create_engine
from foundation.errors import ConfigError, RecipientError
from foundation.tables import (
    ACTIVE,
    BOUNCED,
    COMPLAINED,
    ERASED,
    EV_BOUNCED,
    EV_COMPLAINED,
    EV_CONFIRMED,
    EV_ERASED,
    EV_SUBSCRIBED,
    EV_UNSUBSCRIBED,
    PENDING,
    STATUSES,
    UNSUBSCRIBED,
    consent_events,
    store_meta,
    subscribers,
    suppressions,
    utcnow,
)

from .addresses import InvalidAddress, address_hash, name_problem, normalize_email
from .records import ConfirmationDue, LedgerEvent, Recipient, SignUp, Subscriber
from .transaction import LEFT_STATUSES, StoreTransaction

# After any of these, earlier consent no longer counts: a fresh `subscribed` is needed.
STOP_EVENTS = (EV_UNSUBSCRIBED, EV_BOUNCED, EV_COMPLAINED, EV_ERASED)
# A pending address gets at most one confirmation mail in this time, however often the form is sent.
RESEND_AFTER = timedelta(minutes=10)
_KEY_CHECK = "secret_key_check"


class Store:
    """Subscribers, their consent ledger and the suppression list, in one database."""

    def __init__(self, database_url: str, *, secret_key: str, double_opt_in: bool = True):
        if not secret_key:
            raise ConfigError("the subscriber store needs SECRET_KEY", where="environment/.env")
        self.secret_key = secret_key
        self.double_opt_in = double_opt_in
        self.engine = create_engine(database_url)
        try:
            migrate.upgrade(self.engine)
        except sa.exc.OperationalError as exc:
            raise RecipientError(
                f"cannot open the subscriber database: {exc.orig}",
                where=self.engine.url.render_as_string(hide_password=True),
                hint="check DATABASE_URL and that its folder exists and is writable",
            ) from None
        self._check_key()

    # -- plumbing ---------------------------------------------------------------

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @contextmanager
    def _write(self) -> Iterator[sa.Connection]:
        """One transaction that holds the write lock from its first statement."""
        with self.engine.connect() as conn:
            conn.execution_options(sqlite_begin="IMMEDIATE")
            with conn.begin():
                yield conn

    @contextmanager
    def transaction(self) -> Iterator["StoreTransaction"]:
        """One write transaction for callers that change many subscribers at once (the CSV importer)."""
        with self._write() as conn:
            yield StoreTransaction(self, conn)

    def _check_key(self) -> None:
        """Refuse a SECRET_KEY other than the one the stored hashes were made with.

        With another key no hash would match: the suppression list would silently
        stop protecting the addresses that asked to be forgotten.
        """
        check = hmac.new(self.secret_key.encode(), b"newsletters store key check v1", hashlib.sha256).hexdigest()
        with self._write() as conn:
            stored = conn.scalar(sa.select(store_meta.c.value).where(store_meta.c.key == _KEY_CHECK))
            if stored is None:
                conn.execute(store_meta.insert().values(key=_KEY_CHECK, value=check))
            elif not hmac.compare_digest(stored, check):
                raise ConfigError(
                    "SECRET_KEY is not the key this subscriber database was created with",
                    where="environment/.env",
                    hint="restore the original SECRET_KEY; with another key, forgotten addresses are no longer "
                    "recognised and every unsubscribe link already sent stops working",
                )

    def hash(self, address: str) -> str:
        return address_hash(self.secret_key, address)

    @staticmethod
    def check_name(field_name: str, value: str) -> None:
        problem = name_problem(value)
        if problem:
            raise RecipientError(f"{field_name} {problem}", hint="names end up in mail headers")

    @staticmethod
    def normalize(email: str, *, where: str | None = None) -> str:
        try:
            return normalize_email(email)
        except InvalidAddress as exc:
            raise RecipientError(f"not a valid e-mail address: {exc}", where=where or repr(email)) from None

    # -- eligibility: the one answer to "who may receive this issue" -------------

    def eligible_query(self) -> sa.Select:
        """Active, consented since they last left, confirmed where double opt-in applies, not suppressed.

        Consent is a ``subscribed`` event with no unsubscribe, bounce, complaint or
        erasure after it. With double opt-in on, a web sign-up also needs a
        ``confirmed`` event after it; imports and admin adds carry their own evidence.
        """
        s = subscribers
        given = consent_events.alias("given")
        stop = consent_events.alias("stop")
        confirmed = consent_events.alias("confirmed")
        withdrawn_since = sa.exists().where(
            stop.c.subscriber_id == given.c.subscriber_id, stop.c.event.in_(STOP_EVENTS), stop.c.id > given.c.id
        )
        conditions = [given.c.subscriber_id == s.c.id, given.c.event == EV_SUBSCRIBED, ~withdrawn_since]
        if self.double_opt_in:
            confirmed_since = sa.exists().where(
                confirmed.c.subscriber_id == given.c.subscriber_id,
                confirmed.c.event == EV_CONFIRMED,
                confirmed.c.id > given.c.id,
            )
            conditions.append(sa.or_(given.c.method.in_(("import", "admin")), confirmed_since))
        consented = sa.exists().where(*conditions)
        suppressed = sa.exists().where(suppressions.c.email_hash == s.c.email_hash)
        # No ``attributes``: nothing a send does reads them, and decoding each row's JSON was a third of
        # the cost of reading the list (which every sender reads whole; cProfile, two senders on PostgreSQL).
        return sa.select(
            s.c.id, s.c.public_id, s.c.email, s.c.first_name, s.c.last_name
        ).where(s.c.status == ACTIVE, s.c.email.is_not(None), consented, ~suppressed)

    def eligible(self, batch_size: int = 1000) -> Iterator[Recipient]:
        """Every eligible recipient, ordered by id, fetched ``batch_size`` at a time (keyset paging)."""
        query = self.eligible_query().order_by(subscribers.c.id).limit(batch_size)
        last_id = 0
        while True:
            with self.engine.connect() as conn:
                rows = conn.execute(query.where(subscribers.c.id > last_id)).all()
            for row in rows:
                yield Recipient(row.id, row.public_id, row.email, row.first_name, row.last_name)
            if len(rows) < batch_size:
                return
            last_id = rows[-1].id

    def count_eligible(self) -> int:
        with self.engine.connect() as conn:
            return conn.scalar(sa.select(sa.func.count()).select_from(self.eligible_query().subquery()))

    # -- reading -----------------------------------------------------------------

    @staticmethod
    def _subscriber(row) -> Subscriber:
        return Subscriber(
            row.id, row.public_id, row.email, row.first_name, row.last_name, row.attributes or {}, row.status,
            row.created_at,
        )

    def find(self, email: str) -> Subscriber | None:
        address = self.normalize(email)
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(subscribers).where(subscribers.c.email_hash == self.hash(address))).first()
        return self._subscriber(row) if row else None

    def get(self, email: str) -> Subscriber:
        found = self.find(email)
        if found is None:
            raise RecipientError("no subscriber with this address", where=email, hint="see `newsletter recipients list`")
        return found

    def by_public_id(self, public_id: str) -> Subscriber | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(subscribers).where(subscribers.c.public_id == public_id)).first()
        return self._subscriber(row) if row else None

    def subscribers(self, status: str | None = None, batch_size: int = 1000) -> Iterator[Subscriber]:
        query = sa.select(subscribers).order_by(subscribers.c.id).limit(batch_size)
        if status:
            query = query.where(subscribers.c.status == status)
        last_id = 0
        while True:
            with self.engine.connect() as conn:
                rows = conn.execute(query.where(subscribers.c.id > last_id)).all()
            yield from (self._subscriber(row) for row in rows)
            if len(rows) < batch_size:
                return
            last_id = rows[-1].id

    def ledger(self, subscriber_id: int) -> list[LedgerEvent]:
        query = sa.select(consent_events).where(consent_events.c.subscriber_id == subscriber_id)
        with self.engine.connect() as conn:
            return [LedgerEvent(**row._mapping) for row in conn.execute(query.order_by(consent_events.c.id))]

    def is_suppressed(self, email: str) -> bool:
        with self.engine.connect() as conn:
            return StoreTransaction(self, conn).suppressed(self.hash(self.normalize(email)))

    def stats(self) -> dict[str, int]:
        counts = {status: 0 for status in STATUSES}
        with self.engine.connect() as conn:
            query = sa.select(subscribers.c.status, sa.func.count()).group_by(subscribers.c.status)
            counts.update({status: n for status, n in conn.execute(query)})
            suppressed = conn.scalar(sa.select(sa.func.count()).select_from(suppressions))
        counts["total"] = sum(counts[s] for s in STATUSES)
        counts["eligible"] = self.count_eligible()
        counts["suppressed"] = suppressed
        return counts

    # -- changes -----------------------------------------------------------------

    def add(
        self, email: str, *, first_name: str = "", last_name: str = "", source: str = "admin", consent_text: str = ""
    ) -> Subscriber:
        """An administrator records consent given elsewhere: the person is active at once."""
        address = self.normalize(email)
        email_hash = self.hash(address)
        first_name, last_name = first_name.strip(), last_name.strip()
        self.check_name("first_name", first_name)
        self.check_name("last_name", last_name)
        with self.transaction() as tx:
            if tx.suppressed(email_hash):
                raise RecipientError(
                    "this address was forgotten at its owner's request and may not be added again", where=address
                )
            existing = tx.by_hash(email_hash)
            if existing is not None:
                hint = (
                    "they left the list; only they can rejoin, through the subscribe form"
                    if existing.status in LEFT_STATUSES
                    else None
                )
                raise RecipientError(f"already on the list (status {existing.status})", where=address, hint=hint)
            subscriber_id = tx.insert_subscriber(address, first_name=first_name, last_name=last_name, status=ACTIVE)
            tx.event(subscriber_id, EV_SUBSCRIBED, method="admin", source=source or "admin", consent_text=consent_text)
        return self.get(address)

    def subscribe(
        self,
        email: str,
        first_name: str = "",
        *,
        source: str,
        consent_text: str,
        ip: str | None = None,
        user_agent: str | None = None,
    ) -> SignUp:
        """A sign-up from the public form, committed before any mail is sent.

        When the result carries a ``confirmation``, the caller sends that mail and
        then calls ``confirmation_sent``; if the mail fails the person stays
        pending with the mail owed, and a later sign-up or ``confirmations_due``
        sends it. Each sign-up draws a new nonce, so a link from an earlier one
        confirms nothing. Someone who had left (unsubscribed, bounced,
        complained) must confirm again even with double opt-in off, so a
        stranger cannot put them back on the list.
        """
        address = self.normalize(email)
        email_hash = self.hash(address)
        first_name = first_name.strip()
        self.check_name("first_name", first_name)
        evidence = dict(method="web", source=source, consent_text=consent_text, ip=ip, user_agent=user_agent)
        with self.transaction() as tx:
            if tx.suppressed(email_hash):
                return SignUp("suppressed")
            row = tx.by_hash(email_hash)
            if row is None:
                status = PENDING if self.double_opt_in else ACTIVE
                subscriber_id = tx.insert_subscriber(address, first_name=first_name, status=status)
                tx.event(subscriber_id, EV_SUBSCRIBED, **evidence)
                if status == ACTIVE:
                    return SignUp("active")
                row = tx.by_id(subscriber_id)
            elif row.status in (ACTIVE, ERASED):
                return SignUp(row.status)
            elif row.status == PENDING and row.confirm_mailed_at and utcnow() - row.confirm_mailed_at < RESEND_AFTER:
                return SignUp("throttled")
            else:
                tx.set_status(row.id, PENDING)
                tx.event(row.id, EV_SUBSCRIBED, **evidence)
            nonce = tx.new_confirmation(row.id)
            return SignUp("pending", ConfirmationDue(row.id, row.public_id, nonce, row.email, row.first_name))

    def confirmation_sent(self, due: ConfirmationDue) -> None:
        """The confirmation mail for this sign-up was handed over: stop owing it (a newer sign-up still owes its own)."""
        with self.transaction() as tx:
            tx.conn.execute(
                subscribers.update()
                .where(subscribers.c.id == due.subscriber_id, subscribers.c.confirm_nonce == due.nonce)
                .values(confirm_mailed_at=utcnow())
            )

    def confirmations_due(self) -> list[ConfirmationDue]:
        """Pending sign-ups whose confirmation mail has not gone out yet (the mail server was down)."""
        s = subscribers
        query = (
            sa.select(s.c.id, s.c.public_id, s.c.confirm_nonce, s.c.email, s.c.first_name)
            .where(s.c.status == PENDING, s.c.confirm_nonce.is_not(None), s.c.confirm_mailed_at.is_(None))
            .order_by(s.c.id)
        )
        with self.engine.connect() as conn:
            return [ConfirmationDue(*row) for row in conn.execute(query)]

    def confirm(self, public_id: str, nonce: str, *, ip: str | None = None, user_agent: str | None = None) -> str:
        """Double opt-in: a pending subscriber becomes active. Returns confirmed, already or invalid.

        ``nonce`` comes from the link: only the link of the current sign-up
        counts, so one issued before an unsubscribe or a newer sign-up is invalid.
        """
        with self.transaction() as tx:
            row = tx.by_public_id(public_id)
            if row is None or row.status not in (PENDING, ACTIVE) or not row.confirm_nonce:
                return "invalid"
            if not hmac.compare_digest(row.confirm_nonce, nonce or ""):
                return "invalid"
            if row.status == ACTIVE:
                return "already"
            tx.set_status(row.id, ACTIVE)
            tx.event(row.id, EV_CONFIRMED, ip=ip, user_agent=user_agent)
            return "confirmed"

    def unsubscribe(self, public_id: str, channel: str, *, ip: str | None = None, user_agent: str | None = None) -> bool:
        """From a link or a one-click POST. Idempotent: True only when this call changed something."""
        with self.transaction() as tx:
            row = tx.by_public_id(public_id)
            return row is not None and tx.unsubscribe(row, channel, ip=ip, user_agent=user_agent)

    def unsubscribe_email(self, email: str, channel: str = "admin", detail: str | None = None) -> bool:
        address = self.normalize(email)
        with self.transaction() as tx:
            row = tx.by_hash(self.hash(address))
            if row is None:
                raise RecipientError("no subscriber with this address", where=address)
            return tx.unsubscribe(row, channel, detail=detail)

    def record_bounce(self, subscriber_id: int, detail: str | None = None) -> bool:
        """A permanent bounce: the address stops receiving mail. True when the status changed."""
        return self._record_problem(subscriber_id, EV_BOUNCED, BOUNCED, (ACTIVE, PENDING), detail)

    def record_complaint(self, subscriber_id: int, detail: str | None = None) -> bool:
        """A spam complaint (feedback loop): the strongest "stop", whatever the status was."""
        return self._record_problem(subscriber_id, EV_COMPLAINED, COMPLAINED, (ACTIVE, PENDING, BOUNCED, UNSUBSCRIBED), detail)

    def reinstate(self, email: str, reason: str) -> Subscriber:
        """Undo a bounce or complaint that was wrong: an operator's ``subscribed`` event, method ``admin``.

        Eligibility stays the one rule of ``eligible_query`` (a ``subscribed``
        event with no stop event after it): the operator records, with their
        reason, that the person's consent stands, as they would when adding
        someone by hand. Only a bounce or complaint can be undone this way; a
        person who unsubscribed or was forgotten can only come back themselves.
        """
        reason = (reason or "").strip()
        if not reason:
            raise RecipientError("a reinstatement needs a reason", hint='add --reason "why the bounce was wrong"')
        address = self.normalize(email)
        with self.transaction() as tx:
            row = tx.by_hash(self.hash(address))
            if row is None:
                raise RecipientError("no subscriber with this address", where=address)
            if row.status not in (BOUNCED, COMPLAINED):
                raise RecipientError(
                    f"only a bounced or complained subscriber can be reinstated (status {row.status})", where=address
                )
            tx.set_status(row.id, ACTIVE)
            tx.event(row.id, EV_SUBSCRIBED, method="admin", source=f"reinstated after {row.status}", detail=reason)
        return self.get(address)

    def _record_problem(self, subscriber_id, event, status, replaces, detail) -> bool:
        with self.transaction() as tx:
            row = tx.by_id(subscriber_id)
            if row is None:
                raise RecipientError(f"no subscriber with id {subscriber_id}")
            if row.status == ERASED:
                return False  # nothing personal may be added about a forgotten person
            tx.event(row.id, event, detail=detail)
            if row.status in replaces:
                tx.set_status(row.id, status)
                return True
            return False

    def forget(self, email: str) -> bool:
        """Erase a person's data and keep only the keyed hash that stops them being added again.

        The subscriber row stays (blank, status ``erased``) so the ledger keeps its
        events and times: the proof of what was done. Names, address, attributes,
        IPs, user agents and free-text details are blanked. Returns whether the
        address was on the list; it is suppressed either way.
        """
        address = self.normalize(email)
        email_hash = self.hash(address)
        with self.transaction() as tx:
            conn = tx.conn
            if not tx.suppressed(email_hash):
                conn.execute(suppressions.insert().values(email_hash=email_hash, reason="erased", created_at=utcnow()))
            row = tx.by_hash(email_hash)
            if row is None:
                return False
            conn.execute(
                subscribers.update()
                .where(subscribers.c.id == row.id)
                .values(email=None, first_name="", last_name="", attributes={}, status=ERASED, confirm_nonce=None)
            )
            conn.execute(
                consent_events.update()
                .where(consent_events.c.subscriber_id == row.id)
                .values(ip=None, user_agent=None, detail=None)
            )
            tx.event(row.id, EV_ERASED, detail=None)
            return True
