"""The routes of the staff pages; every one but the sign-in form needs a signed-in staff member.

An anonymous request for anything under ``/staff/`` is sent to the sign-in
form, so nothing of a draft (not even its subject) is reachable without an
account. Forms work without JavaScript; each answers with a redirect (303) to
the page it came from, which says what happened.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from flask import Blueprint, abort, make_response, redirect, render_template, request, send_from_directory

from recipients import Store
from recipients.tokens import secret_key

from ...delivery import send_test
from ...errors import NewsletterError
from ...preview.server import ASSETS_DIR, EMAIL_CSP, PREVIEW_PAGE_CSP, page_context, page_environment
from ...review import ReviewError, ReviewLog, StaffAccounts
from ...review.approvals import MAX_COMMENT, TEST_SENDS_PER_WINDOW
from . import guard
from ..pages import message_page
from .catalogue import IssueCatalogue

TEMPLATES = Path(__file__).with_name("templates")
ISSUE_PAGE_CSP = f"{PREVIEW_PAGE_CSP}; form-action 'self'; base-uri 'none'"
OPEN_ENDPOINTS = {"staff.sign_in_page", "staff.sign_in"}
# What the page says after a form, by the `done` query value: fixed texts, never echoed input.
NOTES = {
    "approved": "You approved this version of the issue.",
    "changes_requested": "You asked for changes; the issue cannot be sent until they are made and approved.",
    "commented": "Your comment is saved.",
    "test_sent": "A [TEST] copy is on its way to your address.",
}
ACTIONS = {"approve": "approved", "request_changes": "changes_requested", "comment": "commented"}


@dataclass(frozen=True)
class Staff:
    """What the staff routes share: the site, its accounts and review log, and the issues they can see."""

    site: object
    accounts: StaffAccounts
    log: ReviewLog
    catalogue: IssueCatalogue
    key: str
    secure: bool  # cookies only over HTTPS when PUBLIC_URL is https

    def issue_path(self, name: str) -> Path:
        path = self.catalogue.path(name)
        if path is None:
            abort(404)
        return path


def staff_blueprint(site, store: Store) -> Blueprint:
    bp = Blueprint("staff", __name__, url_prefix="/staff", template_folder=str(TEMPLATES))
    log = ReviewLog(store.engine)
    staff = Staff(site, StaffAccounts(store.engine), log, IssueCatalogue(site, log), secret_key(site),
                  site.public_url.startswith("https://"))
    _add_sign_in(bp, staff)
    _add_issue_pages(bp, staff)
    _add_issue_actions(bp, staff)
    return bp


def _add_sign_in(bp: Blueprint, staff: Staff) -> None:
    """Sign-in, sign-out, and the gate in front of every other staff route."""
    accounts, key = staff.accounts, staff.key

    def sign_in_form(error: str = "", status: int = 200, email: str = ""):
        return render_template("staff/sign_in.html", title="Staff sign-in", error=error, email=email,
                               csrf_token=guard.sign_in_form_token(key)), status

    @bp.before_request
    def _require_sign_in():
        if request.endpoint in OPEN_ENDPOINTS:
            return None
        if guard.current(accounts) is None:
            if request.method in ("GET", "HEAD"):
                return redirect("/staff/sign-in", 303)
            abort(403, "Please sign in first.")
        return None

    @bp.get("/sign-in")
    def sign_in_page():
        if guard.current(accounts) is not None:
            return redirect("/staff/", 303)
        return sign_in_form()

    @bp.post("/sign-in")
    def sign_in():
        guard.require_sign_in_token(key)
        email = request.form.get("email", "").strip()[:320]
        password = request.form.get("password", "")
        address = request.remote_addr or "unknown"
        if accounts.throttled(email, address):
            return sign_in_form("Too many failed attempts. Wait a minute, then try again.", 429, email)
        token = accounts.sign_in(email, password, address)
        if token is None:
            return sign_in_form("The e-mail address or the password is not right.", 401, email)
        response = redirect("/staff/", 303)
        guard.set_session_cookie(response, token, staff.secure)
        return response

    @bp.post("/sign-out")
    def sign_out():
        guard.require_csrf(guard.current(accounts))
        accounts.sign_out(request.cookies.get(guard.COOKIE))
        response = redirect("/staff/sign-in", 303)
        guard.clear_session_cookie(response, staff.secure)
        return response


def _add_issue_pages(bp: Blueprint, staff: Staff) -> None:
    """The list of issues, an issue's review page (the preview's page), and the parts it frames."""
    site, accounts, log, catalogue = staff.site, staff.accounts, staff.log, staff.catalogue
    issue_page = page_environment(TEMPLATES / "staff").get_template("issue_page.html")

    @bp.get("/")
    def issues():
        me = guard.current(accounts)
        return render_template("staff/issues.html", title="Issues", me=me.member, csrf_token=me.csrf_token,
                               rows=catalogue.rows(), review_required=site.config.review_required)

    @bp.get("/issues/<name>/")
    def issue(name: str):
        me = guard.current(accounts)
        snapshot = catalogue.snapshot(staff.issue_path(name))
        html = issue_page.render(
            **page_context(snapshot, site.root, base=f"/staff/issues/{name}/", live=False),
            me=me.member, csrf_token=me.csrf_token, review=catalogue.review(snapshot),
            events=log.events(snapshot.issue_slug) if snapshot.ok else [],
            note=NOTES.get(request.args.get("done", ""), ""), max_comment=MAX_COMMENT,
            test_sends_left=log.test_sends_left(me.member), test_sends_per_hour=TEST_SENDS_PER_WINDOW,
        )
        response = make_response(html)
        response.headers["Content-Security-Policy"] = ISSUE_PAGE_CSP
        return response

    @bp.get("/issues/<name>/<any('email.html', 'web.html', 'sample.eml'):part>")
    def issue_part(name: str, part: str):
        snapshot = catalogue.snapshot(staff.issue_path(name))
        if not snapshot.ok:
            abort(404)
        if part == "sample.eml":
            response = make_response(snapshot.eml)
            response.headers["Content-Type"] = "message/rfc822"
            response.headers["Content-Disposition"] = 'attachment; filename="sample.eml"'
            return response
        response = make_response(snapshot.html if part == "email.html" else snapshot.web_html)
        response.headers["Content-Type"] = "text/html; charset=utf-8"
        response.headers["Content-Security-Policy"] = EMAIL_CSP
        response.headers["X-Frame-Options"] = "SAMEORIGIN"  # shown in the issue page's frames
        return response

    @bp.get("/issues/<name>/assets/<any('page.css', 'page.js'):asset>")
    def issue_asset(name: str, asset: str):
        return send_from_directory(ASSETS_DIR, asset, max_age=0)


def _add_issue_actions(bp: Blueprint, staff: Staff) -> None:
    """The forms on an issue's page: approve, ask for changes, comment, and a test copy to oneself."""
    site, accounts, log, catalogue = staff.site, staff.accounts, staff.log, staff.catalogue

    def back_to(name: str) -> list[tuple[str, str]]:
        return [("Back to the issue", f"/staff/issues/{name}/")]

    @bp.post("/issues/<name>/review")
    def review(name: str):
        me = guard.current(accounts)
        guard.require_csrf(me)
        kind = ACTIONS.get(request.form.get("action", ""))
        if kind is None:
            abort(400, "Unknown action.")
        snapshot = catalogue.snapshot(staff.issue_path(name))
        if not snapshot.ok:
            return message_page("The issue does not build", ["Nothing was recorded: fix the issue first."], 409)
        if request.form.get("digest", "") != snapshot.digest:
            return message_page("The issue changed while you were looking", [
                "An article, a template, the brand or the issue file changed since you opened the page, so what "
                "you saw is not what would be sent. Nothing was recorded.", "Open the issue again and review it."],
                409, [("Open the issue again", f"/staff/issues/{name}/")])
        try:
            log.record(snapshot.issue_slug, snapshot.digest, me.member, kind, request.form.get("comment", ""))
        except ReviewError as exc:
            return message_page("Not recorded", [str(exc)], 403, back_to(name))
        return redirect(f"/staff/issues/{name}/?done={kind}", 303)

    @bp.post("/issues/<name>/test-send")
    def test_send(name: str):
        me = guard.current(accounts)
        guard.require_csrf(me)
        path = staff.issue_path(name)
        if log.test_sends_left(me.member) <= 0:
            return message_page("Too many test sends", [
                f"You can send {TEST_SENDS_PER_WINDOW} test copies an hour. Please try again later."], 429,
                back_to(name))
        snapshot = catalogue.snapshot(path)
        log.record(snapshot.issue_slug or name, snapshot.digest, me.member, "test_sent")
        try:
            _build, results, _transport = send_test(site, path, [me.member.email])
        except NewsletterError as exc:
            return message_page("The test copy was not sent", [str(exc)], 502, back_to(name))
        if not all(r.ok for r in results):
            return message_page("The test copy was not sent", [r.reply for r in results], 502, back_to(name))
        return redirect(f"/staff/issues/{name}/?done=test_sent", 303)
