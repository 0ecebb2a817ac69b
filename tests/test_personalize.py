"""Per-recipient messages, read back with the standard library's parser as a mail client would."""

from __future__ import annotations

import email
import email.policy
import email.utils
import html
import random

import pytest

from newsletters.config import Site
from newsletters.errors import HeaderInjectionError
from newsletters.personalize import MessageFactory, sample_message
from newsletters.render import FIRST_NAME, UNSUBSCRIBE_URL, VIEW_URL, render_issue
from tests.test_render import make_issue, standard_articles

UNSUB = "https://news.larkfield-clinic.example.com/unsubscribe/eyJpZCI6NDJ9.Zx9?utm=a&b=c"


@pytest.fixture
def site(site_dir) -> Site:
    return Site.load(site_dir)


@pytest.fixture
def rendered(site, site_dir):
    articles = standard_articles()
    return render_issue(site, make_issue(site_dir, articles), articles)


@pytest.fixture
def factory(site, rendered) -> MessageFactory:
    return MessageFactory(site, rendered, issue_slug="2026-11")


def parse(raw: bytes):
    return email.message_from_bytes(raw, policy=email.policy.default)


def bodies(message) -> tuple[str, str]:
    text = message.get_body(("plain",)).get_content().replace("\r\n", "\n")
    html_part = message.get_body(("html",)).get_content().replace("\r\n", "\n")
    return text, html_part


def filled(template: str, first: str, unsubscribe: str, view: str, *, as_html: bool) -> str:
    esc = html.escape if as_html else (lambda s: s)
    return template.replace(FIRST_NAME, esc(first)).replace(UNSUBSCRIBE_URL, esc(unsubscribe)).replace(VIEW_URL, esc(view))


def test_message_is_multipart_alternative_text_then_html(factory, rendered):
    message = parse(factory.build(to_email="ann@example.com", to_name="Ann Lee", first_name="Ann", unsubscribe_url=UNSUB))
    assert message.get_content_type() == "multipart/alternative"
    assert [part.get_content_type() for part in message.iter_parts()] == ["text/plain", "text/html"]
    assert all(part.get_content_charset() == "utf-8" for part in message.iter_parts())
    text, html_part = bodies(message)
    assert text == filled(rendered.text, "Ann", UNSUB, rendered.view_url, as_html=False)
    assert html_part == filled(rendered.html, "Ann", UNSUB, rendered.view_url, as_html=True)
    assert "Hi Ann," in text and "__NL_" not in text + html_part


def test_headers(factory, site):
    raw = factory.build(
        to_email="ann@example.com", to_name="Ann Lee", first_name="Ann", unsubscribe_url=UNSUB,
        message_id="<fixed-id-1@larkfield-clinic.example.com>",
    )
    message = parse(raw)
    config = site.config
    assert message["From"] == f"{config.sender_name} <{config.sender_address}>"
    assert message["To"] == "Ann Lee <ann@example.com>"
    assert message["Subject"] == "Your November skin notes"
    assert message["Reply-To"] == config.sender_reply_to
    assert message["Message-ID"] == "<fixed-id-1@larkfield-clinic.example.com>"
    assert message["MIME-Version"] == "1.0"
    sent = email.utils.parsedate_to_datetime(message["Date"])
    assert sent.tzinfo is not None
    assert message["List-Unsubscribe"] == f"<{UNSUB}>, <mailto:{config.sender_reply_to}?subject=unsubscribe>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["List-Id"] == f"{config.name} <newsletter.{config.sender_domain}>"
    for name in ("From", "To", "Subject", "Date", "Message-ID", "List-Unsubscribe", "List-Id", "MIME-Version"):
        assert len(message.get_all(name)) == 1, name


def test_a_generated_message_id_is_random_and_on_the_sender_domain(factory, site):
    ids = {parse(factory.build(to_email="a@example.com", unsubscribe_url=UNSUB))["Message-ID"] for _ in range(3)}
    assert len(ids) == 3
    assert all(i.startswith("<") and i.endswith(f"@{site.config.sender_domain}>") for i in ids)


