"""Feeds in the shapes blog platforms publish: RSS 2.0 with CDATA and xml:base, Atom with
XHTML content, RSS 0.91 in Latin-1, RSS 1.0 (RDF) with Dublin Core; entries with only a
summary, only plain text, or no date."""

from __future__ import annotations

import lxml.html

from newsletters.articles import read_one, read_source
from tests.conftest import FIXTURES

FEEDS = FIXTURES / "feeds"


def _root(body_html: str):
    return lxml.html.fragment_fromstring(body_html, create_parent="div")


def _text(body_html: str) -> str:
    return " ".join(_root(body_html).text_content().split())


def test_rss_with_cdata_html_and_xml_base():
    hay_fever, hours, moles = read_source(str(FEEDS / "rss_with_cdata_html_xml_base_youtube_and_undated_text_item.xml"))
    assert hay_fever.title == "Hay fever & your skin: a survival guide"  # the & is text, not an entity
    assert hay_fever.url == "https://www.ashgrove-clinic.example.com/blog/hay-fever-and-your-skin/"  # xml:base
    assert hay_fever.author == "Dr Siobhán O'Neill"
    assert hay_fever.published == "2025-05-12T07:30:00+01:00"
    assert hay_fever.tags == ["Skin health", "Allergies"]
    assert hay_fever.summary == "Itchy eyes, a sore nose and a rash? Pollen season is hard on sensitive skin."  # no […]
    root = _root(hay_fever.body_html)
    assert [h.text_content() for h in root.iter("h2", "h3")] == ["Why pollen bothers skin", "Five things that help"]
    assert len(root.xpath("//ol/li")) == 5
    links = [a.get("href") for a in root.iter("a")]
    assert links == [
        "https://www.ashgrove-clinic.example.com/treatments/eczema/",  # ../ against the entry link
        "https://www.ashgrove-clinic.example.com/contact/",
        "https://www.youtube.com/watch?v=abcDEF12345",  # the youtube-nocookie player, as a link
    ]
    # The entry's only picture becomes its lead image, so the body (shown under it) does not repeat it.
    assert hay_fever.image == "https://www.ashgrove-clinic.example.com/blog/images/pollen-count.png"
    assert root.xpath("//img/@src") == []
    text = _text(hay_fever.body_html)
    assert "Grass pollen peaks in June." in text and "Watch the video on YouTube: Dr O'Neill on hay fever" in text
    assert "🌼" in text and "track(" not in hay_fever.body_html and "onclick" not in hay_fever.body_html

    # An item with a plain-text description and no date: paragraphs with a working link, and no invented date.
    assert hours.published == ""
    assert hours.body_html.startswith("<p>We are open on the May bank holidays")
    assert _root(hours.body_html).xpath("//a/@href") == ["https://www.ashgrove-clinic.example.com/contact/"]

    # guid isPermaLink is the address; the enclosure is the lead image, not repeated in the body.
    assert moles.url == "https://www.ashgrove-clinic.example.com/blog/summer-skin-clinic/"
    assert moles.image == "https://www.ashgrove-clinic.example.com/images/mole-check.jpg"
    assert "<img" not in moles.body_html and "<strong>7 June</strong>" in moles.body_html
    assert any("mole-check.jpg has no alt text" in w for w in moles.warnings)


def test_feed_entry_is_found_again_by_its_guid():
    source = str(FEEDS / "rss_with_cdata_html_xml_base_youtube_and_undated_text_item.xml")
    article = read_one(f"{source}#ashgrove-post-418")
    assert article.title == "Hay fever & your skin: a survival guide"


def test_atom_with_xhtml_content_and_an_entry_that_has_only_a_summary():
    braces, half_term = read_source(str(FEEDS / "atom_with_xhtml_content_table_and_summary_only_entry.xml"))
    assert braces.title == "Braces for grown-ups: it’s never too late"  # type="html" title, tags gone
    assert braces.author == "Dr Kwame Mensah"  # the entry's author, not the feed's, without the e-mail
    assert braces.published == "2025-06-02T08:00:00+01:00"
    assert braces.tags == ["Orthodontics"]
    assert braces.summary == "One in five of our orthodontic patients is over 30."
    root = _root(braces.body_html)
    assert [th.text_content() for th in root.xpath("//table/thead/tr/th")] == ["Type", "Time", "From"]
    assert root.xpath("//table/tbody/tr[1]/td/text()") == ["Clear aligners", "6–18 months", "£2,400"]
    # Relative addresses against the content's own xml:base.
    assert root.xpath("//a/@href") == ["https://rowanhouse-dental.example.org/fees/",
                                       "mailto:hello@rowanhouse-dental.example.org"]
    assert braces.image == "https://rowanhouse-dental.example.org/news/adult-braces/aligner.jpg"
    assert braces.image_alt == "A clear aligner in its case"

    assert half_term.title == "Half-term check-ups"
    assert half_term.url == "https://rowanhouse-dental.example.org/news/half-term/"  # the id is the only address
    assert half_term.published == "2025-05-20T09:00:00+00:00"  # <updated> stands in for <published>
    assert half_term.body_html == "<p>Book children’s check-ups for half-term now — slots go fast.</p>"


def test_rss_0_91_in_latin_1_without_dates():
    raw = (FEEDS / "rss_091_in_latin1_without_dates.xml").read_bytes()
    assert b'encoding="ISO-8859-1"' in raw and "£".encode("latin-1") in raw  # the fixture is what it claims
    [article] = read_source(str(FEEDS / "rss_091_in_latin1_without_dates.xml"))
    assert article.title == "Verruca clinic on Fridays"
    assert article.url == "http://www.fernlea-chiropody.example.com/news/verruca-clinic.html"
    assert article.published == ""
    assert article.body_html == (
        "<p>From 6 June our verruca clinic runs every Friday morning. Treatment costs £45 per visit.</p>"
    )


def test_rss_1_0_rdf_with_dublin_core():
    [article] = read_source(str(FEEDS / "rdf_rss_1_0_with_dublin_core.xml"))
    assert article.title == "Tick season is here"
    assert article.author == "Mairi Campbell"
    assert article.published == "2025-04-14T09:00:00+01:00"
    assert article.tags == ["Dogs"]
    assert [li.text_content() for li in _root(article.body_html).iter("li")] == [
        "Feel for small bumps", "Use a tick hook, never your fingers",
    ]
