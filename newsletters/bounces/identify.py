"""What in a report points back at the message we sent: the returned copy's headers and the VERP address.

The identifying headers are in the *returned* message (a message/rfc822 or
text/rfc822-headers part, or a copy pasted below the report's text by Exim,
qmail and friends), not in the report's own headers; that is where listmonk
users kept looking in vain (listmonk #1839, #1848). An auto-reply carries our
Message-ID in In-Reply-To / References instead. None of this is trusted:
the caller verifies a VERP token's signature and looks a Message-ID up in the
delivery ledger before believing it.
"""

from __future__ import annotations

import re
from email.message import Message
from email.utils import getaddresses

from . import mime
from .reading import Identifiers

MESSAGE_ID_RE = re.compile(r"<[^\s<>@]{1,250}@[^\s<>@]{1,250}>")
ADDRESS_RE = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}\.)+[A-Za-z]{2,63}\b")
MAX_X_HEADERS = 20

# Where a report pastes the returned message into its text, and what comes after.
INLINE_COPY_RE = re.compile(
    r"^[ \t>-]*(?:"
    r"-+ ?This is a copy of the message,? including all the headers|"
    r"-+ ?The header of the original message is following|"
    r"-+ ?The body of the message is|"
    r"-+ ?Below this line is a copy of the message|"
    r"-+ ?Original message -+|"
    r"-+ ?Original [Mm]essage [Hh]eaders -+|"
    r"Original message headers:|"
    r"-+ ?Returned [Mm]ail follows -+|"
    r"-+ ?Unsent [Mm]essage below -+|"
    r"-+ ?Original message follows -+|"
    r"-+ ?Copie du message d'origine -+|"
    r"\*\*\* ?Original message header follows ?\*\*\*"
    r").*$",
    re.M,
)
# A pasted copy with no banner before it starts with the headers a server adds first.
HEADERS_START_RE = re.compile(r"^(?:Return-Path|Received|DKIM-Signature|Message-ID): ", re.M | re.I)


def returned_message(msg: Message) -> Message | None:
    """The copy of what we sent (or of its headers) that the report carries, if any."""
    for part, _depth in mime.walk(msg):
        ctype = mime.content_type(part)
        if ctype in ("message/rfc822", "message/global"):
            try:
                payload = part.get_payload()
            except Exception:
                continue
            if isinstance(payload, list) and payload and isinstance(payload[0], Message):
                return payload[0]
            if isinstance(payload, str):
                return mime.header_block(payload)
        if ctype in ("text/rfc822-headers", "message/rfc822-headers", "message/global-headers"):
            return mime.header_block(mime.part_text(part))
    return None


def split_inline_copy(text: str) -> tuple[str, Message | None]:
    """(the report's own words, the pasted copy's headers) for reports that quote the original inline."""
    match = INLINE_COPY_RE.search(text)
    start = HEADERS_START_RE.search(text)
    if start and (not match or start.start() < match.start()):
        return text[: start.start()], mime.header_block(text[start.start():])
    if not match:
        return text, None
    copy = text[match.end():]
    copy = re.sub(r"^[ \t]*\n", "", copy, count=1)
    copied = mime.header_block(copy) if re.match(r"\s*[A-Za-z-]+:", copy) else None
    return text[: match.start()], copied


def first_address(value: str) -> str:
    try:
        pairs = getaddresses([value])
    except Exception:
        pairs = []
    for _name, address in pairs:
        address = address.strip().lower()
        if ADDRESS_RE.fullmatch(address):
            return address
    match = ADDRESS_RE.search(value or "")
    return match.group(0).lower() if match else ""


def identifiers(report: Message, returned: Message | None, *, verp_base: str = "bounces") -> Identifiers:
    ids = Identifiers()
    found: list[str] = []
    if returned is not None:
        found += MESSAGE_ID_RE.findall(mime.header(returned, "Message-ID"))
        ids.list_id = mime.header(returned, "List-Id")[:300]
        ids.list_unsubscribe = mime.header(returned, "List-Unsubscribe")[:500]
        ids.original_to = first_address(mime.header(returned, "To"))
        try:
            keys = list(returned.keys())
        except Exception:
            keys = []
        for key in keys:
            if key.lower().startswith("x-") and len(ids.x_headers) < MAX_X_HEADERS:
                ids.x_headers.setdefault(key, mime.header(returned, key)[:300])
    # Amazon SES and some gateways name the original in their own headers.
    for name in ("X-Original-Message-ID", "Original-Message-ID", "In-Reply-To", "References"):
        found += MESSAGE_ID_RE.findall(mime.header(report, name))
    ids.message_ids = list(dict.fromkeys(found))[:10]
    ids.verp_token = verp_token(report, verp_base) or (verp_token(returned, verp_base, ("Return-Path",)) if returned else "")
    return ids


ENVELOPE_HEADERS = ("X-Original-To", "Delivered-To", "Envelope-To", "X-Envelope-To", "To", "X-Forwarded-To")


def verp_token(report: Message, base: str = "bounces", names: tuple[str, ...] = ENVELOPE_HEADERS) -> str:
    """TOKEN from ``base+TOKEN@domain`` in the headers that carry the envelope recipient."""
    for name in names:
        for value in mime.headers(report, name):
            token = verp_token_in(value, base)
            if token:
                return token
    return ""


def verp_token_in(value: str, base: str = "bounces") -> str:
    match = re.search(rf"(?<![\w.+-]){re.escape(base)}\+([A-Za-z0-9=._-]{{1,60}})@", value or "", re.I)
    return match.group(1) if match else ""
