"""Subscribe, confirm and unsubscribe: the pages that change the list, as one blueprint.

* Nothing here reveals whether an address is on the list: every valid sign-up
  gets the same "check your inbox" page, whatever the address's status.
* ``GET /unsubscribe/<token>`` only shows a button (mail scanners fetch links);
  ``POST`` unsubscribes at once, RFC 8058 one-click or not, with no cookie, no
  login and no redirect, and answers 200 every time it is repeated.
* A forged, tampered or expired token gets a 400 page and changes nothing.
* A sign-up is committed before its confirmation mail is sent: no transaction
  waits on the mail server.
"""

from __future__ import annotations

from flask import Blueprint, current_app, render_template, request

from recipients import Store
from recipients.addresses import InvalidAddress, name_problem, normalize_email
from recipients.tokens import (
    clean_token,
    form_token_ok,
    make_form_token,
    read_confirm_token,
    read_unsubscribe_token,
    secret_key,
)

from ..errors import TokenError, TransportError
from .confirmation import send_confirmation
from .pages import bad_link_page, message_page

AGE_TEXT = "I confirm that I am 18 or over."
HONEYPOT = "website"
CHECK_INBOX = (
    "Please check your inbox",
    [
        "If the address can be subscribed, we have sent it an e-mail with a link to confirm.",
        "Nothing will be sent to you until you open that link. If it does not arrive in a few minutes, "
        "look in your spam folder.",
    ],
)
MAIL_NOT_SENT_YET = (
    "We could not send the e-mail yet",
    [
        "Your sign-up is saved, but our mail server did not answer, so the e-mail with the link to "
        "confirm could not be sent yet. We will send it as soon as we can; you can also sign up "
        "again in a few minutes to have it sent now.",
        "Nothing will be sent to you until you open that link.",
    ],
)


def client() -> dict:
    """Who asked, for the consent ledger: address (after ProxyFix) and user agent."""
    return {"ip": request.remote_addr, "user_agent": (request.user_agent.string or "")[:500] or None}


def read_sign_up(form) -> tuple[dict, dict, str | None]:
    """The form's values, the errors to show by field, and the normalised address (None if invalid)."""
    values = {
        "email": form.get("email", "").strip()[:320],
        "first_name": form.get("first_name", "").strip()[:100],
        "consent": form.get("consent") == "yes",
        "adult": form.get("adult") == "yes",
    }
    errors = {}
    email = None
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
    return values, errors, email


def subscription_blueprint(site, store: Store) -> Blueprint:
    bp = Blueprint("subscription", __name__)
    key = secret_key(site)
    consent_text = site.config.consent_text
    form_url = f"{site.public_url}/subscribe"

    def subscribe_form(errors: dict | None = None, values: dict | None = None, status: int = 200):
        return render_template(
            "subscribe.html", errors=errors or {}, values=values or {}, consent_text=consent_text,
            age_text=AGE_TEXT, honeypot=HONEYPOT, form_token=make_form_token(key),
        ), status

    @bp.get("/subscribe")
    def subscribe_page():
        return subscribe_form()

    @bp.post("/subscribe")
    def subscribe():
        form = request.form
        if form.get(HONEYPOT):  # a bot: behave exactly as for a person, keep nothing
            return message_page(*CHECK_INBOX)
        if not form_token_ok(key, form.get("form_token", "")):
            return message_page("This form has expired", ["Please open the form again and resubmit it."], 400,
                                [("Open the form", "/subscribe")])
        values, errors, email = read_sign_up(form)
        if errors:
            return subscribe_form(errors, values, 400)
        signup = store.subscribe(email, values["first_name"], source=form_url,
                                 consent_text=f"{consent_text}\n{AGE_TEXT}", **client())
        if signup.confirmation is not None:  # committed; now, outside any transaction, the mail
            try:
                send_confirmation(site, store, signup.confirmation)
            except TransportError:
                current_app.logger.exception("cannot send a confirmation e-mail yet")
                return message_page(*MAIL_NOT_SENT_YET, 503)
        return message_page(*CHECK_INBOX)

    # Opening the link confirms (GET, as the person expects from "click to confirm"); a HEAD
    # request, which link checkers send, only shows that the link is valid. POST confirms too,
    # for mail programs that submit links as forms. Confirming twice changes nothing.
    @bp.route("/confirm/<token>", methods=["GET", "POST"])
    def confirm(token: str):
        token = clean_token(token)
        try:
            public_id, nonce, _issued = read_confirm_token(key, token)
        except TokenError as exc:
            return bad_link_page(site, exc, "confirm")
        if request.method == "HEAD":
            return render_template("confirm.html", action=f"/confirm/{token}")
        if store.confirm(public_id, nonce, **client()) == "invalid":
            return bad_link_page(site, TokenError("this confirmation link is no longer valid"), "confirm")
        return message_page("You are subscribed", [
            f"Thank you. {site.config.name}'s newsletter will reach you once a month.",
            "Every issue has a link to unsubscribe in one click."])

    @bp.get("/unsubscribe/<token>")
    def unsubscribe_page(token: str):
        token = clean_token(token)
        try:
            read_unsubscribe_token(key, token)
        except TokenError as exc:
            return bad_link_page(site, exc, "unsubscribe")
        return render_template("unsubscribe.html", action=f"/unsubscribe/{token}")

    @bp.post("/unsubscribe/<token>")
    def unsubscribe(token: str):
        try:
            public_id = read_unsubscribe_token(key, clean_token(token))
        except TokenError as exc:
            return bad_link_page(site, exc, "unsubscribe")
        try:
            one_click = request.form.get("List-Unsubscribe") == "One-Click"
        except Exception:  # an unreadable body must not stop an unsubscribe
            one_click = False
        store.unsubscribe(public_id, "one-click" if one_click else "link", **client())
        return message_page("You are unsubscribed", [
            f"You will not receive {site.config.name}'s newsletter any more.",
            "Changed your mind? You can subscribe again at any time."], 200, [("Subscribe again", "/subscribe")])

    return bp
