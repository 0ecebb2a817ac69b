"""The spam score, from a real SpamAssassin run on each built sample message.

SpamAssassin takes a second or more per message, so each message is built and
scored once per module (module-scoped fixtures) and several tests read the
result. `make test` installs Debian's spamassassin; without it the tests that
need a real score are skipped with that reason, and the test of the "not
installed" note runs anyway.
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest

from newsletters.build import build_issue
from newsletters.checks import run_checks
from newsletters.checks.spamassassin import score_message
from newsletters.config import Site
from tests.system_parts import needs_spamassassin

from conftest import EXAMPLE_SITE
from test_checks_support import add_article, clean_issue, found, write_issue

EXAMPLE_ISSUE = "issues/2026-11.toml"


def _copy_example(tmp_path_factory, name: str) -> Path:
    dest = tmp_path_factory.mktemp(name) / "site"
    shutil.copytree(EXAMPLE_SITE, dest, ignore=shutil.ignore_patterns("build", "outbox", "reports", "newsletter.db*", ".env"))
    return dest


def _build_and_score(site_dir: Path, issue: Path, home: Path):
    """Build and check with SpamAssassin, HOME pointing at an empty folder we can inspect afterwards."""
    site = Site.load(site_dir)
    result = build_issue(site, issue)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HOME", str(home))
        report = run_checks(site, result, spamassassin=True)
    return result, report


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    """An empty HOME for every run here, to show that scoring leaves it empty."""
    if shutil.which("spamassassin") is None:
        pytest.skip("SpamAssassin is not installed (`make test` installs Debian's spamassassin)")
    return tmp_path_factory.mktemp("home")


@pytest.fixture(scope="module")
def example(tmp_path_factory, home):
    """The example site's own issue, built and scored once."""
    site_dir = _copy_example(tmp_path_factory, "example")
    return _build_and_score(site_dir, site_dir / EXAMPLE_ISSUE, home)


@pytest.fixture(scope="module")
def scored(tmp_path_factory, home):
    """Each case built and scored once: a clean issue, a 'Dear friend' letter, a spammy offer."""
    site_dir = _copy_example(tmp_path_factory, "cases")
    cases = {"clean": _build_and_score(site_dir, clean_issue(site_dir), home)}
    for name, fixture, subject in (
        ("dear-friend", "article_opening_dear_friend.md", "Ten years at Larkfield"),
        ("shouting", "article_shouting_free_offers_like_spam.md", "FREE!!! ACT NOW - 50% OFF - YOU ARE A WINNER $$$"),
    ):
        source = add_article(site_dir, fixture)
        issue = write_issue(
            site_dir,
            f"{name}.toml",
            f'subject = "{subject}"\npreheader = "A note from the clinic"\ndate = 2026-11-01\nslug = "{name}"\n'
            f'\n[[articles]]\nsource = "{source}"\nmode = "full"\n',
        )
        cases[name] = _build_and_score(site_dir, issue, home)
    return cases


@needs_spamassassin
def test_example_issue_scores_at_most_half_a_point(example):
    result, report = example
    assert report.spam is not None
    fired = {rule.name: rule.score for rule in report.spam.rules}
    assert report.spam.score <= 0.5, f"SpamAssassin rules that fired: {fired}"
    assert found(report, "spam-score-warning", "spam-score-error", "spamassassin-failed") == []


@needs_spamassassin
def test_clean_issue_has_no_findings_with_spamassassin_on(scored):
    cases = scored
    result, report = cases["clean"]
    assert found(report) == []
    assert report.spam is not None and report.spam.score < 2
    # Bayes is off and nothing is learnt: the same message scores the same again.
    again = score_message(Path(result.paths["sample.eml"]).read_bytes())
    assert again.score == report.spam.score
    assert [r.name for r in again.rules] == [r.name for r in report.spam.rules]


@needs_spamassassin
def test_dear_friend_letter_warns_with_the_rules_that_fired(scored):
    cases = scored
    result, report = cases["dear-friend"]
    assert "DEAR_FRIEND" in {rule.name for rule in report.spam.rules}
    assert 2 <= report.spam.score < 5
    fired = "; ".join(f"{r.name} {r.score:g} ({r.description})" for r in report.spam.rules if r.score != 0)
    assert found(report, "spam-score-warning", "spam-score-error") == [
        ("spam-score-warning", "warning", "sample.eml", f"score {report.spam.score:g}: {fired}")
    ]
    assert "DEAR_FRIEND" in report.findings[0].text


@needs_spamassassin
def test_shouting_free_offer_is_spam_and_blocks(scored):
    cases = scored
    result, report = cases["shouting"]
    assert report.spam.score >= 5
    names = {rule.name for rule in report.spam.rules}
    assert {"DEAR_FRIEND", "SUBJ_ALL_CAPS"} <= names
    assert [(f.rule, f.severity, f.where) for f in report.findings if f.rule.startswith("spam")] == [
        ("spam-score-error", "error", "sample.eml")
    ]
    assert report.blocking


@needs_spamassassin
def test_scoring_writes_nothing_into_the_users_home(scored, home):
    assert list(home.iterdir()) == []


def test_without_spamassassin_the_check_says_so_and_how_to_install_it(site_dir, tmp_path, monkeypatch):
    site = Site.load(site_dir)
    result = build_issue(site, clean_issue(site_dir))
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    report = run_checks(site, result, spamassassin=True)
    assert found(report) == [
        ("spamassassin-missing", "info", "sample.eml", "spam score not checked: spamassassin is not on PATH")
    ]
    assert "apt-get install spamassassin" in report.findings[0].fix
    assert not report.blocking and report.spam is None


def test_a_spamassassin_that_fails_is_reported_not_ignored(site_dir, tmp_path, monkeypatch):
    site = Site.load(site_dir)
    result = build_issue(site, clean_issue(site_dir))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    broken = bin_dir / "spamassassin"
    broken.write_text("#!/bin/sh\necho 'config: could not find site rules directory' >&2\nexit 2\n", encoding="ascii")
    broken.chmod(broken.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    report = run_checks(site, result, spamassassin=True)
    assert found(report) == [
        ("spamassassin-failed", "warning", "sample.eml",
         "spamassassin gave no report (config: could not find site rules directory)")
    ]
