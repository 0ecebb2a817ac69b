"""The relay webhook verifiers with real signatures made here: verified posts give events, others are refused.

SES posts are signed with an RSA key whose certificate a real HTTPS server on
127.0.0.1 serves, so the verifier really fetches it; Mailgun posts carry a real
HMAC; SendGrid posts a real ECDSA P-256 signature.
"""

from __future__ import annotations

import datetime as dt
import json
import time

import pytest

from newsletters.bounce_intake.errors import WebhookRejected, WebhookReplayed
from newsletters.bounce_intake.settings import WebhookSettings, sendgrid_key
from newsletters.bounce_intake.sns import allowed_url
from newsletters.bounce_intake.webhooks import verify_mailgun, verify_postmark, verify_sendgrid, verify_ses
from newsletters.config import Site
from newsletters.errors import ConfigError
from tests.relay_posts import (
    TOPIC, CertificateServer, Mailgun, SendGrid, SigningIdentity, basic_auth, body, mailgun_failed, now_utc,
    postmark_bounce, sendgrid_event, ses_bounce, ses_complaint, sns_post,
)


@pytest.fixture
def certs(tmp_path):
    server = CertificateServer(tmp_path)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def sns_identity():
    return SigningIdentity.create()


@pytest.fixture
def ses(certs, sns_identity):
    """(settings, certificate URL) for SES posts signed by ``sns_identity``."""
    url = certs.publish(sns_identity)
    settings = WebhookSettings(sns_cert_url_prefixes=(certs.base,), sns_cafile=str(certs.ca_file))
    return settings, url


# -- SES through SNS -----------------------------------------------------------
@pytest.mark.parametrize("version", ["1", "2"])
def test_a_signed_ses_bounce_gives_one_event_per_recipient(ses, certs, sns_identity, version):
    settings, url = ses
    message = ses_bounce([("gone@example.net", "5.1.1", "smtp; 550 5.1.1 user unknown"),
                          ("other@Example.ORG", "5.1.1", "smtp; 550 5.1.1 no such user")])
    post = sns_post(message, url, sns_identity.key, version=version)

    verified = verify_ses({"x-amz-sns-message-type": "Notification"}, body(post), settings)

    assert [(e.kind, e.recipient, e.status, e.reason) for e in verified.events] == [
        ("hard", "gone@example.net", "5.1.1", "user-unknown"),
        ("hard", "other@example.org", "5.1.1", "user-unknown"),
    ]
    event = verified.events[0]
    assert event.relay == "ses" and event.message_id == "<issue-7.abc@clinic.example>"
    assert event.event_id == message["bounce"]["feedbackId"] and event.occurred_at is not None
    assert certs.requests == ["/SimpleNotificationService-test.pem"]


def test_the_signing_certificate_is_fetched_once_and_then_cached(ses, certs, sns_identity):
    settings, url = ses
    for _ in range(3):
        post = sns_post(ses_bounce([("a@example.net", "4.2.2", "452 4.2.2 mailbox full")], "Transient",
                                   "MailboxFull"), url, sns_identity.key)
        assert verify_ses({}, body(post), settings).events[0].kind == "soft"
    assert len(certs.requests) == 1


@pytest.mark.parametrize("bounce_type, kind", [("Permanent", "hard"), ("Transient", "soft"), ("Undetermined", "soft")])
def test_ses_bounce_types_read_as_hard_or_soft(ses, sns_identity, bounce_type, kind):
    settings, url = ses
    post = sns_post(ses_bounce([("x@example.net", "", "")], bounce_type), url, sns_identity.key, version="2")

    assert [e.kind for e in verify_ses({}, body(post), settings).events] == [kind]


def test_a_signed_ses_complaint_is_a_complaint(ses, sns_identity):
    settings, url = ses
    post = sns_post(ses_complaint("angry@example.com"), url, sns_identity.key)

    [event] = verify_ses({}, body(post), settings).events

    assert (event.kind, event.recipient, event.reason) == ("complaint", "angry@example.com", "spam")


def test_a_delivery_notification_gives_no_event(ses, sns_identity):
    settings, url = ses
    post = sns_post({"notificationType": "Delivery", "mail": {}}, url, sns_identity.key)

    verified = verify_ses({}, body(post), settings)

    assert verified.events == [] and verified.ignored == 1


