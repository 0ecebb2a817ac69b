"""Relay webhooks on ``newsletter serve``, over real HTTP: the app of ``make_web_server`` on 127.0.0.1, posts
signed here with real keys (an SNS signing certificate served over HTTPS on loopback, HMAC and ECDSA keys),
about messages a real send handed to aiosmtpd. Verified posts apply; forged or replayed ones change nothing.
"""

from __future__ import annotations

import email
import email.policy
import http.client
import re
import threading

import pytest

from newsletters.config import Site
from newsletters.delivery import prepare_send
from newsletters.web.serve import make_web_server
from recipients import open_store
from tests.relay_posts import (
    CertificateServer, Mailgun, SendGrid, SigningIdentity, basic_auth, body, mailgun_failed, postmark_bounce,
    sendgrid_event, ses_complaint, sns_post,
)
from tests.send_fixtures import ISSUE, add_subscribers, make_send_site, smtp_settings, write_env
from tests.smtp_servers import Inbox, smtp_server

RELAY_SETTINGS = (
    "MAILGUN_WEBHOOK_SIGNING_KEY", "POSTMARK_WEBHOOK_USER", "POSTMARK_WEBHOOK_PASSWORD", "SES_SNS_CERT_URL_PREFIXES",
    "SES_SNS_CA_FILE", "SENDGRID_WEBHOOK_PUBLIC_KEY", "WEBHOOK_REPLAY_FILE", "BOUNCE_ADDRESS",
)



class Served:
    """``newsletter serve``'s server for the site, in a thread; ``post`` answers (status, text)."""

    def __init__(self, site_dir):
        self.server = make_web_server(Site.load(site_dir), "127.0.0.1", 0)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def post(self, path: str, payload: bytes, headers: dict | None = None) -> tuple[int, str]:
        connection = http.client.HTTPConnection("127.0.0.1", self.server.server_port, timeout=10)
        try:
            connection.request("POST", path, payload, {"Content-Type": "application/json", **(headers or {})})
            response = connection.getresponse()
            return response.status, response.read().decode("utf-8", "replace")
        finally:
            connection.close()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def relay_site(site_dir, tmp_path):
    """A site that sent the test issue to five readers, with every relay's webhook set up in .env."""
    certs = CertificateServer(tmp_path)
    identity, mailgun, sendgrid = SigningIdentity.create(), Mailgun(), SendGrid()
    inbox = Inbox()
    with smtp_server(inbox) as (_host, port):
        site_dir = make_send_site(site_dir, **smtp_settings(port))
        readers = add_subscribers(site_dir, 5)
        with prepare_send(Site.load(site_dir), site_dir / ISSUE, run_checks=False) as plan:
            plan.execute(handle_signals=False)
    message_ids = {
        m.rcpt_tos[0]: email.message_from_bytes(m.content, policy=email.policy.default)["Message-ID"]
        for m in inbox.messages
    }
    write_env(
        site_dir, MAILGUN_WEBHOOK_SIGNING_KEY=mailgun.key, POSTMARK_WEBHOOK_USER="relay",
        POSTMARK_WEBHOOK_PASSWORD="pw-123", SES_SNS_CERT_URL_PREFIXES=certs.base, SES_SNS_CA_FILE=certs.ca_file,
        SENDGRID_WEBHOOK_PUBLIC_KEY=sendgrid.public_key_text,
    )
    served = Served(site_dir)
    yield dict(site_dir=site_dir, readers=readers, message_ids=message_ids, post=served.post, mailgun=mailgun,
               sendgrid=sendgrid, identity=identity, cert_url=certs.publish(identity))
    served.stop()
    certs.stop()


def statuses(site_dir, addresses) -> list[str]:
    with open_store(Site.load(site_dir)) as store:
        return [store.get(a).status for a in addresses]


def mailgun_about(address: str, message_id: str) -> dict:
    event = mailgun_failed(address)
    event["message"]["headers"]["message-id"] = message_id.strip("<>")  # Mailgun gives it without brackets
    return event


