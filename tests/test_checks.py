"""Pre-send checks on real builds: each issue here breaks one group of rules on purpose.

SpamAssassin is left out of these (test_checks_spamassassin.py runs it); every
other rule is exercised through a real build of a private copy of the example
site, with articles and site templates written for the case.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from newsletters.checks import RULES
from newsletters.cli import cli
from newsletters.errors import CheckFailed, IssueFileError

from tests.conftest import FIXTURES
from test_checks_support import (
    WEBSITE,
    add_article,
    build_and_check,
    clean_issue,
    encoded_html_bytes,
    found,
    html_line,
    use_template,
    write_issue,
)

ISSUE_HEAD = """\
subject = "News from the clinic"
preheader = "What is new at Larkfield this month"
date = 2026-11-01
"""


def issue_with(site_dir: Path, name: str, *fixtures: str, mode: str = "full", extra: str = "") -> Path:
    text = ISSUE_HEAD + extra
    for fixture in fixtures:
        text += f'\n[[articles]]\nsource = "{add_article(site_dir, fixture)}"\nmode = "{mode}"\n'
    return write_issue(site_dir, name, text)


def test_clean_issue_has_no_findings(site_dir):
    result, report = build_and_check(site_dir, clean_issue(site_dir))
    assert found(report) == []
    assert not report.blocking


def test_article_image_over_http_without_width_and_a_click_here_link(site_dir):
    issue = issue_with(site_dir, "room.toml", "article_with_unsized_http_image_and_click_here_link.md")
    result, report = build_and_check(site_dir, issue)
    where = "article articles/article_with_unsized_http_image_and_click_here_link.md"
    src = "http://photos.larkfield-clinic.example.com/room-detail.jpg"
    assert found(report) == [
        ("image-insecure-src", "warning", where, src),
        ("image-missing-width", "warning", where, src),
        ("link-click-here", "warning", where, "click here"),
    ]
    lines = {f.rule: f.html_line for f in report.findings}
    assert lines["image-insecure-src"] == lines["image-missing-width"] == html_line(result, src)
    assert lines["link-click-here"] == html_line(result, ">click here<")


def test_intro_with_relative_link_top_anchor_and_two_texts_for_one_address(site_dir):
    intro = (
        'intro = """\nSee [our prices](/prices/) or go [back to the top](#top).\n\n'
        f"You can [book a consultation]({WEBSITE}/book/) online, or [find a free slot]({WEBSITE}/book/) in our diary.\n"
        '"""\n'
    )
    issue = issue_with(site_dir, "intro.toml", "clean_new_evening_opening_hours_article.md", extra=intro)
    result, report = build_and_check(site_dir, issue)
    assert found(report) == [
        ("link-relative", "error", "intro", "/prices/"),
        ("link-anchor", "warning", "intro", "#top"),
        ("link-same-url-different-text", "warning", "intro",
         f'{WEBSITE}/book/: "book a consultation", "find a free slot"'),
    ]
    assert report.blocking
    assert report.findings[0].html_line == html_line(result, 'href="/prices/"')


def test_header_template_with_script_link_relative_link_and_unlabelled_logo(site_dir):
    use_template(site_dir, "header_with_script_link_and_unlabelled_logo.mjml.j2", "header.mjml.j2")
    result, report = build_and_check(site_dir, clean_issue(site_dir))
    logo = f"{WEBSITE}/images/logo.png"
    logo_line = html_line(result, logo)
    script_line = html_line(result, "javascript:")
    assert found(report) == [
        ("link-unsafe-scheme", "error", f"email.html line {script_line}", "javascript:window.print()"),
        ("link-relative", "error", f"email.html line {script_line}", "/prices/"),
        ("image-missing-alt", "warning", f"email.html line {logo_line}", logo),
        ("image-missing-width", "warning", f"email.html line {logo_line}", logo),
        ("link-empty-text", "warning", f"email.html line {logo_line}", f"link to {WEBSITE}/ has no text"),
    ]