def test_a_tampered_message_is_refused(ses, sns_identity):
    settings, url = ses
    post = sns_post(ses_bounce([("kept@example.net", "4.2.2", "")], "Transient"), url, sns_identity.key)
    post["Message"] = post["Message"].replace("Transient", "Permanent")

    with pytest.raises(WebhookRejected, match="signature does not match"):
        verify_ses({}, body(post), settings)


def test_a_post_signed_by_another_key_naming_the_real_certificate_is_refused(ses, sns_identity):
    settings, url = ses
    forger = SigningIdentity.create()
    post = sns_post(ses_bounce([("victim@example.net", "5.1.1", "")]), url, forger.key)

    with pytest.raises(WebhookRejected, match="signature does not match"):
        verify_ses({}, body(post), settings)


@pytest.mark.parametrize(
    "cert_url",
    [
        "http://{host}/SimpleNotificationService-test.pem",  # not https
        "https://evil.example/SimpleNotificationService-test.pem",  # not under the allowed prefix
        "https://user:pw@{host}/SimpleNotificationService-test.pem",
        "{base}other/../SimpleNotificationService-test.txt",
    ],
    ids=["http", "other-host", "userinfo", "not-pem"],
)
def test_a_certificate_url_off_the_allowed_places_is_refused_without_fetching(ses, certs, sns_identity, cert_url):
    settings, _ = ses
    host = certs.base.split("//")[1].rstrip("/")
    url = cert_url.format(host=host, base=certs.base)
    post = sns_post(ses_bounce([("victim@example.net", "5.1.1", "")]), url, sns_identity.key)

    with pytest.raises(WebhookRejected):
        verify_ses({}, body(post), settings)
    assert certs.requests == []


def test_an_attackers_own_https_server_is_not_an_allowed_certificate_source(ses, tmp_path, sns_identity):
    settings, _ = ses
    attacker = CertificateServer(tmp_path)
    forger = SigningIdentity.create()
    try:
        url = attacker.publish(forger)
        post = sns_post(ses_bounce([("victim@example.net", "5.1.1", "")]), url, forger.key)
        with pytest.raises(WebhookRejected, match="not under SES_SNS_CERT_URL_PREFIXES"):
            verify_ses({}, body(post), settings)
        assert attacker.requests == []
    finally:
        attacker.stop()


@pytest.mark.parametrize(
    "url, allowed",
    [
        ("https://sns.eu-west-2.amazonaws.com/SimpleNotificationService-abc.pem", True),
        ("https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-abc.pem", True),
        ("https://sns.eu-west-2.amazonaws.com.evil.example/x.pem", False),
        ("https://evil.example/sns.eu-west-2.amazonaws.com/x.pem", False),
        ("https://sns.eu-west-2.amazonaws.com:8443/x.pem", False),
        ("http://sns.eu-west-2.amazonaws.com/x.pem", False),
        ("https://s3.amazonaws.com/x.pem", False),
    ],
)
def test_by_default_only_sns_hosts_may_serve_the_certificate(url, allowed):
    settings = WebhookSettings()
    if allowed:
        assert allowed_url(url, settings, what="SigningCertURL") == url
    else:
        with pytest.raises(WebhookRejected):
            allowed_url(url, settings, what="SigningCertURL")


def test_a_stale_sns_post_is_refused_and_a_replayed_one_too(ses, sns_identity):
    settings, url = ses
    old = sns_post(ses_bounce([("a@example.net", "5.1.1", "")]), url, sns_identity.key,
                   timestamp=now_utc() - dt.timedelta(hours=2))
    with pytest.raises(WebhookRejected, match="old"):
        verify_ses({}, body(old), settings)

    fresh = sns_post(ses_bounce([("a@example.net", "5.1.1", "")]), url, sns_identity.key)
    assert len(verify_ses({}, body(fresh), settings).events) == 1
    with pytest.raises(WebhookReplayed):
        verify_ses({}, body(fresh), settings)


def test_a_topic_outside_the_allow_list_is_refused(certs, sns_identity):
    url = certs.publish(sns_identity)
    settings = WebhookSettings(sns_cert_url_prefixes=(certs.base,), sns_cafile=str(certs.ca_file),
                               ses_topic_arns=("arn:aws:sns:eu-west-2:999999999999:someone-else",))
    post = sns_post(ses_bounce([("a@example.net", "5.1.1", "")]), url, sns_identity.key)

    with pytest.raises(WebhookRejected, match="SES_SNS_TOPIC_ARN"):
        verify_ses({}, body(post), settings)
    assert TOPIC not in settings.ses_topic_arns


