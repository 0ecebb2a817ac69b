"""What counts as one address, and what may safely end up in a mail header.

Decisions (documented in the README):

* An address is validated with email-validator without DNS. The domain is
  lower-cased and stored in its ASCII (IDNA/punycode) form, so an address on an
  internationalised domain is accepted and can be sent to by any SMTP server.
* A local part with non-ASCII characters (``josé@…``) is refused: it needs
  SMTPUTF8 at every hop, which this sender does not promise.
* The local part is stored as the person typed it, but two addresses differing
  only in case are one person: the identity key (and its keyed hash) is the
  whole address lower-cased. Practically every mailbox provider ignores case,
  and sending twice or missing an unsubscribe because of ``Jane@`` vs ``jane@``
  is the worse mistake.
* What people paste from mail programs is accepted when it holds exactly one
  address: ``mailto:ann@example.com`` and ``Ann Lee <ann@example.com>`` are
  ``ann@example.com`` (the display name is dropped, never used as a name).
* Names may not hold a web address: sign-up forms are abused to make a
  clinic's confirmation mail greet "Hello www.spam.example,".
"""

from __future__ import annotations

import hashlib
import hmac
import re

MAX_NAME_LENGTH = 100

# CR, LF and NUL end or corrupt a header; "=?" starts an RFC 2047 encoded-word that
# a mail client would decode into anything. Other control characters (C0, C1, the
# Unicode line and paragraph separators, and the bidi overrides that make text
# display reversed) have no business in a name either.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_MAILTO = re.compile(r"^mailto:", re.IGNORECASE)
_WEB_ADDRESS = re.compile(r"://|\bwww\.", re.IGNORECASE)


class InvalidAddress(ValueError):
    """The reason, in words a clinic's administrator understands."""


def normalize_email(text: str) -> str:
    """The address to store and send to: validated, domain lower-cased and ASCII, local part as given."""
    text = (text or "").strip()
    if not text:
        raise InvalidAddress("no e-mail address")
    if _CONTROL.search(text):
        raise InvalidAddress("the e-mail address holds a control character (line break, tab or NUL)")
    text = _MAILTO.sub("", text).strip()
    # Imported with the first address checked: email-validator compiles its grammar on import (20 ms),
    # which every command touching the list would pay, and a send checks no address.
    from email_validator import EmailNotValidError, validate_email

    try:
        result = validate_email(text, check_deliverability=False, allow_smtputf8=False, allow_display_name=True)
    except EmailNotValidError as exc:
        message = str(exc)
        if "Internationalized characters before the @-sign" in message:
            message = (
                "non-ASCII characters before the @ need SMTPUTF8, which this sender does not use; "
                "ask the person for another address"
            )
        raise InvalidAddress(message) from None
    return result.ascii_email


def identity(address: str) -> str:
    """The key that makes two spellings one person (see the module docstring)."""
    return address.lower()


def address_hash(secret_key: str, address: str) -> str:
    """HMAC-SHA256 over the identity of an address: lookups and the suppression list use it."""
    return hmac.new(secret_key.encode("utf-8"), identity(address).encode("utf-8"), hashlib.sha256).hexdigest()


def header_safe_problem(value: str, *, max_length: int = MAX_NAME_LENGTH) -> str | None:
    """Why this value must not go into a mail header, or None when it may."""
    if "\r" in value or "\n" in value:
        return "holds a line break (CR/LF), which would start a new mail header"
    if "\x00" in value:
        return "holds a NUL character"
    if "=?" in value:
        return "holds '=?', which mail programs decode as an encoded header word"
    if "\t" in value:
        return "holds a tab character; use a space"
    if _CONTROL.search(value):
        return f"holds the invisible control character U+{ord(_CONTROL.search(value).group()):04X}"
    if len(value) > max_length:
        return f"is longer than {max_length} characters"
    return None


def name_problem(value: str) -> str | None:
    """Why this first or last name may not be stored: header safety, plus no web addresses."""
    problem = header_safe_problem(value)
    if problem is None and _WEB_ADDRESS.search(value):
        problem = "holds a web address, which has no place in a name"
    return problem
