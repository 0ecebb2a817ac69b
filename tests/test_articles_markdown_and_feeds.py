"""Markdown posts with front matter, and RSS/Atom feeds, as a site keeps and publishes them."""

from __future__ import annotations

import lxml.html
import pytest

from newsletters.articles import ArticleError, MarkdownReader, read_one, read_source
from tests.conftest import EXAMPLE_SITE, FIXTURES

ARTICLES = FIXTURES / "articles"
FEEDS = FIXTURES / "feeds"


def _root(body_html: str):
    return lxml.html.fragment_fromstring(body_html, create_parent="div")


# --- Markdown -----------------------------------------------------------------------------------


def test_markdown_front_matter_table_ordered_list_and_non_ascii():
    article = read_one(str(ARTICLES / "markdown_with_front_matter_table_and_non_ascii.md"))
    assert article.title == "Winter skin: your questions answered — treatments from £45"
    assert article.author == "Zoë Brontë"
    assert article.published == "2026-10-21T14:05"  # a YAML datetime
    assert article.tags == ["winter", "skin care", "SPF"]
    assert article.url == "https://www.example.com/blog/winter-skin-questions/"
    assert article.image == "https://www.example.com/images/blog/winter-skin-hero.jpg"  # made absolute against url
    assert article.image_alt == "Frost on a window beside a jar of rich moisturiser"
    assert article.summary.startswith("Dry patches, redness and dull skin")
    root = _root(article.body_html)
    assert [th.text for th in root.iter("th")] == ["Treatment", "Time", "Price"]
    assert [td.text for td in root.iter("td")][-1] == "£180"
    assert len(list(root.iter("ol"))) == 1
    assert [h.text_content() for h in root.iter("h2")] == ["“Why does my skin feel tight indoors?”", "What we offer this winter"]
    for text in ("café-au-lait", "☕", "Naïve", "😊", "–"):
        assert text in article.body_html
    hrefs = [a.get("href") for a in root.iter("a")]
    assert hrefs == ["https://www.example.com/prices/", "mailto:hello@example.com"]


def test_markdown_title_from_leading_heading_and_relative_image_warned():
    article = read_one(str(ARTICLES / "markdown_title_from_first_heading.md"))
    assert article.title == "Five questions to ask before a laser treatment"
    assert "<h1>" not in article.body_html and "<h2>Five questions" not in article.body_html
    assert len(list(_root(article.body_html).iter("li"))) == 5
    assert article.published == ""
    assert any("no alt text" in w for w in article.warnings)
    assert any("relative address" in w and "images/laser-handpiece.jpg" in w for w in article.warnings)


def test_markdown_relative_image_completed_with_the_site_address():
    article = read_one(str(ARTICLES / "markdown_title_from_first_heading.md"), base_url="https://www.example.com/blog/")
    assert article.image == "https://www.example.com/blog/images/laser-handpiece.jpg"
    assert not any("relative address" in w for w in article.warnings)


def test_markdown_invalid_yaml_names_the_file_and_line():
    source = str(ARTICLES / "markdown_with_invalid_yaml_front_matter.md")
    with pytest.raises(ArticleError) as caught:
        read_source(source)
    assert caught.value.where == source
    assert "not valid YAML" in caught.value.message and "line 3" in caught.value.message


@pytest.mark.parametrize(
    ("front_matter", "expected"),
    [
        ("date: 2026-10-21", "2026-10-21"),
        ("date: 2026-10-21T09:30:00+01:00", "2026-10-21T09:30:00+01:00"),
        ('date: "21 October 2026"', "2026-10-21"),
        ('date: "Wed, 21 Oct 2026 09:30:00 +0100"', "2026-10-21T09:30:00+01:00"),
    ],
)
def test_markdown_dates_as_yaml_dates_or_strings(front_matter, expected):
    text = f"---\ntitle: Dates\n{front_matter}\n---\nSome text about dates.\n"
    assert MarkdownReader().read(text, source="d.md", base_url="")[0].published == expected


def test_markdown_unreadable_date_is_an_error():
    with pytest.raises(ArticleError, match="is not a date"):
        MarkdownReader().read("---\ntitle: T\ndate: next Tuesday\n---\nText.\n", source="d.md", base_url="")


def test_markdown_with_only_front_matter_is_an_error():
    with pytest.raises(ArticleError, match="no text below the front matter"):
        MarkdownReader().read("---\ntitle: Empty\n---\n\n", source="e.md", base_url="")


def test_example_site_markdown_post():
    article = read_one("articles/winter-skin-care-and-spf.md", root=EXAMPLE_SITE)
    assert article.published == "2026-10-20T09:00"
    assert len(list(_root(article.body_html).iter("tr"))) == 5
    assert article.warnings == []


# --- Feeds --------------------------------------------------------------------------------------


