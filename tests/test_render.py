"""Rendering one issue: what a reader's mail client and a reviewer would look for."""

from __future__ import annotations

import datetime as dt
import http.server
import os
import re
import shutil
import threading
from pathlib import Path

import cssutils
import lxml.html
import pytest

from newsletters.articles.model import Article
from newsletters.config import Site
from newsletters.errors import RenderError
from newsletters.issues import CallToAction, Issue, IssueArticle
from newsletters.render import FIRST_NAME, UNSUBSCRIBE_URL, VIEW_URL, render_issue

FIXTURES = Path(__file__).parent / "fixtures" / "render"
BLOG = "https://www.larkfield-clinic.example.com/blog"


def winter_skin() -> Article:
    return Article(
        title="Winter skin: keeping moisture in",
        url=f"{BLOG}/winter-skin/",
        author="Dr Ana Patel",
        published="2026-10-20T09:00",
        image=f"{BLOG}/images/frosty-window.jpg",
        image_alt="Frost on a clinic window",
        body_html=(
            "<p>Cold air outside and central heating inside both pull water out of the skin.</p>"
            "<h2>What helps</h2><ul><li>A gentle, fragrance-free cleanser</li><li>Sunscreen, even in winter</li></ul>"
        ),
    )


def laser_faq() -> Article:
    return Article(
        title="Laser hair removal: how many sessions?",
        url=f"{BLOG}/laser-sessions/",
        summary="Most people need six to eight sessions, four to six weeks apart. Here is why.",
        image=f"{BLOG}/images/laser-room.jpg",
    )


def new_nurse() -> Article:
    return Article(
        title="Meet Jo, our new nurse",
        url=f"{BLOG}/meet-jo/",
        body_html="<p>Jo joins us from the county hospital &amp; brings ten years of skin care experience.</p><p>Second paragraph.</p>",
    )


def make_issue(site_dir: Path, entries: list[tuple[IssueArticle, Article]], **changes) -> Issue:
    fields = dict(
        path=site_dir / "issues" / "2026-11.toml",
        subject="Your November skin notes",
        date=dt.date(2026, 11, 1),
        slug="2026-11",
        preheader="Winter skin, laser questions and a new face at the clinic",
        intro="Hi {first_name},\n\nWelcome to the **November** newsletter.",
        articles=[entry for entry, _ in entries],
        cta=CallToAction("Book a consultation", "https://www.larkfield-clinic.example.com/book"),
    )
    fields.update(changes)
    return Issue(**fields)


def standard_articles() -> list[tuple[IssueArticle, Article]]:
    return [
        (IssueArticle("articles/winter-skin.md", "full"), winter_skin()),
        (IssueArticle("articles/laser.html", "excerpt"), laser_faq()),
        (IssueArticle("articles/jo.txt", "excerpt"), new_nurse()),
    ]


@pytest.fixture
def site(site_dir) -> Site:
    return Site.load(site_dir)


@pytest.fixture
def rendered(site, site_dir):
    articles = standard_articles()
    return render_issue(site, make_issue(site_dir, articles), articles)


def doc(html: str):
    return lxml.html.document_fromstring(html.encode("utf-8"))


def style_of(element) -> dict[str, str]:
    """An element's inline style as {property: value}, the way a mail client applies it."""
    pairs = (item.split(":", 1) for item in (element.get("style") or "").split(";") if ":" in item)
    return {name.strip().lower(): value.strip() for name, value in pairs}


def test_email_html_has_its_styles_inlined_and_keeps_media_queries(rendered):
    tree = doc(rendered.html)
    body_paragraph = next(p for p in tree.iter("p") if "pull water out" in p.text_content())
    assert style_of(body_paragraph)["margin"] == "0 0 14px"
    head_styles = [style for style in tree.find("head").iter("style")]
    css = "\n".join(style.text or "" for style in head_styles)
    assert "@media only screen and (max-width: 479px)" in css
    assert "prefers-color-scheme: dark" in css
    # what is left in <style> is only what cannot be inlined: @media and :root rules
    plain_rules = []
    for style in head_styles:
        for rule in cssutils.parseString(style.text or "", validate=False):
            if rule.type == rule.STYLE_RULE and rule.selectorText != ":root":
                plain_rules.append(rule.selectorText)
    # (MJML's own Thunderbird rules sit in a <style media=...> premailer leaves alone)
    assert all(selector.startswith(".moz-text-html") for selector in plain_rules), plain_rules
    assert rendered.html.lower().startswith("<!doctype html>")
    assert set(rendered.timings) >= {"render", "mjml", "inline"}


