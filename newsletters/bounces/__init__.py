"""Reading what comes back after a send: bounces, complaints and automatic replies.

``read_message(raw)`` turns the bytes of one returned message into a
``Reading`` (kind, recipients, status, reason and what identifies the message
we sent); it changes nothing and trusts nothing. ``verp`` makes and checks the
signed per-recipient return path; ``match`` ties a reading to a send run and
a subscriber through the delivery ledger. ``apply`` is the policy that changes
the list (once per piece of evidence, only when matched), ``process`` feeds it
files, the bounce mailbox and relay events alike, and ``tally`` counts what
came back per run.

Import each from its module (``newsletters.bounces.reader.read_message``): this
package imports none of them, so a send, which needs only ``verp`` and ``tally``,
does not compile the reader's hundreds of patterns (30 ms of every start-up).
"""
