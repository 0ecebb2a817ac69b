"""Applying what came back to the list: one piece of evidence at a time, once, and only when it is ours.

Every report that was processed (a returned message from a file or the bounce
mailbox, a relay's verified event) becomes one ``bounce_events`` row, keyed by
its evidence: the SHA-256 of the raw message, or the relay's event id. The
same evidence processed again changes nothing.

The policy (``[bounces]`` in ``newsletter.toml``):

* only a report matched to a message we sent (``match``) may change the list;
  an unmatched one is stored and counted (``unmatched``), never acted on, so a
  forged bounce removes nobody;
* ``hard`` → bounced at once; ``complaint`` → complained at once;
* ``soft`` → bounced once ``soft_limit`` of the subscriber's last
  ``soft_issues`` sends (runs that handed them a message) came back soft: a
  full mailbox for one issue is not a dead address;
* ``auto-reply`` and ``not-a-bounce`` → nothing (``ignored``).

Each status change goes through the list's own ``Store.record_bounce`` /
``record_complaint``, whose consent-ledger event names the evidence (the
``bounce_events`` row, its kind, code, reason and source). The row is written
first with no action and given one after the list changed, so a crash between
the two re-applies that one report on the next run instead of losing it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import sqlalchemy as sa

from foundation.tables import bounce_events, deliveries, send_runs, utcnow
from recipients import Store

from .match import NEVER_HANDED_OVER
from .reading import COMPLAINT, HARD, SOFT

BOUNCED, COMPLAINED, COUNTED, ALREADY, IGNORED, UNMATCHED, DUPLICATE = (
    "bounced", "complained", "counted", "already", "ignored", "unmatched", "duplicate",
)
# What ``apply`` may answer, in the order a summary shows them.
OUTCOMES = (BOUNCED, COMPLAINED, COUNTED, ALREADY, IGNORED, UNMATCHED, DUPLICATE)


@dataclass(frozen=True)
class BouncePolicy:
    soft_limit: int = 3
    soft_issues: int = 3

    @classmethod
    def from_site(cls, site) -> "BouncePolicy":
        return cls(site.config.bounces_soft_limit, site.config.bounces_soft_issues)


@dataclass(frozen=True)
class Evidence:
    """One report, read and matched, ready to apply."""

    key: str  # unique: "sha256:<hex>" of a message, "<relay>:<event id>" of a relay's event
    source: str  # file, mailbox, ses, postmark, mailgun, sendgrid
    label: str  # what a person looks for: the file or mailbox message, the relay's event id
    kind: str
    status: str = ""
    reason: str = ""
    match: tuple[int, int] | None = None  # (run_id, subscriber_id)

    @property
    def summary(self) -> str:
        return f"{self.source} {self.label}"[:500]


def message_evidence(raw: bytes) -> str:
    """The key of a returned message: the same bytes from a file or the mailbox are the same evidence."""
    return "sha256:" + hashlib.sha256(raw).hexdigest()


class BounceApplier:
    """Applies evidence to one store's list by the site's policy; ``outcomes`` counts what it did."""

    def __init__(self, store: Store, policy: BouncePolicy):
        self.store = store
        self.engine = store.engine
        self.policy = policy
        self.outcomes: dict[str, int] = {}

    def apply(self, evidence: Evidence) -> str:
        row_id = self._claim(evidence)
        if row_id is None:
            outcome = DUPLICATE
        else:
            outcome = self._act(evidence, row_id)
            with self.engine.begin() as conn:
                conn.execute(bounce_events.update().where(bounce_events.c.id == row_id).values(action=outcome))
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
        return outcome

    def _claim(self, evidence: Evidence) -> int | None:
        """The row of this evidence, new or left half-applied by a crash; None when it was applied before."""
        try:
            return self._insert_or_resume(evidence)
        except sa.exc.IntegrityError:  # another process (serve, a cron fetch) inserted it a moment ago
            return None

    def _insert_or_resume(self, evidence: Evidence) -> int | None:
        run_id, subscriber_id = evidence.match or (None, None)
        with self.engine.begin() as conn:
            row = conn.execute(
                sa.select(bounce_events.c.id, bounce_events.c.action).where(bounce_events.c.evidence == evidence.key)
            ).first()
            if row is not None:
                return None if row.action is not None else row.id
            return conn.execute(
                bounce_events.insert().values(
                    evidence=evidence.key, source=evidence.source, kind=evidence.kind, status=evidence.status[:16],
                    reason=evidence.reason[:32], summary=evidence.summary, run_id=run_id,
                    subscriber_id=subscriber_id, received_at=utcnow(),
                )
            ).inserted_primary_key[0]

    def _act(self, evidence: Evidence, row_id: int) -> str:
        if evidence.kind not in (HARD, SOFT, COMPLAINT):
            return IGNORED
        if evidence.match is None:
            return UNMATCHED
        run_id, subscriber_id = evidence.match
        detail = self._detail(evidence, row_id, run_id)
        if evidence.kind == COMPLAINT:
            return COMPLAINED if self.store.record_complaint(subscriber_id, detail) else ALREADY
        if evidence.kind == SOFT:
            soft = self.soft_sends(subscriber_id)
            if soft < self.policy.soft_limit:
                return COUNTED
            detail += f"; {soft} of the last {self.policy.soft_issues} sends came back soft"
        return BOUNCED if self.store.record_bounce(subscriber_id, detail) else ALREADY

    def _detail(self, evidence: Evidence, row_id: int, run_id: int) -> str:
        with self.engine.connect() as conn:
            slug = conn.scalar(sa.select(send_runs.c.issue_slug).where(send_runs.c.id == run_id)) or "?"
        words = " ".join(part for part in (evidence.kind, evidence.status, evidence.reason) if part)
        return f"{words} (bounce event #{row_id}, {evidence.summary}; issue {slug}, send run {run_id})"

    def soft_sends(self, subscriber_id: int) -> int:
        """Of the last ``soft_issues`` sends that handed this subscriber a message, how many came back soft."""
        recent = (
            sa.select(deliveries.c.run_id)
            .where(deliveries.c.subscriber_id == subscriber_id, deliveries.c.state.not_in(NEVER_HANDED_OVER))
            .order_by(deliveries.c.run_id.desc())
            .limit(self.policy.soft_issues)
        )
        query = sa.select(sa.func.count(sa.distinct(bounce_events.c.run_id))).where(
            bounce_events.c.subscriber_id == subscriber_id,
            bounce_events.c.kind == SOFT,
            bounce_events.c.run_id.in_(recent),
        )
        with self.engine.connect() as conn:
            return conn.scalar(query) or 0
