"""`newsletter new`: a draft issue from what the blog published since the last issue."""

from __future__ import annotations

import datetime as dt
import http.server
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from newsletters.articles import read_one
from newsletters.cli import cli
from newsletters.config import Site
from newsletters.drafting import draft_issue
from newsletters.errors import ArticleError, IssueFileError
from newsletters.issues import load_issue
from tests.conftest import FIXTURES

TODAY = dt.date(2026, 11, 2)
NEWS = "articles/news.xml#https://www.larkfield-clinic.example.com/blog/"


def _clear_issues(site_dir: Path) -> Path:
    issues = site_dir / "issues"
    issues.mkdir(exist_ok=True)
    for path in issues.glob("*.toml"):
        path.unlink()
    return issues


def _previous_issue(site_dir: Path, day: str) -> None:
    (_clear_issues(site_dir) / "2026-10.toml").write_text(
        f'subject = "October news"\ndate = {day}\n\n[[articles]]\nsource = "articles/old.md"\n', encoding="utf-8"
    )


def test_draft_takes_articles_after_the_last_issue_newest_first(site_dir):
    _previous_issue(site_dir, "2026-10-05")
    site = Site.load(site_dir)
    path = draft_issue(site, ["articles"], today=TODAY)
    assert path == site_dir / "issues" / "2026-11.toml"
    issue = load_issue(path)
    assert issue.date == TODAY and issue.slug == "2026-11"
    assert [(a.source, a.mode) for a in issue.articles] == [
        (NEWS + "thursday-evening-appointments/", "full"),
        ("articles/winter-skin-care-and-spf.md", "excerpt"),
        ("articles/your-first-consultation.html", "excerpt"),
        ("articles/laser-hair-removal-in-winter.txt", "excerpt"),
    ]
    assert issue.subject == "Thursday evening appointments from November"
    assert issue.preheader.startswith("Also: Winter skin care")
    assert "{first_name}" in issue.intro and "5 October 2026" in issue.intro
    # Every source in the draft reads back as exactly one article.
    for entry in issue.articles:
        assert read_one(entry.source, root=site.root).title


def test_since_is_inclusive_and_overrides_the_last_issue(site_dir):
    _previous_issue(site_dir, "2026-10-25")
    result = CliRunner().invoke(cli, ["--site", str(site_dir), "new", "articles", "--since", "2026-10-20"])
    assert result.exit_code == 0, result.output
    path = Path(result.stdout.strip())
    assert path.parent == site_dir / "issues" and path.is_file()
    sources = [a.source for a in load_issue(path).articles]
    assert sources == [NEWS + "thursday-evening-appointments/", "articles/winter-skin-care-and-spf.md"]


def test_without_any_issue_everything_is_drafted_and_the_folder_is_the_default(site_dir):
    _clear_issues(site_dir)
    (site_dir / "articles" / "photo.jpg").write_bytes(b"\xff\xd8\xff\xe0 not an article")  # ignored by extension
    result = CliRunner().invoke(cli, ["--site", str(site_dir), "new"])
    assert result.exit_code == 0, result.output
    issue = load_issue(Path(result.stdout.strip()))
    assert len(issue.articles) == 6
    assert [a.mode for a in issue.articles] == ["full"] + ["excerpt"] * 5
    assert issue.articles[-1].source == NEWS + "cqc-registration/"  # oldest last


def test_refuses_to_overwrite_an_existing_issue(site_dir):
    _previous_issue(site_dir, "2026-10-05")
    runner = CliRunner()
    first = runner.invoke(cli, ["--site", str(site_dir), "new", "articles"])
    assert first.exit_code == 0, first.output
    path = Path(first.stdout.strip())
    path.write_text(path.read_text(encoding="utf-8") + "# marketing's edits\n", encoding="utf-8")
    second = runner.invoke(cli, ["--site", str(site_dir), "new", "articles"])
    assert second.exit_code == 1
    assert second.stderr.startswith(f"error: {path}: an issue file with this name already exists")
    assert path.read_text(encoding="utf-8").endswith("# marketing's edits\n")


def test_out_names_the_file_and_its_slug(site_dir, tmp_path):
    _previous_issue(site_dir, "2026-10-05")
    site = Site.load(site_dir)
    path = draft_issue(site, ["articles/news.xml"], today=TODAY, out=site_dir / "issues" / "2026-11-evenings.toml")
    issue = load_issue(path)
    assert issue.slug == "2026-11-evenings"
    assert [a.source for a in issue.articles] == [NEWS + "thursday-evening-appointments/"]


def test_nothing_new_is_an_error_that_suggests_since(site_dir):
    _previous_issue(site_dir, "2026-10-30")
    with pytest.raises(ArticleError) as caught:
        draft_issue(Site.load(site_dir), ["articles"], today=TODAY)
    assert "no articles published after the last issue (2026-10-30)" in caught.value.message
    assert "--since" in caught.value.hint
    assert not (site_dir / "issues" / "2026-11.toml").exists()


def test_a_broken_article_stops_the_draft_and_names_the_file(site_dir):
    _clear_issues(site_dir)
    (site_dir / "articles" / "broken.md").write_text("---\ntitle: [unclosed\n---\nText\n", encoding="utf-8")
    with pytest.raises(ArticleError) as caught:
        draft_issue(Site.load(site_dir), ["articles"], today=TODAY)
    assert caught.value.where == "articles/broken.md"
    assert list((site_dir / "issues").glob("*.toml")) == []


def test_a_broken_earlier_issue_is_reported(site_dir):
    (_clear_issues(site_dir) / "2026-09.toml").write_text("subject = \n", encoding="utf-8")
    with pytest.raises(IssueFileError) as caught:
        draft_issue(Site.load(site_dir), ["articles"], today=TODAY)
    assert caught.value.where.endswith("2026-09.toml")


def test_titles_with_quotes_and_backslashes_make_valid_toml(site_dir):
    _clear_issues(site_dir)
    folder = site_dir / "odd"
    folder.mkdir()
    (folder / "odd.md").write_text(
        '---\ntitle: \'He said "book now" \\ then left\'\ndate: 2026-10-30\n---\nText with """ triple quotes.\n',
        encoding="utf-8",
    )
    path = draft_issue(Site.load(site_dir), ["odd"], today=TODAY)
    assert load_issue(path).subject == 'He said "book now" \\ then left'


class FeedServer:
    def __init__(self, body: bytes):
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Type", "application/rss+xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/feed/"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_feed_url_entries_are_written_as_feed_hash_entry(site_dir):
    _previous_issue(site_dir, "2026-10-01")
    server = FeedServer((FIXTURES / "feeds" / "rss_with_content_encoded_and_media.xml").read_bytes())
    try:
        path = draft_issue(Site.load(site_dir), [server.url], today=TODAY)
        issue = load_issue(path)
        assert [a.source for a in issue.articles] == [
            server.url + "#https://www.example.com/blog/meet-tom-our-new-aesthetic-nurse/",
            server.url + "#https://www.example.com/blog/laser-hair-removal-how-many-sessions/",
        ]
        assert read_one(issue.articles[1].source).title.startswith("Laser hair removal")
    finally:
        server.close()
