"""Reading one returned message: which kind it is, about whom, why, and what of ours it returns.

The readers are tried from the most to the least structured, and the first
that recognises the message decides:

1. an ARF complaint (``message/feedback-report``);
2. an RFC 3464 DSN (``message/delivery-status``), per recipient;
3. a JMRP complaint (Outlook.com's pre-ARF shape);
4. a report written in prose by a mail system (Exim, qmail, Domino, …);
5. an automatic reply;
6. anything else: ``not-a-bounce``.

Auto-replies come after the bounce readers because DSNs carry
``Auto-Submitted: auto-replied`` too (RFC 3834 asks them to).
``read_message`` never raises on bad input: a message it cannot take apart
reads as ``not-a-bounce`` with the reason ``unreadable``.
"""

from __future__ import annotations

from email.message import Message

from . import complaints, dsn, identify, mime, prose
from .classify import classify
from .reading import HARD, NOT_A_BOUNCE, SOFT, Identifiers, Reading

MAX_HUMAN_TEXT = 64 * 1024
_REPORT_PARTS = dsn.DSN_TYPES + ("message/feedback-report",)


def read_message(raw: bytes, *, verp_base: str = "bounces", envelope_to: str = "") -> Reading:
    """The reading of one message given as raw bytes (as stored in a maildir, mbox or .eml file).

    ``envelope_to`` is the address the report was delivered to, when the
    caller knows it (an SMTP RCPT TO, a POP3/IMAP mailbox's own record): the
    VERP token is taken from it first, then from the headers that copy it.
    """
    try:
        reading = _read(mime.parse(raw), verp_base)
    except (RecursionError, MemoryError) as exc:
        reading = Reading(NOT_A_BOUNCE, reason="unreadable", diagnostic=type(exc).__name__)
    except Exception as exc:  # a hostile message must not stop a batch; its reading says it was not understood
        reading = Reading(NOT_A_BOUNCE, reason="unreadable", diagnostic=f"{type(exc).__name__}: {exc}"[:200])
    reading.ids.verp_token = identify.verp_token_in(envelope_to, verp_base) or reading.ids.verp_token
    return reading


def human_text(msg: Message) -> str:
    """The report's words for people: its text parts outside the returned message, HTML only when no text."""
    plain, html = [], []
    for part, _depth in mime.walk(msg):
        if part.is_multipart():
            continue
        ctype = mime.content_type(part)
        if ctype == "text/plain" or (ctype.startswith("text/") and ctype not in ("text/html", "text/rfc822-headers")
                                     and ctype not in _REPORT_PARTS):
            plain.append(mime.part_text(part))
        elif ctype == "text/html":
            html.append(mime.part_text(part))
        if sum(map(len, plain)) > MAX_HUMAN_TEXT:
            break
    return "\n".join(plain or html)[:MAX_HUMAN_TEXT]


def _read(msg: Message, verp_base: str) -> Reading:
    returned = identify.returned_message(msg)
    human, pasted = identify.split_inline_copy(human_text(msg))
    if returned is None:
        returned = pasted
    ids = identify.identifiers(msg, returned, verp_base=verp_base)

    feedback = complaints.feedback_part(msg)
    if feedback is not None:
        return complaints.read_arf(feedback, returned, ids)
    status_part = dsn.status_part(msg)
    if status_part is not None:
        reading = _read_dsn(msg, status_part, human, ids)
        if reading is not None:
            return reading
    if complaints.is_jmrp(msg, returned):
        return complaints.read_jmrp(returned, ids)
    if prose.looks_like_bounce(msg):
        reading = _read_prose(msg, human, returned, ids)
        if reading is not None:
            return reading
    if complaints.auto_reply_reason(msg):
        return complaints.read_auto_reply(msg, ids)
    return Reading(NOT_A_BOUNCE, reason="no report found", ids=ids)


def _combine(results: list[tuple[str, str, str, str, str]], fmt: str, ids: Identifiers) -> Reading:
    """One reading from per-recipient (address, kind, reason, status, diagnostic): hard only if all are."""
    addresses = [address for address, *_ in results if address]
    soft = [r for r in results if r[1] != HARD]
    _address, kind, reason, status, diagnostic = (soft or results)[0]
    if not addresses and ids.original_to:
        addresses = [ids.original_to]
    return Reading(kind, list(dict.fromkeys(addresses)), status, reason, " ".join(diagnostic.split())[:300], fmt, ids)


def _read_dsn(msg: Message, part: Message, human: str, ids: Identifiers) -> Reading | None:
    groups = dsn.recipients(part)
    if not groups:
        return None
    failed = [g for g in groups if g.action in ("failed", "delayed", "") or g.status[:1] in ("4", "5")]
    if not failed:
        return Reading(NOT_A_BOUNCE, [g.address for g in groups if g.address], groups[0].status, "delivered",
                       format="dsn", ids=ids)
    listed = prose.failed_recipients(msg)
    results = []
    for i, group in enumerate(failed):
        address = group.address or (listed[i] if i < len(listed) else "")
        if group.action == "delayed":
            results.append((address, SOFT, "delayed", group.status, group.diagnostic))
            continue
        words = group.diagnostic or human
        permanent = True if group.action == "failed" else None
        kind, reason, status = classify(group.status, words, permanent=permanent)
        results.append((address, kind, reason, status, group.diagnostic or ""))
    return _combine(results, "dsn", ids)


def _read_prose(msg: Message, human: str, returned: Message | None, ids: Identifiers) -> Reading | None:
    found, permanent = prose.failures(msg, human, returned)
    if not found:
        return None
    results = []
    for failure in found:
        if permanent is False:
            results.append((failure.address, SOFT, "delayed", failure.status, failure.text))
            continue
        kind, reason, status = classify(failure.status, failure.text, permanent=permanent)
        results.append((failure.address, kind, reason, status, failure.text))
    return _combine(results, "prose", ids)
