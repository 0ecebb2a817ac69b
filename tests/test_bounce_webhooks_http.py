"""The webhook routes over real HTTP: a Flask app with ``webhooks_blueprint`` on a werkzeug server on 127.0.0.1.

Posts are signed here with real keys; the SNS signing certificate comes from a
real HTTPS server on loopback (``tests.relay_posts.CertificateServer``).
"""

from __future__ import annotations

import http.client
import threading
from dataclasses import dataclass

import pytest
from flask import Flask
from werkzeug.serving import make_server

from newsletters.bounce_intake.settings import WebhookSettings, sendgrid_key
from newsletters.bounce_intake.web import webhooks_blueprint
from tests.relay_posts import (
    CertificateServer, Mailgun, SendGrid, SigningIdentity, basic_auth, body, mailgun_failed, postmark_bounce,
    sendgrid_event, ses_bounce, sns_post,
)


@dataclass
class Reply:
    status: int
    headers: dict
    text: str


class Receiver:
    """What ``on_events`` was given; ``fail_next`` makes the next call raise, as a database error would."""

    def __init__(self):
        self.batches: list[list] = []
        self.fail_next = False

    def __call__(self, events):
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("database is locked")
        self.batches.append(events)


def serve(settings: WebhookSettings, receiver: Receiver):
    """A Flask app with the webhook routes on a werkzeug server on 127.0.0.1; returns (post, stop)."""
    app = Flask("webhook-test")
    app.register_blueprint(webhooks_blueprint(settings, receiver))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()

    def post(path: str, payload: bytes, headers: dict | None = None, method: str = "POST") -> Reply:
        connection = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=10)
        try:
            connection.request(method, path, payload, {"Content-Type": "application/json", **(headers or {})})
            response = connection.getresponse()
            return Reply(response.status, dict(response.getheaders()), response.read().decode("utf-8", "replace"))
        finally:
            connection.close()

    def stop():
        server.shutdown()
        thread.join(5)

    return post, stop


@pytest.fixture
def relays(tmp_path):
    certs = CertificateServer(tmp_path)
    identity = SigningIdentity.create()
    mailgun, sendgrid = Mailgun(), SendGrid()
    settings = WebhookSettings(
        sns_cert_url_prefixes=(certs.base,), sns_cafile=str(certs.ca_file),
        postmark_user="relay", postmark_password="pw-123",
        mailgun_signing_key=mailgun.key, sendgrid_public_key=sendgrid_key(sendgrid.public_key_text),
    )
    receiver = Receiver()
    post, stop = serve(settings, receiver)
    yield dict(post=post, receiver=receiver, certs=certs, identity=identity, mailgun=mailgun, sendgrid=sendgrid,
               cert_url=certs.publish(identity))
    stop()
    certs.stop()


def test_verified_posts_from_each_relay_reach_on_events(relays):
    post, receiver = relays["post"], relays["receiver"]
    ses = sns_post(ses_bounce([("ses@example.net", "5.1.1", "")]), relays["cert_url"], relays["identity"].key,
                   version="2")
    sendgrid_payload = body([sendgrid_event("spamreport", "sendgrid@example.net")])

    replies = [
        post("/webhooks/ses", body(ses), {"x-amz-sns-message-type": "Notification"}),
        post("/webhooks/postmark", postmark_bounce("postmark@example.net"), basic_auth("relay", "pw-123")),
        post("/webhooks/mailgun", relays["mailgun"].post(mailgun_failed("mailgun@example.net"))),
        post("/webhooks/sendgrid", sendgrid_payload, relays["sendgrid"].headers(sendgrid_payload)),
    ]

    assert [r.status for r in replies] == [200, 200, 200, 200]
    assert [(e.relay, e.kind, e.recipient) for batch in receiver.batches for e in batch] == [
        ("ses", "hard", "ses@example.net"), ("postmark", "hard", "postmark@example.net"),
        ("mailgun", "hard", "mailgun@example.net"), ("sendgrid", "complaint", "sendgrid@example.net"),
    ]


