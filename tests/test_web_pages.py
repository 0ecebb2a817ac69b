"""The public pages over real HTTP: a werkzeug server on 127.0.0.1, a real SQLite file, the maildir outbox."""

from __future__ import annotations

import email
import http.client
import mailbox
import re
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from email import policy
from html.parser import HTMLParser
from urllib.parse import urlencode, urlsplit

import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from newsletters.config import Site
from recipients import Store, open_store
from recipients.tokens import CONFIRM_SALT, make_confirm_token, unsubscribe_url
from newsletters.web import create_app
from newsletters.web.serve import make_web_server

KEY = "test-secret-key-for-recipients-0123456789"


@dataclass
class Response:
    status: int
    headers: http.client.HTTPMessage
    body: str


@dataclass
class Live:
    base: str
    site: Site
    store: Store
    timeout: float = 10  # seconds a request may take

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None) -> Response:
        """One request, no redirects followed, no cookies kept: what a mail client's one-click POST is."""
        parts = urlsplit(self.base)
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=self.timeout)
        try:
            conn.request(method, path, body=body, headers={"User-Agent": "pytest-client/1.0", **(headers or {})})
            reply = conn.getresponse()
            return Response(reply.status, reply.headers, reply.read().decode("utf-8"))
        finally:
            conn.close()

    def get(self, path: str) -> Response:
        return self.request("GET", path)

    def post_form(self, path: str, fields: dict) -> Response:
        return self.request("POST", path, urlencode(fields).encode(),
                            {"Content-Type": "application/x-www-form-urlencoded"})

    def subscribe(self, address: str, first_name: str = "", **overrides) -> Response:
        token = re.search(r'name="form_token" value="([^"]+)"', self.get("/subscribe").body).group(1)
        fields = {"email": address, "first_name": first_name, "consent": "yes", "adult": "yes",
                  "form_token": token, "website": ""}
        fields.update(overrides)
        return self.post_form("/subscribe", {k: v for k, v in fields.items() if v is not None})

    def outbox(self) -> list[email.message.EmailMessage]:
        if not self.site.outbox_dir.exists():
            return []
        box = mailbox.Maildir(self.site.outbox_dir, create=False)
        return [email.message_from_bytes(bytes(box.get_bytes(key)), policy=policy.default) for key in box.keys()]

    def confirm_link(self, address: str) -> str:
        [message] = [m for m in self.outbox() if m["To"] == address]
        text = message.get_body(("plain",)).get_content()
        return re.search(rf"{re.escape(self.base)}(/confirm/\S+)", text).group(1)

    def press_confirm(self, path: str) -> Response:
        """What a person does: open the link from the confirmation e-mail."""
        return self.get(path)


def start_server(site_dir, monkeypatch, database_url: str | None = None, **env) -> tuple[Live, callable]:
    """The public app on a real HTTP server; the site's own SQLite file unless ``database_url`` is given."""
    monkeypatch.setenv("SECRET_KEY", KEY)
    monkeypatch.delenv("SMTP_HOST", raising=False)
    if database_url:
        monkeypatch.setenv("DATABASE_URL", database_url)
    else:
        monkeypatch.delenv("DATABASE_URL", raising=False)
    holder = {}
    # The server `newsletter serve` runs (its bare Server header included), on a port the OS picks.
    server = make_web_server(None, "127.0.0.1", 0, app=lambda environ, start: holder["app"](environ, start))
    base = f"http://127.0.0.1:{server.server_port}"
    monkeypatch.setenv("PUBLIC_URL", base)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    site = Site.load(site_dir)
    store = open_store(site)
    holder["app"] = create_app(site, store=store)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()

    def stop():
        server.shutdown()
        thread.join(5)
        store.close()

    return Live(base, site, store), stop


@pytest.fixture
def live(site_dir, monkeypatch):
    running, stop = start_server(site_dir, monkeypatch)
    yield running
    stop()


@pytest.fixture
def live_db(site_dir, monkeypatch, database_url):
    """The app on a fresh database, SQLite and PostgreSQL: for the pages that change the list."""
    running, stop = start_server(site_dir, monkeypatch, database_url)
    yield running
    stop()


