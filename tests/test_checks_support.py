"""Helpers the check tests share: put articles and templates into a site copy, build, check.

Holds no tests itself. Every helper works on real files in a private copy of
the example site and on a real build, the way `newsletter check` does.
"""

from __future__ import annotations

import email
import email.policy
import shutil
from pathlib import Path

from newsletters.build import build_issue
from newsletters.checks import run_checks
from newsletters.config import Site

from conftest import FIXTURES

CHECK_FIXTURES = FIXTURES / "checks"
WEBSITE = "https://www.larkfield-clinic.example.com"

# An issue with nothing any rule objects to: two articles, intro, call to action.
CLEAN_ISSUE = """\
subject = "Winter skin care and Thursday evening appointments"
preheader = "Three habits for comfortable skin, and a later closing time on Thursdays"
date = 2026-11-01
intro = \"\"\"
Hello {first_name},

This month our nurses share their winter skin routine, and we have news about evening appointments.
\"\"\"

[[articles]]
source = "articles/clean_winter_skin_care_article.md"
mode = "full"

[[articles]]
source = "articles/clean_new_evening_opening_hours_article.md"
mode = "excerpt"

[cta]
text = "Book an appointment"
url = "https://www.larkfield-clinic.example.com/book/"
"""


def add_article(site_dir: Path, fixture: str) -> str:
    """Copy an article fixture into the site's articles/ and return its issue-file source."""
    (site_dir / "articles").mkdir(exist_ok=True)
    shutil.copy(CHECK_FIXTURES / fixture, site_dir / "articles" / fixture)
    return f"articles/{fixture}"


def use_template(site_dir: Path, fixture: str, as_name: str) -> None:
    """Override one of the built-in templates the way a site does: same file name in templates/."""
    (site_dir / "templates").mkdir(exist_ok=True)
    shutil.copy(CHECK_FIXTURES / "templates" / fixture, site_dir / "templates" / as_name)


def write_issue(site_dir: Path, name: str, text: str) -> Path:
    path = site_dir / "issues" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def clean_issue(site_dir: Path, name: str = "clean.toml", text: str = CLEAN_ISSUE) -> Path:
    add_article(site_dir, "clean_winter_skin_care_article.md")
    add_article(site_dir, "clean_new_evening_opening_hours_article.md")
    return write_issue(site_dir, name, text)


def build_and_check(site_dir: Path, issue_path: Path, *, spamassassin: bool = False):
    site = Site.load(site_dir)
    result = build_issue(site, issue_path)
    return result, run_checks(site, result, spamassassin=spamassassin)


def found(report, *rules: str) -> list[tuple[str, str, str, str]]:
    """(rule, severity, where, text) of the findings of the given rules (all when none given), in order."""
    return [
        (f.rule, f.severity, f.where, f.text) for f in report.findings if not rules or f.rule in rules
    ]


def html_line(result, needle: str, start: int = 1) -> int:
    """The first line of the built email.html, at or after ``start``, that holds ``needle``."""
    lines = Path(result.paths["email.html"]).read_text(encoding="utf-8").split("\n")
    for number, line in enumerate(lines, 1):
        if number >= start and needle in line:
            return number
    raise AssertionError(f"{needle!r} is not in email.html")


def encoded_html_bytes(result) -> int:
    """Size of the HTML part as sample.eml carries it, read independently of the checks."""
    message = email.message_from_bytes(Path(result.paths["sample.eml"]).read_bytes(), policy=email.policy.compat32)
    for part in message.walk():
        if part.get_content_type() == "text/html":
            return len(part.get_payload().encode("ascii"))
    raise AssertionError("sample.eml has no HTML part")