def test_email_declares_light_and_dark_schemes_and_hides_the_preheader(rendered):
    tree = doc(rendered.html)
    metas = {m.get("name"): m.get("content") for m in tree.iter("meta") if m.get("name")}
    assert metas["color-scheme"] == "light dark"
    assert metas["supported-color-schemes"] == "light dark"
    hidden = [div for div in tree.iter("div") if style_of(div).get("display") == "none"]
    assert any("Winter skin, laser questions" in div.text_content() for div in hidden)
    assert tree.find(".//html") is None and tree.get("lang") == "en-GB"


def test_placeholders_come_through_mjml_and_the_inliner_unchanged(rendered):
    tree = doc(rendered.html)
    hrefs = [a.get("href") for a in tree.iter("a")]
    assert UNSUBSCRIBE_URL in hrefs and VIEW_URL in hrefs
    assert f"Hi {FIRST_NAME}," in tree.text_content()
    assert f"Unsubscribe: {UNSUBSCRIBE_URL}" in rendered.text
    assert f"Hi {FIRST_NAME}," in rendered.text
    unsubscribe = next(a for a in tree.iter("a") if a.get("href") == UNSUBSCRIBE_URL)
    assert unsubscribe.text_content().strip() == "Unsubscribe"
    assert style_of(unsubscribe).get("display") != "none"


def test_footer_names_the_clinic_address_phone_and_why(rendered, site):
    text = " ".join(doc(rendered.html).text_content().split())
    config = site.config
    for expected in (config.name, config.postal_address, config.phone, config.footer_text, config.footer_why):
        assert expected in text
        assert " ".join(expected.split()[:4]) in rendered.text


def test_full_article_and_cards_with_read_more(rendered):
    tree = doc(rendered.html)
    text = tree.text_content()
    assert "Cold air outside and central heating inside" in text  # full body
    assert "What helps" in text
    more = [a for a in tree.iter("a") if a.text_content().strip().startswith("Read more")]
    assert [a.get("href") for a in more] == [f"{BLOG}/laser-sessions/", f"{BLOG}/meet-jo/"]
    assert "Most people need six to eight sessions" in text  # summary as the excerpt
    assert "Jo joins us from the county hospital & brings" in text  # first paragraph when no summary
    assert "Second paragraph." not in text


def test_every_image_has_alt_text_and_a_missing_one_is_left_to_the_check_to_report(rendered):
    images = list(doc(rendered.html).iter("img"))
    assert images and all((img.get("alt") or "").strip() for img in images)
    laser = next(img for img in images if img.get("src", "").endswith("laser-room.jpg"))
    assert laser.get("alt") == "Laser hair removal: how many sessions?"
    # Said once, by the check image-missing-alt (tests/test_checks.py), not also by the renderer.
    assert not any("alt text" in w for w in rendered.warnings)


def test_article_body_is_made_to_fit_a_phone(site, site_dir):
    body = (FIXTURES / "article_body_with_wide_table_and_images_without_alt.html").read_text()
    article = Article(title="How long treatments take", url=f"{BLOG}/times/", body_html=body)
    entries = [(IssueArticle("articles/times.html", "full"), article)]
    result = render_issue(site, make_issue(site_dir, entries), entries)
    tree = doc(result.html)
    wide = next(img for img in tree.iter("img") if "treatment-room" in img.get("src", ""))
    # capped at the 552 px column (Outlook draws an image at its width attribute), scaled down on a phone
    assert wide.get("width") == "552" and wide.get("height") is None and wide.get("alt") == "How long treatments take"
    assert style_of(wide)["max-width"] == "100%" and style_of(wide)["height"] == "auto"
    badge = next(img for img in tree.iter("img") if "badge" in img.get("src", ""))
    assert badge.get("width") == "80" and badge.get("alt") == "Quality badge"
    table = next(t for t in tree.iter("table") if "Treatment" in t.text_content() and t.get("role") is None)
    assert table.get("width") is None
    assert style_of(table)["width"] == "100%"
    assert "nl-table-wrap" in table.getparent().get("class", "")
    # The missing alt text and the relative /contact link are the checks' to report, once.
    assert not any("alt text" in w or "relative address" in w for w in result.warnings)


