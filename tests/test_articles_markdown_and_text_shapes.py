"""Markdown and plain-text posts written the ways people really write them: Hugo's TOML front
matter, no title in the front matter, UK dates, tags as one line, raw HTML in Markdown; text
exports with dash and numbered lists, Windows line endings, a BOM and clock times around noon
and midnight."""

from __future__ import annotations

import lxml.html
import pytest

from newsletters.articles import ArticleError, MarkdownReader, read_one
from newsletters.articles.base import iso_datetime
from tests.conftest import FIXTURES

ARTICLES = FIXTURES / "articles"


def _root(body_html: str):
    return lxml.html.fragment_fromstring(body_html, create_parent="div")


def _read(name: str, base_url: str = ""):
    return read_one(str(ARTICLES / name), base_url=base_url)


def test_markdown_with_toml_front_matter():
    article = _read("markdown_with_toml_front_matter.md")
    assert article.title == "Lymphatic drainage massage: what it is and who it helps"
    assert article.author == "Agnieszka Nowak"
    assert article.published == "2025-03-18T10:00:00+00:00"  # a TOML datetime
    assert article.tags == ["massage", "wellbeing"]
    assert article.summary == "A gentle massage that helps the body move fluid."  # `description`
    assert article.image == "https://www.silverbirch-clinic.example.com/images/lymphatic.jpg"
    assert article.image_alt == "Hands performing a gentle massage on a forearm"
    assert "+++" not in article.body_html and "Agnieszka" not in article.body_html
    assert [li.text_content() for li in _root(article.body_html).iter("li")] == ["After surgery", "Lipoedema"]


def test_toml_front_matter_mistake_names_the_file_and_the_fix():
    with pytest.raises(ArticleError) as caught:
        MarkdownReader().read('+++\ntitle = Unquoted title\n+++\nBody.\n', source="articles/bad.md", base_url="")
    assert caught.value.where == "articles/bad.md"
    assert "not valid TOML" in caught.value.message and "+++" in caught.value.hint


def test_markdown_without_a_title_key_uk_date_and_tags_on_one_line():
    article = _read("markdown_without_title_uk_date_and_comma_tags.md", base_url="https://www.example.com/")
    assert article.title == "Valentine’s gift vouchers are here 💝"  # the first # heading
    assert article.published == "2025-02-14"  # 14/02/2025, day first
    assert article.tags == ["skin care", "valentine", "gifts"]
    assert article.author == "Nurse Grace Mbeki"
    root = _root(article.body_html)
    assert "Valentine" not in root.text_content()  # the heading became the title, not a repeat
    assert [li.text_content() for li in root.xpath("//ol/li")] == ["Call us on 01632 960 500", "Or pop into reception"]
    assert root.xpath("//a/@href") == ["https://www.example.com/vouchers/"]


@pytest.mark.parametrize(
    ("written", "iso"),
    [
        ("14/02/2025", "2025-02-14"),
        ("05/06/2025 14:30", "2025-06-05T14:30"),  # 5 June, as a UK clinic means it
        ("5.6.2025", "2025-06-05"),
        ("02/14/2025", "2025-02-14"),  # month first only when it cannot be the day
        ("31/02/2025", ""),
        ("3rd March 2025", "2025-03-03"),
        ("Monday 1st January 2024 at 12:05 pm", "2024-01-01T12:05"),
        ("Monday 1st January 2024 at 12:30 am", "2024-01-01T00:30"),
        ("1 January 2024 at 15:00 pm", "2024-01-01"),  # a typo we cannot resolve keeps the day only
    ],
)
def test_dates_as_people_write_them(written, iso):
    assert iso_datetime(written) == iso


