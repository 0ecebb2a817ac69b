"""Relay webhooks as verifiers: (headers, body, settings) → ``Verified`` events, or ``WebhookRejected``.

Each relay proves a post is its own differently:

* Amazon SES through SNS: an RSA signature checked against SNS's certificate
  (``newsletters.bounce_intake.sns``);
* Postmark: no signature; the webhook URL carries HTTP basic-auth credentials
  (``https://user:password@host/webhooks/postmark``) and/or a secret ``token``
  query parameter, both set by us in Postmark's console;
* Mailgun: HMAC-SHA256 of ``timestamp + token`` with the webhook signing key.
  The HMAC does not cover the event data itself (Mailgun's design); HTTPS is
  what keeps that intact on the way;
* SendGrid: ECDSA P-256 over ``timestamp + raw body`` with the public key its
  console shows.

A signed timestamp older than ``WEBHOOK_MAX_AGE`` is refused, and a post's
token, signature or id is claimed in the replay store, so the same post acts
once. Events are deduplicated by the relay's event id too (a relay may re-sign
a retry). These functions change nothing but the replay store; the caller
applies the events and ``release``s the claims if applying fails.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from typing import Callable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from .errors import WebhookRejected
from .events import (
    REMEMBER_EVENTS, BounceEvent, Verified, check_fresh, claim_event, claim_post, clean_address, clean_message_id,
    clean_text, header, json_object, kind_for, parse_time, reason_for, status_in,
)
from .settings import WebhookSettings
from .sns import verify_ses

MAX_BODY = 1024 * 1024  # SendGrid batches are the largest posts, well under this


def not_configured(relay: str, setting: str) -> WebhookRejected:
    return WebhookRejected(f"{relay}: webhook not set up here (set {setting})", status=404)


# -- Postmark ----------------------------------------------------------------
POSTMARK_HARD = {"HardBounce", "BadEmailAddress"}
POSTMARK_SOFT = {
    "Transient": "", "SoftBounce": "", "DnsError": "dns-error", "Blocked": "blocked", "DMARCPolicy": "policy",
    "SpamNotification": "spam", "VirusNotification": "policy", "Unknown": "",
}


def verify_postmark(headers, body: bytes, settings: WebhookSettings, *, url_token: str | None = None,
                    now: float | None = None) -> Verified:
    """Check the basic-auth credentials and/or URL token, then read one bounce or spam complaint."""
    now = time.time() if now is None else now
    if not (settings.postmark_password or settings.postmark_token):
        raise not_configured("postmark", "POSTMARK_WEBHOOK_USER and POSTMARK_WEBHOOK_PASSWORD")
    if settings.postmark_password and not _basic_auth_matches(header(headers, "authorization"), settings):
        raise WebhookRejected("postmark: missing or wrong basic-auth credentials", status=401)
    if settings.postmark_token and not hmac.compare_digest(
        (url_token or "").encode("utf-8"), settings.postmark_token.encode("utf-8")
    ):
        raise WebhookRejected("postmark: missing or wrong token in the webhook URL", status=401)
    doc = json_object("postmark", body)
    record, kind = doc.get("RecordType"), doc.get("Type")
    verified = Verified("postmark")
    if record not in ("Bounce", "SpamComplaint") or doc.get("ID") in (None, ""):
        verified.ignored += 1  # deliveries, opens, clicks, subscription changes
        return verified
    event_id = clean_text(doc.get("ID"), 100)
    claim_post(settings.replays, f"postmark:{record}:{event_id}", now + REMEMBER_EVENTS, verified)
    address = clean_address(doc.get("Email"))
    details = clean_text(doc.get("Details") or doc.get("Description"))
    status = status_in(details)
    if record == "SpamComplaint" or kind == "SpamComplaint":
        found = ("complaint", "spam")
    elif kind in POSTMARK_HARD:
        found = ("hard", _address_reason(reason_for(status, details)))
    elif kind in POSTMARK_SOFT:
        found = ("soft", POSTMARK_SOFT[kind] or reason_for(status, details))
    else:
        found = None  # auto-responders, address changes, challenge mails: not bounces
    if found is None or address is None:
        verified.ignored += 1
        return verified
    verified.events.append(BounceEvent(
        kind=found[0], recipient=address, relay="postmark", event_id=event_id, status=status, reason=found[1],
        relay_message_id=clean_message_id(doc.get("MessageID")), occurred_at=parse_time(doc.get("BouncedAt")),
        detail=details,
    ))
    return verified


def _basic_auth_matches(value: str, settings: WebhookSettings) -> bool:
    scheme, _, encoded = value.partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        user, _, password = base64.b64decode(encoded.strip(), validate=True).decode("utf-8").partition(":")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return False
    same_user = hmac.compare_digest(user.encode("utf-8"), settings.postmark_user.encode("utf-8"))
    same_password = hmac.compare_digest(password.encode("utf-8"), settings.postmark_password.encode("utf-8"))
    return same_user and same_password


def _address_reason(reason: str) -> str:
    """The relay said the address is bad; keep a more precise reason when the text gives one."""
    return reason if reason in ("user-unknown", "host-unknown") else "user-unknown"


# -- Mailgun -----------------------------------------------------------------
def verify_mailgun(headers, body: bytes, settings: WebhookSettings, *, now: float | None = None) -> Verified:
    """Check the HMAC of timestamp and token, its age and the token's first use; read the event."""
    now = time.time() if now is None else now
    if not settings.mailgun_signing_key:
        raise not_configured("mailgun", "MAILGUN_WEBHOOK_SIGNING_KEY")
    doc = json_object("mailgun", body)
    signed = doc.get("signature") if isinstance(doc.get("signature"), dict) else {}
    timestamp, token, signature = (str(signed.get(k) or "") for k in ("timestamp", "token", "signature"))
    if not (timestamp.isdigit() and token and signature):
        raise WebhookRejected("mailgun: the post has no signature, timestamp and token", status=400)
    expected = hmac.new(settings.mailgun_signing_key.encode("utf-8"), (timestamp + token).encode("utf-8"),
                        hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode("ascii"), signature.lower().encode("utf-8", "replace")):
        raise WebhookRejected("mailgun: the signature does not match (check MAILGUN_WEBHOOK_SIGNING_KEY)")
    check_fresh("mailgun", parse_time(int(timestamp)), settings.max_age, now)
    verified = Verified("mailgun")
    claim_post(settings.replays, f"mailgun:token:{token}", now + settings.max_age + 300, verified)
    data = doc.get("event-data") if isinstance(doc.get("event-data"), dict) else {}
    event = mailgun_event(data)
    if event is None:
        verified.ignored += 1
    elif claim_event(settings.replays, f"mailgun:event:{event.event_id}", now + REMEMBER_EVENTS, verified):
        verified.events.append(event)
    return verified