def test_a_subscription_confirmation_asks_to_visit_the_subscribe_url(ses, certs, sns_identity):
    settings, url = ses
    subscribe = certs.base + "?Action=ConfirmSubscription&Token=abc"
    post = sns_post("You have chosen to subscribe", url, sns_identity.key, kind="SubscriptionConfirmation",
                    SubscribeURL=subscribe, Token="abc")

    verified = verify_ses({}, body(post), settings)

    assert verified.confirm_url == subscribe and verified.events == []


def test_a_subscribe_url_off_the_allowed_places_is_refused(ses, sns_identity):
    settings, url = ses
    post = sns_post("subscribe", url, sns_identity.key, kind="SubscriptionConfirmation",
                    SubscribeURL="https://evil.example/?Action=ConfirmSubscription", Token="abc")

    with pytest.raises(WebhookRejected, match="SubscribeURL"):
        verify_ses({}, body(post), settings)


@pytest.mark.parametrize("raw", [b"not json", b"[]", b'{"Type": "Other"}'])
def test_malformed_sns_posts_are_400(raw):
    with pytest.raises(WebhookRejected) as refused:
        verify_ses({}, raw, WebhookSettings())
    assert refused.value.status == 400


# -- Postmark ------------------------------------------------------------------
POSTMARK = WebhookSettings(postmark_user="relay", postmark_password="pw-123")


def test_a_postmark_hard_bounce_with_the_right_credentials_gives_a_hard_event():
    settings = WebhookSettings(postmark_user="relay", postmark_password="pw-123")

    [event] = verify_postmark(basic_auth("relay", "pw-123"), postmark_bounce("gone@example.net"), settings).events

    assert (event.kind, event.recipient, event.status, event.reason) == ("hard", "gone@example.net", "5.1.1",
                                                                          "user-unknown")
    assert event.occurred_at == dt.datetime(2026, 12, 4, 11, 9, 19, 642111, tzinfo=dt.timezone.utc)


@pytest.mark.parametrize("headers", [{}, basic_auth("relay", "wrong"), basic_auth("other", "pw-123"),
                                     {"Authorization": "Bearer pw-123"}, {"Authorization": "Basic !!!"}])
def test_postmark_posts_without_the_right_credentials_are_401(headers):
    with pytest.raises(WebhookRejected) as refused:
        verify_postmark(headers, postmark_bounce("gone@example.net"), POSTMARK)
    assert refused.value.status == 401


def test_postmark_may_be_authenticated_by_a_token_in_the_url():
    settings = WebhookSettings(postmark_token="t0ken-in-url")

    assert len(verify_postmark({}, postmark_bounce("a@example.net"), settings, url_token="t0ken-in-url").events) == 1
    with pytest.raises(WebhookRejected):
        verify_postmark({}, postmark_bounce("a@example.net"), settings, url_token="guess")


@pytest.mark.parametrize(
    "kind, record, expected",
    [("Transient", "Bounce", "soft"), ("SoftBounce", "Bounce", "soft"), ("Blocked", "Bounce", "soft"),
     ("SpamNotification", "Bounce", "soft"), ("SpamComplaint", "SpamComplaint", "complaint"),
     ("AutoResponder", "Bounce", None), ("AddressChange", "Bounce", None)],
)
def test_postmark_bounce_types(kind, record, expected):
    settings = WebhookSettings(postmark_user="relay", postmark_password="pw-123")
    verified = verify_postmark(basic_auth("relay", "pw-123"), postmark_bounce("a@example.net", kind, record), settings)

    assert [e.kind for e in verified.events] == ([expected] if expected else [])


def test_a_postmark_post_received_twice_is_refused_the_second_time():
    settings = WebhookSettings(postmark_user="relay", postmark_password="pw-123")
    post = postmark_bounce("a@example.net")

    verify_postmark(basic_auth("relay", "pw-123"), post, settings)
    with pytest.raises(WebhookReplayed):
        verify_postmark(basic_auth("relay", "pw-123"), post, settings)