def test_local_logo_file_is_a_broken_source_and_too_heavy(site_dir):
    use_template(site_dir, "header_with_local_logo_file.mjml.j2", "header.mjml.j2")
    (site_dir / "images").mkdir()
    (site_dir / "images" / "logo-print-quality.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(300 * 1024))
    result, report = build_and_check(site_dir, clean_issue(site_dir))
    line = html_line(result, "logo-print-quality.png")
    assert found(report) == [
        ("image-broken-src", "error", f"email.html line {line}", "images/logo-print-quality.png"),
        ("image-too-heavy", "warning", f"email.html line {line}", "images/logo-print-quality.png is 300 KB (limit 200 KB)"),
        # The header no longer shows the clinic's name, and this footer is the built-in one: name still there.
    ]


def test_article_image_on_the_website_weighed_from_the_site_folder(site_dir):
    article = site_dir / "articles" / "heavy_hero_image.md"
    article.parent.mkdir(exist_ok=True)
    article.write_text(
        "---\ntitle: Our garden in autumn\nurl: " + WEBSITE + "/blog/garden/\n"
        "image: /images/garden-hero-full-resolution.jpg\nimage_alt: The clinic garden in October\n---\n"
        "The garden behind the clinic turned gold this month.\n",
        encoding="utf-8",
    )
    (site_dir / "images").mkdir()
    (site_dir / "images" / "garden-hero-full-resolution.jpg").write_bytes(bytes(250 * 1024))
    issue = write_issue(site_dir, "garden.toml", ISSUE_HEAD + '\n[[articles]]\nsource = "articles/heavy_hero_image.md"\nmode = "full"\n')
    result, report = build_and_check(site_dir, issue)
    src = f"{WEBSITE}/images/garden-hero-full-resolution.jpg"
    assert found(report) == [
        ("image-too-heavy", "warning", "article articles/heavy_hero_image.md", f"{src} is 250 KB (limit 200 KB)")
    ]
    # A site that accepts heavier images says so in newsletter.toml.
    config = site_dir / "newsletter.toml"
    config.write_text(config.read_text(encoding="utf-8") + "\n[checks]\nimage_max_kb = 300\n", encoding="utf-8")
    assert found(build_and_check(site_dir, issue)[1]) == []


@pytest.mark.parametrize(
    ("footer", "reason"),
    [
        ("footer_with_unsubscribe_hidden_by_display_none.mjml.j2", "display:none on <p>"),
        ("footer_with_unsubscribe_in_tiny_print.mjml.j2", "font-size 5px"),
    ],
)
def test_unsubscribe_link_that_nobody_can_see_counts_as_missing(site_dir, footer, reason):
    use_template(site_dir, footer, "footer.mjml.j2")
    result, report = build_and_check(site_dir, clean_issue(site_dir))
    line = html_line(result, "/unsubscribe/sample-token")  # the sample subscriber's link, on the template's line
    assert found(report) == [
        ("unsubscribe-missing", "error", f"email.html line {line}", f'unsubscribe link "Unsubscribe" is hidden ({reason})')
    ]
    assert report.blocking


def test_footer_without_postal_address_and_header_without_name(site_dir):
    use_template(site_dir, "footer_without_postal_address.mjml.j2", "footer.mjml.j2")
    result, report = build_and_check(site_dir, clean_issue(site_dir))
    address = "14 Orchard Parade, Larkfield, Kent, ME20 6AB, United Kingdom"
    assert found(report, "postal-address-missing", "sender-name-missing") == [
        ("postal-address-missing", "error", "email.html", address),
    ]
    # Without the name in the header either, nothing in the HTML says who sends it.
    use_template(site_dir, "header_with_local_logo_file.mjml.j2", "header.mjml.j2")
    result, report = build_and_check(site_dir, clean_issue(site_dir))
    assert found(report, "postal-address-missing", "sender-name-missing") == [
        ("postal-address-missing", "error", "email.html", address),
        ("sender-name-missing", "error", "email.html", "Larkfield Clinic / Larkfield Skin & Laser Clinic"),
    ]


def test_plain_text_template_with_excerpts_only(site_dir):
    use_template(site_dir, "email_text_with_excerpts_only.txt.j2", "email.txt.j2")
    result, report = build_and_check(site_dir, clean_issue(site_dir))
    winter = "article articles/clean_winter_skin_care_article.md"
    evenings = "article articles/clean_new_evening_opening_hours_article.md"
    assert found(report) == [
        ("unsubscribe-missing", "error", "email.txt", "no unsubscribe address in the plain-text part"),
        ("postal-address-missing", "error", "email.txt", "14 Orchard Parade, Larkfield, Kent, ME20 6AB, United Kingdom"),
        ("text-part-incomplete", "error", winter, "title missing from email.txt: Looking after your skin through a Kent winter"),
        ("text-part-incomplete", "error", winter, f"link missing from email.txt: {WEBSITE}/blog/winter-skin-care/"),
        ("text-part-incomplete", "error", evenings, "title missing from email.txt: We are now open on Thursday evenings"),
        ("text-part-incomplete", "error", evenings, f"link missing from email.txt: {WEBSITE}/blog/thursday-evenings/"),
    ]


def test_long_subject_and_no_preheader(site_dir):
    subject = "Winter skin care, Thursday evening appointments and everything else that happened at the clinic"
    lines = clean_issue(site_dir).read_text(encoding="utf-8").splitlines()
    text = "\n".join([f'subject = "{subject}"'] + [line for line in lines if not line.startswith(("subject", "preheader"))])
    issue = write_issue(site_dir, "long.toml", text + "\n")
    result, report = build_and_check(site_dir, issue)
    assert found(report) == [
        ("subject-too-long", "warning", "subject", f"{subject} ({len(subject)} characters)"),
        ("preheader-missing", "warning", "preheader", "the issue file has no preheader"),
    ]
    assert not report.blocking  # warnings never stop a send


def _long_article(site_dir: Path, paragraphs: int) -> str:
    lines = ["---", "title: Questions our nurses hear every week", f"url: {WEBSITE}/blog/questions/", "---"]
    for n in range(1, paragraphs + 1):
        lines.append(
            f"Question {n}: patients often ask how long a course of treatment {n} takes, what it costs, how "
            f"to prepare for the first visit and what aftercare looks like in the weeks that follow. Our "
            f"nurses answer question {n} at the consultation and write the answers down to take home.\n"
        )
    path = site_dir / "articles" / f"questions_{paragraphs}.md"
    path.parent.mkdir(exist_ok=True)
    path.write_text("\n".join(lines), encoding="utf-8")
    return f"articles/{path.name}"


def _size_issue(site_dir: Path, paragraphs: int) -> Path:
    source = _long_article(site_dir, paragraphs)
    return write_issue(site_dir, f"size-{paragraphs}.toml", ISSUE_HEAD + f'\n[[articles]]\nsource = "{source}"\nmode = "full"\n')


def test_html_part_over_90_kb_warns_and_over_102_kb_is_clipped(site_dir):
    # Measure what one paragraph adds to the encoded HTML part, then aim at 96 KB and 110 KB.
    small, large = (encoded_html_bytes(build_and_check(site_dir, _size_issue(site_dir, n))[0]) for n in (10, 30))
    per_paragraph = (large - small) / 20
    base = small - 10 * per_paragraph

    for target_kb, rule, severity in ((96, "html-size-warning", "warning"), (110, "html-size-clipped", "error")):
        paragraphs = round((target_kb * 1024 - base) / per_paragraph)
        result, report = build_and_check(site_dir, _size_issue(site_dir, paragraphs))
        size = encoded_html_bytes(result)
        assert 90 * 1024 < size
        assert found(report, "html-size-warning", "html-size-clipped") == [
            (rule, severity, "email.html", f"encoded HTML part is {size / 1024:.1f} KB (in sample.eml), Gmail clips over 102 KB")
        ]
    assert report.blocking
    assert found(build_and_check(site_dir, _size_issue(site_dir, 10))[1], "html-size-warning", "html-size-clipped") == []


def test_build_and_check_print_one_size_for_an_issue_near_the_limit(site_dir):
    """Between about 94 and 102 KB the file on disk and the encoded part used to give two answers."""
    issue = _size_issue(site_dir, 270)
    built = CliRunner().invoke(cli, ["--site", str(site_dir), "build", str(issue), "--no-checks"])
    checked = CliRunner().invoke(cli, ["--site", str(site_dir), "check", str(issue), "--json"])
    build_kb = re.search(r"email.html is ([\d.]+) KB as sent", built.output).group(1)
    [size] = [f for f in json.loads(checked.stdout)["findings"] if f["rule"].startswith("html-size")]
    assert f"encoded HTML part is {build_kb} KB" in size["text"]
    assert float(build_kb) > 90


def test_sample_message_without_one_click_unsubscribe_headers(site_dir):
    result, report = build_and_check(site_dir, clean_issue(site_dir))
    assert found(report) == []
    sample = Path(result.paths["sample.eml"])
    kept = [line for line in sample.read_bytes().split(b"\r\n") if not line.startswith(b"List-Unsubscribe-Post:")]
    sample.write_bytes(b"\r\n".join(kept))
    from newsletters.checks import run_checks
    from newsletters.config import Site

    report = run_checks(Site.load(site_dir), result, spamassassin=False)
    assert found(report) == [
        ("list-unsubscribe-header-missing", "warning", "sample.eml",
         "no List-Unsubscribe-Post: List-Unsubscribe=One-Click header"),
    ]


def test_accepted_error_is_listed_but_does_not_block(site_dir):
    text = clean_issue(site_dir).read_text(encoding="utf-8").replace(
        'intro = """', 'intro = """\nOur [price list](/prices/) has changed.\n', 1
    )
    issue = write_issue(site_dir, "accepted.toml", text)
    result, report = build_and_check(site_dir, issue)
    assert report.blocking
    with pytest.raises(CheckFailed, match="link-relative"):
        report.raise_if_blocking(str(issue))

    write_issue(site_dir, "accepted.toml", text + '\n[[accept]]\nrule = "link-relative"\nreason = "Our mail system rewrites /prices/"\n')
    result, report = build_and_check(site_dir, issue)
    assert found(report) == [("link-relative", "error", "intro", "/prices/")]
    assert report.findings[0].accepted_reason == "Our mail system rewrites /prices/"
    assert report.errors == [] and not report.blocking
    report.raise_if_blocking(str(issue))  # does not raise
    assert report.to_json()["findings"][0]["accepted"] is True


def test_accepting_a_rule_that_does_not_exist_is_an_issue_file_error(site_dir):
    issue = clean_issue(site_dir)
    issue.write_text(issue.read_text(encoding="utf-8") + '\n[[accept]]\nrule = "uk-pom-botox"\nreason = "typo"\n', encoding="utf-8")
    with pytest.raises(IssueFileError) as error:
        build_and_check(site_dir, issue)
    assert "uk-pom-botox" in error.value.message and str(issue) in error.value.where


def test_registry_names_every_rule_the_issue_asks_for_with_severity_and_fix():
    asked = {
        "html-size-warning": "warning", "html-size-clipped": "error", "image-too-heavy": "warning",
        "image-missing-alt": "warning", "image-missing-width": "warning", "image-insecure-src": "warning",
        "link-relative": "error", "link-anchor": "warning", "link-unsafe-scheme": "error",
        "link-empty-text": "warning", "link-click-here": "warning", "link-same-url-different-text": "warning",
        "unsubscribe-missing": "error", "postal-address-missing": "error", "sender-name-missing": "error",
        "preheader-missing": "warning", "subject-too-long": "warning", "text-part-incomplete": "error",
        "spam-score-warning": "warning", "spam-score-error": "error", "spamassassin-missing": "info",
        "uk-pom-botulinum-toxin": "error", "uk-pom-weight-loss": "error", "uk-ad-time-pressure": "warning",
        "uk-ad-risk-free": "warning", "uk-ad-guaranteed": "warning",
    }
    assert {rule_id: RULES[rule_id].severity for rule_id in asked} == asked
    for rule in RULES.values():
        assert rule.description.strip() and rule.fix.strip(), rule.id


def test_an_image_without_alt_text_is_one_check_finding_and_no_build_warning(site_dir):
    """Said once per picture, in the words of the check, not again by the reader or the renderer."""
    name = "markdown_post_with_two_pictures_and_no_alt_text.md"
    (site_dir / "articles" / name).write_bytes((FIXTURES / "issue13" / name).read_bytes())
    issue = write_issue(site_dir, "alt.toml", ISSUE_HEAD + f'\n[[articles]]\nsource = "articles/{name}"\nmode = "full"\n')
    result, report = build_and_check(site_dir, issue)
    missing = [(f.where, f.text) for f in report.findings if f.rule == "image-missing-alt"]
    assert missing == [
        (f"article articles/{name}", "https://www.oakbridge-skin.example.org/uploads/2026/11/peels-before.jpg"
         " (the article's title stands in for now)"),
        (f"article articles/{name}", "https://www.oakbridge-skin.example.org/uploads/2026/11/peels-after.jpg"
         " (the article's title stands in for now)"),
    ]
    assert not any("alt text" in w for w in result.warnings)
    built = CliRunner().invoke(cli, ["--site", str(site_dir), "build", str(issue)])
    assert built.exit_code == 0
    assert "alt text" not in built.stderr  # no `warning:` line repeats the findings