class FormAudit(HTMLParser):
    """Collects what an accessibility reviewer looks at on a plain HTML page."""

    def __init__(self):
        super().__init__()
        self.html_lang = None
        self.inputs: list[dict] = []
        self.label_for: set[str] = set()
        self.scripts = 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "html":
            self.html_lang = attrs.get("lang")
        elif tag == "input":
            self.inputs.append(attrs)
        elif tag == "label" and "for" in attrs:
            self.label_for.add(attrs["for"])
        elif tag == "script":
            self.scripts += 1


def test_subscribe_form_is_plain_accessible_html_with_an_unticked_consent_box(live):
    page = live.get("/subscribe")

    assert page.status == 200
    audit = FormAudit()
    audit.feed(page.body)
    assert audit.html_lang == "en-GB"
    assert audit.scripts == 0
    visible = [i for i in audit.inputs if i.get("type") != "hidden"]
    assert {i["name"] for i in visible} == {"email", "first_name", "website", "consent", "adult"}
    assert all(i["id"] in audit.label_for for i in visible)  # every field has a label
    boxes = [i for i in visible if i.get("type") == "checkbox"]
    assert len(boxes) == 2 and not any("checked" in box for box in boxes)
    assert live.site.config.consent_text.replace("'", "&#39;") in page.body
    assert "18 or over" in page.body
    assert live.site.config.name.replace("&", "&amp;") in page.body
    assert live.site.config.primary_color in page.body  # the site's brand colour


def test_subscribe_then_confirm_makes_the_person_active_with_a_full_ledger(live_db):
    page = live_db.subscribe("jane.doe@example.com", "Jane")

    assert page.status == 200 and "check your inbox" in page.body.lower()
    person = live_db.store.get("jane.doe@example.com")
    assert person.status == "pending" and person.first_name == "Jane"
    [message] = live_db.outbox()
    assert message["To"] == "jane.doe@example.com"
    assert live_db.site.config.sender_address in message["From"]
    assert "confirm" in message["Subject"].lower()

    confirmed = live_db.get(live_db.confirm_link("jane.doe@example.com"))

    assert confirmed.status == 200 and "You are subscribed" in confirmed.body
    assert live_db.store.get("jane.doe@example.com").status == "active"
    assert [r.email for r in live_db.store.eligible()] == ["jane.doe@example.com"]
    subscribed, confirm_event = live_db.store.ledger(person.id)
    assert subscribed.event == "subscribed" and subscribed.method == "web"
    assert subscribed.source == f"{live_db.base}/subscribe"
    assert subscribed.consent_text.startswith(live_db.site.config.consent_text)
    assert "18 or over" in subscribed.consent_text
    assert (subscribed.ip, subscribed.user_agent) == ("127.0.0.1", "pytest-client/1.0")
    assert confirm_event.event == "confirmed"

    again = live_db.press_confirm(live_db.confirm_link("jane.doe@example.com"))  # idempotent
    assert again.status == 200 and len(live_db.store.ledger(person.id)) == 2


def test_honeypot_filled_pretends_success_and_stores_nothing(live_db):
    page = live_db.subscribe("bot@example.com", "Bot", website="http://spam.example.com")

    assert page.status == 200 and "check your inbox" in page.body.lower()
    assert live_db.store.find("bot@example.com") is None
    assert live_db.outbox() == []


@pytest.mark.parametrize(
    "overrides, field, message",
    [
        ({"consent": None}, "consent", "tick the box"),
        ({"adult": None}, "adult", "18 or over"),
        ({"email": "jane.doe@example"}, "email", "valid e-mail address"),
        ({"first_name": "Jane\r\nBcc: all@example.com"}, "first_name", "without line breaks"),
    ],
)
def test_an_incomplete_form_is_shown_again_with_the_reason_and_nothing_stored(live, overrides, field, message):
    page = live.subscribe("jane.doe@example.com", **{"first_name": "Jane", **overrides})

    assert page.status == 400
    assert f'id="{field}-error"' in page.body and message in page.body
    assert live.store.stats()["total"] == 0 and live.outbox() == []


def test_a_post_without_the_signed_form_token_is_refused(live):
    page = live.post_form("/subscribe", {"email": "jane@example.com", "consent": "yes", "adult": "yes"})
    assert page.status == 400
    assert live.store.stats()["total"] == 0


