"""A site ready to send: the example site, a one-article issue, a subscriber list, SMTP settings in .env.

Shared by the send tests (in-process and through the real ``newsletter`` command).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from newsletters.config import Site
from recipients import open_store

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "send"
ISSUE = "issues/issue_for_send_tests.toml"
ISSUE_SLUG = "2026-11-send-test"
SECRET = "send-tests-secret-key-0123456789"
SENDER = "news@larkfield-clinic.example.com"

# Settings a test may set; cleared from the real environment so only .env counts.
SETTINGS = (
    "SMTP_HOST", "SMTP_PORT", "SMTP_SECURITY", "SMTP_USERNAME", "SMTP_PASSWORD", "SMTP_CONNECTIONS", "SMTP_CA_FILE",
    "SMTP_TIMEOUT", "SEND_RATE", "SEND_MAX_PER_HOUR", "SEND_MAX_ATTEMPTS", "SEND_RETRY_DELAY",
    "DKIM_PRIVATE_KEY_FILE", "DKIM_SELECTOR", "DKIM_DOMAIN", "DATABASE_URL", "SECRET_KEY", "PUBLIC_URL",
    "SEND_PAUSE_MAX", "SEND_PAUSE_LIMIT", "BOUNCE_ADDRESS", "BOUNCE_IMAP_HOST", "BOUNCE_POP3_HOST",
    "BOUNCE_PROCESSED_FOLDER", "MAILGUN_WEBHOOK_SIGNING_KEY", "POSTMARK_WEBHOOK_USER", "POSTMARK_WEBHOOK_PASSWORD",
    "SES_SNS_CERT_URL_PREFIXES", "SES_SNS_CA_FILE", "SENDGRID_WEBHOOK_PUBLIC_KEY", "WEBHOOK_REPLAY_FILE",
)


def make_send_site(site_dir: Path, **settings) -> Path:
    (site_dir / "articles").mkdir(exist_ok=True)
    (site_dir / "issues").mkdir(exist_ok=True)
    shutil.copy(FIXTURES / "sunscreen_in_winter_short_post.md", site_dir / "articles")
    shutil.copy(FIXTURES / "issue_for_send_tests.toml", site_dir / "issues")
    write_env(site_dir, **settings)
    return site_dir


# Tests that run on both databases set this (see the `database_url` fixture); None: the site's SQLite file.
DATABASE_URL: str | None = None


def write_env(site_dir: Path, **settings) -> None:
    values = {"SECRET_KEY": SECRET, "PUBLIC_URL": "https://news.larkfield-clinic.example.com"}
    if DATABASE_URL:
        values["DATABASE_URL"] = DATABASE_URL
    values.update({k: str(v) for k, v in settings.items() if v is not None})
    (site_dir / ".env").write_text("".join(f"{k}={v}\n" for k, v in values.items()))


def smtp_settings(port: int, **extra) -> dict:
    """Plain SMTP to a test server, fast retries."""
    return {
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": port,
        "SMTP_SECURITY": "none",
        "SMTP_CONNECTIONS": 3,
        "SMTP_TIMEOUT": 5,
        "SEND_RETRY_DELAY": 0.02,
        **extra,
    }


def add_subscribers(site_dir: Path, count: int, prefix: str = "reader") -> list[str]:
    addresses = [f"{prefix}{n:04d}@example.org" for n in range(count)]
    with open_store(Site.load(site_dir)) as store:
        for n, address in enumerate(addresses):
            store.add(address, first_name=f"Reader{n}", last_name="Example", source="test list")
    return addresses


def add_ineligible(site_dir: Path) -> list[str]:
    """People who must never get the issue: signed up but never confirmed, and unsubscribed."""
    pending, left = "pending.never.confirmed@example.org", "unsubscribed.last.month@example.org"
    with open_store(Site.load(site_dir)) as store:
        store.subscribe(pending, "Pat", source="website form", consent_text="Yes please")
        store.add(left, first_name="Lou", source="test list")
        store.unsubscribe_email(left)
    return [pending, left]


def clean_environment() -> dict:
    env = {k: v for k, v in os.environ.items() if k not in SETTINGS}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def newsletter(site_dir: Path, *args: str, timeout: float = 120, **popen) -> subprocess.CompletedProcess:
    """The real command, in its own process: ``newsletter --site SITE ARGS``."""
    return subprocess.run(
        [sys.executable, "-m", "newsletters", "--site", str(site_dir), *args],
        env=clean_environment(),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        **popen,
    )


def start_newsletter(site_dir: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "newsletters", "--site", str(site_dir), *args],
        env=clean_environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )


def latest_report(site_dir: Path) -> dict:
    reports = sorted((site_dir / "reports").glob("send-*.json"), key=lambda p: p.stat().st_mtime_ns)
    return json.loads(reports[-1].read_text())