def test_rss_prefers_content_encoded_and_reads_every_entry():
    source = str(FEEDS / "rss_with_content_encoded_and_media.xml")
    articles = read_source(source)
    assert [a.title for a in articles] == [
        "Meet Tom, our new aesthetic nurse",
        "Laser hair removal: how many sessions will I need?",
        "Our opening hours over Christmas",
    ]
    tom = articles[0]
    assert tom.author == "Dr Priya Nair"
    assert tom.published == "2026-10-20T09:00:00+01:00"
    assert tom.tags == ["Clinic news", "Our team"]
    assert tom.source == f"{source}#https://www.example.com/blog/meet-tom-our-new-aesthetic-nurse/"
    # Full content, not the description; relative URLs against the entry link; script gone.
    assert "What Tom treats" in tom.body_html
    # The photo opening the post is the lead image (media:content, a larger rendition), so it is
    # not repeated at the top of the body, where the template would show it a second time.
    assert "tom-achebe" not in tom.body_html
    assert 'href="https://www.example.com/book/?with=tom"' in tom.body_html
    assert "trackView" not in tom.body_html and "<script" not in tom.body_html
    assert "appeared first on" not in tom.body_html and "appeared first on" not in tom.summary
    # The description is the excerpt; media:content is the lead image, its alt found in the body.
    assert tom.summary.startswith("Tom joins us from a busy dermatology department")
    assert "[" not in tom.summary
    assert tom.image == "https://www.example.com/wp-content/uploads/2026/10/tom-achebe-1200x630.jpg"
    assert tom.image_alt == "Tom Achebe in the clinic’s treatment room"
    laser = articles[1]
    assert any("no alt text" in w for w in laser.warnings)


def test_rss_with_only_a_description():
    article = read_one(str(FEEDS / "rss_with_description_only.xml"))
    assert article.title == "Winter skin: five small habits that help"
    assert article.author == "Hannah Okafor"  # from "address (Name)"
    assert article.published == "2026-11-13T07:45:00+00:00"
    assert article.image == "https://images.example-cdn.com/content/v1/5f1a/winter-skin.jpg"  # enclosure
    root = _root(article.body_html)
    assert len(list(root.iter("li"))) == 5
    assert 'href="https://www.willowandfern.example.org/journal/choosing-a-moisturiser"' in article.body_html
    assert "onclick" not in article.body_html
    assert "£12" in article.body_html
    assert article.summary.startswith("Cold air outside and central heating inside")


def test_atom_with_xml_base_relative_links_and_xhtml_content():
    source = str(FEEDS / "atom_with_xml_base_and_relative_links.xml")
    first, second = read_source(source)
    assert first.title == "SPF in October? Yes – here’s why"
    assert first.url == "https://skin.example.org/notes/2026/spf-in-october/"
    assert first.author == "Zoë Brontë"
    assert first.published == "2026-10-28T09:00:00+00:00"
    assert first.tags == ["SPF", "autumn"]
    # The only picture, resolved against xml:base + the entry link, leads the entry and is not repeated below.
    assert first.image == "https://skin.example.org/notes/images/uv-index-chart.png"
    assert first.image_alt == "UV index through the year in Manchester"
    assert "uv-index-chart" not in first.body_html
    assert 'href="https://skin.example.org/sunscreen-guide/"' in first.body_html
    assert "😊" in first.body_html
    assert first.summary == "UVA is with us all year. A short case for keeping sunscreen by the door."
    # No <published>: the updated date stands in; xhtml content comes through as HTML.
    assert second.published == "2026-10-12T11:00:00+00:00"
    assert second.body_html.startswith("<p>Before any laser or peel treatment")


def test_feed_entry_selected_by_link_or_id():
    feed = str(FEEDS / "atom_with_xml_base_and_relative_links.xml")
    by_link = read_one(f"{feed}#https://skin.example.org/notes/2026/patch-tests-explained/")
    assert by_link.title == "Patch tests, explained"
    by_id = read_one(f"{feed}#tag:skin.example.org,2026-10-28:/notes/2026/spf-in-october")
    assert by_id.title.startswith("SPF in October")
    without_slash = read_one(f"{feed}#https://skin.example.org/notes/2026/patch-tests-explained")
    assert without_slash.title == "Patch tests, explained"


def test_feed_without_selector_is_not_one_article():
    feed = str(FEEDS / "rss_with_content_encoded_and_media.xml")
    with pytest.raises(ArticleError) as caught:
        read_one(feed)
    assert caught.value.where == feed
    assert "3 entries" in caught.value.message
    assert f'"{feed}#https://www.example.com/blog/meet-tom-our-new-aesthetic-nurse/"' in caught.value.hint


def test_feed_selector_that_matches_nothing_lists_the_entries():
    feed = str(FEEDS / "rss_with_content_encoded_and_media.xml")
    with pytest.raises(ArticleError) as caught:
        read_one(f"{feed}#https://www.example.com/blog/no-such-post/")
    assert "no entry with the link or id" in caught.value.message
    assert "christmas-opening-hours-2026" in caught.value.hint


def test_empty_feed_is_an_error_naming_it():
    feed = str(FEEDS / "rss_with_no_items.xml")
    with pytest.raises(ArticleError) as caught:
        read_source(feed)
    assert caught.value.where == feed and caught.value.message == "the feed has no entries"


def test_selector_on_a_post_that_is_not_a_feed():
    with pytest.raises(ArticleError, match="not a feed"):
        read_one(str(ARTICLES / "markdown_title_from_first_heading.md") + "#https://www.example.com/x/")


def test_example_site_feed_entries_and_selector():
    entries = read_source("articles/news.xml", root=EXAMPLE_SITE)
    assert len(entries) == 3
    one = read_one(entries[1].source, root=EXAMPLE_SITE)
    assert one.title == "Microneedling is now available at Larkfield"
    assert one.source == "articles/news.xml#https://www.larkfield-clinic.example.com/blog/microneedling-now-available/"
    assert one.image_alt.startswith("A practitioner performing a microneedling treatment")