def test_intro_placeholder_typo_is_an_error_naming_the_field(site, site_dir):
    articles = standard_articles()
    issue = make_issue(site_dir, articles, intro="Hi {firstname},\n\nWelcome.")
    with pytest.raises(RenderError) as caught:
        render_issue(site, issue, articles)
    assert "{firstname}" in str(caught.value) and "intro" in str(caught.value)
    assert "{first_name}" in str(caught.value)


def test_web_version_has_no_recipient_data(rendered, site):
    web = rendered.web_html
    assert "__NL_" not in web
    tree = doc(web)
    assert "Hi there," in tree.text_content()
    hrefs = [a.get("href") for a in tree.iter("a")]
    assert f"{site.public_url}/subscribe" in hrefs
    assert not any("unsubscribe" in (a.text_content() or "").lower() for a in tree.iter("a"))


def test_first_name_fallback_comes_from_newsletter_toml(site_dir):
    config = site_dir / "newsletter.toml"
    config.write_text(config.read_text() + '\n[personalization]\nfirst_name_fallback = "friend"\n')
    site = Site.load(site_dir)
    articles = standard_articles()
    result = render_issue(site, make_issue(site_dir, articles), articles)
    assert "Hi friend," in doc(result.web_html).text_content()
    assert result.first_name_fallback == "friend"


def test_a_site_template_overrides_the_built_in_one(site, site_dir):
    (site_dir / "templates").mkdir()
    shutil.copy(FIXTURES / "footer_with_opening_hours.mjml.j2", site_dir / "templates" / "footer.mjml.j2")
    articles = standard_articles()
    result = render_issue(site, make_issue(site_dir, articles), articles)
    assert "Open Monday to Saturday, 9am to 6pm." in doc(result.html).text_content()
    assert "Winter skin: keeping moisture in" in doc(result.html).text_content()  # the rest is built-in


def _override(site_dir: Path, fixture: str, name: str) -> Path:
    (site_dir / "templates").mkdir(exist_ok=True)
    target = site_dir / "templates" / name
    shutil.copy(FIXTURES / fixture, target)
    return target


def test_template_syntax_error_names_the_file_and_line(site, site_dir):
    target = _override(site_dir, "footer_with_jinja_syntax_error.mjml.j2", "footer.mjml.j2")
    articles = standard_articles()
    with pytest.raises(RenderError) as caught:
        render_issue(site, make_issue(site_dir, articles), articles)
    assert caught.value.where == f"{target}:4"
    assert "endfi" in caught.value.message


def test_unknown_name_in_a_template_names_the_file_and_line(site, site_dir):
    target = _override(site_dir, "footer_using_an_unknown_name.mjml.j2", "footer.mjml.j2")
    articles = standard_articles()
    with pytest.raises(RenderError) as caught:
        render_issue(site, make_issue(site_dir, articles), articles)
    assert caught.value.where == f"{target}:5"
    assert "opening_hours" in caught.value.message


def test_mjml_error_is_traced_to_the_template_that_wrote_it(site, site_dir):
    target = _override(site_dir, "cta_with_unclosed_mj_button.mjml.j2", "cta.mjml.j2")
    articles = standard_articles()
    with pytest.raises(RenderError) as caught:
        render_issue(site, make_issue(site_dir, articles), articles)
    assert caught.value.where.startswith(str(target))
    assert "</mj-column> does not close an open tag (expected </mj-button>)" in caught.value.message


