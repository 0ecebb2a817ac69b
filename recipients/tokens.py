"""Signed links for confirming and unsubscribing, so nobody can act for someone else.

A token carries only the subscriber's random ``public_id`` (never the address or
the database id), and a confirmation token also the nonce of the sign-up it was
made for (so it confirms that sign-up and no later one), signed with ``SECRET_KEY`` by itsdangerous with a different
salt per purpose: a confirmation token cannot be replayed as an unsubscribe one
or the other way round. Confirmation links expire after seven days; unsubscribe
links never expire, because people unsubscribe from mail that is months old and
RFC 8058 asks for the link in every message to keep working.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Callable

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from itsdangerous.encoding import base64_encode
from itsdangerous.url_safe import URLSafeSerializerMixin

from foundation.errors import ConfigError, TokenError

CONFIRM_SALT = "newsletters.recipients.confirm"
UNSUBSCRIBE_SALT = "newsletters.recipients.unsubscribe"
FORM_SALT = "newsletters.recipients.subscribe-form"

CONFIRM_MAX_AGE = 7 * 24 * 3600
FORM_MAX_AGE = 24 * 3600
MIN_SECRET_LENGTH = 16
_PLACEHOLDERS = {"change-me", "changeme", "secret", "please-change-me"}

_HINT = (
    'set SECRET_KEY in the environment or the site\'s .env to a long random string, e.g. from '
    '`python -c "import secrets; print(secrets.token_urlsafe(32))"`; keep it: changing it breaks '
    "every unsubscribe link already sent"
)


def secret_key(site) -> str:
    """SECRET_KEY from the site's environment, refusing a missing, short or placeholder one."""
    key = site.setting("SECRET_KEY")
    if not key:
        raise ConfigError("SECRET_KEY is not set", where="environment/.env", hint=_HINT)
    check_secret_key(key)
    return key


def check_secret_key(key: str) -> None:
    if key.strip().lower() in _PLACEHOLDERS or len(key) < MIN_SECRET_LENGTH:
        raise ConfigError(
            f"SECRET_KEY is a placeholder or shorter than {MIN_SECRET_LENGTH} characters",
            where="environment/.env",
            hint=_HINT,
        )


class LinkSerializer(URLSafeTimedSerializer):
    """itsdangerous's URL-safe timed serializer, less its zlib attempt when making a token.

    Before encoding, URLSafeTimedSerializer zlib-compresses every payload and keeps
    the result only if it is shorter. Ours are random ids (a ``public_id``, and a
    nonce), which zlib never shortens, so the attempt always loses; yet it costs
    10-45 µs a call, zlib setting up its state each time, and a send makes one
    unsubscribe link per message. The tokens are what URLSafeTimedSerializer makes
    whenever zlib would not have shortened the payload, and reading them is
    unchanged (it still accepts a compressed payload).
    """

    def dump_payload(self, obj) -> bytes:
        return base64_encode(super(URLSafeSerializerMixin, self).dump_payload(obj))


def _serializer(key: str, salt: str) -> URLSafeTimedSerializer:
    return LinkSerializer(key, salt=salt)


# What mail programs and people add after a link: the end of a sentence, a closing
# bracket or quote. None of it can be part of a token (URL-safe base64 and dots).
_TRAILING_JUNK = ".,;:!?)]}>'\"\u201d\u2019 \t\r\n"


def clean_token(token: str) -> str:
    """The token without what a mail program glued to the end of the link; the signature is still checked."""
    return (token or "").strip().rstrip(_TRAILING_JUNK)


def make_confirm_token(key: str, public_id: str, nonce: str) -> str:
    return _serializer(key, CONFIRM_SALT).dumps([public_id, nonce])


def _read(key: str, salt: str, token: str, max_age: int | None, what: str) -> tuple[object, datetime]:
    try:
        value, issued = _serializer(key, salt).loads(token, max_age=max_age, return_timestamp=True)
    except SignatureExpired:
        raise TokenError(f"this {what} link has expired", hint="ask for a new one") from None
    except BadSignature:
        raise TokenError(f"this {what} link is not valid", hint="copy the whole link from the e-mail") from None
    return value, issued.astimezone(timezone.utc)


def read_confirm_token(key: str, token: str, max_age: int = CONFIRM_MAX_AGE) -> tuple[str, str, datetime]:
    """``(public_id, nonce, issued)``; TokenError when forged, tampered, expired or of the old one-field kind."""
    value, issued = _read(key, CONFIRM_SALT, token, max_age, "confirmation")
    if not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) and v for v in value)):
        raise TokenError("this confirmation link is no longer valid", hint="sign up again for a new one")
    return value[0], value[1], issued


def read_unsubscribe_token(key: str, token: str) -> str:
    """The public_id; TokenError when forged or tampered with. These links never expire."""
    value, _issued = _read(key, UNSUBSCRIBE_SALT, token, None, "unsubscribe")
    if not isinstance(value, str) or not value:
        raise TokenError("this unsubscribe link is not valid")
    return value


def make_form_token(key: str) -> str:
    """A signed, dated value for the subscribe form: a blind POST without the form is refused."""
    return _serializer(key, FORM_SALT).dumps("subscribe")


def form_token_ok(key: str, token: str) -> bool:
    try:
        return _serializer(key, FORM_SALT).loads(token or "", max_age=FORM_MAX_AGE) == "subscribe"
    except BadSignature:
        return False


def unsubscribe_url(site, public_id: str) -> str:
    """``{PUBLIC_URL}/unsubscribe/<token>``: for the List-Unsubscribe header and the footer link."""
    return unsubscribe_url_maker(site)(public_id)


def unsubscribe_url_maker(site) -> Callable[[str], str]:
    """``unsubscribe_url`` for one site, with the key checked and the signer made once.

    A send makes one link per recipient; checking SECRET_KEY and building the
    serializer each time was a quarter of the cost of the link.
    """
    prefix = f"{site.public_url}/unsubscribe/"
    dumps = _serializer(secret_key(site), UNSUBSCRIBE_SALT).dumps
    return lambda public_id: prefix + dumps(public_id)


def confirm_url(site, public_id: str, nonce: str) -> str:
    """``{PUBLIC_URL}/confirm/<token>``: the double opt-in link of one sign-up; it expires after seven days."""
    return f"{site.public_url}/confirm/{make_confirm_token(secret_key(site), public_id, nonce)}"
