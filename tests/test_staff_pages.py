"""The staff pages over real HTTP with a plain client (no JavaScript): sign in, review, approve, and the guards.

The server is ``newsletter serve``'s own (``make_web_server``) on 127.0.0.1; the
client is the standard library's, keeping cookies and following redirects the
way a browser without scripts does.
"""

from __future__ import annotations

import http.cookiejar
import mailbox
import urllib.error
import urllib.request
from email import policy
from email.parser import BytesParser
from pathlib import Path
from urllib.parse import urlencode

import pytest

from newsletters.build import build_issue
from newsletters.config import Site
from newsletters.delivery.session import content_digest
from newsletters.review import ReviewError, require_approval, review_status
from tests.send_fixtures import ISSUE, newsletter
from tests.staff_fixtures import (
    EDITOR,
    ISSUE_NAME,
    REVIEWER,
    edit_article,
    hidden_field,
    make_review_site,
    serving,
)

SUBJECT_WORDS = "Winter skin notes"  # the draft's subject: never shown to anyone not signed in
ISSUE_PAGE = f"/staff/issues/{ISSUE_NAME}/"
TEMPLATES = Path(__file__).resolve().parent.parent / "templates"



class Client:
    """A browser without JavaScript: cookies kept, redirects followed, errors returned as pages."""

    def __init__(self, base: str):
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def open(self, path: str, fields: dict | None = None):
        data = urlencode(fields).encode() if fields is not None else None
        try:
            response = self.opener.open(self.base + path, data, timeout=60)
        except urllib.error.HTTPError as error:
            response = error
        body = response.read().decode("utf-8")
        return response.status, response.url, body, response.headers

    def sign_in(self, who, password: str | None = None):
        _status, _url, page, _headers = self.open("/staff/sign-in")
        return self.open("/staff/sign-in", {"csrf_token": hidden_field(page, "csrf_token"), "email": who[0],
                                            "password": who[3] if password is None else password})

    def review(self, action: str, comment: str = "", page: str | None = None):
        page = page or self.open(ISSUE_PAGE)[2]
        return self.open(ISSUE_PAGE + "review", {"csrf_token": hidden_field(page, "csrf_token"),
                                                 "digest": hidden_field(page, "digest"), "action": action,
                                                 "comment": comment})


@pytest.fixture
def site(site_dir):
    return make_review_site(site_dir)


def status_of(site_dir: Path):
    site = Site.load(site_dir)
    build = build_issue(site, ISSUE)
    return review_status(site, build, content_digest(build.rendered))


def test_a_reviewer_signs_in_reviews_and_approves_and_send_goes_ahead(site):
    with serving(site) as base:
        client = Client(base)
        status, url, page, _ = client.sign_in(REVIEWER)
        assert status == 200 and url.endswith("/staff/") and SUBJECT_WORDS in page and "draft" in page
        status, _, page, headers = client.open(ISSUE_PAGE)
        assert status == 200
        assert 'id="phone-frame"' in page and 'width="375"' in page and 'id="findings"' in page
        assert "Pre-send checks" in page and "Plain-text version" in page
        page_policy = headers["Content-Security-Policy"]  # its own script only, no framing, forms to itself
        assert "default-src 'self'" in page_policy and "frame-ancestors 'none'" in page_policy
        assert "form-action 'self'" in page_policy and headers["Cache-Control"] == "no-store"
        status, _, email_html, headers = client.open(ISSUE_PAGE + "email.html")
        assert status == 200 and "Hello Sam" in email_html and "script-src 'none'" in headers["Content-Security-Policy"]
        status, url, page, _ = client.review("approve", "Clinically accurate; claims are fine.")
        assert status == 200 and url.endswith("?done=approved")
        assert "You approved this version" in page and "Approved by Dr Ada Okafor" in page
        _, _, listing, _ = client.open("/staff/")
        assert "approved" in listing and "Approved by Dr Ada Okafor" in listing
    sent = newsletter(site, "send", ISSUE, "--yes")
    assert sent.returncode == 0, sent.stderr
    assert "Approved:   by Dr Ada Okafor" in sent.stdout
    with serving(site) as base:
        client = Client(base)
        client.sign_in(REVIEWER)
        listing = client.open("/staff/")[2]
        assert "sent" in listing and "2 sent" in listing


