"""A site whose sends need a reviewer's approval, its staff, and ``newsletter serve`` running on 127.0.0.1.

Shared by the staff tests: the command line, a plain HTTP client and a real browser.
"""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from contextlib import contextmanager
from pathlib import Path

from newsletters.config import Site
from newsletters.review import StaffAccounts
from newsletters.web.serve import make_web_server
from tests.send_fixtures import ISSUE, add_subscribers, clean_environment, make_send_site, write_env

REVIEWER = ("dr.okafor@larkfield-clinic.example.com", "Dr Ada Okafor", "reviewer", "correct horse battery staple")
EDITOR = ("sam.editor@larkfield-clinic.example.com", "Sam Editor", "editor", "editors write the words here")
ARTICLE = "articles/sunscreen_in_winter_short_post.md"
ISSUE_NAME = Path(ISSUE).stem


def make_review_site(site_dir: Path, approvals: int = 1, public_url: str = "http://127.0.0.1:8080") -> Path:
    """The send tests' site with ``[review] required = true``, two subscribers and a reviewer and an editor."""
    make_send_site(site_dir)
    write_env(site_dir, PUBLIC_URL=public_url)
    with (site_dir / "newsletter.toml").open("a", encoding="utf-8") as toml:
        toml.write(f"\n[review]\nrequired = true\napprovals = {approvals}\n")
    add_subscribers(site_dir, 2)
    with StaffAccounts.open(Site.load(site_dir)) as accounts:
        for email, name, role, password in (REVIEWER, EDITOR):
            accounts.add(email, name, role, password)
    return site_dir


def edit_article(site_dir: Path) -> None:
    """A change a reviewer must see again: one sentence more in the issue's article."""
    path = site_dir / ARTICLE
    path.write_text(path.read_text(encoding="utf-8") + "\nA late addition nobody has reviewed.\n", encoding="utf-8")


@contextmanager
def serving(site_dir: Path):
    """``newsletter serve``'s server for the site on a free loopback port; yields its base URL."""
    server = make_web_server(Site.load(site_dir), "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def hidden_field(html: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert match, f"no hidden field {name} in the page"
    return match.group(1)


def newsletter_with_input(site_dir: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    """The real command in its own process, with ``stdin`` as its standard input."""
    return subprocess.run(
        [sys.executable, "-m", "newsletters", "--site", str(site_dir), *args],
        env=clean_environment(), input=stdin, capture_output=True, text=True, timeout=120,
    )