def test_crlf_everywhere_and_no_line_over_998_bytes(factory):
    raw = factory.build(
        to_email="ann@example.com",
        to_name="Ann " + "Marie-Louise " * 14,
        first_name="Zoë-" + "ß" * 150,
        unsubscribe_url=UNSUB + "x" * 600,
    )
    assert b"\n" not in raw.replace(b"\r\n", b"")
    assert b"\r" not in raw.replace(b"\r\n", b"")
    lines = raw.split(b"\r\n")
    assert max(len(line) for line in lines) <= 998
    body = raw.split(b"\r\n\r\n", 1)[1]
    assert max(len(line) for line in body.split(b"\r\n")) <= 76  # quoted-printable's own limit
    assert raw.isascii()


def test_non_ascii_names_and_subject_round_trip(site, site_dir):
    articles = standard_articles()
    rendered = render_issue(site, make_issue(site_dir, articles, subject="Zoë’s café: notes for {first_name} ✨"), articles)
    factory = MessageFactory(site, rendered, issue_slug="2026-11")
    message = parse(factory.build(to_email="zoe@example.org", to_name="Zoë Ångström-Łukasz", first_name="Zoë", unsubscribe_url=UNSUB))
    assert message["To"].addresses[0].display_name == "Zoë Ångström-Łukasz"
    assert message["To"].addresses[0].addr_spec == "zoe@example.org"
    assert message["Subject"] == "Zoë’s café: notes for Zoë ✨"
    text, html_part = bodies(message)
    assert "Hi Zoë," in text and "Hi Zoë," in html_part


def test_display_names_with_specials_are_quoted(factory):
    message = parse(factory.build(to_email="bob@example.com", to_name='Bob "the builder", Jr.', unsubscribe_url=UNSUB))
    assert message["To"].addresses[0].display_name == 'Bob "the builder", Jr.'
    assert message["To"].addresses[0].addr_spec == "bob@example.com"


def test_first_name_is_html_escaped_in_the_html_part_only(factory, rendered):
    message = parse(factory.build(to_email="x@example.com", first_name="<b>Tom & Jerry</b>", unsubscribe_url=UNSUB))
    text, html_part = bodies(message)
    assert "Hi <b>Tom & Jerry</b>," in text
    assert "Hi &lt;b&gt;Tom &amp; Jerry&lt;/b&gt;," in html_part
    assert "<b>Tom" not in html_part


def test_unknown_first_name_uses_the_fallback(factory):
    text, html_part = bodies(parse(factory.build(to_email="x@example.com", first_name="  ", unsubscribe_url=UNSUB)))
    assert "Hi there," in text and "Hi there," in html_part


def test_view_url_defaults_to_the_issue_page_and_can_be_given(factory, site):
    text, _ = bodies(parse(factory.build(to_email="x@example.com", unsubscribe_url=UNSUB)))
    assert f"View this e-mail in your browser: {site.public_url}/issues/2026-11/" in text
    own = "https://news.larkfield-clinic.example.com/issues/2026-11/?r=abc&s=1"
    text, html_part = bodies(parse(factory.build(to_email="x@example.com", unsubscribe_url=UNSUB, view_url=own)))
    assert f"browser: {own}" in text and f'href="{html.escape(own)}"' in html_part


def test_subject_prefix_is_added(factory):
    message = parse(factory.build(to_email="x@example.com", unsubscribe_url=UNSUB, subject_prefix="[TEST] "))
    assert message["Subject"] == "[TEST] Your November skin notes"


@pytest.mark.parametrize(
    "field, value",
    [
        ("to_name", "Bobby\r\nBcc: victim@example.org"),
        ("to_name", "Bobby\nBcc: victim@example.org"),
        ("to_name", "=?utf-8?q?x=0D=0ABcc:_victim@example.org?="),
        ("to_name", "Bob\x00by"),
        ("to_name", "Bob\u2028Bcc: victim@example.org"),
        ("first_name", "Ann\r\nBcc: victim@example.org"),
        ("first_name", "=?utf-8?b?QW5u?="),
        ("to_email", "ann@example.com\r\nBcc: victim@example.org"),
        ("to_email", "ann@example.com, victim@example.org"),
        ("to_email", "not-an-address"),
        ("to_email", "Ann <ann@example.com>"),
        ("unsubscribe_url", "https://example.com/u/1>\r\nBcc: victim@example.org"),
        ("unsubscribe_url", "https://example.com/u/1>, <https://evil.example.org"),
        ("unsubscribe_url", "javascript:alert(1)"),
        ("subject_prefix", "[TEST]\r\nBcc: victim@example.org "),
        ("message_id", "<a@b>\r\nBcc: victim@example.org"),
        # A final newline: "$" in a pattern would have let these into the headers as a bare LF.
        ("unsubscribe_url", "https://example.com/u/1\n"),
        ("view_url", "https://example.com/issues/2026-11/\n"),
        ("message_id", "<a@b>\n"),
        # Not ASCII: the List-Unsubscribe header is ASCII; such a link must be percent-encoded.
        ("unsubscribe_url", "https://example.com/u/Zoë"),
    ],
)
def test_header_injection_is_refused(factory, field, value):
    arguments = {"to_email": "ann@example.com", "to_name": "Ann", "unsubscribe_url": UNSUB, field: value}
    with pytest.raises(HeaderInjectionError):
        factory.build(**arguments)