def test_resubscribing_reveals_nothing_about_the_address(live_db):
    live_db.store.add("active@example.com")
    live_db.store.add("left@example.com")
    live_db.store.unsubscribe_email("left@example.com")
    live_db.store.forget("forgotten@example.com")

    pages = {address: live_db.subscribe(address) for address in (
        "new@example.com", "active@example.com", "left@example.com", "forgotten@example.com")}

    assert {(p.status, p.body) for p in pages.values()} == {(pages["new@example.com"].status,
                                                             pages["new@example.com"].body)}
    assert sorted(m["To"] for m in live_db.outbox()) == ["left@example.com", "new@example.com"]
    assert live_db.store.get("active@example.com").status == "active"
    # Someone who had left gets a fresh confirmation; only confirming makes them active again.
    assert live_db.store.get("left@example.com").status == "pending"
    assert live_db.store.find("forgotten@example.com") is None  # nothing stored, no mail: only the hash is kept
    live_db.press_confirm(live_db.confirm_link("left@example.com"))
    assert live_db.store.get("left@example.com").status == "active"


def test_get_unsubscribe_shows_a_button_and_changes_nothing(live):
    live.store.add("jane@example.com")
    person = live.store.get("jane@example.com")
    path = urlsplit(unsubscribe_url(live.site, person.public_id)).path

    page = live.get(path)

    assert page.status == 200
    assert re.search(rf'<form method="post" action="{re.escape(path)}">', page.body)
    assert "<button" in page.body and "jane@example.com" not in page.body
    assert live.store.get("jane@example.com").status == "active"
    assert "Set-Cookie" not in page.headers


def test_rfc8058_one_click_post_unsubscribes_at_once_and_is_idempotent(live_db):
    live_db.store.add("jane@example.com")
    person = live_db.store.get("jane@example.com")
    path = urlsplit(unsubscribe_url(live_db.site, person.public_id)).path

    first = live_db.post_form(path, {"List-Unsubscribe": "One-Click"})
    second = live_db.post_form(path, {"List-Unsubscribe": "One-Click"})

    for reply in (first, second):
        assert reply.status == 200
        assert "Location" not in reply.headers and "Set-Cookie" not in reply.headers
        assert "You are unsubscribed" in reply.body
    assert live_db.store.get("jane@example.com").status == "unsubscribed"
    assert [(e.event, e.channel) for e in live_db.store.ledger(person.id)] == [
        ("subscribed", None), ("unsubscribed", "one-click")]
    assert live_db.store.count_eligible() == 0


def test_multipart_one_click_and_the_page_button_both_unsubscribe(live_db):
    live_db.store.add("multi@example.com")
    live_db.store.add("button@example.com")
    multi = live_db.store.get("multi@example.com")
    button = live_db.store.get("button@example.com")
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\n"
            f"One-Click\r\n--{boundary}--\r\n").encode()

    multipart = live_db.request("POST", urlsplit(unsubscribe_url(live_db.site, multi.public_id)).path, body,
                             {"Content-Type": f"multipart/form-data; boundary={boundary}"})
    # The button on the GET page posts an empty form: no List-Unsubscribe field.
    plain = live_db.request("POST", urlsplit(unsubscribe_url(live_db.site, button.public_id)).path, b"",
                         {"Content-Type": "application/x-www-form-urlencoded"})

    assert multipart.status == 200 and plain.status == 200
    assert live_db.store.ledger(multi.id)[-1].channel == "one-click"
    assert live_db.store.ledger(button.id)[-1].channel == "link"
    assert live_db.store.count_eligible() == 0


