"""The staff review in a real browser: Debian's headless Chromium driven by Playwright, over real HTTP.

What a doctor does before an issue may go out: sign in, open the issue, look at
it at phone width next to the pre-send checks, approve. Then ``send`` goes
ahead; an article edited afterwards needs a new approval; an editor has no
Approve button; a visitor without an account sees only the sign-in form.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from newsletters.preview import PHONE_WIDTH
from tests.send_fixtures import ISSUE, newsletter
from tests.staff_fixtures import EDITOR, ISSUE_NAME, REVIEWER, edit_article, make_review_site, serving
from tests.test_preview_browser import OVERFLOW_JS, WAIT_MS, normalized
from tests.system_parts import needs_chromium

SUBJECT_WORDS = "Winter skin notes"
ISSUE_PAGE = f"/staff/issues/{ISSUE_NAME}/"

pytestmark = needs_chromium



@pytest.fixture
def new_page(browser):
    contexts = []

    def make():
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def site(site_dir) -> Path:
    return make_review_site(site_dir)


def sign_in(page, base: str, who, password: str | None = None) -> None:
    page.goto(base + "/staff/sign-in")
    page.fill("#email", who[0])
    page.fill("#password", who[3] if password is None else password)
    page.click("button[type=submit]")


def open_issue(page, base: str) -> None:
    page.goto(base + ISSUE_PAGE)
    page.wait_for_selector("body[data-ready=yes]", timeout=WAIT_MS)


def test_a_reviewer_approves_in_the_browser_send_goes_ahead_and_an_edit_needs_a_new_approval(new_page, site):
    with serving(site) as base:
        page = new_page()
        sign_in(page, base, REVIEWER)
        assert page.url.endswith("/staff/") and SUBJECT_WORDS in page.inner_text("table.issues")
        page.click(f"a[href='{ISSUE_PAGE}']")
        page.wait_for_selector("body[data-ready=yes]", timeout=WAIT_MS)

        phone = page.query_selector("#phone-frame").content_frame()
        metrics = phone.evaluate(OVERFLOW_JS)
        assert metrics["innerWidth"] == PHONE_WIDTH == 375 and metrics["wide"] == [], metrics
        assert "winter" in normalized(phone.evaluate("document.body.innerText"))
        checks = page.inner_text("#findings")
        assert "Pre-send checks" in checks and "error" in checks
        assert page.is_visible("#findings") and page.is_visible("#phone-frame")

        page.fill("#comment", "Clinically accurate.")
        page.click("button[value=approve]")
        page.wait_for_selector(".review-note")
        assert "You approved this version" in page.inner_text(".review-note")
        assert page.inner_text(".review-state") == "approved"

        sent = newsletter(site, "send", ISSUE, "--yes")
        assert sent.returncode == 0, sent.stderr
        assert "Approved:   by Dr Ada Okafor" in sent.stdout

        edit_article(site)
        open_issue(page, base)
        assert page.inner_text(".review-state") == "not approved yet"
        assert "no longer counts" in page.inner_text(".voided")
        refused = newsletter(site, "send", ISSUE, "--yes", "--new-run")
        assert refused.returncode == 1 and "was for an earlier version" in refused.stderr


def test_an_editor_has_no_approve_button_and_a_forced_approve_is_refused(new_page, site):
    with serving(site) as base:
        page = new_page()
        sign_in(page, base, EDITOR)
        open_issue(page, base)
        assert page.query_selector("button[value=approve]") is None
        assert "You are an editor" in page.inner_text("#review")
        # Even a hand-made Approve button (developer tools) gets nowhere.
        page.evaluate("""() => { const b = document.createElement('button'); b.name = 'action'; b.value = 'approve';
                                 b.id = 'forged'; document.querySelector('form.review-form').appendChild(b); }""")
        page.click("#forged")
        assert "only reviewers approve" in page.inner_text("main")
    assert newsletter(site, "review", "status", ISSUE).returncode == 1


def test_an_anonymous_visitor_gets_the_sign_in_page_and_nothing_of_the_draft(new_page, site):
    with serving(site) as base:
        page = new_page()
        for path in ("/staff/", ISSUE_PAGE, ISSUE_PAGE + "email.html"):
            page.goto(base + path)
            assert page.url.endswith("/staff/sign-in")
            assert "Staff sign-in" in page.inner_text("h1")
            assert SUBJECT_WORDS not in page.content() and "sunscreen" not in page.content().lower()


def test_a_form_posted_without_its_csrf_token_is_refused(new_page, site):
    with serving(site) as base:
        page = new_page()
        sign_in(page, base, REVIEWER)
        open_issue(page, base)
        page.evaluate("() => document.querySelector('form.review-form input[name=csrf_token]').remove()")
        page.click("button[value=approve]")
        assert "security token" in page.inner_text("main")
        open_issue(page, base)
        assert page.inner_text(".review-state") == "not approved yet"


def test_the_sixth_wrong_password_in_a_minute_is_throttled(new_page, site):
    with serving(site) as base:
        page = new_page()
        for _ in range(5):
            sign_in(page, base, REVIEWER, password="not the password at all")
            assert "not right" in page.inner_text("#sign-in-error")
        sign_in(page, base, REVIEWER, password="not the password at all")
        assert "Too many failed attempts" in page.inner_text("#sign-in-error")
        sign_in(page, base, REVIEWER)
        assert "Too many failed attempts" in page.inner_text("#sign-in-error")
        assert page.url.endswith("/staff/sign-in")
