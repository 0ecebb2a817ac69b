"""The web app: the public pages, the archive, the staff pages and the relays' webhooks, put together.

``create_app(site)`` is a Flask app factory; ``newsletter serve`` runs it, and
any WSGI server can too. It holds what is true of every page; the pages are
blueprints, each in its own module:

* ``subscription``: subscribe, confirm, unsubscribe (the pages that change the list);
* ``archive``: the list of built issues and their web versions;
* ``staff``: sign-in, review and approval under ``/staff/``, closed to anyone not signed in;
* ``bounce_intake.web``: the relays' signed webhooks.

Every page is plain HTML with labels and the site's language, no JavaScript,
sends no Referer (tokens are in the URL), cannot be framed, and carries a CSP.
"""

from __future__ import annotations

import re
from pathlib import Path

from flask import Flask, current_app, make_response, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.middleware.proxy_fix import ProxyFix

from recipients import Store, open_store

from ..bounce_intake.settings import WebhookSettings
from ..bounce_intake.web import webhooks_blueprint
from ..bounces.process import BounceProcessor
from .archive import archive_blueprint
from .pages import message_page
from .staff import staff_blueprint
from .subscription import subscription_blueprint

HEX_COLOUR = re.compile(r"^#(?:[0-9a-fA-F]{3}){1,2}$")
PAGE_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
MAX_FORM_BYTES = 64 * 1024
ERROR_TITLES = {404: "Page not found", 405: "Not allowed here", 413: "Too much data"}


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
    store = store or open_store(site)
    app.extensions["recipients_store"] = store
    proxies = site.int_setting("TRUSTED_PROXIES", 0)
    if proxies:  # behind a reverse proxy, the client's address is in X-Forwarded-For
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies)
    brand = _brand(site)
    app.context_processor(lambda: {"site": site.config, "brand": brand})
    app.after_request(_security_headers)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)

    def apply_relay_events(events) -> None:
        """A verified relay post: matched and applied as ``newsletter bounces process`` applies a file."""
        BounceProcessor(site, store).relay_events(events)

    # Every relay's route is there; one without its secret in .env refuses every post (``not_configured``).
    app.register_blueprint(webhooks_blueprint(WebhookSettings.from_site(site), apply_relay_events))
    app.register_blueprint(subscription_blueprint(site, store))
    app.register_blueprint(staff_blueprint(site, store))  # /staff/: sign-in, review, approval
    app.register_blueprint(archive_blueprint(site))
    return app


def _security_headers(response):
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault("X-Frame-Options", "DENY")
    # Every page, the archive's built issues included: they hold article HTML from the blog.
    response.headers.setdefault("Content-Security-Policy", PAGE_CSP)
    if not request.path.startswith("/issues/"):
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def _http_error(exc: HTTPException):
    response = make_response(message_page(ERROR_TITLES.get(exc.code, exc.name), [exc.description or ""],
                                          exc.code or 500))
    if isinstance(exc, MethodNotAllowed) and exc.valid_methods:  # RFC 9110: a 405 says what is allowed
        response.headers["Allow"] = ", ".join(exc.valid_methods)
    return response


def _unexpected(exc: Exception):
    current_app.logger.exception("unexpected error")
    return message_page("Something went wrong", ["Please try again later."], 500)