def test_markdown_raw_html_video_and_bare_address():
    article = _read("markdown_with_raw_div_vimeo_embed_and_bare_url.md", base_url="https://www.example.com/news/")
    assert article.published == "2025-03-03"  # date: "3rd March 2025", quoted
    assert article.tags == ["team", "news"]  # tags: "team, news"
    root = _root(article.body_html)
    # The raw <div> is a paragraph (its onclick gone); the Vimeo player a link; the bare address tappable.
    assert "Arjun starts on Monday." in [p.text_content() for p in root.iter("p")]
    assert root.xpath("//a/@href") == [
        "https://vimeo.com/123456789", "mailto:arjun@example.com", "https://www.example.com/team/",
    ]
    assert "onclick" not in article.body_html and "iframe" not in article.body_html
    assert [th.text_content() for th in root.xpath("//thead//th")] == ["Day", "Clinic"]
    # The opening, not the contact line at the end, is the summary.
    assert article.summary == "We welcome Dr Arjun Mehta to the clinic. Arjun starts on Monday."
    assert article.image == "https://www.example.com/news/images/arjun.jpg"


def test_bare_addresses_in_code_and_in_links_are_left_alone():
    [article] = MarkdownReader().read(
        "---\ntitle: Links\n---\nSee [the guide](https://www.example.com/guide/) and `curl https://api.example.com/x`.\n",
        source="links.md", base_url="",
    )
    root = _root(article.body_html)
    assert root.xpath("//a/@href") == ["https://www.example.com/guide/"]
    assert root.xpath("//code/text()") == ["curl https://api.example.com/x"]


def test_text_export_with_dash_bullets_numbered_steps_and_back_to_top():
    article = _read("plain_text_export_with_dash_and_numbered_lists.txt")
    assert article.title == "Preparing for laser hair removal"
    assert article.author == "Nurse Tom Reilly"  # "Posted on 3 March 2025 by …"
    assert article.published == "2025-03-03"
    root = _root(article.body_html)
    assert [h.text_content() for h in root.iter("h2")] == ["Before your appointment", "On the day"]
    assert [li.text_content() for li in root.xpath("//ul/li")] == [
        "Shave the area the night before", "Avoid fake tan for two weeks", "Stay out of the sun",
    ]
    assert len(root.xpath("//ol/li")) == 3
    assert root.xpath("//a/@href") == ["tel:+442079460321", "https://www.ivybridge-laser.example.com"]
    assert "Back to top" not in article.body_html


def test_text_export_with_windows_line_endings_bom_and_half_past_midnight():
    raw = (ARTICLES / "plain_text_export_with_crlf_bom_and_half_past_midnight.txt").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and b"\r\n" in raw  # the fixture is what it claims
    article = _read("plain_text_export_with_crlf_bom_and_half_past_midnight.txt")
    assert article.title == "Winter opening hours"  # "| Oakfield Physio" gone, no BOM in front
    assert article.author == "Reception"
    assert article.published == "2024-12-20T00:30"  # 12:30 am
    assert "\r" not in article.body_html and "Jump to the top" not in article.body_html
    assert [p.text_content() for p in _root(article.body_html).iter("p")] == [
        "We close at 4pm on Christmas Eve and reopen on 2 January.",
        "Over the break, e-mail hello@oakfield-physio.example.com and we will reply on our return.",
    ]


def test_text_export_at_noon_with_bullets_addresses_and_tags():
    article = _read("plain_text_export_at_noon_with_bullets_urls_and_tags.txt")
    assert article.title == "Why we love retinol"
    assert article.author == "Dr Émilie Laurent"
    assert article.published == "2024-01-01T12:05"  # 12:05 pm is just after noon, not midnight
    assert article.tags == ["retinol", "skin care"]
    root = _root(article.body_html)
    assert [h.text_content() for h in root.iter("h2")] == ["What it does"]
    assert len(root.xpath("//ul/li")) == 3
    assert root.xpath("//a/@href") == [
        "https://www.lindenwood-skin.example.com/retinol",
        "https://www.lindenwood-skin.example.com/blog/retinol-guide/",  # the full stop after it is not part of it
        "tel:+441632960765",
    ]
