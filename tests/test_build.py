"""``newsletter build``: the files a send and a review need, written whole or not at all."""

from __future__ import annotations

import email
import email.policy
import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import lxml.html
import pytest
from click.testing import CliRunner

from newsletters.build import ARTICLES_NAME, INLINED_NAME, OUTPUT_NAMES, build_issue, write_atomically
from newsletters.cli import cli
from newsletters.config import Site
from newsletters.errors import IssueFileError, RenderError
from newsletters.issues import load_issue
from newsletters.render import inline_css
from test_checks_support import encoded_html_bytes

FIXTURES = Path(__file__).parent / "fixtures" / "render"
EXAMPLE_ISSUE = "issues/2026-11.toml"
SMALL_ISSUE = "issues/2026-12.toml"


@pytest.fixture
def small_site(site_dir: Path) -> Path:
    """The example site plus a one-article issue of our own (articles/ and issues/ as a site keeps them)."""
    (site_dir / "articles").mkdir(exist_ok=True)
    (site_dir / "issues").mkdir(exist_ok=True)
    shutil.copy(FIXTURES / "dry_hands_in_winter.md", site_dir / "articles" / "dry_hands_in_winter.md")
    shutil.copy(FIXTURES / "issue_with_one_markdown_post.toml", site_dir / SMALL_ISSUE)
    return site_dir


def parse(path: Path):
    return email.message_from_bytes(path.read_bytes(), policy=email.policy.default)


# ------------------------------------------------------------------ the example issue


def test_example_issue_builds_within_gmails_limit_with_styles_inlined(site_dir):
    result = build_issue(Site.load(site_dir), site_dir / EXAMPLE_ISSUE)
    assert result.out_dir == site_dir / "build" / "2026-11"
    assert sorted(result.paths) == sorted(OUTPUT_NAMES)
    assert all(path.is_file() and path.stat().st_size > 0 for path in result.paths.values())

    html_bytes = result.paths["email.html"].read_bytes()
    assert len(html_bytes) < 102 * 1024
    tree = lxml.html.document_fromstring(html_bytes)
    body_styles = [el.get("style") for el in tree.find("body").iter() if isinstance(el.tag, str)]
    assert sum(1 for style in body_styles if style) > 100  # the layout is carried by inline styles
    head_css = "\n".join(style.text or "" for style in tree.find("head").iter("style"))
    assert "@media" in head_css

    issue = load_issue(site_dir / EXAMPLE_ISSUE)
    assert len(issue.articles) >= 4 and {a.mode for a in issue.articles} == {"full", "excerpt"}
    text = result.paths["email.txt"].read_text()
    for _, article in result.articles:
        assert article.title in " ".join(tree.text_content().split())
        assert article.title in text


def test_example_sample_eml_parses_as_multipart_alternative_with_both_parts(site_dir):
    result = build_issue(Site.load(site_dir), site_dir / EXAMPLE_ISSUE)
    message = parse(result.paths["sample.eml"])
    assert message.get_content_type() == "multipart/alternative"
    assert [part.get_content_type() for part in message.iter_parts()] == ["text/plain", "text/html"]
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert "__NL_" not in text and "__NL_" not in html
    assert "Sam" in text and "Sam" in html
    assert message["Subject"] == result.rendered.subject.replace("__NL_FIRST_NAME__", "Sam")


def test_example_issue_avoids_phrases_the_pre_send_checks_refuse(site_dir):
    text = (site_dir / EXAMPLE_ISSUE).read_text().lower()
    for phrase in ("botox", "guaranteed", "risk-free", "offer ends", "today only"):
        assert phrase not in text


# ------------------------------------------------------------------ paths and atomic writes