# -- Mailgun -------------------------------------------------------------------
def test_a_signed_mailgun_failure_gives_an_event_with_our_message_id():
    mailgun = Mailgun()
    settings = WebhookSettings(mailgun_signing_key=mailgun.key)

    [event] = verify_mailgun({}, mailgun.post(mailgun_failed("gone@example.net")), settings).events

    assert (event.kind, event.status, event.reason) == ("hard", "5.1.1", "user-unknown")
    assert event.message_id == "issue-7.xyz@clinic.example" and event.relay == "mailgun"


@pytest.mark.parametrize(
    "data, kind, reason",
    [
        (dict(message="5.7.1 Message rejected as spam"), "soft", "spam"),
        (dict(message="550 5.7.1 Service unavailable; client host blocked using zen.spamhaus.org"), "soft", "blocked"),
        (dict(message="550 Requested action not taken: policy violation"), "soft", "unknown"),
        (dict(reason="old", message="Too old"), "soft", "expired"),
        (dict(reason="espblock", message=""), "soft", "blocked"),
        (dict(reason="suppress-bounce", message="Not delivering to previously bounced address"), "hard", "suppressed"),
        (dict(severity="temporary", code=452, message="4.2.2 mailbox full"), "soft", "mailbox-full"),
    ],
)
def test_mailgun_permanent_failures_are_hard_only_when_the_address_does_not_exist(data, kind, reason):
    mailgun = Mailgun()
    settings = WebhookSettings(mailgun_signing_key=mailgun.key)

    [event] = verify_mailgun({}, mailgun.post(mailgun_failed("a@example.net", **data)), settings).events

    assert (event.kind, event.reason) == (kind, reason)


def test_a_mailgun_complaint_is_a_complaint():
    mailgun = Mailgun()
    data = {"event": "complained", "id": "c-1", "timestamp": time.time(), "recipient": "angry@example.com"}

    [event] = verify_mailgun({}, mailgun.post(data), WebhookSettings(mailgun_signing_key=mailgun.key)).events

    assert (event.kind, event.recipient) == ("complaint", "angry@example.com")


def test_forged_stale_and_replayed_mailgun_posts_are_refused():
    mailgun = Mailgun()
    settings = WebhookSettings(mailgun_signing_key=mailgun.key)
    event = mailgun_failed("a@example.net")

    with pytest.raises(WebhookRejected, match="signature does not match"):
        verify_mailgun({}, mailgun.post(event, key="someone-elses-key"), settings)
    tampered = json.loads(mailgun.post(event))
    tampered["signature"]["timestamp"] = str(int(tampered["signature"]["timestamp"]) + 1)
    with pytest.raises(WebhookRejected, match="signature does not match"):
        verify_mailgun({}, body(tampered), settings)
    with pytest.raises(WebhookRejected, match="old"):
        verify_mailgun({}, mailgun.post(event, timestamp=int(time.time()) - 3600), settings)

    post = mailgun.post(event)
    assert len(verify_mailgun({}, post, settings).events) == 1
    with pytest.raises(WebhookReplayed):
        verify_mailgun({}, post, settings)


def test_the_same_mailgun_event_signed_again_is_not_counted_twice():
    mailgun = Mailgun()
    settings = WebhookSettings(mailgun_signing_key=mailgun.key)
    event = mailgun_failed("a@example.net", severity="temporary", message="4.2.2 full")

    first = verify_mailgun({}, mailgun.post(event), settings)
    retry = verify_mailgun({}, mailgun.post(event), settings)  # a new token, the same event id

    assert len(first.events) == 1 and retry.events == [] and retry.ignored == 1


# -- SendGrid ------------------------------------------------------------------
def test_a_signed_sendgrid_batch_gives_its_bounces_and_complaints():
    sendgrid = SendGrid()
    settings = WebhookSettings(sendgrid_public_key=sendgrid_key(sendgrid.public_key_text))
    batch = [
        sendgrid_event("bounce", "gone@example.net", type="bounce", status="5.1.1",
                       reason="550 5.1.1 The email account does not exist", bounce_classification="Invalid Address"),
        sendgrid_event("bounce", "blocked@example.com", type="blocked", status="5.7.1",
                       reason="550 5.7.1 blocked by policy", bounce_classification="Reputation"),
        sendgrid_event("spamreport", "angry@example.org"),
        sendgrid_event("delivered", "fine@example.org"),
        sendgrid_event("deferred", "later@example.org"),
    ]
    payload = body(batch)

    verified = verify_sendgrid(sendgrid.headers(payload), payload, settings)

    assert [(e.kind, e.recipient) for e in verified.events] == [
        ("hard", "gone@example.net"), ("soft", "blocked@example.com"), ("complaint", "angry@example.org"),
    ]
    assert verified.ignored == 2 and verified.events[0].event_id == batch[0]["sg_event_id"]


