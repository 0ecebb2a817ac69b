"""Quoted-printable message bodies, for any template and any recipient's values (property-based).

The factory encodes each part once and puts every recipient's values between
soft line breaks. Whatever the template and the values, a mail client must
read back exactly the filled-in text, and the message must be one that every
server takes: CRLF line ends only, no body line over RFC 2045's 76 characters
(none over RFC 5322's 78 anywhere), and no line holding only a dot, which
would end the SMTP DATA of a client that forgot to stuff it.
"""

from __future__ import annotations

import binascii
import email
import email.policy
import html
import re
import shutil

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from newsletters.config import Site
from newsletters.personalize import MessageFactory, _Part, encode_value, qp_encode, qp_encode_stdlib
from newsletters.render import FIRST_NAME, PLACEHOLDERS, UNSUBSCRIBE_URL, VIEW_URL, RenderedIssue
from tests.conftest import EXAMPLE_SITE

PUBLIC = "https://news.larkfield-clinic.example.com"

# What has gone wrong in hand-written encoders: line ends of every kind, trailing
# whitespace, lines of one dot, "=" and escapes near the 76th column, words too long
# for a line, characters that str.splitlines treats as line breaks, other scripts.
AWKWARD = [
    "\n", "\r", "\r\n", "\n\n", ".", ".\n", "\n.\n", "\n.", "..", " ", "\t", " \n", "\t\r\n", "=", "=\n",
    "=20", "=\r\n", "é", "漢字", "😀", "\x85", "\u2028", "\x0c", "\x0b", "\x00", "From ", "--",
    "a" * 74, "b" * 75, "c" * 76, "d" * 150, "é" * 30, " " * 80,
]
# Mostly awkward pieces, some arbitrary text, and the placeholders between them.
pieces = st.one_of(st.sampled_from(AWKWARD), st.text(max_size=40), st.sampled_from(PLACEHOLDERS))
templates = st.lists(pieces, max_size=30).map("".join)

# Values the factory accepts: a first name is one line of text with its runs of
# whitespace collapsed, at most 200 characters, and no encoded-word; a URL is
# printable ASCII without spaces, quotes, commas or angle brackets.
first_names = (
    st.text(st.characters(exclude_categories=("Cs", "Cc", "Zl", "Zp")), max_size=200)
    .map(lambda s: " ".join(s.split()))
    .filter(lambda s: s and not re.search(r"=\?.*\?=", s))
)
URL_CHARS = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in "\"',<>")
urls = st.one_of(
    st.text(URL_CHARS, min_size=1, max_size=700),
    st.lists(st.sampled_from(["=", ".", "&", "%3D", "x" * 74, "y" * 75]), min_size=1, max_size=12).map("".join),
).map(lambda path: f"{PUBLIC}/{path}")


def crlf(text: str) -> str:
    """Every line end, CR, LF or CRLF, as CRLF: the encoder's contract for line ends."""
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\r\n")


def filled(template: str, values: dict[str, str]) -> str:
    """The template with its line ends normalised, then each placeholder replaced by its value."""
    return re.sub("|".join(map(re.escape, PLACEHOLDERS)), lambda m: values[m.group()], crlf(template))


def qp_decode(encoded: str) -> str:
    return binascii.a2b_qp(encoded.encode("ascii")).decode("utf-8")


def assert_well_formed(encoded: str, longest: int) -> None:
    """CRLF line ends only, no line longer than ``longest``, no line that starts with a dot."""
    assert encoded.isascii()
    lines = encoded.split("\r\n")
    assert not any("\r" in line or "\n" in line for line in lines), "a bare CR or LF"
    assert max(len(line) for line in lines) <= longest
    assert not any(line.startswith(".") for line in lines), "a line that starts with a dot"


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Site:
    folder = tmp_path_factory.mktemp("qp") / "site"
    shutil.copytree(EXAMPLE_SITE, folder, ignore=shutil.ignore_patterns("build", "outbox", "reports", "newsletter.db*", ".env"))
    return Site.load(folder)


def issue(text: str, html_part: str) -> RenderedIssue:
    return RenderedIssue(
        slug="2026-11", subject="Your November skin notes", preheader="", html=html_part, text=text, web_html="",
        view_url=f"{PUBLIC}/issues/2026-11/",
    )


