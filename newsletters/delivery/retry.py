"""What each kind of answer means for a message, and when to try again.

The one rule that prevents duplicates lives here: a message is retried only
when the server cannot have accepted it, that is after a 4xx reply or a
connection lost *before* the end-of-data dot. Lost after the dot, nobody knows;
the message becomes "unknown" and is left alone.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from ..errors import TransportError
from ..transport import ConnectionLost, SMTPRefused
from .ledger import BOUNCED, DEFERRED, FAILED, UNKNOWN


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter, bounded in attempts (within one run session).

    Attempt n (1-based) that fails temporarily waits ``base * 2**(n-1)`` seconds,
    at most ``cap``, scaled by a random factor in [0.5, 1] so that many
    connections refused together do not come back together.
    """

    max_attempts: int = 5
    base: float = 15.0
    cap: float = 300.0

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        raw = min(self.cap, self.base * (2 ** max(0, attempt - 1)))
        return raw * (0.5 + 0.5 * (rng or random).random())

    def may_retry(self, attempt: int) -> bool:
        return attempt < self.max_attempts


@dataclass(frozen=True)
class Verdict:
    """How a failed handover is recorded, and whether the run can go on."""

    state: str  # deferred (retry), failed, bounced or unknown
    code: int | None
    text: str
    retry: bool = False
    abort: bool = False  # a problem with us or the server, not with this recipient
    released: bool = False  # nothing left; the claim is simply undone


def judge(exc: Exception) -> Verdict:
    """Classify what ``Transport.send`` raised."""
    if isinstance(exc, SMTPRefused):
        if exc.stage == "mail" and exc.permanent:
            # MAIL FROM refused for good: the server will not take mail from us at all.
            return Verdict(FAILED, exc.code, exc.text, abort=True, released=True)
        if not exc.permanent:
            return Verdict(DEFERRED, exc.code, exc.text, retry=True)
        if exc.bad_recipient:
            return Verdict(BOUNCED, exc.code, exc.text)
        return Verdict(FAILED, exc.code, exc.text)
    if isinstance(exc, ConnectionLost):
        if exc.handed_over:
            return Verdict(UNKNOWN, None, exc.message)
        return Verdict(DEFERRED, None, exc.message, retry=True)
    if isinstance(exc, TransportError):
        # Certificate, login, STARTTLS, a 5xx greeting: set up before anything was sent.
        return Verdict(FAILED, None, exc.message, abort=True, released=True)
    # A bug of ours in the middle of a handover: we cannot know what went out.
    return Verdict(UNKNOWN, None, f"internal error during handover: {exc!r}", abort=True)
