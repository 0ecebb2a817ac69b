"""The clinic's plain-text blog export, read as a marketing person would check it."""

from __future__ import annotations

import json
import subprocess
import sys

import lxml.html
import pytest
from click.testing import CliRunner

from newsletters.articles import PlainTextExportReader, read_one, read_source
from newsletters.articles.base import human_date
from newsletters.cli import cli
from newsletters.errors import ArticleError
from tests.conftest import EXAMPLE_SITE, FIXTURES, ROOT, SHARED_EXAMPLE, requires_shared_example

ARTICLES = FIXTURES / "articles"


def _headings(body_html: str) -> list[str]:
    root = lxml.html.fragment_fromstring(body_html, create_parent="div")
    return [" ".join(h.text_content().split()) for h in root.xpath("//h2 | //h3 | //h4")]


def _hrefs(body_html: str) -> list[str]:
    root = lxml.html.fragment_fromstring(body_html, create_parent="div")
    return [a.get("href") for a in root.iter("a")]


def _check_shared_example(data: list[dict]) -> None:
    assert isinstance(data, list) and len(data) == 1
    article = data[0]
    assert list(article) == ["title", "url", "author", "published", "summary", "image", "body_html", "tags", "source"]
    assert article["title"] == "The medical uses of Botox"
    assert article["author"] == "Cosmetic Digital"
    assert article["published"] == "2018-05-18T15:57"
    headings = _headings(article["body_html"])
    for expected in ("Hyperhidrosis", "Migraines/Headaches", "Developing research", "We treat"):
        assert expected in headings
    hrefs = _hrefs(article["body_html"])
    assert "tel:+442083026937" in hrefs
    assert "mailto:info@personamedical.co.uk" in hrefs
    assert "Jump to the top" not in article["body_html"]
    # Non-ASCII from the export survives: curly apostrophes and quotes.
    assert "it’s incredibly important" in article["body_html"]
    assert "‘frozen’" in article["body_html"]


@requires_shared_example
def test_acceptance_article_show_json_through_click():
    result = CliRunner().invoke(cli, ["article", "show", str(SHARED_EXAMPLE), "--json"])
    assert result.exit_code == 0, result.output
    _check_shared_example(json.loads(result.stdout))


@requires_shared_example
def test_acceptance_article_show_json_as_a_real_process(tmp_path):
    # Run from an empty folder: `article show` needs no site.
    completed = subprocess.run(
        [sys.executable, "-m", "newsletters", "article", "show", str(SHARED_EXAMPLE), "--json"],
        capture_output=True,
        cwd=tmp_path,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "PYTHONIOENCODING": "utf-8"},
        timeout=60,
    )
    assert completed.returncode == 0, completed.stderr.decode()
    _check_shared_example(json.loads(completed.stdout.decode("utf-8")))


@requires_shared_example
def test_shared_example_structure_in_order():
    article = read_one(str(SHARED_EXAMPLE))
    root = lxml.html.fragment_fromstring(article.body_html, create_parent="div")
    outline = [(el.tag, " ".join(el.text_content().split())[:20]) for el in root]
    # The repeated title and the byline are not part of the body; the spacer lines make no paragraphs.
    assert outline[0] == ("p", "Botox injections are")
    assert ("h2", "We treat") in outline and ("h2", "Developing research") in outline
    assert outline.index(("h2", "We treat")) < outline.index(("h3", "Hyperhidrosis"))
    assert all(text for _, text in outline), "no empty paragraph from the no-break-space spacers"
    assert not any("The medical uses of Botox" == text for _, text in outline)
    assert not any(text.startswith("Posted by") for _, text in outline)
    assert len([tag for tag, _ in outline if tag == "p"]) == 9
    # Summary: the first paragraph, cut at a word boundary.
    assert article.summary.startswith("Botox injections are possibly the most well-known")
    assert article.summary.endswith("…") and len(article.summary) <= 201
    assert not article.summary[:-1].endswith(" ")


def test_export_with_bullet_list_no_byline_and_tags_line():
    article = read_one(str(ARTICLES / "plain_text_export_with_bullet_list_and_no_byline.txt"))
    assert article.title == "Getting ready for your first laser appointment"
    assert article.author == "" and article.published == ""
    root = lxml.html.fragment_fromstring(article.body_html, create_parent="div")
    items = [li.text_content() for li in root.iter("li")]
    assert items == [
        "Stay out of the sun and avoid fake tan.",
        "Shave the area the day before, but don't wax or pluck.",
        "Tell us about any new medicines.",
        "Skip retinol creams on the area for five days.",
    ]
    assert _headings(article.body_html) == ["What to bring"]
    assert article.tags == ["laser", "first visit"]
    assert "Back to top" not in article.body_html and "Tags:" not in article.body_html
    hrefs = _hrefs(article.body_html)
    assert "mailto:bookings@example.com" in hrefs
    assert "tel:+441614960000" in hrefs  # written +44 161 496 0000
    assert "https://www.example.com/laser" in hrefs


def test_text_is_escaped_before_markup_is_built():
    text = "Fish & chips <b>night</b> — Clinic\n\nWe said <script>alert(1)</script> & meant it, call 01622 000 123.\n"
    article = PlainTextExportReader().read(text, source="inline.txt", base_url="")[0]
    assert article.title == "Fish & chips <b>night</b>"
    assert "<script>" not in article.body_html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; meant it" in article.body_html
    assert 'href="tel:+441622000123"' in article.body_html


def test_phone_numbers_that_are_not_uk_numbers_stay_text():
    text = "Dates — Clinic\n\nOpen 2010-2026, lasting 4-72 hours, ref 12345 678 and 0208 302 6937.\n"
    article = PlainTextExportReader().read(text, source="inline.txt", base_url="")[0]
    assert _hrefs(article.body_html) == ["tel:+442083026937"]


def test_byline_dates_in_the_forms_blogs_write_them():
    assert human_date("Friday 18th May 2018 at 3:57 pm") == "2018-05-18T15:57"
    assert human_date("18 May 2018") == "2018-05-18"
    assert human_date("May 1st, 2026 at 12:05 am") == "2026-05-01T00:05"
    assert human_date("Tuesday 6th October 2026 at 10:15 am") == "2026-10-06T10:15"
    assert human_date("31st February 2026") == ""
    assert human_date("sometime last spring") == ""


def test_example_site_export_reads_with_headings():
    article = read_one("articles/laser-hair-removal-in-winter.txt", root=EXAMPLE_SITE)
    assert article.author == "Dr Amelia Hart"
    assert article.published == "2026-10-06T10:15"
    assert _headings(article.body_html) == [
        "Three reasons to start in winter",
        "Less sun, fewer delays",
        "Easier aftercare",
        "Time to finish a course",
        "Your first step",
    ]
    assert "tel:+441622000123" in _hrefs(article.body_html)


def test_export_with_only_a_title_is_an_error(tmp_path):
    path = tmp_path / "title-only.txt"
    path.write_text("Just a title — Clinic\n", encoding="utf-8")
    with pytest.raises(ArticleError) as caught:
        read_source(str(path))
    assert caught.value.where == str(path)
    assert "no article text" in caught.value.message
