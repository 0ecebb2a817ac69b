"""What a relay's webhook tells us, normalised: ``BounceEvent``, and the store that stops replays.

Every relay says "this address bounced" in its own words; the verifiers in
``webhooks`` and ``sns`` turn those words into ``BounceEvent``s with one
vocabulary: ``kind`` is ``hard`` (the address or its domain does not exist),
``soft`` (anything that may pass: a full mailbox, a block, a spam or policy
refusal, an expired queue entry) or ``complaint``. Reading a soft bounce as hard
loses a subscriber, so ``hard`` needs the relay's own "permanent" *and* a reason
that is about the address, unless the relay itself classifies the address as
invalid.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field
from .errors import WebhookRejected, WebhookReplayed
from .replays import ReplayStore

KINDS = ("hard", "soft", "complaint")
MAX_TEXT = 300
CLOCK_SKEW = 300.0  # seconds a relay's clock may run ahead of ours
REMEMBER_EVENTS = 7 * 86400.0  # seconds an event id is kept, against the same report posted twice
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]+")
_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_ADDRESS = re.compile(r"^[^\s@<>()\[\],;:\"\\]{1,64}@[A-Za-z0-9.\-\[\]:]{1,255}$|^\"[^\"\r\n]{1,62}\"@[A-Za-z0-9.\-]{1,255}$")
_NO_SUCH_ADDRESS = re.compile(
    r"(user|recipient|mailbox|address|account)( name)? (is )?(unknown|not found|does ?n[o']t exist|invalid)"
    r"|no such (user|mailbox|recipient|address|account)|unknown (user|recipient|mailbox)"
    r"|invalid (recipient|mailbox|address)|does not exist|host (not found|unknown)|domain (not found|does not exist)"
    r"|null mx|no mx record",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class BounceEvent:
    """One bounce or complaint about one recipient, as a relay reported it."""

    kind: str  # hard, soft or complaint
    recipient: str
    relay: str  # ses, postmark, mailgun, sendgrid
    event_id: str  # the relay's id of this report: the evidence an applied change names
    status: str = ""  # RFC 3463 code ("5.1.1") when there is one
    reason: str = ""  # user-unknown, host-unknown, mailbox-full, blocked, spam, policy, expired, ...
    message_id: str | None = None  # the Message-ID header of our message, when the relay reports it
    relay_message_id: str | None = None  # the relay's own id of the message
    occurred_at: dt.datetime | None = None
    detail: str = ""  # the relay's diagnostic text, cleaned and cut short


@dataclass
class Verified:
    """A verified post: its events, the replay keys it claimed, and a subscription URL to confirm."""

    relay: str
    events: list[BounceEvent] = field(default_factory=list)
    claimed: list[str] = field(default_factory=list)
    confirm_url: str | None = None  # SNS SubscriptionConfirmation: GET this (``sns.confirm_subscription``)
    ignored: int = 0  # records that are no bounce or complaint (deliveries, opens) or were seen before


def claim_post(replays: ReplayStore, key: str, until: float, verified: Verified) -> None:
    """Claim the key of a whole post, or refuse it as a replay."""
    if not replays.claim(key, until=until):
        raise_replayed(verified)
    verified.claimed.append(key)


def claim_event(replays: ReplayStore, key: str, until: float, verified: Verified) -> bool:
    """Claim one event's key; False (and counted as ignored) when it was received before."""
    if replays.claim(key, until=until):
        verified.claimed.append(key)
        return True
    verified.ignored += 1
    return False


def raise_replayed(verified: Verified):
    raise WebhookReplayed(f"{verified.relay}: this post was received before (a replay)")


def clean_text(value, limit: int = MAX_TEXT) -> str:
    """Relay text as it may be stored and shown: no control characters, bounded."""
    text = _CONTROL.sub(" ", str(value or "")).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def clean_address(value) -> str | None:
    """The address a report is about, or None when it is not a plausible address."""
    if not isinstance(value, str):
        return None
    address = value.strip()
    if address.startswith("<") and address.endswith(">"):
        address = address[1:-1].strip()
    if len(address) > 320 or not _ADDRESS.match(address):
        return None
    local, _, domain = address.rpartition("@")
    return f"{local}@{domain.lower()}"


def clean_message_id(value) -> str | None:
    text = clean_text(value, 500)
    return text or None


def status_in(*texts) -> str:
    """The first RFC 3463 status code found in any of ``texts`` ("5.1.1"), or ""."""
    for text in texts:
        match = _STATUS.search(str(text or ""))
        if match:
            return match.group(0)
    return ""


def reason_for(status: str, text: str = "") -> str:
    """A short word for why a message bounced, from its status code and the server's text."""
    lowered = (text or "").lower()
    if any(word in lowered for word in ("blocked", "blacklist", "blocklist", "denylist", "listed at", "rbl")):
        return "blocked"
    if "spam" in lowered:
        return "spam"
    code = status[2:] if status else ""
    by_code = {
        "1.1": "user-unknown", "1.0": "user-unknown", "1.6": "user-unknown", "1.2": "host-unknown",
        "1.10": "host-unknown", "4.4": "host-unknown", "2.1": "disabled", "2.2": "mailbox-full",
        "2.3": "too-large", "3.4": "too-large", "4.7": "expired",
    }
    if code in by_code:
        return by_code[code]
    if code.startswith("7."):
        return "policy"
    if _NO_SUCH_ADDRESS.search(lowered):
        return "host-unknown" if re.search(r"host|domain|mx", lowered) else "user-unknown"
    if "quota" in lowered or "mailbox full" in lowered or "mailbox is full" in lowered:
        return "mailbox-full"
    return "unknown"


def kind_for(permanent: bool, reason: str) -> str:
    """Hard only for a permanent failure whose reason is that the address or domain does not exist."""
    return "hard" if permanent and reason in ("user-unknown", "host-unknown") else "soft"


def parse_time(value) -> dt.datetime | None:
    """A relay's time (ISO 8601 with up to 7 decimals, or seconds since 1970) as an aware datetime."""
    try:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return dt.datetime.fromtimestamp(float(value), dt.timezone.utc)
        if isinstance(value, str) and value:
            text = re.sub(r"(\.\d{6})\d+", r"\1", value.strip())
            moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
            return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)
    except (ValueError, OverflowError, OSError):
        return None
    return None


def check_fresh(relay: str, moment: dt.datetime | None, max_age: float, now: float) -> float:
    """Refuse a signed time that is missing, too old, or too far ahead; returns it as seconds."""
    if moment is None:
        raise WebhookRejected(f"{relay}: the post has no readable timestamp", status=400)
    when = moment.timestamp()
    if when < now - max_age:
        raise WebhookRejected(f"{relay}: the post is {int(now - when)} s old (older than {int(max_age)} s)")
    if when > now + CLOCK_SKEW:
        raise WebhookRejected(f"{relay}: the post's timestamp is {int(when - now)} s in the future")
    return when



def json_object(relay: str, body: bytes, *, what: str = "the body") -> dict:
    """A JSON object from a post, or a 400 refusal saying why."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise WebhookRejected(f"{relay}: {what} is not JSON", status=400) from None
    if not isinstance(doc, dict):
        raise WebhookRejected(f"{relay}: {what} is not a JSON object", status=400)
    return doc


def header(headers, name: str) -> str:
    """A request header by case-insensitive name, from a dict or werkzeug's Headers."""
    value = headers.get(name)
    if value is None:
        value = next((v for k, v in dict(headers).items() if k.lower() == name.lower()), None)
    return value or ""
