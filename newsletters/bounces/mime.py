"""Taking a hostile message apart without trusting it: size caps, charset fallbacks, no exceptions out.

Bounces come from anyone, so a part may be gigabytes, declare a charset that
does not exist, nest a thousand levels deep, or not be MIME at all. Everything
here returns text (possibly empty) instead of raising, and reads at most a
fixed amount of each part: a report's useful words are in its first kilobytes.
"""

from __future__ import annotations

import codecs
import email
import email.header
import html
import re
from email.message import Message
from typing import Iterator

MAX_MESSAGE_BYTES = 4 * 1024 * 1024  # beyond this only the start is read: reports come first
MAX_PART_BYTES = 256 * 1024  # per decoded part
MAX_HEADER_CHARS = 2000
MAX_PARTS = 200
MAX_DEPTH = 12

_TAG_RE = re.compile(r"<(script|style)\b.*?</\1\s*>|<[^>]{0,2000}>", re.S | re.I)
_BLOCK_TAG_RE = re.compile(r"<\s*(br|/p|/div|/tr|/li|/h\d|/table)\b[^>]*>", re.I)
_SPACES_RE = re.compile(r"[ \t\xa0]+")


def parse(raw: bytes) -> Message:
    """The message as Python's email package sees it, from at most ``MAX_MESSAGE_BYTES``."""
    if len(raw) > MAX_MESSAGE_BYTES:
        raw = raw[:MAX_MESSAGE_BYTES]
    return email.message_from_bytes(raw)


def header(msg: Message, name: str) -> str:
    """One header as plain text (encoded-words decoded, lines unfolded), '' when absent or unreadable."""
    try:
        value = msg.get(name)
    except Exception:  # a header the parser could not make sense of
        return ""
    return _header_text(value)


def headers(msg: Message, name: str) -> list[str]:
    try:
        values = msg.get_all(name) or []
    except Exception:
        return []
    return [_header_text(value) for value in values]


def _header_text(value) -> str:
    if value is None:
        return ""
    try:
        if isinstance(value, email.header.Header):
            text = str(value)
        else:
            text = str(value)
            if "=?" in text:
                text = str(email.header.make_header(email.header.decode_header(text)))
    except Exception:
        text = str(value) if not isinstance(value, email.header.Header) else ""
    text = text.encode("utf-8", "replace").decode("utf-8")  # surrogates from 8-bit headers
    return " ".join(text.split())[:MAX_HEADER_CHARS]


def content_type(part: Message) -> str:
    try:
        return part.get_content_type()
    except Exception:
        return "text/plain"


def param(part: Message, name: str) -> str:
    try:
        value = part.get_param(name)
    except Exception:
        return ""
    if isinstance(value, tuple):  # RFC 2231: (charset, language, text)
        value = value[2]
    return str(value or "").lower()


def walk(msg: Message, *, into_returned: bool = False) -> Iterator[tuple[Message, int]]:
    """Every part with its depth, capped in count and depth; returned messages are not entered unless asked."""
    seen = 0
    stack: list[tuple[Message, int]] = [(msg, 0)]
    while stack and seen < MAX_PARTS:
        part, depth = stack.pop()
        seen += 1
        yield part, depth
        if depth >= MAX_DEPTH:
            continue
        ctype = content_type(part)
        if ctype in ("message/rfc822", "message/global") and not into_returned:
            continue
        try:
            children = part.get_payload() if part.is_multipart() else None
        except Exception:
            children = None
        if isinstance(children, list):
            stack.extend((child, depth + 1) for child in reversed(children) if isinstance(child, Message))


def _charset(part: Message) -> str:
    try:
        name = part.get_content_charset() or "utf-8"
        return codecs.lookup(name).name
    except (LookupError, ValueError, TypeError):
        return "utf-8"


def part_bytes(part: Message) -> bytes:
    """The decoded body of a leaf part, capped; b'' when it cannot be had."""
    try:
        payload = part.get_payload(decode=True)
    except Exception:
        payload = None
    if payload is None:
        try:
            raw = part.get_payload()
        except Exception:
            return b""
        if isinstance(raw, str):
            payload = raw.encode("utf-8", "surrogateescape")
        elif isinstance(raw, list):  # message/* parts: their sub-messages, serialised
            payload = b"\n".join(_as_bytes(sub) for sub in raw[:20] if isinstance(sub, Message))
        else:
            return b""
    return payload[:MAX_PART_BYTES]


def _as_bytes(msg: Message) -> bytes:
    try:
        return msg.as_bytes()[:MAX_PART_BYTES]
    except Exception:
        try:
            return msg.as_string()[:MAX_PART_BYTES].encode("utf-8", "replace")
        except Exception:
            return b""


def part_text(part: Message) -> str:
    """The decoded body as text in its declared charset (UTF-8, then Latin-1 when it lies)."""
    data = part_bytes(part)
    charset = _charset(part)
    try:
        text = data.decode(charset)
    except (UnicodeDecodeError, LookupError):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = data.decode("latin-1")
    if content_type(part) == "text/html":
        text = html_to_text(text)
    return text.replace("\r\n", "\n").replace("\r", "\n")


def html_to_text(markup: str) -> str:
    """Crude but safe: block ends become line breaks, tags go, entities are decoded."""
    markup = _BLOCK_TAG_RE.sub("\n", markup)
    text = html.unescape(_TAG_RE.sub(" ", markup))
    return "\n".join(_SPACES_RE.sub(" ", line).strip() for line in text.splitlines())


def header_block(text: str) -> Message:
    """Headers written as text (a text/rfc822-headers part, a pasted copy) parsed as a message."""
    text = text.lstrip("\n")[:MAX_PART_BYTES]
    end = text.find("\n\n")
    if end != -1:
        text = text[: end + 1]
    return email.message_from_string(text)
