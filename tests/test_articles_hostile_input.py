"""Pages and bodies written to attack whoever reads them: nothing active reaches a newsletter,
and the article's real text still does."""

from __future__ import annotations

import lxml.html
import pytest

from newsletters.articles import HTMLPageReader, read_one, sanitize_html
from tests.conftest import FIXTURES

HOSTILE_PAGE = FIXTURES / "articles" / "hostile_page_with_disguised_javascript_svg_math_embed_and_base_href.html"
BASE = "https://www.example.com/blog/post/"


def _elements(html: str):
    return list(lxml.html.fragment_fromstring(html, create_parent="div").iter())[1:]


def _links(html: str) -> list[str]:
    return [a.get("href") for a in _elements(html) if a.tag == "a"]


@pytest.fixture(scope="module")
def hostile():
    return read_one(str(HOSTILE_PAGE))


def test_only_web_mail_and_phone_links_survive(hostile):
    assert _links(hostile.body_html) == [
        "https://evil.example.net/phish",  # protocol-relative //evil…: made https, never left scheme-less
        "https://www.oakridge-clinic.example.com/offers/terms/",  # relative, against the canonical URL
        "https://evil.example.net/frame",  # the <iframe>, as a plain "Watch the video" link (no frame runs)
        "mailto:offers@oakridge-clinic.example.com?subject=Spring",
        "tel:+441632960111",
    ]
    lowered = hostile.body_html.lower()
    for gone in ("javascript", "vbscript", "script:", "data:", "%09", "alert("):
        assert gone not in lowered, gone


def test_the_text_around_removed_links_and_after_an_unclosed_embed_is_kept(hostile):
    text = " ".join(lxml.html.fragment_fromstring(hostile.body_html, create_parent="div").text_content().split())
    assert "Claim yours today." in text and "Read the terms, see prices or call us." in text
    # libxml2 reads <embed> as a container: the paragraphs after it used to vanish with it.
    assert "Questions? E-mail us or call 01632 960111." in text
    assert text.endswith("We look forward to welcoming you to Oakridge this spring.")
    for gone in ("Click the SVG", "Pay deposit", "Card number", "Please enable JavaScript", "onerror"):
        assert gone not in text, gone


def test_no_active_markup_styles_or_handlers(hostile):
    for element in _elements(hostile.body_html):
        assert element.tag not in ("script", "style", "svg", "math", "iframe", "object", "embed", "form", "input",
                                   "button", "base", "noscript", "mglyph"), element.tag
        assert not any(name.startswith("on") or name in ("style", "class", "id") for name in element.attrib)
    assert "expression(" not in hostile.body_html and "behavior" not in hostile.body_html


def test_javascript_lead_image_is_refused_with_a_warning_and_a_real_picture_takes_its_place(hostile):
    assert hostile.image == "https://www.oakridge-clinic.example.com/images/spring.jpg"
    assert hostile.image_alt == "Blossom outside the clinic"
    assert any("javascript:alert(1)" in w and "not a web address" in w for w in hostile.warnings)
    # The tracking pixel (data:) and the broken onerror image are gone; the real picture is the lead
    # image, so the body does not show it a second time.
    assert [el.get("src") for el in _elements(hostile.body_html) if el.tag == "img"] == []


def test_base_href_on_another_host_does_not_redirect_relative_links(hostile):
    assert hostile.url == "https://www.oakridge-clinic.example.com/blog/spring-offers/"
    assert not any((href or "").startswith("https://evil.example.net/offers") for href in _links(hostile.body_html))


def test_base_href_on_the_posts_own_site_is_followed():
    page = (
        '<html><head><title>Peels</title><link rel="canonical" href="https://www.example.com/blog/peels/">'
        '<base href="https://www.example.com/"></head><body><article><h1>Peels</h1>'
        + "<p>A light peel brightens dull skin and needs no time off work at all, so it suits a lunch break.</p>" * 3
        + '<p>See <a href="prices/">our prices</a> before you book a course.</p></article></body></html>'
    )
    article = HTMLPageReader().read(page, source="peels.html", base_url="")[0]
    assert _links(article.body_html) == ["https://www.example.com/prices/"]  # not /blog/peels/prices/


@pytest.mark.parametrize(
    ("disguised", "text"),
    [
        ('<a href="java\tscript:alert(1)">tab</a>', "tab"),
        ('<a href="java&#x0A;script:alert(1)">newline</a>', "newline"),
        ('<a href="&#x20;&#x09;javascript:alert(1)">leading blanks</a>', "leading blanks"),
        ('<a href="java%09script:alert(1)">escaped tab</a>', "escaped tab"),
        ('<a href="JAVASCRIPT&colon;alert(1)">named colon</a>', "named colon"),
        ('<img src="  javascript:alert(1)" alt="pic"><p>img</p>', "img"),
    ],
)
def test_disguised_javascript_addresses_are_dropped_not_turned_into_relative_links(disguised, text):
    clean = sanitize_html(f"<p>{disguised}</p>", base_url=BASE)
    assert text in clean
    assert "script" not in clean.lower()
    assert not any(el.tag in ("a", "img") and (el.get("href") or el.get("src")) for el in _elements(clean))


def test_protocol_relative_addresses_become_https_even_under_an_http_base():
    clean = sanitize_html('<p><a href="//cdn.example.org/leaflet.pdf">leaflet</a> <img src="//cdn.example.org/a.jpg" alt="A"></p>',
                          base_url="http://www.example.com/blog/")
    assert 'href="https://cdn.example.org/leaflet.pdf"' in clean and 'src="https://cdn.example.org/a.jpg"' in clean
