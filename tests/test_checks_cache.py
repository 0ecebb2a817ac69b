"""Check results are reused for a build whose content did not change, and only then."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from newsletters.build import build_issue
from newsletters.checks import run_checks
from newsletters.checks.cache import CACHE_NAME
from newsletters.config import Site
from tests.send_fixtures import ISSUE, add_subscribers, make_send_site, newsletter
from tests.system_parts import needs_spamassassin



def _check(site_dir: Path):
    site = Site.load(site_dir)
    result = build_issue(site, site_dir / ISSUE)
    return result, run_checks(site, result)


def _doctor_cached_score(result, score: float) -> None:
    """Change the stored SpamAssassin score: only a report read from the cache can show it."""
    path = result.out_dir / CACHE_NAME
    data = json.loads(path.read_text(encoding="utf-8"))
    data["report"]["spamassassin"]["score"] = score
    path.write_text(json.dumps(data), encoding="utf-8")


@needs_spamassassin
def test_an_unchanged_build_reuses_the_results_spamassassin_included(site_dir):
    make_send_site(site_dir)
    first_result, first = _check(site_dir)
    assert not first.reused and first.spam is not None
    _doctor_cached_score(first_result, 1.25)
    again_result, again = _check(site_dir)
    assert again.reused
    assert again.spam.score == 1.25  # read back, not scored again
    assert [f.to_json() for f in again.findings] == [f.to_json() for f in first.findings]
    assert again_result.out_dir == first_result.out_dir


@needs_spamassassin
@pytest.mark.parametrize(
    "change",
    ["subject", "accept", "checks.toml", "newsletter.toml"],
)
def test_a_change_to_anything_the_rules_read_runs_them_again(site_dir, change):
    make_send_site(site_dir)
    first_result, _ = _check(site_dir)
    _doctor_cached_score(first_result, 1.25)
    issue = site_dir / ISSUE
    if change == "subject":
        issue.write_text(issue.read_text(encoding="utf-8").replace("Winter skin notes", "Winter notes"), encoding="utf-8")
    elif change == "accept":
        issue.write_text(
            issue.read_text(encoding="utf-8") + '\n[[accept]]\nrule = "link-anchor"\nreason = "table of contents"\n',
            encoding="utf-8",
        )
    elif change == "checks.toml":
        (site_dir / "checks.toml").write_text('[extend]\nuk-ad-guaranteed = ["promise"]\n', encoding="utf-8")
    else:
        config = site_dir / "newsletter.toml"
        config.write_text(config.read_text(encoding="utf-8") + '\n[checks]\nimage_max_kb = 300\n', encoding="utf-8")
    _, again = _check(site_dir)
    assert not again.reused
    assert again.spam.score != 1.25


@needs_spamassassin
def test_send_after_build_does_not_score_the_same_message_again(site_dir):
    make_send_site(site_dir)
    add_subscribers(site_dir, 2)
    built = newsletter(site_dir, "build", ISSUE)
    assert built.returncode == 0, built.stderr
    cache = next((site_dir / "build").glob(f"*/{CACHE_NAME}"))
    data = json.loads(cache.read_text(encoding="utf-8"))
    data["report"]["findings"].append(
        {"rule": "preheader-missing", "severity": "warning", "where": "preheader", "text": "marker from the cache",
         "fix": "-", "accepted": False, "accepted_reason": None, "html_line": None}
    )
    cache.write_text(json.dumps(data), encoding="utf-8")
    sent = newsletter(site_dir, "send", ISSUE, "--yes")
    assert sent.returncode == 0, sent.stderr
    assert "results reused, SpamAssassin not run again" in sent.stdout
    assert "marker from the cache" in sent.stdout  # the plan's warnings are the stored ones


@needs_spamassassin
def test_a_new_public_url_changes_the_sample_message_so_the_checks_run_again(site_dir):
    """PUBLIC_URL lives in .env, not in the issue: it still changes the links SpamAssassin reads."""
    make_send_site(site_dir)
    first_result, _ = _check(site_dir)
    _doctor_cached_score(first_result, 1.25)
    env = site_dir / ".env"
    env.write_text(env.read_text().replace("https://news.larkfield-clinic.example.com", "https://mail.larkfield.example.org"))
    _, again = _check(site_dir)
    assert not again.reused and again.spam.score != 1.25
