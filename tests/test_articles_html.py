"""Blog post web pages: the article comes out, the website around it does not."""

from __future__ import annotations

import sys
from contextlib import contextmanager

import lxml.html
import pytest

from newsletters.articles import ArticleError, HTMLPageReader, read_one
from tests.conftest import EXAMPLE_SITE, FIXTURES

ARTICLES = FIXTURES / "articles"

_network_events: list | None = None


def _audit(event: str, args) -> None:
    if _network_events is not None and event in ("socket.connect", "socket.getaddrinfo", "urllib.Request"):
        _network_events.append((event, args))


sys.addaudithook(_audit)


@contextmanager
def network_watch():
    """Records every connection attempt made by this process while active."""
    global _network_events
    _network_events = []
    try:
        yield _network_events
    finally:
        _network_events = None


def _text(body_html: str) -> str:
    return " ".join(lxml.html.fragment_fromstring(body_html, create_parent="div").text_content().split())


def _tags(body_html: str) -> list[str]:
    return [el.tag for el in lxml.html.fragment_fromstring(body_html, create_parent="div").iter()][1:]


def _read(name: str, base_url: str = ""):
    with network_watch() as calls:
        article = read_one(str(ARTICLES / name), base_url=base_url)
    assert calls == [], f"reading a saved page touched the network: {calls}"
    return article


def test_wordpress_post_keeps_the_article_and_drops_the_site_around_it():
    article = _read("wordpress_post_with_sidebar_comments_and_cookie_banner.html")
    assert article.title == "Caring for your skin after a chemical peel"
    assert article.author == "Dr Priya Nair"
    assert article.published == "2026-09-14T08:30:00+00:00"
    assert article.url == "https://www.example.com/blog/caring-for-your-skin-after-a-chemical-peel/"
    assert article.image == "https://www.example.com/wp-content/uploads/2026/09/peel-aftercare.jpg"
    # og:image has no alt; the same picture at another size in the page has one.
    assert article.image_alt == "A clinician applying a light chemical peel to a client's cheek"
    assert article.tags == ["chemical peels", "aftercare"]
    assert article.warnings == []
    text = _text(article.body_html)
    assert text.startswith("A chemical peel lifts away dull, tired surface cells")
    assert "ring us on 0161 496 0000" in text
    for furniture in (
        "We use cookies",  # cookie banner
        "Skin, laser and wellbeing",  # header
        "Laser hair removal: how many sessions",  # sidebar + post navigation
        "Sign up for skin tips",  # newsletter widget
        "panicking about the flaking",  # a comment
        "Leave a Reply",  # comment form
        "Post Comment",
        "Share this",
        "Care Quality Commission",  # footer
        "Posted in",
    ):
        assert furniture not in text, furniture
    tags = _tags(article.body_html)
    assert tags.count("h2") == 3 and "ul" in tags and "table" in tags and "img" in tags
    assert "form" not in tags and "input" not in tags and "script" not in tags
    # The relative link in the post is absolute, against the canonical URL.
    assert 'href="https://www.example.com/blog/choosing-a-sunscreen/"' in article.body_html
    # og:description is a shortened copy of the description: the full sentence is the summary.
    assert article.summary == (
        "What to expect in the days after a chemical peel, and how to help your skin settle: "
        "cleansing, moisturising, SPF and what to leave alone."
    )


def test_squarespace_post_with_lazy_images_json_ld_and_numbered_list():
    article = _read("squarespace_style_post_with_lazy_images_and_json_ld.html")
    assert article.title == "Microneedling: what actually happens in a session"  # " — Willow & Fern" stripped
    assert article.author == "Hannah Okafor"  # JSON-LD, not the itemprop that names the business
    assert article.published == "2026-10-02T09:15:00+01:00"
    assert article.url == "https://www.willowandfern.example.org/journal/microneedling-what-happens"
    body = article.body_html
    assert 'src="https://images.example-cdn.com/content/v1/5f1a/numbing-cream.jpg"' in body  # real src, not the GIF
    assert "data:image" not in body
    assert "<ol>" in body and body.count("<li>") == 2
    assert not body.lstrip().startswith("<h2>Microneedling")  # the title is not repeated as a heading
    text = _text(body)
    for furniture in ("Now taking bookings", "uses cookies", "Join our mailing list", "Winter skin: five small habits",
                      "feeling much less nervous", "Open Tuesday to Saturday", "Facebook"):
        assert furniture not in text, furniture
    assert "our microneedling aftercare notes" in text
    # The lead image comes from og:image and has no alt text anywhere: the user is told.
    assert article.image.endswith("needling-hero.jpg?format=1500w")
    assert any("has no alt text" in w and "needling-hero" in w for w in article.warnings)