def test_forged_tampered_and_expired_tokens_get_400_and_change_nothing(live_db):
    live_db.subscribe("pending@example.com")
    live_db.store.add("active@example.com")
    pending = live_db.store.get("pending@example.com")
    active = live_db.store.get("active@example.com")
    good_unsubscribe = urlsplit(unsubscribe_url(live_db.site, active.public_id)).path
    tampered = good_unsubscribe[:-3] + ("AAA" if not good_unsubscribe.endswith("AAA") else "BBB")

    class EightDaysAgo(TimestampSigner):
        def get_timestamp(self):
            return int(time.time()) - 8 * 24 * 3600

    nonce = live_db.store.confirmations_due()[0].nonce if live_db.store.confirmations_due() else "some-nonce"
    expired = URLSafeTimedSerializer(KEY, salt=CONFIRM_SALT, signer=EightDaysAgo).dumps([pending.public_id, nonce])
    other_key = make_confirm_token("some-other-secret-key-0123456789", pending.public_id, nonce)
    unsubscribe_token_as_confirm = "/confirm/" + good_unsubscribe.rsplit("/", 1)[1]

    attempts = [
        ("GET", "/confirm/not-a-token"),
        ("GET", f"/confirm/{expired}"),
        ("GET", f"/confirm/{other_key}"),
        ("GET", unsubscribe_token_as_confirm),
        ("POST", f"/confirm/{expired}"),
        ("POST", f"/confirm/{other_key}"),
        ("POST", unsubscribe_token_as_confirm),
        ("GET", tampered),
        ("POST", tampered),
        ("POST", "/unsubscribe/" + make_confirm_token(KEY, active.public_id, nonce)),  # right key, wrong purpose
    ]
    for method, path in attempts:
        reply = live_db.request(method, path, b"List-Unsubscribe=One-Click" if method == "POST" else None,
                             {"Content-Type": "application/x-www-form-urlencoded"} if method == "POST" else None)
        assert reply.status == 400, (method, path)
        assert "Nothing has been changed" in reply.body

    assert live_db.store.get("pending@example.com").status == "pending"
    assert live_db.store.get("active@example.com").status == "active"
    assert len(live_db.store.ledger(pending.id)) == 1 and len(live_db.store.ledger(active.id)) == 1
    assert "expired" in live_db.get(f"/confirm/{expired}").body


def test_issue_archive_serves_built_pages_and_nothing_else(live):
    issue_dir = live.site.build_dir / "2026-11"
    issue_dir.mkdir(parents=True)
    (issue_dir / "web.html").write_text("<!doctype html><title>November</title><p>Winter skin care</p>")
    (live.site.root / ".env").write_text("SMTP_PASSWORD=hunter2-not-for-the-web\n")

    assert "Winter skin care" in live.get("/issues/2026-11/").body
    assert 'href="/issues/2026-11/"' in live.get("/").body
    for path in ("/issues/2026-12/", "/issues/../newsletter.toml", "/issues/..%2F.env/", "/issues/%2e%2e/",
                 "/issues/2026-11/../../.env", "/issues/.env/"):
        reply = live.get(path)
        assert reply.status == 404, path
        assert "hunter2" not in reply.body and "[site]" not in reply.body


def test_pages_cannot_be_framed_and_leak_no_referrer(live):
    page = live.get("/subscribe")
    assert page.headers["X-Frame-Options"] == "DENY"
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]


def test_without_double_opt_in_a_new_sign_up_is_active_at_once(site_dir, monkeypatch, database_url):
    toml = site_dir / "newsletter.toml"
    toml.write_text(toml.read_text().replace("double_opt_in = true", "double_opt_in = false"))
    running, stop = start_server(site_dir, monkeypatch, database_url)
    try:
        assert running.subscribe("quick@example.com").status == 200
        assert running.store.get("quick@example.com").status == "active"
        assert [r.email for r in running.store.eligible()] == ["quick@example.com"]
        assert running.outbox() == []
    finally:
        stop()


def test_when_the_mail_server_is_down_the_sign_up_is_kept_pending_with_its_mail_owed(site_dir, monkeypatch, database_url):
    with socket.socket() as probe:  # a port on which nothing listens
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    running, stop = start_server(site_dir, monkeypatch, database_url, SMTP_HOST="127.0.0.1", SMTP_PORT=str(closed_port),
                                 SMTP_SECURITY="none", SMTP_TIMEOUT="3")
    try:
        page = running.subscribe("jane@example.com")
        assert page.status == 503 and "could not be sent yet" in page.body
        assert running.store.get("jane@example.com").status == "pending"
        assert [due.email for due in running.store.confirmations_due()] == ["jane@example.com"]
        assert running.store.count_eligible() == 0
    finally:
        stop()