def parts(raw: bytes) -> tuple[str, str]:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    text, html_part = (message.get_body((kind,)) for kind in ("plain", "html"))
    assert text["Content-Transfer-Encoding"] == html_part["Content-Transfer-Encoding"] == "quoted-printable"
    return text.get_content(), html_part.get_content()


# ------------------------------------------------------------------ the encoder alone

@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(AWKWARD), st.text()), max_size=20).map("".join))
@example("abc\n")
@example(".")
@example("x\n.\n")
@example("a" * 75 + " ")
def test_qp_encode_of_any_text_decodes_back_with_crlf_line_ends(text):
    encoded = qp_encode(text)
    assert qp_decode(encoded) == crlf(text)
    assert_well_formed(encoded, 75)  # one column left for the soft break a seam adds


# Near the edge of what needs no encoding: short printable ASCII with the odd "=", space, tab or dot.
near_plain = st.text(st.sampled_from([chr(c) for c in range(0x20, 0x7F)] + ["=", " ", "\t", ".", "é"]), max_size=90)


@settings(max_examples=1000, deadline=None)
@given(st.one_of(near_plain, st.text(max_size=90), st.sampled_from(AWKWARD)))
@example(".")
@example("x" * 75)
@example("x" * 76)
@example("Ann ")
@example(" Ann")
def test_the_shortcut_for_values_needing_no_encoding_gives_what_the_standard_library_gives(value):
    assert qp_encode(value) == qp_encode_stdlib(value)


def test_a_final_newline_is_a_crlf_and_a_dot_that_starts_a_line_is_escaped():
    assert qp_encode("abc\n") == "abc\r\n"
    assert qp_encode("Thanks.\n.\nBye") == "Thanks.\r\n=2E\r\nBye"
    assert qp_encode(".intro { color: #333 }\n.x") == "=2Eintro { color: #333 }\r\n=2Ex"
    assert qp_encode("v1.2") == "v1.2"


# ------------------------------------------------------------------ the seams, for any value

@settings(max_examples=300, deadline=None)
@given(templates, st.fixed_dictionaries({token: st.text(max_size=120) for token in PLACEHOLDERS}))
@example(f"Read it online: {VIEW_URL}.\n{UNSUBSCRIBE_URL}", {FIRST_NAME: "", UNSUBSCRIBE_URL: ".", VIEW_URL: "x"})
@example(f"{FIRST_NAME}{FIRST_NAME}\n", {FIRST_NAME: ".\n", UNSUBSCRIBE_URL: "", VIEW_URL: ""})
def test_any_values_between_the_encoded_stretches_decode_to_the_filled_text(template, values):
    """Values here may hold what the factory refuses (line breaks, a lone dot): the seams must hold anyway."""
    rendered = _Part(template).render({token: encode_value(value) for token, value in values.items()})
    expected = filled(template, {token: crlf(value) for token, value in values.items()})
    assert qp_decode(rendered) == expected
    assert_well_formed(rendered, 76)


# ------------------------------------------------------------------ whole messages

@settings(max_examples=150, deadline=None)
@given(templates, templates, first_names, urls, st.one_of(st.none(), urls))
@example(f"Read it online: {VIEW_URL}.\n{UNSUBSCRIBE_URL}", f"<p>{VIEW_URL}.\n{UNSUBSCRIBE_URL}</p>\n", "Ann", f"{PUBLIC}/u/t", None)
@example(".\n", "\n.", ".", f"{PUBLIC}/.", f"{PUBLIC}/" + "=" * 300)
def test_every_personalised_part_decodes_to_the_filled_template(site, text, html_part, first, unsubscribe, view):
    raw = MessageFactory(site, issue(text, html_part)).build(
        to_email="reader@example.org", first_name=first, unsubscribe_url=unsubscribe, view_url=view
    )
    view = view or f"{PUBLIC}/issues/2026-11/"
    got_text, got_html = parts(raw)
    assert got_text == filled(text, {FIRST_NAME: first, UNSUBSCRIBE_URL: unsubscribe, VIEW_URL: view})
    escaped = {FIRST_NAME: html.escape(first), UNSUBSCRIBE_URL: html.escape(unsubscribe), VIEW_URL: html.escape(view)}
    assert got_html == filled(html_part, escaped)

    message = raw.decode("ascii")
    assert_well_formed(message, 998)
    headers, body = message.split("\r\n\r\n", 1)
    assert max(len(line) for line in body.split("\r\n")) <= 76
    assert message.endswith("\r\n")