def test_an_article_edit_voids_the_approval_and_the_page_says_so(site):
    with serving(site) as base:
        client = Client(base)
        client.sign_in(REVIEWER)
        client.review("approve")
        edit_article(site)
        page = client.open(ISSUE_PAGE)[2]
        assert "not approved yet" in page
        assert "was for an earlier version and no longer counts" in page
    refused = newsletter(site, "send", ISSUE, "--yes")
    assert refused.returncode == 1 and "was for an earlier version" in refused.stderr


@pytest.mark.parametrize("change", ["template", "brand", "issue file"])
def test_a_template_brand_or_issue_file_edit_voids_the_approval_too(site, change):
    with serving(site) as base:
        client = Client(base)
        client.sign_in(REVIEWER)
        client.review("approve")
    assert status_of(site).approved
    if change == "template":
        (site / "templates").mkdir(exist_ok=True)
        footer = (TEMPLATES / "footer.mjml.j2").read_text(encoding="utf-8")
        (site / "templates" / "footer.mjml.j2").write_text(
            footer.replace("</mj-text>", "<p>Registered with the Care Quality Commission.</p></mj-text>", 1))
    elif change == "brand":
        toml = site / "newsletter.toml"
        text = toml.read_text(encoding="utf-8")
        assert 'primary_color = "#24505c"' in text
        toml.write_text(text.replace('primary_color = "#24505c"', 'primary_color = "#0b6e4f"'), encoding="utf-8")
    else:
        issue = site / ISSUE
        issue.write_text(issue.read_text(encoding="utf-8").replace("a short note", "a short, late note"))
    status = status_of(site)
    assert not status.approved and [e.name for e in status.voided] == [REVIEWER[1]]
    site_obj = Site.load(site)
    build = build_issue(site_obj, ISSUE)
    with pytest.raises(ReviewError, match="earlier version"):
        require_approval(site_obj, build, content_digest(build.rendered))


def test_an_editor_sees_and_comments_but_cannot_approve(site):
    with serving(site) as base:
        client = Client(base)
        client.sign_in(EDITOR)
        page = client.open(ISSUE_PAGE)[2]
        assert 'value="approve"' not in page and "You are an editor" in page
        status, _, answer, _ = client.review("approve", page=page)
        assert status == 403 and "only reviewers approve" in answer
        status, url, page, _ = client.review("comment", "Typo in the second paragraph?")
        assert status == 200 and "Typo in the second paragraph?" in page
    assert not status_of(site).approved


def test_anonymous_visitors_get_the_sign_in_page_and_nothing_of_the_draft(site):
    with serving(site) as base:
        client = Client(base)
        for path in ("/staff/", ISSUE_PAGE, ISSUE_PAGE + "email.html", ISSUE_PAGE + "web.html",
                     ISSUE_PAGE + "sample.eml", "/staff/issues/does-not-exist/"):
            status, url, page, _ = client.open(path)
            assert status == 200 and url.endswith("/staff/sign-in"), path
            assert "Staff sign-in" in page and SUBJECT_WORDS not in page and "sunscreen" not in page.lower()
        status, _, page, _ = client.open(ISSUE_PAGE + "review", {"action": "approve", "digest": "x"})
        assert status == 403 and SUBJECT_WORDS not in page
    assert not status_of(site).approved


def test_forms_without_their_csrf_token_are_refused(site):
    with serving(site) as base:
        client = Client(base)
        status, _, page, _ = client.open("/staff/sign-in", {"email": REVIEWER[0], "password": REVIEWER[3]})
        assert status == 400 and "Signed in as" not in page
        client.sign_in(REVIEWER)
        page = client.open(ISSUE_PAGE)[2]
        status, _, answer, _ = client.open(ISSUE_PAGE + "review", {"digest": hidden_field(page, "digest"),
                                                                   "action": "approve"})
        assert status == 400 and "security token" in answer
        status, _, answer, _ = client.open(ISSUE_PAGE + "review", {"digest": hidden_field(page, "digest"),
                                                                   "action": "approve", "csrf_token": "forged"})
        assert status == 400
        status, _, _, _ = client.open("/staff/sign-out", {})
        assert status == 400
    assert not status_of(site).approved