def test_forged_posts_are_refused_with_4xx_and_reach_nothing(relays):
    post, receiver = relays["post"], relays["receiver"]
    forged_ses = sns_post(ses_bounce([("victim@example.net", "5.1.1", "")]), relays["cert_url"],
                          SigningIdentity.create().key)
    sendgrid_payload = body([sendgrid_event("spamreport", "victim@example.net")])

    replies = {
        "ses": post("/webhooks/ses", body(forged_ses)),
        "postmark": post("/webhooks/postmark", postmark_bounce("victim@example.net"), basic_auth("relay", "guess")),
        "mailgun": post("/webhooks/mailgun", relays["mailgun"].post(mailgun_failed("victim@example.net"), key="x")),
        "sendgrid": post("/webhooks/sendgrid", sendgrid_payload, SendGrid().headers(sendgrid_payload)),
    }

    assert {relay: reply.status for relay, reply in replies.items()} == {
        "ses": 403, "postmark": 401, "mailgun": 403, "sendgrid": 403,
    }
    assert replies["postmark"].headers["WWW-Authenticate"].startswith("Basic")
    assert "signature does not match" in replies["mailgun"].text and replies["mailgun"].text.count("\n") == 1
    assert receiver.batches == []


def test_a_replayed_post_is_refused_and_reaches_nothing_twice(relays):
    post, receiver = relays["post"], relays["receiver"]
    captured = relays["mailgun"].post(mailgun_failed("once@example.net"))

    first, again = post("/webhooks/mailgun", captured), post("/webhooks/mailgun", captured)

    assert (first.status, again.status) == (200, 409)
    assert "replay" in again.text and len(receiver.batches) == 1


def test_when_applying_fails_the_relays_retry_is_accepted(relays):
    post, receiver = relays["post"], relays["receiver"]
    payload = body([sendgrid_event("bounce", "retry@example.net", type="bounce",
                                   bounce_classification="Invalid Address")])
    headers = relays["sendgrid"].headers(payload)
    receiver.fail_next = True

    failed = post("/webhooks/sendgrid", payload, headers)
    retried = post("/webhooks/sendgrid", payload, headers)

    assert (failed.status, retried.status) == (500, 200)
    assert [e.recipient for batch in receiver.batches for e in batch] == ["retry@example.net"]


def test_an_sns_subscription_is_confirmed_by_visiting_the_subscribe_url(relays):
    certs = relays["certs"]
    subscribe = certs.base + "confirm?Action=ConfirmSubscription&Token=t-1"
    confirmation = sns_post("You have chosen to subscribe", relays["cert_url"], relays["identity"].key,
                            kind="SubscriptionConfirmation", SubscribeURL=subscribe, Token="t-1")

    reply = relays["post"]("/webhooks/ses", body(confirmation),
                           {"x-amz-sns-message-type": "SubscriptionConfirmation"})

    assert reply.status == 200 and '"confirmed":true' in reply.text.replace(" ", "")
    assert "/confirm?Action=ConfirmSubscription&Token=t-1" in certs.requests
    assert relays["receiver"].batches == []


def test_other_methods_paths_and_oversize_posts_are_refused(relays):
    post = relays["post"]

    assert post("/webhooks/ses", b"", method="GET").status == 405
    assert post("/webhooks/unknown-relay", b"{}").status == 404
    huge = post("/webhooks/mailgun", b"{" + b" " * (1024 * 1024 + 10) + b"}")
    assert huge.status == 413
    assert post("/webhooks/ses", b"not json").status == 400
    assert relays["receiver"].batches == []


def test_postmark_with_a_token_in_the_url_instead_of_basic_auth():
    receiver = Receiver()
    post, stop = serve(WebhookSettings(postmark_token="long-random-token"), receiver)
    try:
        right = post("/webhooks/postmark?token=long-random-token", postmark_bounce("token@example.net"))
        wrong = post("/webhooks/postmark?token=guess", postmark_bounce("guess@example.net"))
        missing = post("/webhooks/postmark", postmark_bounce("none@example.net"))
    finally:
        stop()

    assert (right.status, wrong.status, missing.status) == (200, 401, 401)
    assert [e.recipient for batch in receiver.batches for e in batch] == ["token@example.net"]


def test_a_relay_not_set_up_is_refused_with_404_naming_its_setting():
    receiver = Receiver()
    post, stop = serve(WebhookSettings(), receiver)
    try:
        reply = post("/webhooks/mailgun", Mailgun().post(mailgun_failed("a@example.net")))
    finally:
        stop()

    assert reply.status == 404 and "MAILGUN_WEBHOOK_SIGNING_KEY" in reply.text
    assert receiver.batches == []