def test_site_data_with_an_encoded_word_is_refused_before_any_message(site_dir):
    config = site_dir / "newsletter.toml"
    config.write_text(config.read_text().replace('name = "Larkfield Clinic"', 'name = "=?utf-8?q?Clinic=0D=0ABcc:_x@example.org?="'))
    site = Site.load(site_dir)
    articles = standard_articles()
    rendered = render_issue(site, make_issue(site_dir, articles), articles)
    with pytest.raises(HeaderInjectionError) as caught:
        MessageFactory(site, rendered, issue_slug="2026-11")
    assert caught.value.where == "From name"


def test_subject_with_a_line_break_is_refused(site, site_dir):
    articles = standard_articles()
    rendered = render_issue(site, make_issue(site_dir, articles), articles)
    rendered.subject = "November\r\nBcc: victim@example.org"
    with pytest.raises(HeaderInjectionError):
        MessageFactory(site, rendered, issue_slug="2026-11")


def test_quoted_printable_round_trips_awkward_values(site, rendered):
    """Values at the seams: trailing spaces, '=', long unbroken runs, every script."""
    factory = MessageFactory(site, rendered, issue_slug="2026-11")
    rng = random.Random(20261101)
    alphabet = "ab =\t?_.-ëß€漢字😀<>&\"'"
    for _ in range(40):
        first = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 120))).strip() or "x"
        if "=?" in first:
            first = first.replace("=?", "= ?")
        unsubscribe = "https://example.com/u/" + "".join(rng.choice("abc=&%-_~") for _ in range(rng.randint(1, 300)))
        raw = factory.build(to_email="r@example.com", first_name=first, unsubscribe_url=unsubscribe)
        text, html_part = bodies(parse(raw))
        expected_first = " ".join(first.split())
        assert text == filled(rendered.text, expected_first, unsubscribe, rendered.view_url, as_html=False)
        assert html_part == filled(rendered.html, expected_first, unsubscribe, rendered.view_url, as_html=True)
        assert max(len(line) for line in raw.split(b"\r\n\r\n", 1)[1].split(b"\r\n")) <= 76


def test_sample_message_is_for_a_made_up_subscriber(site, rendered):
    message = parse(sample_message(site, rendered, "2026-11"))
    assert message["To"] == "Sam Sample <sam@example.com>"
    text, html_part = bodies(message)
    assert "Hi Sam," in text and "Hi Sam," in html_part
    assert f"{site.public_url}/unsubscribe/" in message["List-Unsubscribe"]


def test_subject_greeting_is_filled_per_recipient(site, site_dir):
    articles = standard_articles()
    rendered = render_issue(site, make_issue(site_dir, articles, subject="{first_name}, your November skin notes"), articles)
    factory = MessageFactory(site, rendered, issue_slug="2026-11")
    named = parse(factory.build(to_email="a@example.com", first_name="Priya", unsubscribe_url=UNSUB))
    unnamed = parse(factory.build(to_email="b@example.com", unsubscribe_url=UNSUB))
    assert named["Subject"] == "Priya, your November skin notes"
    assert unnamed["Subject"] == "there, your November skin notes"


def test_a_subject_with_no_space_to_fold_at_still_keeps_lines_short(site, rendered):
    rendered.subject = "Winter" + "x" * 1200
    raw = MessageFactory(site, rendered, issue_slug="2026-11").build(to_email="a@example.com", unsubscribe_url=UNSUB)
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    assert parse(raw)["Subject"] == rendered.subject
