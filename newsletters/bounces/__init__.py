"""Reading what comes back after a send: bounces, complaints and automatic replies.

``read_message(raw)`` turns the bytes of one returned message into a
``Reading`` (kind, recipients, status, reason and what identifies the message
we sent); it changes nothing and trusts nothing. ``verp`` makes and checks the
signed per-recipient return path; ``match`` ties a reading to a send run and
a subscriber through the delivery ledger. ``apply`` is the policy that changes
the list (once per piece of evidence, only when matched), ``process`` feeds it
files, the bounce mailbox and relay events alike, and ``tally`` counts what
came back per run.
"""

from .reader import read_message
from .reading import AUTO_REPLY, COMPLAINT, HARD, KINDS, NOT_A_BOUNCE, SOFT, Identifiers, Reading

__all__ = ["read_message", "Reading", "Identifiers", "KINDS", "HARD", "SOFT", "COMPLAINT", "AUTO_REPLY", "NOT_A_BOUNCE"]
