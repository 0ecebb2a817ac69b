"""From a returned message or a relay's event to an applied ``Evidence``: read, match, apply.

``BounceProcessor(site, store)`` is what ``newsletter bounces process``,
``newsletter bounces fetch`` and the webhook routes of ``newsletter serve``
share, so the three apply the same policy the same way.

Matching a relay's event. The post is verified (the relay signed it), so the
address it names is the relay's word, not a stranger's. Still, the relay may
carry other mail of the sender's, so:

* when the event carries a Message-ID of our shape (Mailgun and SES copy the
  message's header), it must be one of ours, proven as for a returned message,
  or the event stays unmatched;
* otherwise (Postmark and SendGrid give only their own ids; SES may rewrite
  the header) the address must be a subscriber's to whom one of our runs handed
  a message in the last ``RECENT_DAYS`` days, and the event is counted against
  the latest such run.
"""

from __future__ import annotations

from datetime import timedelta

from foundation.errors import RecipientError
from foundation.tables import utcnow
from recipients import Store

from ..bounce_intake.events import BounceEvent
from .apply import BounceApplier, BouncePolicy, Evidence, message_evidence
from .match import DeliveryIndex, is_ours, match_reading
from .reader import read_message
from .reading import Identifiers, Reading

RECENT_DAYS = 30


def verp_base(site) -> str:
    """The local part of BOUNCE_ADDRESS (bounces@domain gives bounces+TOKEN@domain), 'bounces' by default."""
    address = (site.setting("BOUNCE_ADDRESS") or "") if site else ""
    return address.partition("@")[0] or "bounces"


class BounceProcessor:
    """Reads, matches and applies; ``rows`` keeps one line per report for the command to print."""

    def __init__(self, site, store: Store):
        self.store = store
        self.index = DeliveryIndex(store.engine, site.setting("SECRET_KEY") or "")
        self.verp_base = verp_base(site)
        self.applier = BounceApplier(store, BouncePolicy.from_site(site))
        self.rows: list[dict] = []

    @property
    def outcomes(self) -> dict[str, int]:
        return self.applier.outcomes

    def message(self, raw: bytes, source: str, label: str) -> str:
        """Apply one returned message (from a file or the mailbox); returns the outcome."""
        reading = read_message(raw, verp_base=self.verp_base)
        matched = match_reading(reading, self.index)
        evidence = Evidence(
            key=message_evidence(raw), source=source, label=label, kind=reading.kind, status=reading.status,
            reason=reading.reason, match=matched,
        )
        return self._apply(evidence, reading.recipients)

    def relay_events(self, events: list[BounceEvent]) -> None:
        """Apply a verified post's events (the webhook routes' ``on_events``)."""
        for event in events:
            evidence = Evidence(
                key=f"{event.relay}:{event.event_id}"[:300], source=event.relay, label=f"event {event.event_id}",
                kind=event.kind, status=event.status, reason=event.reason, match=self.relay_match(event),
            )
            self._apply(evidence, [event.recipient])

    def relay_match(self, event: BounceEvent) -> tuple[int, int] | None:
        message_id = event.message_id or ""
        if message_id and not message_id.startswith("<"):
            message_id = f"<{message_id}>"
        if is_ours(message_id):
            reading = Reading(event.kind, [event.recipient], ids=Identifiers(message_ids=[message_id]))
            return match_reading(reading, self.index)
        try:
            subscriber = self.store.find(event.recipient)
        except RecipientError:
            return None
        if subscriber is None:
            return None
        run_id = self.index.latest_handed_over(subscriber.id, utcnow() - timedelta(days=RECENT_DAYS))
        return (run_id, subscriber.id) if run_id else None

    def _apply(self, evidence: Evidence, recipients: list[str]) -> str:
        outcome = self.applier.apply(evidence)
        run_id, subscriber_id = evidence.match or (None, None)
        self.rows.append({
            "source": evidence.source, "evidence": evidence.label, "kind": evidence.kind,
            "recipients": recipients, "status": evidence.status, "reason": evidence.reason,
            "run_id": run_id, "subscriber_id": subscriber_id, "outcome": outcome,
        })
        return outcome