class _CountingHandler(http.server.BaseHTTPRequestHandler):
    requests: list[str] = []

    def do_GET(self):  # noqa: N802 (http.server's naming)
        type(self).requests.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "text/css")
        self.end_headers()
        self.wfile.write(b"p { color: red; }")

    def log_message(self, *args):
        pass


def test_building_fetches_no_remote_stylesheet_or_font(site, site_dir):
    server = http.server.HTTPServer(("127.0.0.1", 0), _CountingHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}"
        styles = (Path(__file__).parent.parent / "templates" / "styles.mjml.j2").read_text()
        (site_dir / "templates").mkdir()
        (site_dir / "templates" / "styles.mjml.j2").write_text(
            styles
            + f'<mj-font name="Lato" href="{url}/font.css" />\n'
            + f'<mj-raw><link rel="stylesheet" href="{url}/remote.css" /></mj-raw>\n'
        )
        articles = standard_articles()
        result = render_issue(site, make_issue(site_dir, articles), articles)
    finally:
        server.shutdown()
        server.server_close()
    assert _CountingHandler.requests == []
    assert f"{url}/remote.css" in result.html  # left for the mail client, not fetched while building
    assert "fonts.googleapis.com" not in result.html


def test_no_css_parser_noise_on_stderr(site, site_dir, capfd):
    articles = standard_articles()
    render_issue(site, make_issue(site_dir, articles), articles)
    captured = capfd.readouterr()
    assert captured.err == "" and captured.out == ""


def test_plain_text_reads_like_a_letter(rendered):
    text = rendered.text
    assert "<" not in re.sub(r"<https?://|<mailto:", "", text), "no tags in the text part"
    assert "Winter skin: keeping moisture in\n================================" in text
    assert "What helps\n----------" in text
    assert "- A gentle, fragrance-free cleanser" in text
    assert f"Read more: {BLOG}/laser-sessions/" in text
    assert f"Read this on our website: {BLOG}/winter-skin/" in text
    assert "Book a consultation\nhttps://www.larkfield-clinic.example.com/book" in text
    assert f"View this e-mail in your browser: {VIEW_URL}" in text
    long_lines = [line for line in text.splitlines() if len(line) > 76 and " " in line.strip() and "://" not in line]
    assert long_lines == []


def test_excerpt_without_url_warns_and_has_no_read_more(site, site_dir):
    article = Article(title="Clinic closed on 25 December", body_html="<p>We reopen on the 27th.</p>")
    entries = [(IssueArticle("articles/closed.txt", "excerpt"), article)]
    result = render_issue(site, make_issue(site_dir, entries), entries)
    assert not [a for a in doc(result.html).iter("a") if "Read more" in a.text_content()]
    assert any("no web address" in w and "Read more" in w for w in result.warnings)


def test_subject_may_greet_by_first_name(site, site_dir):
    articles = standard_articles()
    result = render_issue(site, make_issue(site_dir, articles, subject="{first_name}, your November notes"), articles)
    assert result.subject == f"{FIRST_NAME}, your November notes"
    assert "<title>there, your November notes</title>" in result.web_html


def test_adding_changing_and_removing_an_override_takes_effect_on_the_next_render(site, site_dir):
    articles = standard_articles()
    issue = make_issue(site_dir, articles)

    def footer_text() -> str:
        return " ".join(doc(render_issue(site, issue, articles).html).text_content().split())

    assert "Open Monday to Saturday" not in footer_text()
    override = _override(site_dir, "footer_with_opening_hours.mjml.j2", "footer.mjml.j2")
    assert "Open Monday to Saturday, 9am to 6pm." in footer_text()
    override.write_text(override.read_text().replace("9am to 6pm", "8am to 7pm"))
    os.utime(override, ns=(override.stat().st_mtime_ns + 10**9,) * 2)  # as an editor's save a second later
    assert "Open Monday to Saturday, 8am to 7pm." in footer_text()
    override.unlink()
    text = footer_text()
    assert "Open Monday to Saturday" not in text and site.config.footer_why in text