def test_wix_post_made_of_div_soup():
    article = _read("wix_style_post_with_div_soup_and_data_hooks.html")
    assert article.title == "How we choose the right peel for your skin"
    assert article.author == "Megan Lloyd"  # article:author is a profile URL, JSON-LD has the name
    assert article.published == "2026-10-16T10:04:31+00:00"
    assert _tags(article.body_html).count("h2") == 2
    text = _text(article.body_html)
    assert text.startswith("A chemical peel is not one treatment")
    for furniture in ("ROWAN SKIN STUDIO", "Book Online", "Recent Posts", "Why autumn is laser season", "Write a comment",
                      "Subscribe", "3 min read", "© 2026"):
        assert furniture not in text, furniture


def test_amp_page_with_amp_img_consent_banner_and_sidebar():
    article = _read("amp_style_post_with_amp_img_and_consent_banner.html")
    assert article.title == "Why we patch test before every laser course"
    assert article.author == "Laura Penhaligon"
    assert article.published == "2026-10-08T12:00:00+00:00"
    assert article.url == "https://harbourside.example.com/journal/why-we-patch-test/"
    assert article.image == "https://harbourside.example.com/media/patch-test-1x1.jpg"  # first JSON-LD image
    # <amp-img> is kept as an ordinary image, made absolute against the canonical URL.
    assert '<img src="https://harbourside.example.com/media/patch-test-16x9.jpg" alt="A small laser test patch' in article.body_html
    text = _text(article.body_html)
    assert text.startswith("Every laser course at Harbourside starts with a patch test")
    for furniture in ("cookies for analytics", "Treatments", "You might also like", "Quay Street", "☰"):
        assert furniture not in text, furniture


def test_page_wrapped_in_one_big_form_still_gives_its_article():
    article = _read("aspnet_page_wrapped_in_one_big_form.html")
    assert article.title == "Looking after your skin after laser hair removal"
    assert article.author == "Dr Rhys Morgan"
    text = _text(article.body_html)
    assert text.startswith("Your skin may look a little pink")
    assert "Do not wax or pluck between sessions" in text
    assert "Opening times" not in text and "Join" not in text and "VIEWSTATE" not in article.body_html


def test_plain_handwritten_page_relative_links_byline_and_missing_alt():
    article = _read("handwritten_page_with_relative_links_and_image_without_alt.html",
                    base_url="https://www.larch.example.com/news/")
    assert article.title == "Our new treatment room"  # from <h1>, not "… | Larch House Clinic"
    assert article.author == "Sam Patel"
    assert article.published == "2026-10-09"
    text = _text(article.body_html)
    assert text.startswith("After six weeks of dust and drilling")
    assert "Home | Treatments" not in text and "© 2026" not in text and "By Sam Patel" not in text
    assert "new-room.jpg" not in article.body_html  # it opens the post, so it is the lead image, shown once
    assert 'href="https://www.larch.example.com/news/contact.html"' in article.body_html
    assert article.image == "https://www.larch.example.com/news/img/new-room.jpg"
    assert any("no alt text" in warning for warning in article.warnings)


def test_without_any_base_relative_addresses_are_kept_and_reported():
    article = _read("handwritten_page_with_relative_links_and_image_without_alt.html")
    assert 'href="contact.html"' in article.body_html
    assert any("relative address" in warning and "contact.html" in warning for warning in article.warnings)


def test_example_site_wordpress_page():
    article = read_one("articles/your-first-consultation.html", root=EXAMPLE_SITE)
    assert article.title == "Your first consultation: what to expect"
    assert article.author == "Nurse Sophie Clarke"
    assert article.image_alt.startswith("A nurse and a client")
    assert article.warnings == []
    text = _text(article.body_html)
    assert "Margaret" not in text and "Sign up" not in text and "Opening hours" not in text
    assert 'src="https://www.larkfield-clinic.example.com/wp-content/uploads/2026/10/skin-analysis-800x533.jpg"' in article.body_html


def test_page_without_an_article_is_an_error():
    with pytest.raises(ArticleError) as caught:
        HTMLPageReader().read("<html><head><title>Home</title></head><body></body></html>", source="home.html", base_url="")
    assert caught.value.where == "home.html"
    assert "could not find the article text" in caught.value.message


def test_xhtml_with_xml_declaration_is_read():
    page = (
        '<?xml version="1.0" encoding="utf-8"?>\n<!DOCTYPE html>\n<html xmlns="http://www.w3.org/1999/xhtml"><head>'
        "<title>Peels in autumn</title></head><body><article><h1>Peels in autumn</h1>"
        + "<p>Autumn is a good season for a course of light chemical peels, because the sun is lower and weaker. </p>" * 4
        + "</article></body></html>"
    )
    article = HTMLPageReader().read(page, source="peels.xhtml", base_url="")[0]
    assert article.title == "Peels in autumn"
    assert "Autumn is a good season" in article.body_html
