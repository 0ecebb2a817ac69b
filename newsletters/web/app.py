"""The public pages: subscribe, confirm, unsubscribe, and the archive of built issues.

``create_app(site)`` is a Flask app factory; ``newsletter serve`` runs it, and
any WSGI server can too. Rules that shape it:

* Nothing here reveals whether an address is on the list: every valid sign-up
  gets the same "check your inbox" page, whatever the address's status.
* ``GET /unsubscribe/<token>`` only shows a button (mail scanners fetch links);
  ``POST`` unsubscribes at once, RFC 8058 one-click or not, with no cookie, no
  login and no redirect, and answers 200 every time it is repeated.
* ``GET /confirm/<token>`` likewise only shows a button and ``POST`` confirms:
  link scanners at companies and mail providers open every link in a message,
  and a GET that confirmed would let anyone sign a stranger up through them.
  HEAD is a GET without a body, so it changes nothing either.
* A forged, tampered or expired token gets a 400 page and changes nothing.
* Pages are plain HTML with labels and the site's language, no JavaScript, and
  send no Referer (tokens are in the URL) and cannot be framed.
* The staff pages (sign-in, review, approval) are a blueprint under ``/staff/``:
  ``newsletters.web.staff``, closed to anyone not signed in.
"""

from __future__ import annotations

import re
from pathlib import Path

from flask import Flask, abort, render_template, request, send_from_directory
from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.middleware.proxy_fix import ProxyFix

from recipients import Store, open_store
from recipients.addresses import InvalidAddress, name_problem, normalize_email
from recipients.tokens import (
    clean_token,
    form_token_ok,
    make_form_token,
    read_confirm_token,
    read_unsubscribe_token,
    secret_key,
)

from ..bounce_intake.settings import WebhookSettings
from ..bounce_intake.web import webhooks_blueprint
from ..bounces.process import BounceProcessor
from ..errors import TokenError, TransportError
from .confirmation import send_confirmation
from .staff import staff_blueprint

AGE_TEXT = "I confirm that I am 18 or over."
HONEYPOT = "website"
SLUG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
HEX_COLOUR = re.compile(r"^#(?:[0-9a-fA-F]{3}){1,2}$")
PAGE_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
MAX_FORM_BYTES = 64 * 1024


def _brand(site) -> dict:
    config = site.config
    defaults = {"primary": "#1f4e5f", "accent": "#b5593c", "background": "#f4f1ec", "text": "#222222"}
    given = {
        "primary": config.primary_color,
        "accent": config.accent_color,
        "background": config.background_color,
        "text": config.text_color,
    }
    # Colours go into a <style> block: only plain hex values are let through.
    return {k: v if HEX_COLOUR.match(v or "") else defaults[k] for k, v in given.items()}


