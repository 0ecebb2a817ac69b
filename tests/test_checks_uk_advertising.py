"""UK advertising rules: prescription-only medicines and pressure selling, in real builds.

The example site is in Great Britain (country = "GB"), so these rules are on
by default; a site switches them off, extends them or adds its own in
newsletter.toml's [checks] table and its checks.toml.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from newsletters.checks import load_settings
from newsletters.config import Site
from newsletters.errors import ConfigError

from conftest import POM_EXPORT, SHARED_EXAMPLE, requires_shared_example
from test_checks_support import WEBSITE, add_article, build_and_check, clean_issue, found, write_issue

HEAD = """\
subject = "News from the clinic"
preheader = "What is new at Larkfield this month"
date = 2026-11-01
"""
UK_RULES = ("uk-pom-botulinum-toxin", "uk-pom-weight-loss", "uk-ad-time-pressure", "uk-ad-risk-free", "uk-ad-guaranteed")


def shared_article_issue(
    site_dir: Path, *, mode: str = "full", head: str = HEAD, extra: str = "", article: Path = POM_EXPORT
) -> Path:
    """A blog post naming Botox, mailed as it is: ours by default, or the clinic's shared export."""
    (site_dir / "articles").mkdir(exist_ok=True)
    shutil.copy(article, site_dir / "articles" / "clinic-blog-article.txt")
    text = head + f'\n[[articles]]\nsource = "articles/clinic-blog-article.txt"\nmode = "{mode}"\n' + extra
    return write_issue(site_dir, f"botox-{mode}.toml", text)


def add_to_config(site_dir: Path, text: str) -> None:
    config = site_dir / "newsletter.toml"
    config.write_text(config.read_text(encoding="utf-8") + "\n" + text, encoding="utf-8")


@requires_shared_example
def test_shared_botox_article_is_reported_at_every_line_that_names_it(site_dir):
    result, report = build_and_check(site_dir, shared_article_issue(site_dir, article=SHARED_EXAMPLE))
    where = "article articles/clinic-blog-article.txt"
    pom = [f for f in report.findings if f.rule == "uk-pom-botulinum-toxin"]
    assert {(f.rule, f.severity, f.where, f.text) for f in pom} == {("uk-pom-botulinum-toxin", "error", where, "Botox")}
    html_lines = Path(result.paths["email.html"]).read_text(encoding="utf-8").split("\n")
    expected_lines = [n for n, line in enumerate(html_lines, 1) if "Botox" in line and "<title>" not in line]
    assert [f.html_line for f in pom] == expected_lines
    assert "The medical uses of Botox" in html_lines[pom[0].html_line - 1]  # the title comes first
    assert found(report, "uk-ad-guaranteed") == [("uk-ad-guaranteed", "warning", where, "guaranteed")]
    assert report.blocking


@requires_shared_example
def test_shared_botox_article_as_an_excerpt_is_still_reported(site_dir):
    result, report = build_and_check(site_dir, shared_article_issue(site_dir, mode="excerpt", article=SHARED_EXAMPLE))
    assert {(f.rule, f.where, f.text) for f in report.findings if f.rule.startswith("uk-")} == {
        ("uk-pom-botulinum-toxin", "article articles/clinic-blog-article.txt", "Botox")
    }
    assert report.blocking


def test_nicknames_in_subject_and_preheader_and_phrases_split_by_markup(site_dir):
    head = (
        'subject = "Beautox evenings are back"\n'
        'preheader = "Wrinkle-relaxing injections with our nurse prescriber"\n'
        "date = 2026-11-01\n"
        'intro = """\nAsk us about **anti-wrinkle** injections.\n"""\n'
    )
    source = add_article(site_dir, "clean_new_evening_opening_hours_article.md")
    issue = write_issue(site_dir, "nick.toml", head + f'\n[[articles]]\nsource = "{source}"\n')
    result, report = build_and_check(site_dir, issue)
    assert found(report, *UK_RULES) == [
        ("uk-pom-botulinum-toxin", "error", "subject", "Beautox"),
        ("uk-pom-botulinum-toxin", "error", "preheader", "Wrinkle-relaxing injections"),
        ("uk-pom-botulinum-toxin", "error", "intro", "anti-wrinkle injections"),
    ]


