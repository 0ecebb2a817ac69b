"""The relays' webhooks as Flask routes: verify, hand the events over, answer 2xx only on success.

``webhooks_blueprint(settings, on_events)`` adds ``POST /webhooks/ses``,
``/webhooks/postmark``, ``/webhooks/mailgun`` and ``/webhooks/sendgrid`` to an
app. A refused post gets a 4xx with one line saying why and changes nothing;
a verified one is passed to ``on_events(events)`` (the caller applies it) and
gets 200. If ``on_events`` raises, the post's replay claims are released and
the answer is 500, so the relay's retry is accepted rather than taken for a
replay. An SNS ``SubscriptionConfirmation`` is confirmed by visiting its
verified ``SubscribeURL``.
"""

from __future__ import annotations

from typing import Callable

from flask import Blueprint, Response, current_app, jsonify, request

from .errors import WebhookRejected
from .events import BounceEvent
from .settings import WebhookSettings
from .sns import confirm_subscription
from .webhooks import MAX_BODY, VERIFIERS, release

RELAYS = tuple(VERIFIERS)


def webhooks_blueprint(settings: WebhookSettings, on_events: Callable[[list[BounceEvent]], object]) -> Blueprint:
    """A blueprint with one POST route per relay, verifying with ``settings``."""
    blueprint = Blueprint("bounce_webhooks", __name__)

    @blueprint.before_request
    def allow_relay_sized_posts():
        """A relay's batch may be larger than the site's own forms allow (the app's MAX_CONTENT_LENGTH)."""
        request.max_content_length = MAX_BODY + 1

    @blueprint.post(f"/webhooks/<any({', '.join(RELAYS)}):relay>")
    def receive(relay: str):
        body = request.stream.read(MAX_BODY + 1)
        if len(body) > MAX_BODY:
            return _refusal(relay, WebhookRejected(f"{relay}: the post is larger than {MAX_BODY} bytes", status=413))
        options = {"url_token": request.args.get("token")} if relay == "postmark" else {}
        try:
            verified = VERIFIERS[relay](request.headers, body, settings, **options)
        except WebhookRejected as refused:
            return _refusal(relay, refused)
        try:
            if verified.confirm_url:
                confirm_subscription(verified, settings)
            if verified.events:
                on_events(verified.events)
        except WebhookRejected as failed:  # the SubscribeURL could not be visited
            release(verified, settings)
            return _refusal(relay, failed)
        except Exception:
            release(verified, settings)
            raise
        return jsonify(accepted=len(verified.events), ignored=verified.ignored,
                       confirmed=bool(verified.confirm_url))

    return blueprint


def _refusal(relay: str, refused: WebhookRejected) -> Response:
    current_app.logger.warning("webhook refused: %s", refused.message)
    response = Response(refused.message + "\n", status=refused.status, mimetype="text/plain")
    if refused.status == 401:
        response.headers["WWW-Authenticate"] = f'Basic realm="{relay} webhook"'
    return response
