"""The staff preview in a real browser: Debian's headless Chromium driven by Playwright.

These are the checks a staff member makes by eye: the phone view fits a
375 px screen and shows every article, the desktop view is desktop-wide, the
plain text and headers are there, a save shows up by itself, and a mistake
shows as a message that goes away once fixed.
"""

from __future__ import annotations

import json
import re
import shutil
import time
import urllib.request
from pathlib import Path

import pytest

from newsletters.config import Site
from newsletters.issues import load_issue
from newsletters.preview import DESKTOP_WIDTH, PHONE_WIDTH, serve_preview
from tests.system_parts import needs_chromium

ISSUE = "issues/2026-11.toml"
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "preview"
WAIT_MS = 20_000  # the watcher polls, then builds: a few seconds on a busy machine

pytestmark = needs_chromium

# Every visible element whose box reaches past the frame's right edge, and how many tables/images were looked at.
OVERFLOW_JS = """() => {
  const root = document.documentElement;
  const limit = window.innerWidth + 0.5;
  const wide = [];
  for (const el of document.body.querySelectorAll('*')) {
    const box = el.getBoundingClientRect();
    const style = getComputedStyle(el);
    if (box.width === 0 || box.height === 0 || style.visibility === 'hidden' || style.display === 'none') continue;
    if (box.right > limit) wide.push(`${el.tagName.toLowerCase()}.${el.className} right=${Math.round(box.right)}`);
  }
  return {
    innerWidth: window.innerWidth,
    scrollWidth: root.scrollWidth,
    clientWidth: root.clientWidth,
    bodyScrollWidth: document.body.scrollWidth,
    tables: document.querySelectorAll('table').length,
    images: document.querySelectorAll('img').length,
    wide: wide,
  };
}"""