def test_weight_loss_medicines_named_in_text_but_not_inside_a_link_address(site_dir):
    source = add_article(site_dir, "weight_management_article_naming_mounjaro_and_skinny_jabs.md")
    issue = write_issue(site_dir, "weight.toml", HEAD + f'\n[[articles]]\nsource = "{source}"\nmode = "full"\n')
    result, report = build_and_check(site_dir, issue)
    where = f"article {source}"
    assert found(report) == [
        ("uk-pom-weight-loss", "error", where, "Mounjaro"),
        ("uk-pom-weight-loss", "error", where, "skinny jabs"),
    ]
    # The NHS link's address names Ozempic and Wegovy; only what a reader reads counts.
    assert "ozempic-and-wegovy" in Path(result.paths["email.html"]).read_text(encoding="utf-8")


def test_time_pressure_risk_free_and_guarantees_in_article_intro_and_call_to_action(site_dir):
    source = add_article(site_dir, "laser_offer_with_time_pressure_and_guarantee.md")
    extra = 'intro = """\nOur autumn offer ends on Friday.\n"""\n'
    cta = '\n[cta]\ntext = "Book today only"\nurl = "' + WEBSITE + '/book/"\n'
    issue = write_issue(site_dir, "offer.toml", HEAD + extra + f'\n[[articles]]\nsource = "{source}"\nmode = "full"\n' + cta)
    result, report = build_and_check(site_dir, issue)
    where = f"article {source}"
    assert found(report) == [
        ("uk-ad-time-pressure", "warning", "intro", "offer ends"),
        ("uk-ad-time-pressure", "warning", where, "offer ends"),
        ("uk-ad-risk-free", "warning", where, "risk-free"),
        ("uk-ad-guaranteed", "warning", where, "guaranteed"),
        ("uk-ad-time-pressure", "warning", "cta", "today only"),
    ]
    assert not report.blocking


def test_rules_are_off_outside_the_uk_unless_the_site_enables_them(site_dir):
    config = site_dir / "newsletter.toml"
    config.write_text(config.read_text(encoding="utf-8").replace('country = "GB"', 'country = "IE"'), encoding="utf-8")
    issue = shared_article_issue(site_dir)
    assert found(build_and_check(site_dir, issue)[1], *UK_RULES) == []

    add_to_config(site_dir, '[checks]\nenable = ["uk-advertising"]\n')
    assert {f.rule for f in build_and_check(site_dir, issue)[1].findings} == {"uk-pom-botulinum-toxin", "uk-ad-guaranteed"}


def test_a_site_switches_off_one_rule_or_the_whole_set(site_dir):
    issue = shared_article_issue(site_dir)
    add_to_config(site_dir, '[checks]\ndisable = ["uk-ad-guaranteed"]\n')
    assert {f.rule for f in build_and_check(site_dir, issue)[1].findings} == {"uk-pom-botulinum-toxin"}

    config = site_dir / "newsletter.toml"
    config.write_text(config.read_text(encoding="utf-8").replace('"uk-ad-guaranteed"', '"uk-advertising"'), encoding="utf-8")
    assert found(build_and_check(site_dir, issue)[1]) == []


def test_site_checks_toml_adds_phrases_and_its_own_rule(site_dir):
    (site_dir / "checks.toml").write_text(
        "[extend]\n"
        'uk-pom-botulinum-toxin = ["Relfydess"]\n\n'
        "[[rules]]\n"
        'id = "clinic-no-miracle-claims"\n'
        'severity = "warning"\n'
        'description = "Words our compliance lead asked us never to use"\n'
        'fix = "Describe what the treatment does instead"\n'
        'phrases = ["miracle", "pain-free"]\n',
        encoding="utf-8",
    )
    head = HEAD.replace("News from the clinic", "Relfydess now at Larkfield")
    extra = 'intro = """\nA miracle for tired skin, and pain free too.\n"""\n'
    source = add_article(site_dir, "clean_new_evening_opening_hours_article.md")
    issue = write_issue(site_dir, "site-rules.toml", head + extra + f'\n[[articles]]\nsource = "{source}"\n')
    result, report = build_and_check(site_dir, issue)
    assert found(report) == [
        ("uk-pom-botulinum-toxin", "error", "subject", "Relfydess"),
        ("clinic-no-miracle-claims", "warning", "intro", "miracle"),
        ("clinic-no-miracle-claims", "warning", "intro", "pain free"),
    ]