def test_an_approval_of_a_page_opened_before_an_edit_is_refused(site):
    with serving(site) as base:
        client = Client(base)
        client.sign_in(REVIEWER)
        page = client.open(ISSUE_PAGE)[2]
        edit_article(site)
        status, _, answer, _ = client.review("approve", page=page)
        assert status == 409 and "changed while you were looking" in answer
    assert not status_of(site).approved


def test_the_sixth_wrong_password_in_a_minute_is_throttled_even_when_right(site):
    with serving(site) as base:
        client = Client(base)
        for _ in range(5):
            status, _, page, _ = client.sign_in(REVIEWER, password="wrong password, again")
            assert status == 401 and "not right" in page
        status, _, page, _ = client.sign_in(REVIEWER, password="wrong password, again")
        assert status == 429 and "Too many failed attempts" in page
        status, _, page, _ = client.sign_in(REVIEWER)  # the right one is not even checked now
        assert status == 429 and "Signed in as" not in page
        status, url, page, _ = client.sign_in(EDITOR)  # another account from elsewhere is not held up ...
        assert status == 200 and "Signed in as Sam Editor" in page


def test_many_accounts_tried_from_one_address_are_throttled_per_address(site):
    with serving(site) as base:
        client = Client(base)
        for n in range(20):
            client.sign_in((f"guess{n}@example.org", "", "", ""), password="nope nope nope")
        status, _, page, _ = client.sign_in(EDITOR)
        assert status == 429 and "Too many failed attempts" in page


def test_session_cookie_flags_and_sign_out(site_dir):
    make_review_site(site_dir, public_url="https://news.larkfield-clinic.example.com")
    with serving(site_dir) as base:
        client = Client(base)
        page = client.open("/staff/sign-in")[2]
        request = urllib.request.Request(base + "/staff/sign-in", urlencode(
            {"csrf_token": hidden_field(page, "csrf_token"), "email": REVIEWER[0], "password": REVIEWER[3]}).encode())
        opener = urllib.request.build_opener(NoRedirect)
        try:
            opener.open(request, timeout=60)
        except urllib.error.HTTPError as answer:
            cookie = answer.headers["Set-Cookie"]
            assert answer.status == 303
        flags = [part.strip().lower() for part in cookie.split(";")]
        assert {"httponly", "secure", "samesite=lax", "path=/staff/"} <= set(flags)
        token = cookie.split(";")[0]
        signed_in = urllib.request.Request(base + "/staff/", headers={"Cookie": token})
        assert SUBJECT_WORDS in urllib.request.urlopen(signed_in, timeout=60).read().decode()
        csrf = hidden_field(urllib.request.urlopen(signed_in, timeout=60).read().decode(), "csrf_token")
        out = urllib.request.Request(base + "/staff/sign-out", urlencode({"csrf_token": csrf}).encode(),
                                     headers={"Cookie": token})
        urllib.request.urlopen(out, timeout=60)
        after = urllib.request.urlopen(urllib.request.Request(base + "/staff/", headers={"Cookie": token}), timeout=60)
        assert after.url.endswith("/staff/sign-in") and SUBJECT_WORDS not in after.read().decode()


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def test_test_send_goes_to_the_signed_in_person_marked_test_and_is_rate_limited(site):
    with serving(site) as base:
        client = Client(base)
        client.sign_in(EDITOR)
        for n in range(5):
            page = client.open(ISSUE_PAGE)[2]
            status, url, page, _ = client.open(ISSUE_PAGE + "test-send", {"csrf_token": hidden_field(page, "csrf_token")})
            assert status == 200 and url.endswith("?done=test_sent"), page
        status, _, page, _ = client.open(ISSUE_PAGE + "test-send", {"csrf_token": hidden_field(page, "csrf_token")})
        assert status == 429 and "5 test copies an hour" in page
    messages = [BytesParser(policy=policy.default).parsebytes(m.as_bytes()) for m in mailbox.Maildir(site / "outbox")]
    assert len(messages) == 5
    assert all(m["To"].addresses[0].addr_spec == EDITOR[0] for m in messages)
    assert all(m["Subject"].startswith("[TEST] Winter skin notes") for m in messages)
