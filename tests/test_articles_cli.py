"""`newsletter article show` as a user runs it."""

from __future__ import annotations

import json

from click.testing import CliRunner

from newsletters.articles import ARTICLE_KEYS
from newsletters.cli import cli
from tests.conftest import FIXTURES, POM_EXPORT, SHARED_EXAMPLE, requires_shared_example

ARTICLES = FIXTURES / "articles"
FEEDS = FIXTURES / "feeds"


def _show(*args: str, site: str | None = None):
    prefix = ["--site", site] if site else []
    return CliRunner().invoke(cli, [*prefix, "article", "show", *args])


def test_json_list_for_several_sources_keeps_non_ascii_readable():
    result = _show(str(FEEDS / "atom_with_xml_base_and_relative_links.xml"),
                   str(ARTICLES / "markdown_with_front_matter_table_and_non_ascii.md"), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [tuple(item) for item in data] == [ARTICLE_KEYS] * 3
    assert [item["author"] for item in data] == ["Zoë Brontë", "Zoë Brontë", "Zoë Brontë"]
    assert "Zoë" in result.stdout and "\\u00eb" not in result.stdout  # ensure_ascii=False


@requires_shared_example
def test_readable_summary_without_json():
    result = _show(str(SHARED_EXAMPLE))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "The medical uses of Botox"
    assert "  author     Cosmetic Digital" in lines
    assert "  published  2018-05-18T15:57" in lines
    assert any(line.startswith("  summary    Botox injections are possibly") for line in lines)
    assert any(line.startswith("  body ") and "4 headings" in line and "2 links" in line for line in lines)


def test_warnings_go_to_stderr_and_json_stays_clean():
    result = _show(str(FEEDS / "rss_with_description_only.xml"), "--json")
    assert result.exit_code == 0
    json.loads(result.stdout)
    assert "warning:" in result.stderr and "no alt text" in result.stderr


def test_bad_source_is_one_line_error_and_exit_1(tmp_path):
    missing = str(tmp_path / "nope.txt")
    result = _show(str(POM_EXPORT), missing, "--json")
    assert result.exit_code == 1
    assert result.stdout == ""  # nothing half-printed for the good source
    assert result.stderr.startswith(f"error: {missing}: no such file")
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output


def test_feed_with_several_entries_and_selector(tmp_path):
    feed = str(FEEDS / "rss_with_content_encoded_and_media.xml")
    result = _show(f"{feed}#https://www.example.com/blog/christmas-opening-hours-2026/", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert len(data) == 1 and data[0]["title"] == "Our opening hours over Christmas"


def test_in_a_site_folder_relative_links_use_the_site_website(site_dir):
    md = ARTICLES / "markdown_title_from_first_heading.md"
    (site_dir / "articles" / "five-questions.md").write_text(md.read_text(encoding="utf-8"), encoding="utf-8")
    # The path is relative to the site folder, not to where the command runs.
    result = _show("articles/five-questions.md", "--json", site=str(site_dir))
    assert result.exit_code == 0, result.output
    article = json.loads(result.stdout)[0]
    assert article["image"] == "https://www.larkfield-clinic.example.com/images/laser-handpiece.jpg"
    assert "relative address" not in result.stderr


def test_without_a_site_relative_links_stay_and_are_reported(tmp_path):
    result = _show(str(ARTICLES / "markdown_title_from_first_heading.md"), site=str(tmp_path))
    assert result.exit_code == 0, result.output
    assert "relative address" in result.stderr
