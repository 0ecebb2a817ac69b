"""The lead image is shown above an article's body, so the body must never show the same picture again."""

from __future__ import annotations

import shutil
from pathlib import Path

import lxml.html

from newsletters.articles import read_one
from newsletters.articles.base import image_key
from newsletters.build import build_issue
from newsletters.config import Site
from tests.conftest import FIXTURES

OWN = FIXTURES / "issue13"
FEED = OWN / "feed_entry_whose_first_picture_sits_under_a_heading.xml"
MARKDOWN = OWN / "markdown_post_whose_lead_image_returns_in_a_captioned_figure.md"


def _body_images(body_html: str) -> list[str]:
    root = lxml.html.fragment_fromstring(body_html, create_parent="div")
    return [img.get("src") for img in root.iter("img")]


def test_a_feed_entrys_first_picture_under_a_heading_becomes_the_lead_and_leaves_the_body():
    article = read_one(str(FEED))
    assert article.image == "https://www.oakbridge-skin.example.org/uploads/2026/11/peel-tray-1024x683.jpg"
    images = _body_images(article.body_html)
    assert images == ["https://www.oakbridge-skin.example.org/uploads/2026/11/aftercare-kit.jpg"]
    assert "What happens on the day" in article.body_html  # the heading and the text around it stay
    assert "applies the solution" in article.body_html


def test_a_markdown_lead_image_repeated_later_in_another_rendition_leaves_the_body_and_keeps_its_caption():
    article = read_one(str(MARKDOWN))
    assert article.image == "https://www.oakbridge-skin.example.org/uploads/2026/11/treatment-room.jpg"
    assert _body_images(article.body_html) == []
    assert "<p>The new room, seen from the door</p>" in article.body_html  # the caption stays, as text
    assert "<figure" not in article.body_html
    assert "Book any treatment in it from Monday." in article.body_html


def test_the_built_email_shows_a_full_articles_lead_image_once(site_dir: Path):
    shutil.copy(FEED, site_dir / "articles" / "journal.xml")
    link = "https://www.oakbridge-skin.example.org/journal/before-a-chemical-peel/"
    (site_dir / "issues" / "2026-12.toml").write_text(
        f'subject = "Before a peel"\npreheader = "What to do the week before"\ndate = 2026-12-01\n'
        f'[[articles]]\nsource = "articles/journal.xml#{link}"\nmode = "full"\n',
        encoding="utf-8",
    )
    result = build_issue(Site.load(site_dir), site_dir / "issues" / "2026-12.toml")
    tree = lxml.html.document_fromstring(result.rendered.html)
    keys = [image_key(img.get("src", "")) for img in tree.iter("img")]
    lead = image_key("https://www.oakbridge-skin.example.org/uploads/2026/11/peel-tray-1024x683.jpg")
    assert keys.count(lead) == 1
