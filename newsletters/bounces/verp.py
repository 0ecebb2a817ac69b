"""The signed VERP return path: ``bounces+TOKEN@domain`` says which run and subscriber a bounce is about.

With a return path per recipient, a bounce names its subscriber even when the
report itself is unreadable: the receiving server sends it to the envelope
sender. TOKEN is ``<run>-<subscriber>-<signature>``: both ids in base 36 and
an HMAC-SHA256 over them with the site's SECRET_KEY, cut to 80 bits and
written in lower-case base 32, because some servers lower-case local parts.
A forged or altered token reads as None. The whole local part stays far
below the 64-character limit (``bounces+`` and about 25 characters).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

from ..errors import ConfigError

MAX_LOCAL_PART = 64
_SIGNATURE_BYTES = 10
_PURPOSE = b"newsletters.bounces.verp.v1:"
_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"
_TOKEN_RE = re.compile(r"^([0-9a-z]{1,13})-([0-9a-z]{1,13})-([a-z2-7]{16})$")


def _base36(number: int) -> str:
    if number < 0:
        raise ValueError("ids are not negative")
    out = ""
    while True:
        number, digit = divmod(number, 36)
        out = _DIGITS[digit] + out
        if not number:
            return out


def _signature(run: str, subscriber: str, secret: str) -> str:
    mac = hmac.new(secret.encode("utf-8"), _PURPOSE + f"{run}-{subscriber}".encode(), hashlib.sha256).digest()
    return base64.b32encode(mac[:_SIGNATURE_BYTES]).decode("ascii").lower()


def make_return_path(base_address: str, run_id: int, subscriber_id: int, secret: str) -> str:
    """``local+TOKEN@domain`` for ``local@domain`` (BOUNCE_ADDRESS), for one run and subscriber."""
    if not secret:
        raise ConfigError("a VERP return path needs SECRET_KEY", where="environment/.env")
    local, at, domain = base_address.strip().rpartition("@")
    if not at or not local or not domain or "+" in local or any(c in base_address for c in "\r\n <>\""):
        raise ConfigError(
            f"BOUNCE_ADDRESS {base_address!r} is not a plain address like bounces@example.com",
            where="BOUNCE_ADDRESS",
            hint="use an address without '+', spaces or angle brackets",
        )
    run, subscriber = _base36(run_id), _base36(subscriber_id)
    local_part = f"{local}+{run}-{subscriber}-{_signature(run, subscriber, secret)}"
    if len(local_part) > MAX_LOCAL_PART:
        raise ConfigError(
            f"BOUNCE_ADDRESS local part {local!r} is too long for a VERP return path ({len(local_part)} > 64)",
            where="BOUNCE_ADDRESS",
            hint="use a short local part such as 'bounces'",
        )
    return f"{local_part}@{domain}"


def read_token(token: str, secret: str) -> tuple[int, int] | None:
    """(run_id, subscriber_id) from a TOKEN whose signature is ours; None otherwise."""
    match = _TOKEN_RE.match((token or "").strip().lower())
    if not match or not secret:
        return None
    run, subscriber, signature = match.groups()
    if not hmac.compare_digest(signature, _signature(run, subscriber, secret)):
        return None
    return int(run, 36), int(subscriber, 36)


def read_return_path(address: str, secret: str) -> tuple[int, int] | None:
    """(run_id, subscriber_id) from ``local+TOKEN@domain`` when TOKEN is signed with our secret."""
    local = (address or "").strip().strip("<>").rpartition("@")[0]
    if "+" not in local:
        return None
    return read_token(local.split("+", 1)[1], secret)
