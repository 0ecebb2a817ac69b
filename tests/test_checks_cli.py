"""`newsletter check` as a user runs it: a table on a terminal, JSON for scripts, exit 1 on errors."""

from __future__ import annotations

import json
import shutil

from click.testing import CliRunner

from newsletters.checks import RULES
from newsletters.cli import cli

from conftest import POM_EXPORT
from test_checks_support import clean_issue, write_issue

WIDE = {"COLUMNS": "220"}


def botox_issue(site_dir, extra: str = ""):
    (site_dir / "articles").mkdir(exist_ok=True)
    shutil.copy(POM_EXPORT, site_dir / "articles" / "clinic-blog-article.txt")
    return write_issue(
        site_dir,
        "botox.toml",
        'subject = "The medical side of our work"\npreheader = "What else injections treat"\ndate = 2026-11-01\n'
        '\n[[articles]]\nsource = "articles/clinic-blog-article.txt"\nmode = "excerpt"\n' + extra,
    )


def run(site_dir, *args):
    return CliRunner().invoke(cli, ["--site", str(site_dir), "check", *args], env=WIDE)


def test_check_prints_a_table_and_exits_1_on_an_unaccepted_error(site_dir):
    botox_issue(site_dir)
    result = run(site_dir, "issues/botox.toml")  # relative to the site folder, as in the Makefile
    assert result.exit_code == 1, result.output
    assert "uk-pom-botulinum-toxin" in result.stdout
    assert "article articles/clinic-blog-article.txt" in result.stdout
    assert "Do not name or nickname the medicine" in result.stdout  # the fix is shown
    assert "Checks: 2 errors" in result.stdout
    assert "error:" in result.stderr and "uk-pom-botulinum-toxin" in result.stderr
    assert "Traceback" not in result.output


def test_check_json_lists_every_finding_for_machines(site_dir):
    botox_issue(site_dir)
    result = run(site_dir, "issues/botox.toml", "--json")
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["blocking"] is True
    pom = [f for f in data["findings"] if f["rule"] == "uk-pom-botulinum-toxin"]
    assert [(f["severity"], f["where"], f["text"], f["accepted"]) for f in pom] == [
        ("error", "article articles/clinic-blog-article.txt", "Botox", False)
    ] * len(pom)
    assert len(pom) == 2 and all(isinstance(f["html_line"], int) for f in pom)
    assert set(data["findings"][0]) == {"rule", "severity", "where", "text", "fix", "accepted", "accepted_reason", "html_line"}


def test_check_passes_when_the_issue_file_accepts_the_error(site_dir):
    botox_issue(site_dir, '\n[[accept]]\nrule = "uk-pom-botulinum-toxin"\nreason = "Approved by our prescriber"\n')
    result = run(site_dir, "issues/botox.toml")
    assert result.exit_code == 0, result.output
    assert "accepted: Approved by our prescriber" in result.stdout
    assert "Checks: 0 errors, 0 warnings, 2 accepted" in result.stdout


def test_clean_issue_passes(site_dir):
    clean_issue(site_dir)
    result = run(site_dir, "issues/clean.toml")
    assert result.exit_code == 0, result.output
    assert "Checks: 0 errors, 0 warnings" in result.stdout


def test_rules_lists_every_rule_with_severity_and_switch(site_dir):
    result = run(site_dir, "--rules")
    assert result.exit_code == 0, result.output
    for rule_id in RULES:
        assert rule_id in result.stdout
    config = site_dir / "newsletter.toml"
    config.write_text(config.read_text(encoding="utf-8").replace('country = "GB"', 'country = "US"'), encoding="utf-8")
    rules = {r["id"]: r for r in json.loads(run(site_dir, "--rules", "--json").stdout)}
    assert rules["uk-pom-weight-loss"]["enabled"] is False and rules["uk-pom-weight-loss"]["severity"] == "error"
    assert rules["link-relative"]["enabled"] is True
    assert "Mounjaro" in rules["uk-pom-weight-loss"]["phrases"]


def test_rules_work_outside_a_site_folder(tmp_path):
    result = CliRunner().invoke(cli, ["--site", str(tmp_path), "check", "--rules", "--json"])
    assert result.exit_code == 0, result.output
    assert {r["id"] for r in json.loads(result.stdout)} == set(RULES)


def test_check_without_an_issue_is_a_usage_error(site_dir):
    result = run(site_dir)
    assert result.exit_code == 2
    assert "give the issue file to check" in result.output