def test_accepting_the_pom_rule_lets_the_shared_article_through_with_its_reason(site_dir):
    reason = "Medical-uses article approved by our prescriber; no offer attached"
    issue = shared_article_issue(
        site_dir, extra=f'\n[[accept]]\nrule = "uk-pom-botulinum-toxin"\nreason = "{reason}"\n'
    )
    result, report = build_and_check(site_dir, issue)
    pom = [f for f in report.findings if f.rule == "uk-pom-botulinum-toxin"]
    assert pom and all(f.accepted_reason == reason for f in pom)
    assert report.errors == [] and not report.blocking
    assert [f.rule for f in report.findings if not f.accepted] == ["uk-ad-guaranteed"]


@pytest.mark.parametrize(
    ("config", "site_rules", "message", "where"),
    [
        ('[checks]\ndisabel = ["uk-ad-guaranteed"]\n', None, "unknown key `disabel`", "newsletter.toml: [checks]"),
        ('[checks]\ndisable = ["uk-ad-guaranted"]\n', None, "checks.disable names 'uk-ad-guaranted'", "newsletter.toml: [checks]"),
        ('[checks]\ndisable = "uk-ad-guaranteed"\n', None, "checks.disable must be a list of rule ids", "newsletter.toml: [checks]"),
        ('[checks]\nenable = ["uk-advertisment"]\n', None, "checks.enable names 'uk-advertisment'", "newsletter.toml: [checks]"),
        ('[checks]\nimage_max_kb = "big"\n', None, "checks.image_max_kb must be a whole number", "newsletter.toml: [checks]"),
        ('[checks]\nrules = "compliance.toml"\n', None, "checks.rules names 'compliance.toml', which does not exist", "newsletter.toml: [checks]"),
        ("", '[[rules]]\nid = "x"\nseverity = "fatal"\ndescription = "d"\nfix = "f"\nphrases = ["a"]\n',
         "`severity` must be one of error, warning, info, not 'fatal'", "checks.toml: rules[1] (x)"),
        ("", '[[rules]]\nid = "x"\nseverity = "error"\ndescription = "d"\nfix = "f"\nphrases = []\n',
         "`phrases` must be a non-empty list of strings", "checks.toml: rules[1] (x): phrases"),
        ("", '[[rules]]\nid = "x"\nseverity = "error"\ndescription = "d"\nphrases = ["a"]\n',
         "missing key `fix`", "checks.toml: rules[1] (x)"),
        ("", '[extend]\nlink-relative = ["a"]\n', "[extend] names 'link-relative', which is not a phrase rule", "checks.toml"),
        ("", '[[rules]]\nid = "uk-ad-guaranteed"\nseverity = "error"\ndescription = "d"\nfix = "f"\nphrases = ["a"]\n',
         "rule id 'uk-ad-guaranteed' already exists", "checks.toml"),
        ("", "[extend\n", "not valid TOML: a [section] heading is missing its closing ]", "checks.toml:1"),
    ],
)
def test_bad_check_settings_are_errors_naming_the_file_and_key(site_dir, config, site_rules, message, where):
    if config:
        add_to_config(site_dir, config)
    if site_rules is not None:
        (site_dir / "checks.toml").write_text(site_rules, encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        load_settings(Site.load(site_dir))
    assert message in error.value.message
    assert error.value.where.startswith(str(site_dir.resolve()))
    assert error.value.where.endswith(where)


def test_clean_issue_trips_no_uk_rule(site_dir):
    assert found(build_and_check(site_dir, clean_issue(site_dir))[1], *UK_RULES) == []
