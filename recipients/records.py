"""What the store hands out: plain frozen records, no database handles in them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Recipient:
    """Who an issue goes to: what personalisation and the delivery ledger need, nothing more."""

    id: int
    public_id: str
    email: str
    first_name: str
    last_name: str


@dataclass(frozen=True)
class Subscriber:
    id: int
    public_id: str
    email: str | None
    first_name: str
    last_name: str
    attributes: dict
    status: str
    created_at: datetime


@dataclass(frozen=True)
class ConfirmationDue:
    """A confirmation mail the caller should send now (after the sign-up committed)."""

    subscriber_id: int
    public_id: str
    nonce: str
    email: str
    first_name: str


@dataclass(frozen=True)
class SignUp:
    """What a sign-up did (``outcome``, which the page must not reveal) and the mail it owes, if any.

    ``outcome`` is one of pending, active, throttled, suppressed, erased.
    """

    outcome: str
    confirmation: ConfirmationDue | None = None


@dataclass(frozen=True)
class LedgerEvent:
    id: int
    subscriber_id: int
    event: str
    at: datetime
    recorded_at: datetime
    method: str | None = None
    source: str | None = None
    consent_text: str | None = None
    channel: str | None = None
    ip: str | None = None
    user_agent: str | None = None
    detail: str | None = None
