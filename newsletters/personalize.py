"""Per-recipient messages from one rendered issue, cheaply enough for 100,000 sends.

The issue is rendered once (``newsletters.render``); what changes per reader is
a first name and two links. Building each message with ``email.message`` would
re-encode ~60 KB of HTML every time (about 3 ms), so ``MessageFactory`` does
the encoding once: the text and HTML parts are split at the placeholder
tokens, every static stretch is quoted-printable encoded once, and a message is
just those stretches joined with the few encoded values between them.

The quoted-printable itself is the standard library's (``email.quoprimime``,
what ``EmailMessage`` uses), asked for lines of at most 75 characters with
CRLF line ends, so that the one ``=`` of a soft break added at a seam keeps
every line within RFC 2045's 76. The trick that makes the joins safe: each
value sits between two QP soft line breaks (``=\\r\\n``), which decoders drop,
so the value starts on a fresh line whatever came before it and no ``=XX``
escape is ever split. A line that starts with ``.`` starts with ``=2E``
instead (the same character once decoded): a lone ``.`` would end the data
for a server if the SMTP client did not stuff it, and a message kept in the
outbox or handed to a pipe must not depend on that; and a message with no such
line leaves the SMTP client nothing to stuff (doubling the dots of the
stylesheet's lines cost 36 µs of every 60 KB message, a tenth of a sender's
CPU). The multipart boundary starts with ``=_``, which
quoted-printable output can never contain.

Header values that come from data (names, subject, site name) are refused when
they hold CR, LF, NUL or an RFC 2047 encoded-word: Python's email package turns
``=?utf-8?q?x=0D=0ABcc:_y@z?=`` back into a real header when a message is
re-serialized, so such text is never passed on.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import html as html_lib
import os
import re
import time
from email import quoprimime
from email.header import Header

from .config import Site
from .errors import HeaderInjectionError
from .render import FIRST_NAME, PLACEHOLDERS, UNSUBSCRIBE_URL, VIEW_URL, RenderedIssue

CRLF = "\r\n"
SOFT_BREAK = "=\r\n"
MAX_NAME = 200  # characters; keeps every header line far below the 998-byte limit
MAX_URL = 800

SAMPLE_RECIPIENT = ("Sam Sample", "sam@example.com", "Sam")
# Gmail shows "[Message clipped]" and hides the rest, unsubscribe link included, past this many bytes of HTML.
GMAIL_CLIP_BYTES = 102 * 1024

# Control characters (NEL and the Unicode line separators too: str.splitlines
# breaks on them) and encoded-words are what turn data into extra headers.
_UNSAFE_HEADER_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f\x85\u2028\u2029]|=\?.*\?=", re.S)
# Every pattern ends in \Z, not $: $ also matches before a final newline, which would let
# "https://x/u\n" through into a header as a bare LF.
_ADDRESS_RE = re.compile(
    r"^(?!\.)(?!.*\.\.)[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}(?<!\.)@"
    r"(?=.{1,253}\Z)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+\Z"
)
_ATOM_RE = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~ .-]*\Z")  # a display name that needs no quoting
# Printable ASCII but " ' , < > (the List-Unsubscribe header is ASCII; an IRI must be percent-encoded).
_URL_RE = re.compile(r"^https?://[\x21\x23-\x26\x28-\x2b\x2d-\x3b\x3d\x3f-\x7e]+\Z")
_MESSAGE_ID_RE = re.compile(r"^<[^\s<>@]+@[^\s<>@]+>\Z")
_TOKEN_RE = re.compile("(" + "|".join(re.escape(token) for token in PLACEHOLDERS) + ")")

# Encoded characters per line, as the encoder writes them. Two more if the line starts with a
# dot (``=2E``), and the "=" of a soft break at a seam, make 76: RFC 2045's limit.
QP_LINE = 73
# A dot that starts a line: at the start of the text or after a line break.
_LEADING_DOT_RE = re.compile(r"(?<![^\n])\.")


# Text the standard library's encoder returns unchanged: one line of at most QP_LINE printable
# ASCII characters other than "=", not ending in a space, not starting with a dot. Most first names and
# short links are; for them ``qp_encode`` skips the encoder (a property test checks it agrees).
_AS_IS_RE = re.compile(r"(?!\.)[\x20-\x3c\x3e-\x7e]{0,%d}[\x21-\x3c\x3e-\x7e]\Z" % (QP_LINE - 1))


def qp_encode(text: str) -> str:
    """Quoted-printable of ``text`` as UTF-8: CRLF line ends, lines of at most ``QP_LINE`` characters.

    What ``qp_encode_stdlib`` returns, without calling it when the text needs no encoding:
    this runs for each recipient's values, a few times per message.
    """
    return text if _AS_IS_RE.match(text) else qp_encode_stdlib(text)


def qp_encode_stdlib(text: str) -> str:
    """Quoted-printable by the standard library's body encoder, and no line that starts with a dot.

    ``email.quoprimime`` (what ``EmailMessage`` uses) keeps every line within
    ``maxlinelen``, escapes whitespace at the end of a line or of the text (so
    the stretch can be followed by a soft break, or end the part, without
    losing a space) and turns CR, LF and CRLF into ``eol``. It takes the UTF-8
    bytes as latin-1 code points, one per byte. It leaves a dot at the start
    of a line as it is, hence the ``=2E``. (``binascii.b2a_qp``, which ``quopri``
    calls, is no better: it writes bare LF unless the input's first line
    ends in CRLF, lets a line reach 77 characters when it escapes a trailing
    space, and leaves a dot alone that a soft break pushed to a line of its own.)
    """
    encoded = quoprimime.body_encode(text.encode("utf-8").decode("latin-1"), maxlinelen=QP_LINE, eol=CRLF)
    return _LEADING_DOT_RE.sub("=2E", encoded)


def check_header_text(value: str, field: str) -> str:
    """Refuse text that could smuggle a header in; return it unchanged otherwise."""
    if _UNSAFE_HEADER_RE.search(value):
        raise HeaderInjectionError(
            f"{field} holds a line break, control character or encoded-word ({value[:60]!r})",
            where=field,
            hint="remove it from the data; such text could add headers (Bcc:) to the message",
        )
    return value


def check_address(address: str, field: str) -> str:
    check_header_text(address, field)
    if not _ADDRESS_RE.match(address):
        raise HeaderInjectionError(
            f"{field} is not a plain e-mail address: {address[:80]!r}",
            where=field,
            hint="use an address like name@example.com",
        )
    return address


def encode_header(name: str, value: str) -> str:
    """``Name: value`` folded with CRLF; non-ASCII becomes RFC 2047 encoded-words."""
    if value.isascii():
        if len(name) + 2 + len(value) <= 78:
            return f"{name}: {value}"
        folded = f"{name}: " + Header(value, "us-ascii", header_name=name).encode(linesep=CRLF)
        if max(len(line) for line in folded.split(CRLF)) <= 998:
            return folded
        # A run with no space to fold at: encoded-words may be split anywhere.
    return f"{name}: " + Header(value, "utf-8", header_name=name).encode(linesep=CRLF)


def format_address(display_name: str, address: str, field: str) -> str:
    """An address header value, the display name quoted or encoded as needed."""
    check_address(address, f"{field} address")
    display_name = " ".join(check_header_text(display_name, f"{field} name").split())
    if len(display_name) > MAX_NAME:
        raise HeaderInjectionError(
            f"{field} name is {len(display_name)} characters long", where=f"{field} name", hint=f"keep it under {MAX_NAME}"
        )
    if not display_name:
        return address
    if not display_name.isascii():
        return Header(display_name, "utf-8", header_name=field).encode(linesep=CRLF) + f" <{address}>"
    if _ATOM_RE.match(display_name):
        return f"{display_name} <{address}>"
    quoted = display_name.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{quoted}" <{address}>'


def encode_value(value: str) -> str:
    """One recipient's value as it goes between two encoded stretches: encoded, then a soft break.

    The stretch before it ends in a soft break too, so the value starts on a
    line of its own and the stretch after it does as well.
    """
    return qp_encode(value) + SOFT_BREAK


class _Part:
    """One body part, QP-encoded once, as static stretches with placeholder slots between.

    Line ends of the template are normalised first (CR, LF and CRLF each
    become one CRLF); ``render`` takes values already through ``encode_value``.
    """

    def __init__(self, content: str):
        content = content.replace("\r\n", "\n").replace("\r", "\n")
        pieces = _TOKEN_RE.split(content)
        self.slots: list[str] = pieces[1::2]
        statics = [qp_encode(piece) for piece in pieces[0::2]]
        # Each stretch that a value follows ends in a soft break; so does each value.
        self.statics = [s + SOFT_BREAK for s in statics[:-1]] + [statics[-1]]

    def render(self, encoded_values: dict[str, str]) -> str:
        out = [self.statics[0]]
        for slot, static in zip(self.slots, self.statics[1:]):
            out.append(encoded_values[slot])
            out.append(static)
        return "".join(out)


class MessageFactory:
    """Builds complete RFC 5322 messages for one issue; construct once, call ``build`` per recipient."""

    def __init__(self, site: Site, rendered: RenderedIssue, *, issue_slug: str | None = None, list_slug: str = "newsletter"):
        config = site.config
        self.slug = issue_slug or rendered.slug
        self.domain = config.sender_domain
        self.fallback = rendered.first_name_fallback or config.personalization_first_name_fallback
        self.view_url = rendered.view_url or f"{site.public_url}/issues/{self.slug}/"

        sender = format_address(config.sender_name, config.sender_address, "From")
        check_header_text(config.name, "site name")
        reply_to = config.sender_reply_to.strip()
        unsubscribe_mailbox = check_address(reply_to or config.sender_address, "Reply-To")
        self._mailto = f"mailto:{unsubscribe_mailbox}?subject=unsubscribe"
        self.subject = check_header_text(rendered.subject, "subject")
        self._subject_personal = FIRST_NAME in self.subject
        self._subject_lines: dict[str, str] = {}

        # List-Id names the list, not the issue: it has to stay the same every
        # month for subscribers' filters and the providers' reputation to stick (RFC 2919).
        list_id = f"{list_slug}.{self.domain}"
        boundary = "=_nl_" + os.urandom(12).hex()
        self._from_line = f"From: {sender}"
        trailing = []
        if reply_to:
            trailing.append("Reply-To: " + format_address("", reply_to, "Reply-To"))
        trailing.append(encode_header("List-Id", f"{config.name} <{list_id}>"))
        trailing.append("List-Unsubscribe-Post: List-Unsubscribe=One-Click")
        trailing.append("MIME-Version: 1.0")
        trailing.append(f'Content-Type: multipart/alternative; boundary="{boundary}"')
        self._trailing_headers = CRLF.join(trailing)

        part_head = "Content-Type: text/{}; charset=\"utf-8\"" + CRLF + "Content-Transfer-Encoding: quoted-printable" + CRLF + CRLF
        self._text = _Part(rendered.text)
        self._html = _Part(rendered.html)
        self._open_text = CRLF + f"--{boundary}" + CRLF + part_head.format("plain")
        self._open_html = CRLF + f"--{boundary}" + CRLF + part_head.format("html")
        self._close = CRLF + f"--{boundary}--" + CRLF
        self._date = (0, "")
        self._default_view = (
            (encode_value(self.view_url), encode_value(html_lib.escape(self.view_url))) if self._valid_url(self.view_url) else None
        )

    # ------------------------------------------------------------ helpers

    @staticmethod
    def _valid_url(url: str) -> bool:
        return len(url) <= MAX_URL and bool(_URL_RE.match(url))

    def _url(self, url: str, field: str) -> str:
        if not self._valid_url(url):
            raise HeaderInjectionError(
                f"{field} must be an absolute http(s) URL of printable ASCII without spaces, quotes, commas "
                f"or angle brackets, at most {MAX_URL} characters: {url[:80]!r}",
                where=field,
                hint="percent-encode anything else (ü is %C3%BC)",
            )
        return url

    def _date_header(self) -> str:
        now = int(time.time())
        if self._date[0] != now:  # formatting a date costs more than the rest of the headers
            stamp = dt.datetime.fromtimestamp(now, dt.timezone.utc)
            self._date = (now, "Date: " + stamp.strftime("%a, %d %b %Y %H:%M:%S +0000"))
        return self._date[1]

    def _subject_line(self, first_name: str, prefix: str) -> str:
        if self._subject_personal:
            return encode_header("Subject", prefix + self.subject.replace(FIRST_NAME, first_name))
        line = self._subject_lines.get(prefix)
        if line is None:
            line = self._subject_lines[prefix] = encode_header("Subject", prefix + self.subject)
        return line

    # ------------------------------------------------------------ the hot path

    def build(
        self,
        *,
        to_email: str,
        to_name: str = "",
        first_name: str = "",
        unsubscribe_url: str,
        view_url: str | None = None,
        message_id: str | None = None,
        subject_prefix: str = "",
    ) -> bytes:
        """One complete message (CRLF line ends, lines of at most 998 bytes) for one recipient."""
        to_line = "To: " + format_address(to_name, to_email, "To")
        first = " ".join(check_header_text(first_name, "first name").split()) or self.fallback
        if len(first) > MAX_NAME:
            raise HeaderInjectionError(f"first name is {len(first)} characters long", where="first name")
        if subject_prefix:
            check_header_text(subject_prefix, "subject prefix")
        unsubscribe_url = self._url(unsubscribe_url, "unsubscribe_url")
        if message_id is None:
            message_id = f"<{os.urandom(16).hex()}@{self.domain}>"
        elif not _MESSAGE_ID_RE.match(message_id):
            raise HeaderInjectionError(f"message_id must look like <id@domain>: {message_id[:80]!r}", where="message_id")

        if view_url is None and self._default_view is not None:
            view_text, view_html = self._default_view
        else:
            view = self._url(view_url or self.view_url, "view_url")
            view_text, view_html = encode_value(view), encode_value(html_lib.escape(view))
        text_values = {
            FIRST_NAME: encode_value(first),
            UNSUBSCRIBE_URL: encode_value(unsubscribe_url),
            VIEW_URL: view_text,
        }
        html_values = {
            FIRST_NAME: encode_value(html_lib.escape(first)),
            UNSUBSCRIBE_URL: encode_value(html_lib.escape(unsubscribe_url)),
            VIEW_URL: view_html,
        }
        headers = CRLF.join(
            (
                self._from_line,
                to_line,
                self._subject_line(first, subject_prefix),
                self._date_header(),
                f"Message-ID: {message_id}",
                f"List-Unsubscribe: <{unsubscribe_url}>,{CRLF} <{self._mailto}>",
                self._trailing_headers,
            )
        )
        # The blank line after the headers is the CRLF that opens the first boundary.
        return "".join(
            (
                headers,
                CRLF,
                self._open_text,
                self._text.render(text_values),
                self._open_html,
                self._html.render(html_values),
                self._close,
            )
        ).encode("ascii")


def sample_unsubscribe_url(site: Site) -> str:
    """The unsubscribe link the made-up subscriber gets (it unsubscribes nobody)."""
    return f"{site.public_url}/unsubscribe/sample-token"


def sample_message(site: Site, rendered: RenderedIssue, slug: str | None = None) -> bytes:
    """The message a made-up subscriber would get: for sample.eml, previews and checks."""
    name, address, first = SAMPLE_RECIPIENT
    factory = MessageFactory(site, rendered, issue_slug=slug or rendered.slug)
    return factory.build(
        to_email=address,
        to_name=name,
        first_name=first,
        unsubscribe_url=sample_unsubscribe_url(site),
    )


def fill_for_sample(site: Site, rendered: RenderedIssue, content: str, *, html: bool) -> str:
    """``content`` (the issue's HTML or text part) as the made-up subscriber reads it.

    What people open from ``build/`` is this, not the tokenised template: an
    ``email.html`` saying "Hello __NL_FIRST_NAME__," looks broken to anyone who
    is not the sending code. The values hold no line break, so line N of the
    filled file is line N of the template (the checks name lines by number).
    """
    values = {
        FIRST_NAME: SAMPLE_RECIPIENT[2],
        UNSUBSCRIBE_URL: sample_unsubscribe_url(site),
        VIEW_URL: rendered.view_url or f"{site.public_url}/issues/{rendered.slug}/",
    }
    escape = html_lib.escape if html else str
    return _TOKEN_RE.sub(lambda m: escape(values[m.group(0)]), content)


def encoded_html_size(message: bytes) -> int:
    """Bytes of a message's HTML part as it travels (quoted-printable): what Gmail counts towards its 102 KB.

    The one measure of "how big is this issue" that ``build``, ``check`` and the
    preview all print, so they cannot disagree.
    """
    parsed = email.message_from_bytes(message, policy=email.policy.default)
    for part in parsed.walk():
        if part.get_content_type() == "text/html" and not part.is_multipart():
            payload = part.get_payload(decode=False)
            return len(payload.encode("ascii", "replace") if isinstance(payload, str) else payload)
    return 0