def create_app(site, *, store: Store | None = None) -> Flask:
    """The web app for ``site``; ``store`` defaults to the site's own (``open_store``)."""
    app = Flask(__name__, template_folder=str(Path(__file__).parent / "templates"))
    app.config["MAX_CONTENT_LENGTH"] = MAX_FORM_BYTES
    key = secret_key(site)
    store = store or open_store(site)
    app.extensions["recipients_store"] = store
    proxies = site.int_setting("TRUSTED_PROXIES", 0)
    if proxies:  # behind a reverse proxy, the client's address is in X-Forwarded-For
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies)
    consent_text = site.config.consent_text

    def apply_relay_events(events) -> None:
        """A verified relay post: matched and applied as ``newsletter bounces process`` applies a file."""
        BounceProcessor(site, store).relay_events(events)

    # Every relay's route is there; one without its secret in .env refuses every post (``not_configured``).
    app.register_blueprint(webhooks_blueprint(WebhookSettings.from_site(site), apply_relay_events))
    form_url = f"{site.public_url}/subscribe"

    @app.context_processor
    def _globals():
        return {"site": site.config, "brand": _brand(site)}

    def page(title: str, paragraphs: list[str], status: int = 200, links: list[tuple[str, str]] | None = None):
        return render_template("message.html", title=title, paragraphs=paragraphs, links=links or []), status

    def bad_link(exc: TokenError, purpose: str):
        paragraphs = [exc.message[:1].upper() + exc.message[1:] + ".", "Nothing has been changed."]
        if purpose == "unsubscribe":
            contact = site.config.sender_reply_to or site.config.sender_address
            paragraphs.append(f"To stop the newsletter, reply to any issue or write to {contact} and we will "
                              "unsubscribe you.")
            links = []
        else:
            links = [("Subscribe again", "/subscribe")]
        return page("This link does not work", paragraphs, 400, links)

    def client() -> dict:
        return {"ip": request.remote_addr, "user_agent": (request.user_agent.string or "")[:500] or None}

    @app.after_request
    def _headers(response):
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response.headers.setdefault("X-Frame-Options", "DENY")
        # Every page, the archive's built issues included: they hold article HTML from the blog.
        response.headers.setdefault("Content-Security-Policy", PAGE_CSP)
        if not request.path.startswith("/issues/"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        titles = {404: "Page not found", 405: "Not allowed here", 413: "Too much data"}
        response = app.make_response(page(titles.get(exc.code, exc.name), [exc.description or ""], exc.code or 500))
        if isinstance(exc, MethodNotAllowed) and exc.valid_methods:  # RFC 9110: a 405 says what is allowed
            response.headers["Allow"] = ", ".join(exc.valid_methods)
        return response

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        app.logger.exception("unexpected error")
        return page("Something went wrong", ["Please try again later."], 500)

    @app.get("/")
    def index():
        build = site.build_dir
        issues = sorted(
            (p.name for p in build.iterdir() if SLUG.match(p.name) and (p / "web.html").is_file()),
            reverse=True,
        ) if build.is_dir() else []
        return render_template("index.html", issues=issues)

    def subscribe_form(errors: dict | None = None, values: dict | None = None, status: int = 200):
        return render_template(
            "subscribe.html",
            errors=errors or {},
            values=values or {},
            consent_text=consent_text,
            age_text=AGE_TEXT,
            honeypot=HONEYPOT,
            form_token=make_form_token(key),
        ), status

    @app.get("/subscribe")
    def subscribe_page():
        return subscribe_form()

    @app.post("/subscribe")
    def subscribe():
        form = request.form
        check_inbox = page(
            "Please check your inbox",
            [
                "If the address can be subscribed, we have sent it an e-mail with a link to confirm.",
                "Nothing will be sent to you until you open that link. If it does not arrive in a few minutes, "
                "look in your spam folder.",
            ],
        )
        if form.get(HONEYPOT):  # a bot: behave exactly as for a person, keep nothing
            return check_inbox
        if not form_token_ok(key, form.get("form_token", "")):
            return page("This form has expired", ["Please open the form again and resubmit it."], 400,
                        [("Open the form", "/subscribe")])
        values = {
            "email": form.get("email", "").strip()[:320],
            "first_name": form.get("first_name", "").strip()[:100],
            "consent": form.get("consent") == "yes",
            "adult": form.get("adult") == "yes",
        }
        errors = {}
        try:
            email = normalize_email(values["email"])
        except InvalidAddress as exc:
            errors["email"] = f"Please enter a valid e-mail address ({exc})."
        if name_problem(values["first_name"]):
            errors["first_name"] = "Please enter your first name without line breaks, links or special codes."
        if not values["consent"]:
            errors["consent"] = "Please tick the box to say you would like the newsletter."
        if not values["adult"]:
            errors["adult"] = "Our newsletter is only for people aged 18 or over."
        if errors:
            return subscribe_form(errors, values, 400)

        signup = store.subscribe(
            email,
            values["first_name"],
            source=form_url,
            consent_text=f"{consent_text}\n{AGE_TEXT}",
            **client(),
        )
        if signup.confirmation is not None:  # committed; now, outside any transaction, the mail
            try:
                send_confirmation(site, store, signup.confirmation)
            except TransportError:
                app.logger.exception("cannot send a confirmation e-mail yet")
                return page(
                    "We could not send the e-mail yet",
                    ["Your sign-up is saved, but our mail server did not answer, so the e-mail with the link to "
                     "confirm could not be sent yet. We will send it as soon as we can; you can also sign up "
                     "again in a few minutes to have it sent now.",
                     "Nothing will be sent to you until you open that link."],
                    503,
                )
        return check_inbox

    # Opening the link confirms (GET, as the person expects from "click to confirm"); a HEAD
    # request, which link checkers send, only shows that the link is valid. POST confirms too,
    # for mail programs that submit links as forms. Confirming twice changes nothing.
    @app.route("/confirm/<token>", methods=["GET", "POST"])
    def confirm(token: str):
        token = clean_token(token)
        try:
            public_id, nonce, _issued = read_confirm_token(key, token)
        except TokenError as exc:
            return bad_link(exc, "confirm")
        if request.method == "HEAD":
            return render_template("confirm.html", action=f"/confirm/{token}")
        outcome = store.confirm(public_id, nonce, **client())
        if outcome == "invalid":
            return bad_link(TokenError("this confirmation link is no longer valid"), "confirm")
        return page("You are subscribed", [f"Thank you. {site.config.name}'s newsletter will reach you once a month.",
                                           "Every issue has a link to unsubscribe in one click."])

    @app.get("/unsubscribe/<token>")
    def unsubscribe_page(token: str):
        token = clean_token(token)
        try:
            read_unsubscribe_token(key, token)
        except TokenError as exc:
            return bad_link(exc, "unsubscribe")
        return render_template("unsubscribe.html", action=f"/unsubscribe/{token}")

    @app.post("/unsubscribe/<token>")
    def unsubscribe(token: str):
        try:
            public_id = read_unsubscribe_token(key, clean_token(token))
        except TokenError as exc:
            return bad_link(exc, "unsubscribe")
        try:
            one_click = request.form.get("List-Unsubscribe") == "One-Click"
        except Exception:  # an unreadable body must not stop an unsubscribe
            one_click = False
        store.unsubscribe(public_id, "one-click" if one_click else "link", **client())
        return page(
            "You are unsubscribed",
            [f"You will not receive {site.config.name}'s newsletter any more.",
             "Changed your mind? You can subscribe again at any time."],
            200,
            [("Subscribe again", "/subscribe")],
        )

    app.register_blueprint(staff_blueprint(site, store))  # /staff/: sign-in, review, approval

    @app.get("/issues/<slug>/")
    def issue(slug: str):
        if not SLUG.match(slug) or ".." in slug:
            abort(404)
        folder = site.build_dir / slug
        if not (folder / "web.html").is_file():
            abort(404)
        return send_from_directory(folder, "web.html", mimetype="text/html", max_age=300)

    return app
