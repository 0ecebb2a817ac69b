"""The public pages against requests no form sends: odd methods, bodies, content types and mangled links.

Real HTTP to a werkzeug server on 127.0.0.1 and a real SQLite file (see ``test_web_pages``).
"""

from __future__ import annotations

import http.client
import re
from urllib.parse import urlsplit

import pytest

from recipients.tokens import unsubscribe_url
from tests.test_web_pages import start_server


@pytest.fixture
def live(site_dir, monkeypatch):
    running, stop = start_server(site_dir, monkeypatch)
    yield running
    stop()


def added(live, address: str):
    live.store.add(address)
    person = live.store.get(address)
    return person, urlsplit(unsubscribe_url(live.site, person.public_id)).path


def pending(live, address: str):
    assert live.subscribe(address).status == 200
    person = live.store.get(address)
    return person, live.confirm_link(address)  # the link from the mail the form sent


def unchanged(live, person, status: str) -> bool:
    return live.store.get(person.email).status == status and len(live.store.ledger(person.id)) == 1


def test_head_on_unsubscribe_and_confirm_links_changes_nothing(live):
    active, unsubscribe_path = added(live, "head.active@example.com")
    waiting, confirm_path = pending(live, "head.pending@example.com")

    for path in (unsubscribe_path, confirm_path):
        assert live.request("HEAD", path).status == 200

    assert unchanged(live, active, "active")
    assert unchanged(live, waiting, "pending")


def test_opening_a_confirm_link_confirms_once_however_often_it_is_opened(live):
    """GET /confirm/<token> confirms (issue 3); opening it again, or POSTing it, adds no second event."""
    waiting, confirm_path = pending(live, "opened.twice@example.com")

    for _ in range(2):
        page = live.get(confirm_path)
        assert page.status == 200 and "You are subscribed" in page.body
    pressed = live.post_form(confirm_path, {})
    assert pressed.status == 200 and "You are subscribed" in pressed.body

    assert live.store.get("opened.twice@example.com").status == "active"
    assert [e.event for e in live.store.ledger(waiting.id)] == ["subscribed", "confirmed"]


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
def test_other_methods_are_refused_with_405_and_change_nothing(live, method):
    active, unsubscribe_path = added(live, "methods@example.com")
    waiting, confirm_path = pending(live, "methods.pending@example.com")

    for path in ("/subscribe", unsubscribe_path, confirm_path, "/"):
        reply = live.request(method, path, b"List-Unsubscribe=One-Click",
                             {"Content-Type": "application/x-www-form-urlencoded"})
        assert reply.status == 405, path
        assert "Not allowed here" in reply.body and "GET" in reply.headers["Allow"]

    assert unchanged(live, active, "active")
    assert unchanged(live, waiting, "pending")


def test_an_oversize_sign_up_is_refused_but_an_oversize_unsubscribe_still_unsubscribes(live):
    person, path = added(live, "big.body@example.com")
    huge = b"List-Unsubscribe=One-Click&padding=" + b"x" * 100_000
    form = {"Content-Type": "application/x-www-form-urlencoded"}

    sign_up = live.request("POST", "/subscribe", b"email=big@example.com&padding=" + b"x" * 100_000, form)
    leaving = live.request("POST", path, huge, form)

    assert sign_up.status == 413 and "Too much data" in sign_up.body
    assert live.store.find("big@example.com") is None
    assert leaving.status == 200 and "You are unsubscribed" in leaving.body
    assert live.store.get("big.body@example.com").status == "unsubscribed"
    assert live.store.ledger(person.id)[-1].channel == "link"  # the body was too big to read


@pytest.mark.parametrize(
    "body, headers",
    [
        (b'{"List-Unsubscribe": "One-Click"}', {"Content-Type": "application/json"}),
        (b"List-Unsubscribe=One-Click", {"Content-Type": "text/plain"}),
        (b"List-Unsubscribe=One-Click", {}),
        (b"List-Unsubscribe=One-Click", {"Content-Type": "multipart/form-data"}),  # no boundary
        (b"--xx\r\nnot a part", {"Content-Type": "multipart/form-data; boundary=xx"}),
        (b"\x1f\x8b not gzip", {"Content-Type": "application/x-www-form-urlencoded", "Content-Encoding": "gzip"}),
        (b"x=\xff\xfe&y=%ZZ", {"Content-Type": "application/x-www-form-urlencoded"}),
    ],
    ids=["json", "text-plain", "no-content-type", "multipart-no-boundary", "broken-multipart", "false-gzip",
         "bad-bytes"],
)
def test_unsubscribe_post_with_any_body_unsubscribes(live, body, headers):
    person, path = added(live, "odd.body@example.com")

    reply = live.request("POST", path, body, headers)

    assert reply.status == 200 and "You are unsubscribed" in reply.body
    assert "Location" not in reply.headers and "Set-Cookie" not in reply.headers
    assert live.store.get("odd.body@example.com").status == "unsubscribed"
    assert live.store.ledger(person.id)[-1].channel == "link"