def mailgun_event(data: dict) -> BounceEvent | None:
    name, why = data.get("event"), str(data.get("reason") or "")
    address, event_id = clean_address(data.get("recipient")), clean_text(data.get("id"), 200)
    if address is None or not event_id:
        return None
    delivery = data.get("delivery-status") if isinstance(data.get("delivery-status"), dict) else {}
    text = clean_text(" ".join(str(delivery.get(k) or "") for k in ("message", "description")))
    status = status_in(delivery.get("enhanced-code"), text)
    if name == "complained" or (name == "failed" and why == "suppress-complaint"):
        kind, reason = "complaint", "spam"
    elif name != "failed" or why == "suppress-unsubscribe":
        return None
    elif data.get("severity") != "permanent":
        kind, reason = "soft", reason_for(status, text)
    elif why == "suppress-bounce":
        kind, reason = "hard", "suppressed"
    elif why == "old":
        kind, reason = "soft", "expired"
    elif why == "espblock":
        kind, reason = "soft", "blocked"
    else:
        reason = reason_for(status, text)
        kind = kind_for(True, reason)
    message = data.get("message") if isinstance(data.get("message"), dict) else {}
    heads = message.get("headers") if isinstance(message.get("headers"), dict) else {}
    return BounceEvent(
        kind=kind, recipient=address, relay="mailgun", event_id=event_id, status=status, reason=reason,
        message_id=clean_message_id(heads.get("message-id")), occurred_at=parse_time(data.get("timestamp")),
        detail=text,
    )


