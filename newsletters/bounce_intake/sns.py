"""Amazon SES bounces and complaints through SNS: the signature, the certificate, the subscription.

SNS signs every post with the private key of a certificate it publishes at
``SigningCertURL``. Anyone can post to our URL and name any certificate URL, so
the URL is trusted only when it is https on ``sns.<region>.amazonaws.com`` (or
on a prefix ``SES_SNS_CERT_URL_PREFIXES`` lists), the certificate is fetched
over verified TLS without following redirects, and it must be within its
validity dates. Then the signature (SignatureVersion 1: RSA with SHA-1; 2: RSA
with SHA-256) is checked over the fields SNS signs, in its order.

A ``SubscriptionConfirmation`` yields the ``SubscribeURL`` to visit (same host
rule) rather than visiting it here: the web layer does, after the signature
passed. A ``Notification`` carries SES's JSON: ``bounceType`` Permanent is hard,
Transient and Undetermined are soft; complaints are complaints.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import http.client
import re
import threading
import time
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from .errors import WebhookRejected
from .events import (
    BounceEvent, Verified, check_fresh, claim_event, claim_post, clean_address, clean_message_id, clean_text,
    REMEMBER_EVENTS, header, json_object, parse_time, reason_for, status_in,
)
from .settings import WebhookSettings

RELAY = "ses"
AWS_HOST = re.compile(r"^sns\.[a-z0-9-]{3,}\.amazonaws\.com(\.cn)?$")
MAX_CERTIFICATE = 64 * 1024
SIGNED_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
    "UnsubscribeConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
}
HASHES = {"1": hashes.SHA1, "2": hashes.SHA256}
SES_REASONS = {
    "NoEmail": "user-unknown", "Suppressed": "suppressed", "OnAccountSuppressionList": "suppressed",
    "MailboxFull": "mailbox-full", "MessageTooLarge": "too-large", "ContentRejected": "policy",
    "AttachmentRejected": "policy",
}

_certificates: dict[str, x509.Certificate] = {}
_certificates_lock = threading.Lock()


def allowed_url(url: str, settings: WebhookSettings, *, what: str) -> str:
    """``url`` when it is https on an SNS host (or under an allowed prefix); otherwise refuse."""
    if not isinstance(url, str) or any(c in url for c in "\r\n\t "):
        raise WebhookRejected(f"ses: {what} is not a URL", status=400)
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname or parts.username or parts.password:
        raise WebhookRejected(f"ses: {what} is not a plain https URL: {clean_text(url, 120)!r}")
    if settings.sns_cert_url_prefixes:
        if not any(url.startswith(prefix) for prefix in settings.sns_cert_url_prefixes):
            raise WebhookRejected(f"ses: {what} is not under SES_SNS_CERT_URL_PREFIXES: {clean_text(url, 120)!r}")
    elif not AWS_HOST.match(parts.hostname) or parts.port not in (None, 443):
        raise WebhookRejected(f"ses: {what} is not on an sns.<region>.amazonaws.com host: {clean_text(url, 120)!r}")
    return url


def https_get(url: str, settings: WebhookSettings, *, limit: int) -> bytes:
    """GET an allowed URL over verified TLS; a redirect or any status but 200 is a refusal."""
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    connection = http.client.HTTPSConnection(
        parts.hostname, parts.port or 443, context=settings.tls_context(), timeout=settings.fetch_timeout
    )
    try:
        connection.request("GET", path, headers={"User-Agent": "newsletters-bounce-intake"})
        response = connection.getresponse()
        body = response.read(limit + 1)
    except (OSError, http.client.HTTPException) as exc:
        raise WebhookRejected(f"ses: cannot fetch {parts.hostname}{parts.path}: {clean_text(exc, 150)}", status=502)
    finally:
        connection.close()
    if response.status != 200:
        raise WebhookRejected(f"ses: {parts.hostname}{parts.path} answered {response.status}", status=502)
    if len(body) > limit:
        raise WebhookRejected(f"ses: {parts.hostname}{parts.path} sent more than {limit} bytes", status=502)
    return body


def signing_certificate(url: str, settings: WebhookSettings) -> x509.Certificate:
    """The certificate at an allowed ``SigningCertURL``, fetched once per process and then cached."""
    url = allowed_url(url, settings, what="SigningCertURL")
    if not urlsplit(url).path.endswith(".pem"):
        raise WebhookRejected("ses: SigningCertURL does not name a .pem file")
    with _certificates_lock:
        cached = _certificates.get(url)
    if cached is None:
        try:
            cached = x509.load_pem_x509_certificate(https_get(url, settings, limit=MAX_CERTIFICATE))
        except ValueError:
            raise WebhookRejected("ses: SigningCertURL holds no PEM certificate", status=502) from None
        with _certificates_lock:
            if len(_certificates) >= 32:
                _certificates.clear()
            _certificates[url] = cached
    now = dt.datetime.now(dt.timezone.utc)
    if not cached.not_valid_before_utc <= now <= cached.not_valid_after_utc:
        raise WebhookRejected("ses: the signing certificate is outside its validity dates")
    return cached


def string_to_sign(doc: dict) -> bytes:
    """The text SNS signs: each signed field present, as its name and value on two lines."""
    lines = []
    for name in SIGNED_FIELDS[doc["Type"]]:
        if name in doc and doc[name] is not None:
            if not isinstance(doc[name], str):
                raise WebhookRejected(f"ses: {name} is not a string", status=400)
            lines.append(f"{name}\n{doc[name]}\n")
    return "".join(lines).encode("utf-8")


def check_signature(doc: dict, settings: WebhookSettings) -> None:
    algorithm = HASHES.get(str(doc.get("SignatureVersion")))
    if algorithm is None:
        raise WebhookRejected(f"ses: unknown SignatureVersion {clean_text(doc.get('SignatureVersion'), 10)!r}")
    try:
        signature = base64.b64decode(doc.get("Signature") or "", validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise WebhookRejected("ses: the Signature is not base64") from None
    key = signing_certificate(doc.get("SigningCertURL"), settings).public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise WebhookRejected("ses: the signing certificate does not hold an RSA key")
    try:
        key.verify(signature, string_to_sign(doc), padding.PKCS1v15(), algorithm())
    except InvalidSignature:
        raise WebhookRejected("ses: the SNS signature does not match the message") from None


def verify_ses(headers, body: bytes, settings: WebhookSettings, *, now: float | None = None) -> Verified:
    """Verify an SNS post about SES and return its events (or the subscription URL to confirm)."""
    now = time.time() if now is None else now
    doc = json_object(RELAY, body)
    kind = doc.get("Type")
    if kind not in SIGNED_FIELDS:
        raise WebhookRejected(f"ses: unknown SNS message Type {clean_text(kind, 40)!r}", status=400)
    declared = header(headers, "x-amz-sns-message-type")
    if declared and declared != kind:
        raise WebhookRejected("ses: the x-amz-sns-message-type header differs from the message Type", status=400)
    if settings.ses_topic_arns and doc.get("TopicArn") not in settings.ses_topic_arns:
        raise WebhookRejected(f"ses: topic {clean_text(doc.get('TopicArn'), 120)!r} is not in SES_SNS_TOPIC_ARN")
    check_signature(doc, settings)
    check_fresh(RELAY, parse_time(doc.get("Timestamp")), settings.max_age, now)
    verified = Verified(RELAY)
    claim_post(settings.replays, f"ses:{doc.get('MessageId')}", now + settings.max_age + 300, verified)
    if kind == "SubscriptionConfirmation":
        verified.confirm_url = allowed_url(doc.get("SubscribeURL"), settings, what="SubscribeURL")
    elif kind == "Notification":
        ses = json_object(RELAY, str(doc.get("Message", "")).encode("utf-8"), what="the SNS Message")
        for event in ses_events(ses, doc.get("MessageId", "")):
            if claim_event(settings.replays, f"ses:event:{event.event_id}:{event.recipient}", now + REMEMBER_EVENTS, verified):
                verified.events.append(event)
        if not verified.events:
            verified.ignored += 1
    return verified


def confirm_subscription(verified: Verified, settings: WebhookSettings) -> None:
    """Visit the SubscribeURL of a verified SubscriptionConfirmation, so SNS starts posting."""
    if verified.confirm_url:
        https_get(allowed_url(verified.confirm_url, settings, what="SubscribeURL"), settings, limit=64 * 1024)


def ses_events(ses: dict, sns_message_id: str) -> list[BounceEvent]:
    """The bounce or complaint events of one SES notification (others, like deliveries, give none)."""
    kind = ses.get("notificationType") or ses.get("eventType")
    mail = ses.get("mail") if isinstance(ses.get("mail"), dict) else {}
    common = mail.get("commonHeaders") if isinstance(mail.get("commonHeaders"), dict) else {}
    base = dict(
        relay=RELAY, message_id=clean_message_id(common.get("messageId")),
        relay_message_id=clean_message_id(mail.get("messageId")),
    )
    if kind == "Bounce" and isinstance(ses.get("bounce"), dict):
        bounce = ses["bounce"]
        permanent = bounce.get("bounceType") == "Permanent"
        subtype = str(bounce.get("bounceSubType") or "")
        event_id = clean_text(bounce.get("feedbackId") or sns_message_id, 200)
        events = []
        for person in _records(bounce.get("bouncedRecipients")):
            address = clean_address(person.get("emailAddress"))
            if address is None:
                continue
            diagnostic = clean_text(person.get("diagnosticCode"))
            status = status_in(person.get("status"), diagnostic)
            reason = SES_REASONS.get(subtype) or reason_for(status, diagnostic)
            events.append(BounceEvent(
                kind="hard" if permanent else "soft", recipient=address, status=status, reason=reason,
                event_id=event_id, occurred_at=parse_time(bounce.get("timestamp")), detail=diagnostic, **base,
            ))
        return events
    if kind == "Complaint" and isinstance(ses.get("complaint"), dict):
        complaint = ses["complaint"]
        feedback = clean_text(complaint.get("complaintFeedbackType") or "abuse", 40)
        return [
            BounceEvent(
                kind="complaint", recipient=address, reason="spam" if feedback == "abuse" else feedback,
                event_id=clean_text(complaint.get("feedbackId") or sns_message_id, 200),
                occurred_at=parse_time(complaint.get("timestamp")), **base,
            )
            for person in _records(complaint.get("complainedRecipients"))
            if (address := clean_address(person.get("emailAddress"))) is not None
        ]
    return []


def _records(value) -> list[dict]:
    return [item for item in value if isinstance(item, dict)][:1000] if isinstance(value, list) else []
