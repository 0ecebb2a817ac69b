"""Complaints ("this is spam") and automatic replies: the two kinds that are not bounces.

Complaints come as RFC 5965 ARF reports (``multipart/report;
report-type=feedback-report`` with a ``message/feedback-report`` part: Yahoo,
AOL, Fastmail, Mail.ru, most feedback loops) or as Microsoft's older JMRP
shape (Outlook.com/Hotmail: a plain multipart/mixed from ``staff@hotmail.com``
with the message attached and the recipient in ``X-HmXmrOriginalRecipient``).

Automatic replies (RFC 3834 ``Auto-Submitted``, ``X-Autoreply``,
``X-Autorespond``, ``Precedence: auto_reply`` and the usual subjects) are read
as ``auto-reply`` and never as a bounce: an away notice says the address
works. Bounces carry ``Auto-Submitted`` too, so this is asked only after the
report readers have found nothing.
"""

from __future__ import annotations

import re
from email.message import Message

from . import mime
from .dsn import field_groups
from .identify import first_address, verp_token_in
from .reading import AUTO_REPLY, COMPLAINT, NOT_A_BOUNCE, Identifiers, Reading

COMPLAINT_TYPES = ("abuse", "fraud", "virus", "other")
REDACTED_RE = re.compile(r"redacted|\.invalid$|^x+@", re.I)  # AOL and others blank the recipient out
JMRP_SUBJECT_RE = re.compile(r"complaint about message from|email feedback report|abuse report for|spam complaint", re.I)
AUTO_SUBJECT_RE = re.compile(
    r"^(?:re:\s*)?(?:auto(?:matic)?[ -]?(?:reply|response|answer)|auto:|autoreply|out of (?:the )?office|"
    r"away from (?:the |my )?office|on vacation|vacation (?:reply|notice)|\(?away\)?:|"
    r"r[ée]ponse automatique|absence|absent du bureau|message d'absence|"
    r"automatische antwort|abwesenheit|nicht im b[üu]ro|"
    r"respuesta autom[áa]tica|fuera de la oficina|ausencia|"
    r"risposta automatica|fuori sede)",
    re.I,
)


def feedback_part(msg: Message) -> Message | None:
    for part, _depth in mime.walk(msg):
        if mime.content_type(part) == "message/feedback-report":
            return part
    return None


def _complaint_recipients(fields: dict[str, str], ids: Identifiers, returned: Message | None) -> list[str]:
    for value in (fields.get("original-rcpt-to", ""), fields.get("removal-recipient", "")):
        address = first_address(value)
        if address:
            return [address]
    if returned is not None:
        address = first_address(mime.header(returned, "X-HmXmrOriginalRecipient"))
        if address and not REDACTED_RE.search(address):
            return [address]
    return [ids.original_to] if ids.original_to and not REDACTED_RE.search(ids.original_to) else []


def read_arf(part: Message, returned: Message | None, ids: Identifiers) -> Reading:
    groups = field_groups(mime.part_text(part))
    fields = groups[0] if groups else {}
    feedback_type = fields.get("feedback-type", "abuse").lower().split(" ")[0] or "abuse"
    if not re.fullmatch(r"[a-z][a-z-]{0,30}", feedback_type):  # printed as the reason: keep it a plain word
        feedback_type = "other"
    if feedback_type not in COMPLAINT_TYPES:  # not-spam, auth-failure: reports, not complaints
        return Reading(NOT_A_BOUNCE, _complaint_recipients(fields, ids, returned), reason=feedback_type, format="arf",
                       ids=ids)
    reason = "spam" if feedback_type == "abuse" else feedback_type
    source = fields.get("user-agent", "")[:100]
    if not ids.verp_token:  # the envelope sender we used, as the receiver recorded it
        ids.verp_token = verp_token_in(fields.get("original-mail-from", ""))
    return Reading(
        COMPLAINT, _complaint_recipients(fields, ids, returned), reason=reason, diagnostic=source, format="arf", ids=ids
    )


def is_jmrp(msg: Message, returned: Message | None) -> bool:
    return returned is not None and bool(JMRP_SUBJECT_RE.search(mime.header(msg, "Subject")))


def read_jmrp(returned: Message, ids: Identifiers) -> Reading:
    return Reading(COMPLAINT, _complaint_recipients({}, ids, returned), reason="spam", format="jmrp", ids=ids)


def auto_reply_reason(msg: Message) -> str:
    """Why this looks like an automatic reply ('' when it does not)."""
    auto = mime.header(msg, "Auto-Submitted").lower()
    if auto and not auto.startswith("no"):
        return "auto-submitted"
    for name in ("X-Autoreply", "X-Autorespond", "X-Autoresponder", "X-Auto-Reply"):
        if mime.header(msg, name):
            return "autoreply-header"
    if mime.header(msg, "Precedence").lower() == "auto_reply":
        return "precedence"
    if AUTO_SUBJECT_RE.search(mime.header(msg, "Subject")):
        return "subject"
    return ""


def read_auto_reply(msg: Message, ids: Identifiers) -> Reading:
    sender = first_address(mime.header(msg, "From")) or first_address(mime.header(msg, "Reply-To"))
    subject = mime.header(msg, "Subject")
    reason = "out-of-office" if re.search(r"office|b[üu]ro|oficina|bureau|absen|abwesen|away|vacation", subject, re.I) else "auto-reply"
    return Reading(AUTO_REPLY, [sender] if sender else [], reason=reason, format="auto-reply", ids=ids)