def test_chunked_one_click_post_is_read(live):
    person, path = added(live, "chunked@example.com")
    conn = http.client.HTTPConnection(urlsplit(live.base).hostname, urlsplit(live.base).port, timeout=10)
    try:
        conn.putrequest("POST", path)
        conn.putheader("Content-Type", "application/x-www-form-urlencoded")
        conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        body = b"List-Unsubscribe=One-Click"
        conn.send(b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
        reply = conn.getresponse()
        assert reply.status == 200
    finally:
        conn.close()
    assert live.store.ledger(person.id)[-1].channel == "one-click"


@pytest.mark.parametrize("junk", [".", ")", "%3E", "%20", "%E2%80%9D", "="])
def test_links_with_what_mail_programs_glue_to_their_end_still_work(live, junk):
    """A link at the end of a sentence or in brackets arrives with a '.', ')' or '>' on it."""
    person, path = added(live, "punctuation@example.com")

    page = live.get(path + junk)
    reply = live.request("POST", path + junk, b"", {"Content-Type": "application/x-www-form-urlencoded"})

    assert page.status == 200 and "<button" in page.body
    assert reply.status == 200 and live.store.get("punctuation@example.com").status == "unsubscribed"


def test_a_changed_character_inside_a_token_is_still_refused(live):
    person, path = added(live, "tamper@example.com")
    token = path.rsplit("/", 1)[1]
    middle = len(token) // 2
    swapped = token[:middle] + ("A" if token[middle] != "A" else "B") + token[middle + 1:]

    reply = live.request("POST", f"/unsubscribe/{swapped}.", b"", {"Content-Type": "application/x-www-form-urlencoded"})

    assert reply.status == 400 and "Nothing has been changed" in reply.body
    assert unchanged(live, person, "active")


@pytest.mark.parametrize(
    "first_name",
    ["Jane\u2028Bcc: all@example.net", "Jane\x00", "=?utf-8?b?SmFuZQ==?=", "Jane www.cheap-pills.example",
     "Visit https://example.net/win", "\u202eenaJ"],
    ids=["line-separator", "nul", "encoded-word", "www-link", "url", "rtl-override"],
)
def test_names_that_would_forge_headers_or_carry_links_are_refused(live, first_name):
    page = live.subscribe("jane@example.com", first_name)

    assert page.status == 400 and 'id="first_name-error"' in page.body
    assert live.store.find("jane@example.com") is None and live.outbox() == []


def test_a_form_with_missing_fields_says_what_is_missing(live):
    token = re.search(r'name="form_token" value="([^"]+)"', live.get("/subscribe").body).group(1)

    only_token = live.post_form("/subscribe", {"form_token": token})
    empty = live.request("POST", "/subscribe", b"", {"Content-Type": "application/x-www-form-urlencoded"})
    as_json = live.request("POST", "/subscribe", b'{"email": "json@example.com"}', {"Content-Type": "application/json"})

    assert only_token.status == 400
    for field in ("email", "consent", "adult"):
        assert f'id="{field}-error"' in only_token.body
    assert empty.status == 400 and "This form has expired" in empty.body
    assert as_json.status == 400
    assert live.store.stats()["total"] == 0


def test_unsubscribe_and_confirm_pages_look_the_same_whoever_the_link_belongs_to(live):
    """A forwarded link must not tell its reader whether the person is still subscribed."""
    people = {}
    for address in ("still.here@example.com", "already.left@example.com", "forgotten@example.com"):
        people[address] = added(live, address)
    live.store.unsubscribe_email("already.left@example.com")
    live.store.forget("forgotten@example.com")

    def without_token(text: str) -> str:
        return re.sub(r"/unsubscribe/[^\"]+", "/unsubscribe/TOKEN", text)

    shown = {address: without_token(live.get(path).body) for address, (_p, path) in people.items()}
    done = {address: live.post_form(path, {}) for address, (_p, path) in people.items()}

    assert len(set(shown.values())) == 1
    assert {(reply.status, reply.body) for reply in done.values()} == {(200, done["still.here@example.com"].body)}
    assert live.store.get("already.left@example.com").status == "unsubscribed"
    assert len(live.store.ledger(people["already.left@example.com"][0].id)) == 2  # no second unsubscribe event
