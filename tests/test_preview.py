"""The staff preview as a server: real HTTP on 127.0.0.1, real builds, real file edits.

What a browser makes of the page is in test_preview_browser.py; here are the
parts a browser is not needed for: where the server listens, what it refuses,
that the frames show the sample message, and that a broken change becomes a
page instead of a dead server.
"""

from __future__ import annotations

import email
import email.policy
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from newsletters.config import Site
from newsletters.errors import ConfigError, IssueFileError, NewsletterError
from newsletters.preview import mark_finding_lines, package_templates_dir, serve_preview

ISSUE = "issues/2026-11.toml"  # the example site's issue, as the Makefile's demo builds it
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "preview"


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode("utf-8")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8")


def version(server) -> dict:
    return json.loads(get(server.url + "version")[1])


def wait_for_rebuild(server, old: str, timeout: float = 20.0) -> dict:
    """The watcher notices edits by polling; give it a few polls and one build."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        current = version(server)
        if current["version"] != old:
            return current
        time.sleep(0.1)
    raise AssertionError(f"no rebuild within {timeout} s after the edit")


@pytest.fixture
def preview(site_dir):
    server = serve_preview(site_dir, ISSUE, port=0, poll_interval=0.1)
    yield server
    server.shutdown()


def sample_message_of_a_fresh_build(site_dir: Path):
    from newsletters.build import build_issue

    result = build_issue(Site.load(site_dir), site_dir / ISSUE, out_dir=site_dir / "reference-build")
    return email.message_from_bytes(result.paths["sample.eml"].read_bytes(), policy=email.policy.default)


def test_listens_on_the_loopback_address_only(preview):
    host, port = preview.server_address[:2]
    assert host == "127.0.0.1" and port > 0
    assert preview.url == f"http://127.0.0.1:{port}/"


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10", "example.com"])
def test_refuses_to_listen_beyond_this_computer(site_dir, host):
    with pytest.raises(ConfigError, match="loopback"):
        serve_preview(site_dir, ISSUE, host=host, port=0)


def test_refuses_requests_for_another_host_name(preview):
    """A web page that rebinds its own name to 127.0.0.1 must not be able to read the unsent issue."""
    host, port = preview.server_address[:2]
    connection = http.client.HTTPConnection(host, port, timeout=10)
    connection.request("GET", "/email.html", headers={"Host": f"evil.example.com:{port}"})
    response = connection.getresponse()
    assert response.status == 421
    assert b"Larkfield" not in response.read()
    connection.close()


def test_a_port_in_use_is_a_clear_error(site_dir):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(NewsletterError, match=f"cannot listen on port {port}") as info:
            serve_preview(site_dir, ISSUE, port=port)
        assert "--port" in info.value.hint


def test_a_missing_issue_file_is_refused_at_start(site_dir):
    with pytest.raises(IssueFileError, match="no such issue file") as info:
        serve_preview(site_dir, "issues/1999-01.toml", port=0)
    assert info.value.where == "issues/1999-01.toml"


def test_frames_show_the_sample_message_not_the_placeholders(preview, site_dir):
    status, html = get(preview.url + "email.html")
    assert status == 200
    assert "__NL_" not in html
    expected = sample_message_of_a_fresh_build(site_dir).get_body(("html",)).get_content()
    # The preview copy may carry finding markers (one attribute each); otherwise it is the message as built.
    assert re.sub(r' data-nl-finding="[0-9 ]+"', "", html) == expected


def test_page_shows_subject_from_headers_and_plain_text(preview, site_dir):
    message = sample_message_of_a_fresh_build(site_dir)
    status, page = get(preview.url)
    assert status == 200
    import html as html_lib

    text = html_lib.unescape(page)
    assert str(message["Subject"]) in text
    assert str(message["From"]) in text
    first_text_line = next(line for line in message.get_body(("plain",)).get_content().splitlines() if line.strip())
    assert first_text_line in text
    assert "__NL_" not in text


def test_subject_and_preheader_fields_show_the_sample_first_name(site_dir):
    from newsletters.personalize import SAMPLE_RECIPIENT

    issue = site_dir / ISSUE
    text = re.sub(r'(?m)^subject\s*=.*$', 'subject = "{first_name}, your winter skin plan"', issue.read_text(encoding="utf-8"))
    text = re.sub(r'(?m)^preheader\s*=.*$', 'preheader = "Made for you, {first_name}."', text)
    issue.write_text(text, encoding="utf-8")
    server = serve_preview(site_dir, ISSUE, port=0)
    try:
        import html as html_lib

        page = html_lib.unescape(get(server.url)[1])
    finally:
        server.shutdown()
    first_name = SAMPLE_RECIPIENT[2]
    assert f"{first_name}, your winter skin plan" in page
    assert f"Made for you, {first_name}." in page
    assert "__NL_" not in page and "{first_name}" not in page


def test_a_site_broken_before_the_start_still_serves_the_error(site_dir):
    config = site_dir / "newsletter.toml"
    config.write_text(config.read_text(encoding="utf-8").replace('name = "', 'name = ', 1), encoding="utf-8")
    server = serve_preview(site_dir, ISSUE, port=0)
    try:
        status, page = get(server.url)
        assert status == 200
        assert "The site settings (newsletter.toml or .env) have a problem" in page and "newsletter.toml" in page
    finally:
        server.shutdown()


def test_the_preview_leaves_no_files_in_the_site(preview, site_dir):
    before = sorted(p.relative_to(site_dir) for p in site_dir.rglob("*"))
    old = version(preview)["version"]
    issue = site_dir / ISSUE
    issue.write_text(issue.read_text(encoding="utf-8"), encoding="utf-8")
    os.utime(issue, ns=(time.time_ns(), time.time_ns() + 1_000_000))
    wait_for_rebuild(preview, old)
    after = sorted(p.relative_to(site_dir) for p in site_dir.rglob("*"))
    assert after == before
    assert not (site_dir / "build").exists()


def _break_and_fix(preview, path: Path, broken: str | None, expect: list[str]):
    """Make one broken change, check the page names it, undo it, check the issue is back."""
    original = path.read_bytes() if path.exists() else None
    old = version(preview)["version"]
    if broken is None:
        path.unlink()
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(broken, encoding="utf-8")
    state = wait_for_rebuild(preview, old)
    assert state["ok"] is False
    status, page = get(preview.url)
    assert status == 200, "the server must keep answering while the issue is broken"
    for text in expect:
        assert text in page
    assert get(preview.url + "email.html")[0] == 404  # no stale email passed off as current

    old = state["version"]
    if original is None:
        path.unlink()
    else:
        path.write_bytes(original)
    state = wait_for_rebuild(preview, old)
    assert state["ok"] is True
    assert get(preview.url + "email.html")[0] == 200


def test_an_article_outside_the_articles_folder_is_watched_too(site_dir):
    """An issue may name a draft kept elsewhere; saving that draft must rebuild as well."""
    drafts = site_dir / "drafts"
    drafts.mkdir()
    draft = drafts / "promotion_naming_a_prescription_medicine.md"
    draft.write_bytes((FIXTURES / draft.name).read_bytes())
    issue = site_dir / ISSUE
    with issue.open("a", encoding="utf-8") as handle:
        handle.write(f'\n[[articles]]\nsource = "drafts/{draft.name}"\nmode = "full"\n')
    server = serve_preview(site_dir, ISSUE, port=0, poll_interval=0.1)
    try:
        assert "Smoother frown lines in time for spring" in get(server.url + "email.html")[1]
        old = version(server)["version"]
        draft.write_text(draft.read_text(encoding="utf-8").replace("Smoother frown lines", "Softer frown lines"), encoding="utf-8")
        assert wait_for_rebuild(server, old)["ok"] is True
        assert "Softer frown lines in time for spring" in get(server.url + "email.html")[1]
    finally:
        server.shutdown()


def test_a_template_error_shows_in_the_page_and_fixing_it_recovers(preview, site_dir):
    assert package_templates_dir() is not None
    override = site_dir / "templates" / "footer.mjml.j2"
    _break_and_fix(
        preview,
        override,
        "<mj-section>{% if %}</mj-section>\n",
        ["A template could not be rendered", "footer.mjml.j2"],
    )


def test_an_unreadable_article_shows_in_the_page_and_restoring_it_recovers(preview, site_dir):
    from newsletters.issues import load_issue

    source = next(a.source for a in load_issue(site_dir / ISSUE).articles if "://" not in a.source)
    _break_and_fix(preview, site_dir / source, None, [Path(source).name])


def test_bad_issue_toml_shows_in_the_page_and_fixing_it_recovers(preview, site_dir):
    issue = site_dir / ISSUE
    _break_and_fix(
        preview,
        issue,
        issue.read_text(encoding="utf-8").replace("subject =", "subject ", 1),
        ["The issue file has a problem", "not valid TOML", "2026-11.toml"],
    )


OUTLOOK_ONLY = '<!--[if mso | IE]><table role="presentation"><tr><td><![endif]-->'
EMAIL_LINES = [
    "<html>",
    '<body style="margin:0">',
    OUTLOOK_ONLY + '<div class="col">',
    '<h3 class="title">The medical uses of Botox</h3>',
    '<p class="meta">18 May 2018</p>      <p>Botox<br>injections are popular</p>',
    '<div class="body">',
    "Botox on a line of its own",
    "</div></div></body>",
    "</html>",
]


def test_a_finding_marks_the_element_holding_its_text_on_its_line():
    html = "\n".join(EMAIL_LINES)
    marked, done = mark_finding_lines(html, [(1, 4, "Botox"), (2, 5, "botox"), (3, 7, "Botox"), (4, 3, "")])
    lines = marked.split("\n")
    assert len(lines) == len(EMAIL_LINES)
    assert lines[3] == '<h3 data-nl-finding="1" class="title">The medical uses of Botox</h3>'
    # Line 5 holds two paragraphs; the text is in the second, not in the first.
    assert lines[4] == '<p class="meta">18 May 2018</p>      <p data-nl-finding="2">Botox<br>injections are popular</p>'
    # Line 7 holds no tag: the element opened above it holds the text.
    assert lines[5] == '<div data-nl-finding="3" class="body">'
    # Line 3's Outlook-only table is inside a comment: the visible div is marked instead.
    assert lines[2] == OUTLOOK_ONLY + '<div data-nl-finding="4" class="col">'
    assert done == {1, 2, 3, 4}
    assert re.sub(r' data-nl-finding="[0-9 ]+"', "", marked) == html


def test_the_command_serves_until_interrupted(site_dir):
    process = subprocess.Popen(
        [sys.executable, "-m", "newsletters", "--site", str(site_dir), "preview", ISSUE, "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        assert match, f"no URL in the first line: {line!r} {process.stderr.read() if process.poll() is not None else ''}"
        status, page = get(match.group(0))
        assert status == 200 and "Desktop" in page and "Phone" in page
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=20)
    assert process.returncode == 0, err
    assert "Stopped." in out


def test_a_version_request_waits_for_the_next_build_and_answers_with_it(preview, site_dir):
    """The page's /version?after=V is answered when a newer build exists, not at its next poll."""
    old = version(preview)["version"]
    answers: list[dict] = []
    waiting = threading.Thread(
        target=lambda: answers.append(json.loads(get(preview.url + f"version?after={old}")[1])), daemon=True
    )
    waiting.start()
    waiting.join(0.5)
    assert waiting.is_alive() and answers == []  # nothing changed yet: the request is held open
    issue = site_dir / ISSUE
    issue.write_text(issue.read_text(encoding="utf-8").replace('subject = "', 'subject = "Held: ', 1), encoding="utf-8")
    waiting.join(20)
    assert answers and answers[0]["version"] != old and answers[0]["ok"] is True
    assert "Held: " in get(preview.url)[1]


def test_stopping_the_server_answers_a_waiting_version_request(site_dir):
    server = serve_preview(site_dir, ISSUE, port=0)
    old = version(server)["version"]
    answers: list[int] = []
    waiting = threading.Thread(target=lambda: answers.append(get(server.url + f"version?after={old}")[0]), daemon=True)
    waiting.start()
    waiting.join(0.3)
    server.shutdown()
    waiting.join(10)
    assert answers == [200]