# -- SendGrid ----------------------------------------------------------------
SENDGRID_SIGNATURE = "X-Twilio-Email-Event-Webhook-Signature"
SENDGRID_TIMESTAMP = "X-Twilio-Email-Event-Webhook-Timestamp"
SENDGRID_CLASSES = {
    "Content": "policy", "Reputation": "blocked", "Frequency or Volume Too High": "blocked",
    "Mailbox Unavailable": "mailbox-full", "Technical": "unknown", "Unclassified": "unknown",
}


def verify_sendgrid(headers, body: bytes, settings: WebhookSettings, *, now: float | None = None) -> Verified:
    """Check the ECDSA signature over timestamp + body and its age; read the batch of events."""
    now = time.time() if now is None else now
    if settings.sendgrid_public_key is None:
        raise not_configured("sendgrid", "SENDGRID_WEBHOOK_PUBLIC_KEY")
    signature, timestamp = header(headers, SENDGRID_SIGNATURE), header(headers, SENDGRID_TIMESTAMP)
    if not (signature and timestamp.isdigit()):
        raise WebhookRejected(f"sendgrid: the post has no {SENDGRID_SIGNATURE} and {SENDGRID_TIMESTAMP}", status=400)
    try:
        settings.sendgrid_public_key.verify(
            base64.b64decode(signature, validate=True), timestamp.encode("ascii") + body, ec.ECDSA(hashes.SHA256())
        )
    except (InvalidSignature, binascii.Error, ValueError):
        raise WebhookRejected("sendgrid: the signature does not match (check SENDGRID_WEBHOOK_PUBLIC_KEY)") from None
    check_fresh("sendgrid", parse_time(int(timestamp)), settings.max_age, now)
    verified = Verified("sendgrid")
    digest = hashlib.sha256(signature.encode("ascii")).hexdigest()
    claim_post(settings.replays, f"sendgrid:post:{digest}", now + settings.max_age + 300, verified)
    batch = _json_list(body)
    for item in batch:
        event = sendgrid_event(item) if isinstance(item, dict) else None
        if event is None:
            verified.ignored += 1
        elif claim_event(settings.replays, f"sendgrid:event:{event.event_id}", now + REMEMBER_EVENTS, verified):
            verified.events.append(event)
    return verified


def _json_list(body: bytes) -> list:
    try:
        batch = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        batch = None
    if not isinstance(batch, list):
        raise WebhookRejected("sendgrid: the body is not a JSON array of events", status=400)
    return batch[:10_000]


def sendgrid_event(item: dict) -> BounceEvent | None:
    name, address = item.get("event"), clean_address(item.get("email"))
    event_id = clean_text(item.get("sg_event_id"), 200)
    if address is None or not event_id:
        return None
    text = clean_text(item.get("reason") or item.get("response"))
    status = status_in(item.get("status"), text)
    kind: str | None = None
    if name == "spamreport" or (name == "dropped" and text == "Spam Reporting Address"):
        kind, reason = "complaint", "spam"
    elif name == "dropped" and text == "Bounced Address":
        kind, reason = "hard", "suppressed"
    elif name == "bounce" and item.get("type") == "blocked":
        reason = reason_for(status, text)
        kind, reason = "soft", reason if reason != "unknown" else "blocked"
    elif name == "bounce":
        classification = item.get("bounce_classification")
        if classification == "Invalid Address":
            kind, reason = "hard", _address_reason(reason_for(status, text))
        elif classification in SENDGRID_CLASSES:
            kind, reason = "soft", SENDGRID_CLASSES[classification]
        else:
            reason = reason_for(status, text)
            kind = kind_for(True, reason)
    if kind is None:
        return None  # deliveries, opens, clicks, deferrals (the relay is still trying)
    return BounceEvent(
        kind=kind, recipient=address, relay="sendgrid", event_id=event_id, status=status, reason=reason,
        relay_message_id=clean_message_id(item.get("sg_message_id")), occurred_at=parse_time(item.get("timestamp")),
        detail=text,
    )


VERIFIERS: dict[str, Callable[..., Verified]] = {
    "ses": verify_ses, "postmark": verify_postmark, "mailgun": verify_mailgun, "sendgrid": verify_sendgrid,
}


def release(verified: Verified, settings: WebhookSettings) -> None:
    """Forget a post's claims because applying it failed: the relay's retry must be accepted."""
    for key in verified.claimed:
        settings.replays.release(key)