def test_forged_tampered_stale_and_replayed_sendgrid_posts_are_refused():
    sendgrid, other = SendGrid(), SendGrid()
    settings = WebhookSettings(sendgrid_public_key=sendgrid_key(sendgrid.public_key_text))
    payload = body([sendgrid_event("spamreport", "a@example.net")])

    with pytest.raises(WebhookRejected, match="signature does not match"):
        verify_sendgrid(other.headers(payload), payload, settings)
    with pytest.raises(WebhookRejected, match="signature does not match"):
        verify_sendgrid(sendgrid.headers(payload), payload.replace(b"a@example", b"b@example"), settings)
    with pytest.raises(WebhookRejected, match="old"):
        verify_sendgrid(sendgrid.headers(payload, int(time.time()) - 3600), payload, settings)

    headers = sendgrid.headers(payload)
    assert len(verify_sendgrid(headers, payload, settings).events) == 1
    with pytest.raises(WebhookReplayed):
        verify_sendgrid(headers, payload, settings)
    assert verify_sendgrid(sendgrid.headers(payload), payload, settings).events == []  # re-signed retry


def test_relays_without_their_secret_refuse_every_post():
    settings = WebhookSettings()
    for verify, setting in ((verify_postmark, "POSTMARK_WEBHOOK_USER"), (verify_mailgun, "MAILGUN_WEBHOOK_SIGNING_KEY"),
                            (verify_sendgrid, "SENDGRID_WEBHOOK_PUBLIC_KEY")):
        with pytest.raises(WebhookRejected, match=setting) as refused:
            verify({}, b"{}", settings)
        assert refused.value.status == 404


# -- settings --------------------------------------------------------------------
def test_webhook_settings_come_from_the_environment(site_dir, monkeypatch):
    sendgrid = SendGrid()
    env = {
        "SES_SNS_TOPIC_ARN": f"{TOPIC}, arn:aws:sns:us-east-1:123456789012:other",
        "POSTMARK_WEBHOOK_USER": "relay", "POSTMARK_WEBHOOK_PASSWORD": "pw",
        "MAILGUN_WEBHOOK_SIGNING_KEY": "key-abc", "SENDGRID_WEBHOOK_PUBLIC_KEY": sendgrid.public_key_text,
        "SES_SNS_CERT_URL_PREFIXES": "https://127.0.0.1:8443",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    settings = WebhookSettings.from_site(Site.load(site_dir))

    assert settings.ses_topic_arns == (TOPIC, "arn:aws:sns:us-east-1:123456789012:other")
    assert settings.sns_cert_url_prefixes == ("https://127.0.0.1:8443/",)
    assert settings.sendgrid_public_key.public_numbers() == sendgrid.key.public_key().public_numbers()
    assert "pw" not in repr(settings) and "key-abc" not in repr(settings)


@pytest.mark.parametrize(
    "name, value, message",
    [("SENDGRID_WEBHOOK_PUBLIC_KEY", "bm90IGEga2V5", "is not a public key"),
     ("POSTMARK_WEBHOOK_USER", "only-user", "go together"),
     ("SES_SNS_CERT_URL_PREFIXES", "http://127.0.0.1/", "is not an https://host/path/ prefix"),
     ("WEBHOOK_MAX_AGE", "5", "between 30 and 86400")],
)
def test_bad_webhook_settings_are_config_errors(site_dir, monkeypatch, name, value, message):
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=message):
        WebhookSettings.from_site(Site.load(site_dir))


# -- hostile input ---------------------------------------------------------------
def test_ses_recipients_that_are_no_address_are_dropped_and_text_is_cleaned(ses, sns_identity):
    settings, url = ses
    message = ses_bounce([("gone@example.net\r\nBcc: x@evil.example", "5.1.1", ""),
                          ("not an address", "5.1.1", ""),
                          ("ok@example.net", "5.1.1", "550 5.1.1 \x1b[31mred\x1b[0m\x00 user unknown " + "x" * 1000)])
    post = sns_post(message, url, sns_identity.key)

    [event] = verify_ses({}, body(post), settings).events

    assert event.recipient == "ok@example.net"
    assert "\x1b" not in event.detail and "\x00" not in event.detail and len(event.detail) <= 300