def test_verified_posts_from_each_relay_change_the_list(relay_site):
    r = relay_site
    readers, post = r["readers"], r["post"]
    sendgrid_payload = body([sendgrid_event("spamreport", readers[3])])

    replies = [
        post("/webhooks/mailgun", r["mailgun"].post(mailgun_about(readers[0], r["message_ids"][readers[0]]))),
        post("/webhooks/postmark", postmark_bounce(readers[1]), basic_auth("relay", "pw-123")),
        post("/webhooks/ses", body(sns_post(ses_complaint(readers[2]), r["cert_url"], r["identity"].key)),
             {"x-amz-sns-message-type": "Notification"}),
        post("/webhooks/sendgrid", sendgrid_payload, r["sendgrid"].headers(sendgrid_payload)),
    ]

    assert [status for status, _ in replies] == [200, 200, 200, 200]
    assert statuses(r["site_dir"], readers) == ["bounced", "bounced", "complained", "complained", "active"]
    with open_store(Site.load(r["site_dir"])) as store:
        detail = store.ledger(store.get(readers[0]).id)[-1].detail
    assert "mailgun event" in detail and "send run 1" in detail


def test_verified_events_about_no_message_of_ours_change_nothing(relay_site):
    r = relay_site
    readers, post = r["readers"], r["post"]
    ours = r["message_ids"][readers[4]]
    forged_id = re.sub(r"\.[0-9a-f]{24}@", "." + "0" * 24 + "@", ours)  # our shape, not our digest
    assert forged_id != ours

    replies = [
        post("/webhooks/mailgun", r["mailgun"].post(mailgun_about(readers[4], forged_id))),
        post("/webhooks/postmark", postmark_bounce("stranger@example.net"), basic_auth("relay", "pw-123")),
    ]

    assert [status for status, _ in replies] == [200, 200]
    assert statuses(r["site_dir"], readers) == ["active"] * 5


def test_forged_posts_are_refused_and_change_nothing(relay_site):
    r = relay_site
    readers, post = r["readers"], r["post"]
    victim = readers[4]
    sendgrid_payload = body([sendgrid_event("spamreport", victim)])

    replies = [
        post("/webhooks/mailgun", r["mailgun"].post(mailgun_about(victim, r["message_ids"][victim]), key="guess")),
        post("/webhooks/postmark", postmark_bounce(victim), basic_auth("relay", "wrong")),
        post("/webhooks/ses", body(sns_post(ses_complaint(victim), r["cert_url"], SigningIdentity.create().key))),
        post("/webhooks/sendgrid", sendgrid_payload, SendGrid().headers(sendgrid_payload)),
    ]

    assert [status for status, _ in replies] == [403, 401, 403, 403]
    assert statuses(r["site_dir"], readers) == ["active"] * 5


def test_a_replayed_post_is_refused_and_an_undone_bounce_stays_undone(relay_site):
    r = relay_site
    site_dir, readers, post = r["site_dir"], r["readers"], r["post"]
    event = mailgun_about(readers[0], r["message_ids"][readers[0]])
    signed = r["mailgun"].post(event)
    assert post("/webhooks/mailgun", signed)[0] == 200
    with open_store(Site.load(site_dir)) as store:
        store.reinstate(readers[0], "the relay reported a typo we have since fixed")

    replayed = post("/webhooks/mailgun", signed)
    # The same event in a new, validly signed post, to a server restarted since (its replay memory is gone):
    # the evidence was applied once and is not applied again.
    restarted = Served(site_dir)
    try:
        resigned = restarted.post("/webhooks/mailgun", r["mailgun"].post(event))
    finally:
        restarted.stop()

    assert replayed[0] == 409
    assert resigned[0] == 200
    assert statuses(site_dir, readers) == ["active"] * 5


def test_a_relay_without_its_settings_is_not_there(site_dir):
    site_dir = make_send_site(site_dir)
    served = Served(site_dir)
    try:
        status, text = served.post("/webhooks/mailgun", b"{}")
    finally:
        served.stop()

    assert status == 404 and "MAILGUN_WEBHOOK_SIGNING_KEY" in text
