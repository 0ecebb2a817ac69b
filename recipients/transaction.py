"""The statements one write transaction of the subscriber store is made of.

Kept apart from ``store.py`` (the rules) because every change to subscribers
goes through it, whether from one of the store's own methods or from a bulk
caller such as the CSV importer: a status change and its consent-ledger event
are always written together, in the caller's transaction.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa

from foundation.tables import (
    ACTIVE, BOUNCED, COMPLAINED, ERASED, EV_UNSUBSCRIBED, PENDING, UNSUBSCRIBED, consent_events, subscribers,
    suppressions, utcnow,
)

if TYPE_CHECKING:  # only for the annotation: store.py imports this module
    from .store import Store

# Statuses an import or an administrator must never turn back into `active`.
LEFT_STATUSES = (UNSUBSCRIBED, BOUNCED, COMPLAINED, ERASED)


class StoreTransaction:
    """One open write transaction on the store (``Store.transaction()``)."""

    def __init__(self, store: Store, conn: sa.Connection):
        self.store = store
        self.conn = conn

    def by_hash(self, email_hash: str):
        return self.conn.execute(sa.select(subscribers).where(subscribers.c.email_hash == email_hash)).first()

    def by_id(self, subscriber_id: int):
        return self.conn.execute(sa.select(subscribers).where(subscribers.c.id == subscriber_id)).first()

    def by_public_id(self, public_id: str):
        return self.conn.execute(sa.select(subscribers).where(subscribers.c.public_id == public_id)).first()

    def suppressed(self, email_hash: str) -> bool:
        query = sa.select(suppressions.c.email_hash).where(suppressions.c.email_hash == email_hash)
        return self.conn.execute(query).first() is not None

    def event(self, subscriber_id: int, event: str, at: datetime | None = None, **values) -> None:
        """Append to the consent ledger (``at``: when it happened, if not now)."""
        now = utcnow()
        self.conn.execute(
            consent_events.insert().values(
                subscriber_id=subscriber_id, event=event, at=at or now, recorded_at=now, **values
            )
        )

    def set_status(self, subscriber_id: int, status: str) -> None:
        values = {"status": status}
        if status in LEFT_STATUSES:
            values["confirm_nonce"] = None  # a confirm link from before they left must not bring them back
        self.conn.execute(subscribers.update().where(subscribers.c.id == subscriber_id).values(**values))

    def insert_subscriber(self, address: str, *, first_name="", last_name="", attributes=None, status) -> int:
        return self.conn.execute(
            subscribers.insert().values(**self.new_subscriber_values(
                address, first_name=first_name, last_name=last_name, attributes=attributes, status=status
            ))
        ).inserted_primary_key[0]

    def new_subscriber_values(self, address: str, *, first_name="", last_name="", attributes=None, status) -> dict:
        """The row for a new subscriber (also what the importer inserts many of in one statement)."""
        return dict(
            public_id=secrets.token_urlsafe(16),
            email=address,
            email_hash=self.store.hash(address),
            first_name=first_name,
            last_name=last_name,
            attributes=attributes or {},
            status=status,
            created_at=utcnow(),
        )

    def new_confirmation(self, subscriber_id: int) -> str:
        """A fresh nonce for this sign-up's link; the mail for it is owed until ``confirmation_sent``."""
        nonce = secrets.token_urlsafe(12)
        self.conn.execute(
            subscribers.update()
            .where(subscribers.c.id == subscriber_id)
            .values(confirm_nonce=nonce, confirm_mailed_at=None)
        )
        return nonce

    def unsubscribe(self, row, channel: str, ip=None, user_agent=None, detail=None) -> bool:
        if row.status not in (ACTIVE, PENDING, BOUNCED):
            return False
        self.set_status(row.id, UNSUBSCRIBED)
        self.event(row.id, EV_UNSUBSCRIBED, channel=channel, ip=ip, user_agent=user_agent, detail=detail)
        return True
