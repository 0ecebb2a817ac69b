"""The words a claim is written in, shared by every writer of claims (``recipients.handover``,
``recipients.postgres_claims``): how a claim ended, what a handover ended as, and the statement
that writes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import sqlalchemy as sa

from foundation.tables import SENDING, deliveries


class Claim(Enum):
    """How a claim ended: hand the message over, or not (and why not)."""

    CLAIMED = "claimed"
    SKIPPED = "skipped"  # the subscriber is no longer eligible; the row now says so
    LOST = "lost"  # another process or an earlier session holds or finished the row

    def __bool__(self) -> bool:
        return self is Claim.CLAIMED

    def result(self) -> Claim:
        """A claim already decided is its own result: see ``begin`` on the writers."""
        return self


@dataclass(frozen=True)
class Outcome:
    """What one handover ended as, to be written on the row it claimed."""

    subscriber_id: int
    state: str
    code: int | None = None
    text: str | None = None


def resolve_statement(run, sub, new_state, code, text, now) -> sa.Update:
    """Write a handover's outcome on the row this connection holds in ``sending``."""
    return (
        deliveries.update()
        .where(deliveries.c.run_id == run, deliveries.c.subscriber_id == sub, deliveries.c.state == SENDING)
        .values(state=new_state, reply_code=code, reply_text=text, done_at=now)
    )