@pytest.mark.parametrize(
    "change, status, message",
    [
        ({"SignatureVersion": "3"}, 403, "unknown SignatureVersion"),
        ({"Signature": "%%%"}, 403, "not base64"),
        ({"SigningCertURL": None}, 400, "not a URL"),
        ({"SigningCertURL": "{base}missing.pem"}, 502, "answered 404"),
        ({"SigningCertURL": "{base}garbage.pem"}, 502, "no PEM certificate"),
    ],
)
def test_broken_sns_signature_fields_are_refused(ses, certs, sns_identity, change, status, message):
    settings, url = ses
    certs.files["/garbage.pem"] = b"-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n"
    post = sns_post(ses_bounce([("a@example.net", "5.1.1", "")]), url, sns_identity.key)
    post.update({k: v.format(base=certs.base) if isinstance(v, str) else v for k, v in change.items()})

    with pytest.raises(WebhookRejected, match=message) as refused:
        verify_ses({}, body(post), settings)
    assert refused.value.status == status


@pytest.mark.parametrize(
    "post, status",
    [
        (b'{"signature": "x", "event-data": {}}', 400),
        (b'{"signature": {"timestamp": "soon", "token": "t", "signature": "s"}}', 400),
        (b'{"signature": {"timestamp": "1", "token": "t", "signature": "\\u00ff"}}', 403),
        (b"\xff\xfe", 400),
    ],
    ids=["signature-not-object", "timestamp-not-number", "signature-not-hex", "not-utf8"],
)
def test_malformed_mailgun_posts_are_refused(post, status):
    with pytest.raises(WebhookRejected) as refused:
        verify_mailgun({}, post, WebhookSettings(mailgun_signing_key="k"))
    assert refused.value.status == status


def test_a_signed_mailgun_post_with_odd_event_data_gives_no_event():
    mailgun = Mailgun()
    settings = WebhookSettings(mailgun_signing_key=mailgun.key)

    for data in ([], {"event": "failed"}, {"event": "failed", "id": "x", "recipient": "a@b\n.example"}):
        assert verify_mailgun({}, mailgun.post(data), settings).events == []


def test_a_signed_mailgun_post_with_a_timestamp_past_any_calendar_is_refused():
    mailgun = Mailgun()
    with pytest.raises(WebhookRejected, match="no readable timestamp|future"):
        verify_mailgun({}, mailgun.post(mailgun_failed("a@example.net"), timestamp=10**30),
                       WebhookSettings(mailgun_signing_key=mailgun.key))


@pytest.mark.parametrize(
    "headers, payload, status",
    [
        ({"X-Twilio-Email-Event-Webhook-Signature": "%%%", "X-Twilio-Email-Event-Webhook-Timestamp": "1"}, b"[]", 403),
        ({"X-Twilio-Email-Event-Webhook-Timestamp": "1"}, b"[]", 400),
        ({"X-Twilio-Email-Event-Webhook-Signature": "AAAA", "X-Twilio-Email-Event-Webhook-Timestamp": "-1"}, b"[]", 400),
    ],
)
def test_sendgrid_posts_with_broken_signature_headers_are_refused(headers, payload, status):
    settings = WebhookSettings(sendgrid_public_key=sendgrid_key(SendGrid().public_key_text))
    with pytest.raises(WebhookRejected) as refused:
        verify_sendgrid(headers, payload, settings)
    assert refused.value.status == status


def test_a_signed_sendgrid_body_that_is_not_an_array_is_400_and_odd_items_are_skipped():
    sendgrid = SendGrid()
    settings = WebhookSettings(sendgrid_public_key=sendgrid_key(sendgrid.public_key_text))
    payload = b'{"event": "bounce"}'
    with pytest.raises(WebhookRejected) as refused:
        verify_sendgrid(sendgrid.headers(payload), payload, settings)
    assert refused.value.status == 400

    odd = body([1, "x", None, {"event": "bounce"}, sendgrid_event("bounce", "a\r\n@example.net")])
    verified = verify_sendgrid(sendgrid.headers(odd), odd, settings)
    assert verified.events == [] and verified.ignored == 5