def test_relative_issue_path_is_found_in_the_current_folder_first(small_site, tmp_path, monkeypatch):
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "issues").mkdir(parents=True)
    local = elsewhere / SMALL_ISSUE
    local.write_text((small_site / SMALL_ISSUE).read_text().replace("Winter hand care", "Local copy of the issue"))
    monkeypatch.chdir(elsewhere)
    result = build_issue(Site.load(small_site), SMALL_ISSUE)
    assert result.issue.path == elsewhere / SMALL_ISSUE
    assert result.rendered.subject == "Local copy of the issue"


def test_relative_issue_path_falls_back_to_the_site_folder(small_site, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = build_issue(Site.load(small_site), SMALL_ISSUE)
    assert result.issue.path == small_site / SMALL_ISSUE
    assert set(result.timings) >= {"read", "render", "mjml", "inline", "write"}


def test_missing_issue_file_names_where_it_looked(small_site, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(IssueFileError) as caught:
        build_issue(Site.load(small_site), "issues/1999-01.toml")
    assert caught.value.where == "issues/1999-01.toml"
    assert str(small_site) in caught.value.hint


def test_out_dir_option_puts_files_in_out_slash_slug(small_site, tmp_path):
    result = build_issue(Site.load(small_site), small_site / SMALL_ISSUE, out_dir=tmp_path / "out")
    assert result.paths["web.html"] == tmp_path / "out" / "2026-12" / "web.html"
    assert not (small_site / "build").exists()


def test_a_failed_build_leaves_the_previous_build_untouched(small_site):
    site = Site.load(small_site)
    first = build_issue(site, small_site / SMALL_ISSUE)
    before = {name: path.read_bytes() for name, path in first.paths.items()}
    (small_site / "templates").mkdir()
    shutil.copy(FIXTURES / "cta_with_unclosed_mj_button.mjml.j2", small_site / "templates" / "cta.mjml.j2")
    issue = small_site / SMALL_ISSUE
    issue.write_text(issue.read_text().replace("Winter hand care", "A changed subject"))
    with pytest.raises(RenderError):
        build_issue(site, issue)
    assert {name: path.read_bytes() for name, path in first.paths.items()} == before
    assert sorted(p.name for p in first.out_dir.iterdir()) == sorted(OUTPUT_NAMES)


def test_write_atomically_changes_nothing_when_one_file_cannot_be_written(tmp_path):
    good = tmp_path / "email.html"
    good.write_text("old")
    blocked = tmp_path / "web.html"
    blocked.mkdir()  # a folder where a file should go: the rename fails
    with pytest.raises(OSError):
        write_atomically({blocked: b"new web", good: b"new email"})
    assert good.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["email.html", "web.html"]  # no temporaries left


def test_build_reads_articles_with_the_site_as_root(small_site):
    result = build_issue(Site.load(small_site), small_site / SMALL_ISSUE)
    [(entry, article)] = result.articles
    assert entry.source == "articles/dry_hands_in_winter.md"
    assert article.title == "Dry, cracked hands in winter"
    html = result.paths["email.html"].read_text()
    assert "Wash with lukewarm, not hot, water." in html
    assert "Hello Sam, a short one this month." in html


def test_the_files_people_open_show_the_sample_subscriber_and_the_templates_say_they_are_templates(small_site):
    site = Site.load(small_site)
    result = build_issue(site, small_site / SMALL_ISSUE)
    html = result.paths["email.html"].read_text()
    text = result.paths["email.txt"].read_text()
    template_html = result.paths["email.template.html"].read_text()
    template_text = result.paths["email.template.txt"].read_text()
    assert "__NL_" not in html and "__NL_" not in text
    assert "Hello Sam, a short one this month." in html and "Hello Sam, a short one this month." in text
    assert f"{site.public_url}/unsubscribe/sample-token" in html
    assert f"{site.public_url}/unsubscribe/sample-token" in text
    assert "Hello __NL_FIRST_NAME__, a short one this month." in template_html
    assert "__NL_UNSUBSCRIBE_URL__" in template_html and "__NL_UNSUBSCRIBE_URL__" in template_text
    # The checks name lines of email.html: the filled file keeps the template's lines.
    assert html.count("\n") == template_html.count("\n")
    assert template_html == result.rendered.html  # what `send` personalises


# ------------------------------------------------------------------ the command


def test_build_command_prints_paths_warnings_and_size(small_site, tmp_path):
    issue = small_site / SMALL_ISSUE
    issue.write_text(issue.read_text().replace('preheader = "Five habits for comfortable hands"\n', ""))
    result = CliRunner().invoke(cli, ["--site", str(small_site), "build", SMALL_ISSUE, "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    for name in OUTPUT_NAMES:
        assert f"wrote {tmp_path / 'o' / '2026-12' / name}" in result.output
    assert "preheader-missing" in result.output  # said once, as the check finding
    assert "warning: issue has no preheader" not in result.output
    size_kb = encoded_html_bytes(build_result_paths(tmp_path / "o" / "2026-12")) / 1024
    assert f"email.html is {size_kb:.1f} KB as sent, encoded as in sample.eml (under Gmail's 102 KB clipping limit)" in result.output


def build_result_paths(folder: Path):
    """What encoded_html_bytes reads: an object with the built files' paths."""
    return type("Built", (), {"paths": {name: folder / name for name in OUTPUT_NAMES}})()


def test_build_command_reports_a_bad_issue_in_one_line(small_site):
    result = CliRunner().invoke(cli, ["--site", str(small_site), "build", "issues/nope.toml"])
    assert result.exit_code == 1
    assert "error: issues/nope.toml: no such issue file" in result.output
    assert "Traceback" not in result.output


def test_a_missing_article_names_the_issue_entry_and_the_path(site_dir):
    issue = site_dir / EXAMPLE_ISSUE
    text = issue.read_text(encoding="utf-8")
    sources = [line for line in text.splitlines() if line.startswith("source = ")]
    third = sources[2].split('"')[1]
    issue.write_text(text.replace(f'"{third}"', '"articles/not-written-yet.md"'), encoding="utf-8")
    result = CliRunner().invoke(cli, ["--site", str(site_dir), "build", EXAMPLE_ISSUE])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: {issue}: articles[3]: articles/not-written-yet.md: no such file")


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o027, 0o640)])
def test_built_files_follow_the_umask_like_any_new_file(small_site, umask, mode):
    previous = os.umask(umask)
    try:
        result = build_issue(Site.load(small_site), small_site / SMALL_ISSUE)
    finally:
        os.umask(previous)
    assert {name: stat.S_IMODE(path.stat().st_mode) for name, path in result.paths.items()} == {
        name: mode for name in OUTPUT_NAMES
    }


def test_image_widths_are_whole_pixels(site_dir):
    """The example's cards put images in a 38% column: MJML computes 194.88 px for them."""
    result = build_issue(Site.load(site_dir), site_dir / EXAMPLE_ISSUE)
    for html in (result.rendered.html, result.rendered.web_html):
        tree = lxml.html.document_fromstring(html)
        widths = [img.get("width") for img in tree.iter("img")]
        assert widths and all(w.isdigit() for w in widths), widths
        assert "194" in widths  # the card images, rounded down so they never outgrow their column
        assert not re.search(r"width:\s*\d+\.\d+px", html)


# ------------------------------------------------------------------ the inlining kept beside the build

REBUILD_IN_A_FRESH_PROCESS = """
import sys
from newsletters.build import build_issue
from newsletters.config import Site
build_issue(Site.load(sys.argv[1]), sys.argv[2])
print("premailer imported" if "premailer" in sys.modules else "premailer not imported")
"""


def rebuild_in_a_fresh_process(site_dir: Path, issue: str) -> str:
    """What a ``send`` process does first: build the issue again, in a process of its own."""
    done = subprocess.run([sys.executable, "-c", REBUILD_IN_A_FRESH_PROCESS, str(site_dir), issue],
                          capture_output=True, text=True, check=True, cwd=site_dir)
    return done.stdout.strip()


@pytest.fixture
def keyed_site(small_site: Path) -> Path:
    """The small site with the SECRET_KEY every real site has (the kept inlining is signed with it)."""
    (small_site / ".env").write_text("SECRET_KEY=test-key-for-the-kept-inlining-0123456789\n")
    return small_site


def kept_inlining(site_dir: Path) -> Path:
    return site_dir / "build" / "2026-12" / INLINED_NAME


def kept_articles(site_dir: Path, slug: str = "2026-12") -> Path:
    return site_dir / "build" / slug / ARTICLES_NAME


def test_a_send_after_a_build_reuses_its_css_inlining_and_builds_the_same_bytes(keyed_site):
    first = build_issue(Site.load(keyed_site), SMALL_ISSUE)
    built = {name: path.read_bytes() for name, path in first.paths.items() if name != "sample.eml"}

    assert rebuild_in_a_fresh_process(keyed_site, SMALL_ISSUE) == "premailer not imported"
    assert {name: first.paths[name].read_bytes() for name in built} == built


def test_a_changed_colour_is_inlined_afresh_not_taken_from_the_last_build(keyed_site):
    build_issue(Site.load(keyed_site), SMALL_ISSUE)
    toml = keyed_site / "newsletter.toml"
    toml.write_text(toml.read_text().replace('primary_color = "#24505c"', 'primary_color = "#7a1f3d"'))

    assert rebuild_in_a_fresh_process(keyed_site, SMALL_ISSUE) == "premailer imported"
    html = (keyed_site / "build" / "2026-12" / "email.html").read_text()
    tree = lxml.html.document_fromstring(html)
    styles = " ".join(el.get("style") or "" for el in tree.iter() if isinstance(el.tag, str))
    assert "#7a1f3d" in styles.lower() and "#24505c" not in styles.lower()


def test_an_inlining_changed_by_anyone_without_the_key_is_not_mailed(keyed_site):
    build_issue(Site.load(keyed_site), SMALL_ISSUE)
    kept = json.loads(kept_inlining(keyed_site).read_text())
    kept["html"] = kept["html"].replace("cracked hands in winter", "PLANTED OFFER, click here")
    kept_inlining(keyed_site).write_text(json.dumps(kept))

    result = build_issue(Site.load(keyed_site), SMALL_ISSUE)

    assert "PLANTED OFFER" not in result.rendered.html
    assert "cracked hands in winter" in result.rendered.html


def test_an_inlining_signed_with_another_key_is_not_reused(keyed_site):
    build_issue(Site.load(keyed_site), SMALL_ISSUE)
    (keyed_site / ".env").write_text("SECRET_KEY=another-sites-key-0123456789-abcdefghij\n")

    assert rebuild_in_a_fresh_process(keyed_site, SMALL_ISSUE) == "premailer imported"
    assert rebuild_in_a_fresh_process(keyed_site, SMALL_ISSUE) == "premailer not imported"  # kept for this key now


def test_another_inliner_inlines_again(keyed_site, monkeypatch):
    """An upgraded premailer, or inline_css changed: the kept result is not that inliner's."""
    import newsletters.build
    import newsletters.render

    build_issue(Site.load(keyed_site), SMALL_ISSUE)
    calls = []
    monkeypatch.setattr(newsletters.build, "inline_css", lambda html: calls.append(1) or inline_css(html))
    build_issue(Site.load(keyed_site), SMALL_ISSUE)
    assert calls == []  # the same inliner: reused

    monkeypatch.setattr(newsletters.render, "_INLINER_REVISION", newsletters.render._INLINER_REVISION + 1)
    build_issue(Site.load(keyed_site), SMALL_ISSUE)
    assert calls == [1]


def _without(key):
    def change(kept: dict) -> str:
        del kept[key]
        return json.dumps(kept)
    return change


def _articles(change):
    """A damage to each entry of the kept articles."""
    return lambda kept: json.dumps({source: change(entry) for source, entry in kept.items()})


@pytest.mark.parametrize("kept_file, damage", [
    pytest.param(kept_inlining, _without("html"), id="inlining: no HTML"),
    pytest.param(kept_inlining, _without("signature"), id="inlining: no signature"),
    pytest.param(kept_inlining, lambda kept: json.dumps({**kept, "html": 42}), id="inlining: HTML not text"),
    pytest.param(kept_inlining, lambda kept: json.dumps({**kept, "signature": 42}), id="inlining: signature not text"),
    pytest.param(kept_inlining, lambda kept: json.dumps({**kept, "signature": "ünïcode"}),
                 id="inlining: signature not ASCII"),
    pytest.param(kept_inlining, lambda kept: json.dumps(kept)[:-20], id="inlining: cut short"),
    pytest.param(kept_inlining, lambda kept: json.dumps(list(kept.values())), id="inlining: not an object"),
    pytest.param(kept_articles, lambda kept: "{" + json.dumps(kept)[:40], id="articles: cut short"),
    pytest.param(kept_articles, lambda kept: json.dumps([kept]), id="articles: not an object"),
    pytest.param(kept_articles, _articles(lambda entry: {"article": entry["article"]}), id="articles: no signature"),
    pytest.param(kept_articles, _articles(lambda entry: {**entry, "signature": "ünïcode"}),
                 id="articles: signature not ASCII"),
    pytest.param(kept_articles, _articles(lambda entry: {**entry, "article": {"title": "x", "planted": 1}}),
                 id="articles: not an article"),
])
def test_a_damaged_kept_file_is_replaced_and_the_build_goes_on(keyed_site, kept_file, damage):
    first = build_issue(Site.load(keyed_site), SMALL_ISSUE)
    good = kept_file(keyed_site).read_text()
    kept_file(keyed_site).write_text(damage(json.loads(good)))

    result = build_issue(Site.load(keyed_site), SMALL_ISSUE)

    assert result.rendered.html == first.rendered.html
    assert kept_file(keyed_site).read_text() == good  # written again, whole


def test_without_a_secret_key_nothing_is_kept(small_site):
    result = build_issue(Site.load(small_site), SMALL_ISSUE)

    assert "cracked hands in winter" in result.rendered.html
    assert not kept_inlining(small_site).exists()


def test_a_build_folder_that_cannot_keep_the_inlining_still_builds(keyed_site):
    kept_inlining(keyed_site).mkdir(parents=True)  # a folder where the file would go: neither read nor written

    result = build_issue(Site.load(keyed_site), SMALL_ISSUE)

    assert "cracked hands in winter" in result.paths["email.html"].read_text()


# -- the articles kept beside the build (.articles.json) ----------------------------------------

IMPORTED_BY_A_FRESH_REBUILD = """
import json, sys
from newsletters.build import build_issue
from newsletters.config import Site
build_issue(Site.load(sys.argv[1]), sys.argv[2])
print(json.dumps(sorted(name for name in sys.argv[3:] if name in sys.modules)))
"""


def imported_by_a_fresh_rebuild(site_dir: Path, issue: str, *modules: str) -> list[str]:
    """Which of ``modules`` a ``send`` process imports to build the issue again."""
    done = subprocess.run([sys.executable, "-c", IMPORTED_BY_A_FRESH_REBUILD, str(site_dir), issue, *modules],
                          capture_output=True, text=True, check=True, cwd=site_dir)
    return json.loads(done.stdout)


def test_a_send_after_a_build_reads_no_article_again_and_builds_the_same_bytes(site_dir):
    """The example issue: a Markdown post, a text export, two feed entries and a saved web page."""
    (site_dir / ".env").write_text("SECRET_KEY=test-key-for-the-kept-articles-0123456789\n")
    first = build_issue(Site.load(site_dir), EXAMPLE_ISSUE)
    built = {name: path.read_bytes() for name, path in first.paths.items() if name != "sample.eml"}

    assert imported_by_a_fresh_rebuild(site_dir, EXAMPLE_ISSUE, "trafilatura", "feedparser") == []
    assert {name: first.paths[name].read_bytes() for name in built} == built
    assert len(json.loads(kept_articles(site_dir, "2026-11").read_text())) == 5


def test_an_edited_article_is_read_afresh(keyed_site):
    build_issue(Site.load(keyed_site), SMALL_ISSUE)
    post = keyed_site / "articles" / "dry_hands_in_winter.md"
    post.write_text(post.read_text().replace("Wash with lukewarm", "Wash with cool"))

    result = build_issue(Site.load(keyed_site), SMALL_ISSUE)

    assert "Wash with cool" in result.rendered.html and "lukewarm" not in result.rendered.html


def test_an_article_changed_by_anyone_without_the_key_is_not_mailed(keyed_site):
    build_issue(Site.load(keyed_site), SMALL_ISSUE)
    kept = json.loads(kept_articles(keyed_site).read_text())
    (entry,) = kept.values()
    entry["article"]["body_html"] = "<p>PLANTED OFFER, click here</p>"
    kept_articles(keyed_site).write_text(json.dumps(kept))

    result = build_issue(Site.load(keyed_site), SMALL_ISSUE)

    assert "PLANTED OFFER" not in result.rendered.html
    assert "lukewarm" in result.rendered.html


def test_other_readers_read_again(keyed_site, monkeypatch):
    """A reader changed (an upgraded library, our sanitizer): what the old one read is not reused."""
    import newsletters.articles
    import newsletters.build

    build_issue(Site.load(keyed_site), SMALL_ISSUE)
    reads = []
    real = newsletters.build.read_one
    monkeypatch.setattr(newsletters.build, "read_one", lambda *a, **k: reads.append(a[0]) or real(*a, **k))
    build_issue(Site.load(keyed_site), SMALL_ISSUE)
    assert reads == []

    monkeypatch.setattr(newsletters.articles, "READERS_REVISION", newsletters.articles.READERS_REVISION + 1)
    build_issue(Site.load(keyed_site), SMALL_ISSUE)
    assert reads == ["articles/dry_hands_in_winter.md"]


def test_an_article_on_the_web_is_read_every_time(keyed_site, local_site):
    """What a page says can change with nothing in the site folder to show it."""
    page = (FIXTURES.parent / "articles" / "ghost_post_with_feature_image_callout_and_signup_card.html").read_bytes()
    url = local_site.add("/blog/post/", page, "text/html; charset=utf-8")
    issue = keyed_site / SMALL_ISSUE
    issue.write_text(issue.read_text().replace('source = "articles/dry_hands_in_winter.md"', f'source = "{url}"'))

    build_issue(Site.load(keyed_site), SMALL_ISSUE)
    build_issue(Site.load(keyed_site), SMALL_ISSUE)

    assert len(local_site.requests) == 2
    assert not kept_articles(keyed_site).exists()


def test_upgrading_any_distribution_beside_the_readers_changes_their_fingerprint(tmp_path, monkeypatch):
    """A library the readers use, or one of its dependencies, upgraded: what was read before is stale."""
    from newsletters.stamps import distributions_stamp, installed_in

    (tmp_path / "readerlib").mkdir()
    (tmp_path / "readerlib" / "__init__.py").write_text("")
    (tmp_path / "readerlib-1.0.dist-info").mkdir()
    (tmp_path / "its_dependency-2.1.dist-info").mkdir()
    monkeypatch.syspath_prepend(str(tmp_path))

    assert installed_in("readerlib") == tmp_path
    before = distributions_stamp(("readerlib",))
    (tmp_path / "its_dependency-2.1.dist-info").rename(tmp_path / "its_dependency-2.2.dist-info")
    after = distributions_stamp(("readerlib",))

    assert "readerlib-1.0.dist-info" in before and "its_dependency-2.1.dist-info" in before
    assert after != before and "its_dependency-2.2.dist-info" in after
