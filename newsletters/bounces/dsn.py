"""RFC 3464 delivery status notifications: one field group per recipient, read field by field.

A DSN is ``multipart/report; report-type=delivery-status`` whose second part
(``message/delivery-status``, or ``message/global-delivery-status`` for
RFC 6533) holds a per-message group then one group per recipient, separated by
blank lines. Postfix, Sendmail, Exchange/Office 365, Gmail, Outlook.com,
Amazon SES, Courier, Mimecast and most others send these. The parts are read
as text here, not through the email package's sub-messages, so a group with a
broken line still yields its other fields.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import Message

from . import mime
from .classify import find_status
from .identify import first_address

DSN_TYPES = ("message/delivery-status", "message/global-delivery-status", "text/delivery-status")
_FIELD_RE = re.compile(r"^([A-Za-z][A-Za-z0-9-]{0,60})[ \t]*:[ \t]*(.*)$")


@dataclass
class RecipientStatus:
    address: str
    action: str  # failed, delayed, delivered, relayed, expanded ('' when missing)
    status: str
    diagnostic: str


def status_part(msg: Message) -> Message | None:
    for part, _depth in mime.walk(msg):
        if mime.content_type(part) in DSN_TYPES:
            return part
    return None


def field_groups(text: str) -> list[dict[str, str]]:
    """Blank-line separated groups of ``Name: value`` lines, continuation lines unfolded; names lower-cased."""
    groups: list[dict[str, str]] = []
    current: dict[str, str] = {}
    last = ""
    for line in text.split("\n")[:2000]:
        if not line.strip():
            if current:
                groups.append(current)
            current, last = {}, ""
            continue
        if line[:1] in (" ", "\t") and last:
            current[last] += " " + line.strip()
            continue
        match = _FIELD_RE.match(line)
        if match:
            last = match.group(1).lower()
            current.setdefault(last, match.group(2).strip())
    if current:
        groups.append(current)
    return groups


def _status_text(part: Message) -> str:
    try:
        payload = part.get_payload()
    except Exception:
        payload = None
    if isinstance(payload, list):  # the email package already split the groups into sub-messages
        blocks = []
        for sub in payload[:200]:
            if isinstance(sub, Message):
                blocks.append("\n".join(f"{k}: {mime.header(sub, k)}" for k in dict.fromkeys(sub.keys())))
        return "\n\n".join(blocks)
    return mime.part_text(part)


def _value(field: str) -> str:
    """The part after ``type;`` in ``rfc822; user@example.com`` or ``smtp; 550 …``."""
    return field.split(";", 1)[1].strip() if ";" in field else field.strip()


def _status(field: str, diagnostic: str) -> str:
    """The Status field when it is an RFC 3463 code; the diagnostic's own code when it is more precise.

    Exchange and others often write ``Status: 5.0.0`` over a diagnostic that says
    ``550 5.1.1 …``; anything that is not a code at all is dropped.
    """
    status = find_status(field.split(" ")[0].strip("()"))
    said = find_status(diagnostic)
    if said and (not status or (status.endswith(".0.0") and said[0] == status[0])):
        return said
    return status


def recipients(part: Message) -> list[RecipientStatus]:
    out = []
    for group in field_groups(_status_text(part)):
        address = first_address(_value(group.get("final-recipient", "")))
        address = address or first_address(_value(group.get("original-recipient", "")))
        if not address and "action" not in group:
            continue  # the per-message group
        diagnostic = _value(group.get("diagnostic-code", ""))[:1000]
        out.append(
            RecipientStatus(
                address=address,
                action=group.get("action", "").lower().split(" ")[0][:20],
                status=_status(group.get("status", ""), diagnostic),
                diagnostic=diagnostic,
            )
        )
    return out[:100]
