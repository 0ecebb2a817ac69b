"""`newsletter new`: a draft issue from what the blog published since the last issue."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from newsletters.articles import read_one
from newsletters.cli import cli
from newsletters.config import Site
from newsletters.drafting import DraftNotes, draft_issue
from newsletters.errors import ArticleError
from newsletters.issues import load_issue
from tests.conftest import FIXTURES
from tests.send_fixtures import add_subscribers, make_send_site

TODAY = dt.date(2026, 11, 2)
NEWS = "articles/news.xml#https://www.larkfield-clinic.example.com/blog/"


def _clear_issues(site_dir: Path) -> Path:
    issues = site_dir / "issues"
    issues.mkdir(exist_ok=True)
    for path in issues.glob("*.toml"):
        path.unlink()
    return issues


def _previous_issue(site_dir: Path, day: str, *, sent: int = 12) -> Path:
    """An October issue, and the report `newsletter send` leaves when it delivered it to ``sent`` people."""
    path = _clear_issues(site_dir) / "2026-10.toml"
    path.write_text(
        f'subject = "October news"\ndate = {day}\n\n[[articles]]\nsource = "articles/old.md"\n', encoding="utf-8"
    )
    _send_report(site_dir, path, sent=sent)
    return path


def _send_report(site_dir: Path, issue_path: Path, *, sent: int, started: str = "2026-10-31T09:00:00+00:00") -> None:
    """The keys of reports/send-<slug>-run<N>.json that say which issue was sent, when, to how many."""
    reports = site_dir / "reports"
    reports.mkdir(exist_ok=True)
    report = {
        "run": 1, "issue": issue_path.stem, "issue_path": str(issue_path), "status": "done",
        "created_at": started, "updated_at": started,
        "summary": {"sent": sent, "deferred": 0, "failed": 0, "skipped": 0, "unknown": 0},
    }
    (reports / f"send-{issue_path.stem}-run1.json").write_text(json.dumps(report), encoding="utf-8")


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
    assert "no new articles: articles published after 2026-10-30, the date of the last sent issue" in caught.value.message
    assert "6 left out" in caught.value.message
    assert "--since" in caught.value.hint
    assert not (site_dir / "issues" / "2026-11.toml").exists()


def test_new_says_which_articles_it_left_out_and_why(site_dir):
    _previous_issue(site_dir, "2026-10-05")
    (site_dir / "articles" / "undated.md").write_text("---\ntitle: A note without a date\n---\nHello.\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["--site", str(site_dir), "new"])
    assert result.exit_code == 0, result.output
    err = result.stderr
    assert "cut-off: articles published after 2026-10-05, the date of the last sent issue (issues/2026-10.toml, sent 2026-10-31)" in err
    assert "left out: Microneedling is now available at Larkfield (articles/news.xml#" in err
    assert "published 2026-10-01, before the cut-off" in err
    assert "left out: A note without a date (articles/undated.md): it has no date" in err
    assert "left out: Our clinic is now registered with the Care Quality Commission" in err
    assert result.stdout.strip() == str(site_dir / "issues" / f"{dt.date.today():%Y-%m}.toml")


def test_a_drafted_but_unsent_issue_such_as_inits_sample_sets_no_cut_off(site_dir):
    (_clear_issues(site_dir) / "2026-11.toml").write_text(
        'subject = "Sample"\ndate = 2026-11-01\n\n[[articles]]\nsource = "articles/old.md"\n', encoding="utf-8"
    )
    notes = DraftNotes()
    path = draft_issue(Site.load(site_dir), ["articles"], today=dt.date(2026, 12, 2), notes=notes)
    assert len(load_issue(path).articles) == 6  # all of them: nothing was sent yet
    assert notes.left_out == [] and "no issue has been sent yet" in notes.cutoff


def test_a_run_that_delivered_nothing_does_not_count_as_sent(site_dir):
    _previous_issue(site_dir, "2026-10-30", sent=0)
    path = draft_issue(Site.load(site_dir), ["articles"], today=TODAY)
    assert len(load_issue(path).articles) == 6


def test_a_broken_article_is_a_warning_naming_the_file_and_the_rest_is_drafted(site_dir):
    _clear_issues(site_dir)
    (site_dir / "articles" / "broken.md").write_text("---\ntitle: [unclosed\n---\nText\n", encoding="utf-8")
    (site_dir / "articles" / "photo.txt").write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00binary")
    result = CliRunner().invoke(cli, ["--site", str(site_dir), "new"])
    assert result.exit_code == 0, result.output
    assert "warning: articles/broken.md: " in result.stderr
    assert "warning: articles/photo.txt: " in result.stderr
    assert len(load_issue(Path(result.stdout.strip())).articles) == 6


def test_a_broken_sent_issue_file_is_a_warning_and_the_day_it_was_sent_is_the_cut_off(site_dir):
    path = _previous_issue(site_dir, "2026-10-05")
    path.write_text("subject = \n", encoding="utf-8")
    notes = DraftNotes()
    with pytest.raises(ArticleError) as caught:  # every example article is older than the day it was sent
        draft_issue(Site.load(site_dir), ["articles"], today=TODAY, notes=notes)
    assert "articles published after 2026-10-31, the day the last issue was sent" in caught.value.message
    [warning] = notes.warnings
    assert warning.startswith(str(path)) and "using the day it was sent, 2026-10-31, as the cut-off" in warning


def test_an_unreadable_send_report_is_a_warning_naming_it(site_dir):
    _clear_issues(site_dir)
    (site_dir / "reports").mkdir()
    (site_dir / "reports" / "send-2026-10-run1.json").write_text("{ half a report", encoding="utf-8")
    notes = DraftNotes()
    draft_issue(Site.load(site_dir), ["articles"], today=TODAY, notes=notes)
    assert notes.warnings[0].startswith(str(site_dir / "reports" / "send-2026-10-run1.json"))


def test_the_cut_off_comes_from_a_real_send(site_dir):
    """`newsletter send` to the outbox, then `newsletter new`: the sent issue's date is the cut-off."""
    _clear_issues(site_dir)
    make_send_site(site_dir)
    add_subscribers(site_dir, 2)
    (site_dir / "articles" / "late.md").write_text(
        "---\ntitle: Late November opening hours\ndate: 2026-11-20\n---\nWe open until 8 pm on Fridays.\n",
        encoding="utf-8",
    )
    sent = CliRunner().invoke(cli, ["--site", str(site_dir), "send", "issues/issue_for_send_tests.toml", "--yes"])
    assert sent.exit_code == 0, sent.output
    notes = DraftNotes()
    path = draft_issue(Site.load(site_dir), ["articles"], today=dt.date(2026, 12, 1), notes=notes)
    assert "after 2026-11-01, the date of the last sent issue (issues/issue_for_send_tests.toml" in notes.cutoff
    left = {article.source: reason for article, reason in notes.left_out}
    assert left["articles/sunscreen_in_winter_short_post.md"] == "already in the last sent issue"
    assert [a.source for a in load_issue(path).articles] == ["articles/late.md"]


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


def test_feed_url_entries_are_written_as_feed_hash_entry(site_dir, local_site):
    _previous_issue(site_dir, "2026-10-01")
    feed = (FIXTURES / "feeds" / "rss_with_content_encoded_and_media.xml").read_bytes()
    url = local_site.add("/feed/", feed, "application/rss+xml")
    path = draft_issue(Site.load(site_dir), [url], today=TODAY)
    issue = load_issue(path)
    assert [a.source for a in issue.articles] == [
        url + "#https://www.example.com/blog/meet-tom-our-new-aesthetic-nurse/",
        url + "#https://www.example.com/blog/laser-hair-removal-how-many-sessions/",
    ]
    assert read_one(issue.articles[1].source).title.startswith("Laser hair removal")