def normalized(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().casefold()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def preview(site_dir):
    server = serve_preview(site_dir, ISSUE, port=0, poll_interval=0.1)
    yield server
    server.shutdown()


def open_preview(page, server):
    page.goto(server.url)
    page.wait_for_selector("body[data-ready=yes]", timeout=WAIT_MS)


def frame(page, selector: str):
    return page.query_selector(selector).content_frame()


def article_titles(site_dir: Path) -> list[str]:
    from newsletters.build import build_issue

    result = build_issue(Site.load(site_dir), site_dir / ISSUE, out_dir=site_dir.parent / "reference-build")
    return [article.title for _, article in result.articles]


def test_phone_frame_fits_375_px_and_shows_every_article_title(page, preview, site_dir):
    titles = article_titles(site_dir)
    assert len(titles) >= 4, titles
    open_preview(page, preview)

    phone = frame(page, "#phone-frame")
    metrics = phone.evaluate(OVERFLOW_JS)
    assert metrics["innerWidth"] == PHONE_WIDTH == 375
    assert metrics["scrollWidth"] <= metrics["clientWidth"], metrics
    assert metrics["bodyScrollWidth"] <= metrics["clientWidth"], metrics
    assert metrics["tables"] > 0 and metrics["images"] > 0, "nothing wide was looked at"
    assert metrics["wide"] == [], f"elements wider than the phone screen: {metrics['wide']}"

    visible = normalized(phone.evaluate("document.body.innerText"))
    missing = [title for title in titles if normalized(title) not in visible]
    assert missing == [], f"article titles not visible in the phone frame: {missing}"


def test_desktop_frame_is_desktop_wide_and_fits(page, preview):
    open_preview(page, preview)
    desktop = frame(page, "#desktop-frame")
    metrics = desktop.evaluate(OVERFLOW_JS)
    assert metrics["innerWidth"] == DESKTOP_WIDTH >= 600
    assert metrics["wide"] == [], metrics["wide"]
    # The frames sit side by side, as the issue asks.
    desktop_box = page.query_selector("#desktop-frame").bounding_box()
    phone_box = page.query_selector("#phone-frame").bounding_box()
    assert phone_box["x"] >= desktop_box["x"] + desktop_box["width"]
    assert abs(phone_box["y"] - desktop_box["y"]) < 5


def test_plain_text_and_headers_panels_show_subject_and_sender(page, preview, site_dir):
    issue = load_issue(site_dir / ISSUE)
    sender = Site.load(site_dir).config.sender_address
    open_preview(page, preview)
    for panel in ("#text-panel", "#headers-panel"):
        text = page.inner_text(panel)
        assert issue.subject in text, panel
        assert sender in text, panel
        assert re.search(r"From:?\s", text), panel
    body = page.inner_text("#text-panel .text-body")
    assert "__NL_" not in body and len(body.split()) > 50, "the text panel should hold the whole plain-text part"


def test_saving_a_new_subject_reloads_the_open_page(page, preview, site_dir):
    open_preview(page, preview)
    first_version = page.get_attribute("body", "data-version")
    issue_file = site_dir / ISSUE
    new_subject = f"Edited while previewing {time.time_ns()}"
    source = issue_file.read_text(encoding="utf-8")
    edited, count = re.subn(r'(?m)^subject\s*=.*$', f'subject = "{new_subject}"', source)
    assert count == 1
    issue_file.write_text(edited, encoding="utf-8")

    page.wait_for_function(
        "s => (document.querySelector('#headers-panel') || {innerText: ''}).innerText.includes(s)",
        arg=new_subject,
        timeout=WAIT_MS,
    )
    assert page.get_attribute("body", "data-version") != first_version
    assert new_subject in page.inner_text("#text-panel")
    assert new_subject in page.title()


def test_broken_site_config_shows_in_the_page_and_fixing_it_recovers(page, preview, site_dir):
    open_preview(page, preview)
    config = site_dir / "newsletter.toml"
    good = config.read_text(encoding="utf-8")
    config.write_text(good.replace("[sender]", "[sender", 1), encoding="utf-8")

    page.wait_for_selector("#problem", timeout=WAIT_MS)
    problem = page.inner_text("#problem")
    assert "newsletter.toml" in problem and "not valid TOML" in problem, problem
    assert page.inner_text("#problem .excerpt .named").strip().endswith("[sender"), "the broken line is shown"
    assert page.query_selector("#phone-frame") is None, "a stale email must not look current"
    with urllib.request.urlopen(preview.url + "version", timeout=10) as response:
        assert response.status == 200 and json.load(response)["ok"] is False

    config.write_text(good, encoding="utf-8")
    page.wait_for_selector("#phone-frame", timeout=WAIT_MS)
    page.wait_for_selector("body[data-ready=yes]", timeout=WAIT_MS)
    assert page.query_selector("#problem") is None
    assert load_issue(site_dir / ISSUE).subject in page.inner_text("#headers-panel")


def test_page_says_so_when_the_server_stops(page, preview):
    open_preview(page, preview)
    assert page.is_hidden("#server-gone")
    preview.shutdown()
    page.wait_for_selector("#server-gone", state="visible", timeout=WAIT_MS)
    assert "not answering" in page.inner_text("#server-gone")


def test_a_finding_is_listed_and_pointed_at_in_the_email(page, site_dir):
    """An article naming a prescription-only medicine: the check's finding shows up beside the email."""
    article = FIXTURES / "promotion_naming_a_prescription_medicine.md"
    shutil.copy(article, site_dir / "articles" / article.name)
    issue_file = site_dir / ISSUE
    with issue_file.open("a", encoding="utf-8") as handle:
        handle.write(f'\n[[articles]]\nsource = "articles/{article.name}"\nmode = "full"\n')

    server = serve_preview(site_dir, ISSUE, port=0)
    try:
        open_preview(page, server)
        finding = page.locator("#findings li.finding.sev-error", has_text="Botox").first
        assert finding.is_visible(), page.inner_text("#findings")
        assert "ERROR" in finding.inner_text().upper()

        desktop = frame(page, "#desktop-frame")
        place = desktop.query_selector("mark.nl-finding")
        assert place is not None and place.inner_text() == "Botox"
        outlined = desktop.evaluate(
            "() => getComputedStyle(document.querySelector('[data-nl-finding]')).outlineStyle"
        )
        assert outlined == "solid"

        before = page.evaluate("window.scrollY")
        finding.locator("button.show-in-email").click()
        page.wait_for_function("y => window.scrollY > y + 100", arg=before, timeout=WAIT_MS)
        assert desktop.query_selector(".nl-finding-active") is not None
    finally:
        server.shutdown()
