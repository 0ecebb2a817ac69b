"""The staff and review commands through the real ``newsletter`` command, and ``send`` under ``[review] required``."""

from __future__ import annotations

import json
import socket

import pytest
import sqlalchemy as sa
from alembic import command

from newsletters.config import Site
from newsletters.errors import ConfigError
from newsletters.review import ReviewLog, StaffAccounts
from newsletters.build import build_issue
from newsletters.delivery.session import content_digest
from newsletters.review import approval_digest
from foundation.database import create_engine
from foundation.migrate import alembic_config, current_revision, upgrade
from foundation.tables import staff_accounts
from tests.send_fixtures import ISSUE, latest_report, newsletter, write_env
from tests.staff_fixtures import EDITOR, REVIEWER, edit_article, make_review_site, newsletter_with_input

PASSWORD = "a long staff password nobody guesses"



def approve_current_build(site_dir, who=REVIEWER) -> None:
    """What the staff page records when a reviewer presses Approve (the pages have their own tests)."""
    site = Site.load(site_dir)
    build = build_issue(site, ISSUE)
    digest = approval_digest(site, build.issue.path, content_digest(build.rendered))
    with StaffAccounts.open(site) as accounts:
        member = accounts.get(who[0])
    log = ReviewLog.open(site)
    log.record(build.issue.slug, digest, member, "approved", "fine")
    log.close()


def test_staff_add_list_remove_with_the_password_never_shown_or_stored(site_dir):
    make_review_site(site_dir)
    added = newsletter_with_input(site_dir, "staff", "add", "Nurse.Lee@Larkfield-Clinic.example.com",
                                  "--name", "Nurse Lee", "--role", "editor", "--password-stdin", stdin=PASSWORD + "\n")
    assert added.returncode == 0, added.stderr
    assert "added nurse.lee@larkfield-clinic.example.com (Nurse Lee, editor)" in added.stdout
    listing = newsletter(site_dir, "staff", "list")
    assert "nurse.lee@larkfield-clinic.example.com\tNurse Lee\teditor" in listing.stdout
    assert REVIEWER[0] in listing.stdout and EDITOR[0] in listing.stdout
    for output in (added.stdout, added.stderr, listing.stdout, listing.stderr):
        assert PASSWORD not in output
    engine = sa.create_engine(f"sqlite:///{site_dir / 'newsletter.db'}")
    with engine.connect() as conn:
        stored = conn.execute(sa.select(staff_accounts.c.password_hash)
                              .where(staff_accounts.c.email == "nurse.lee@larkfield-clinic.example.com")).scalar_one()
    engine.dispose()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    assert PASSWORD.encode() not in (site_dir / "newsletter.db").read_bytes()

    removed = newsletter(site_dir, "staff", "remove", "nurse.lee@larkfield-clinic.example.com")
    assert removed.returncode == 0 and "removed" in removed.stdout
    assert "nurse.lee" not in newsletter(site_dir, "staff", "list").stdout
    again = newsletter(site_dir, "staff", "remove", "nurse.lee@larkfield-clinic.example.com")
    assert again.returncode == 1 and again.stderr.startswith("error: no staff account for")


def test_staff_add_refuses_a_short_password_a_bad_role_and_no_way_to_ask(site_dir):
    make_review_site(site_dir)
    short = newsletter_with_input(site_dir, "staff", "add", "a@example.org", "--name", "A", "--role", "reviewer",
                                  "--password-stdin", stdin="short\n")
    assert short.returncode == 1 and "at least 12 characters" in short.stderr
    no_tty = newsletter(site_dir, "staff", "add", "a@example.org", "--name", "A", "--role", "reviewer")
    assert no_tty.returncode == 1 and "--password-stdin" in no_tty.stderr
    role = newsletter_with_input(site_dir, "staff", "add", "a@example.org", "--name", "A", "--role", "boss",
                                 "--password-stdin", stdin=PASSWORD)
    assert role.returncode == 2 and "boss" in role.stderr
    assert "a@example.org" not in newsletter(site_dir, "staff", "list").stdout


def test_reset_password_ends_every_session_and_the_new_password_works(site_dir):
    make_review_site(site_dir)
    site = Site.load(site_dir)
    with StaffAccounts.open(site) as accounts:
        token = accounts.sign_in(REVIEWER[0], REVIEWER[3], "127.0.0.1")
        assert accounts.session(token).member.email == REVIEWER[0]
    reset = newsletter_with_input(site_dir, "staff", "reset-password", REVIEWER[0], "--password-stdin",
                                  stdin=PASSWORD + "\n")
    assert reset.returncode == 0, reset.stderr
    assert PASSWORD not in reset.stdout + reset.stderr
    with StaffAccounts.open(site) as accounts:
        assert accounts.session(token) is None
        assert accounts.sign_in(REVIEWER[0], REVIEWER[3], "127.0.0.1") is None
        assert accounts.sign_in(REVIEWER[0], PASSWORD, "127.0.0.1") is not None


def test_send_refuses_before_connecting_until_approved_then_names_the_approval_in_output_and_report(site_dir):
    make_review_site(site_dir)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.setblocking(False)
    try:
        write_env(site_dir, PUBLIC_URL="http://127.0.0.1:8080", SMTP_HOST="127.0.0.1",
                  SMTP_PORT=listener.getsockname()[1], SMTP_SECURITY="none", SMTP_TIMEOUT=2)
        refused = newsletter(site_dir, "send", ISSUE, "--yes")
        assert refused.returncode == 1
        assert "is not approved for sending: 1 more approval by a reviewer (0 of 1)" in refused.stderr
        with pytest.raises(BlockingIOError):  # nobody connected to the mail server
            listener.accept()
    finally:
        listener.close()
    status = newsletter(site_dir, "review", "status", ISSUE)
    assert status.returncode == 1 and "not approved" in status.stdout and "missing: 1 more approval" in status.stdout

    write_env(site_dir, PUBLIC_URL="http://127.0.0.1:8080")  # the maildir outbox
    approve_current_build(site_dir)
    status = newsletter(site_dir, "review", "status", ISSUE, "--json")
    assert status.returncode == 0 and json.loads(status.stdout)["approvals"][0]["name"] == REVIEWER[1]
    sent = newsletter(site_dir, "send", ISSUE, "--yes")
    assert sent.returncode == 0, sent.stderr
    assert f"Approved:   by {REVIEWER[1]} <{REVIEWER[0]}> on " in sent.stdout
    report = latest_report(site_dir)
    assert report["summary"]["sent"] == 2
    assert [(a["name"], a["email"]) for a in report["review"]["approvals"]] == [(REVIEWER[1], REVIEWER[0])]
    assert report["review"]["approvals"][0]["at"]


def test_an_article_edit_after_the_approval_makes_send_refuse_and_says_why(site_dir):
    make_review_site(site_dir)
    approve_current_build(site_dir)
    edit_article(site_dir)
    refused = newsletter(site_dir, "send", ISSUE, "--yes")
    assert refused.returncode == 1
    assert "the approval by Dr Ada Okafor was for an earlier version" in refused.stderr
    assert not (site_dir / "outbox").exists() or not any((site_dir / "outbox" / "new").iterdir())


def test_two_approvals_needed_one_is_not_enough_and_an_editor_cannot_be_the_second(site_dir):
    make_review_site(site_dir, approvals=2)
    approve_current_build(site_dir)
    with pytest.raises(Exception, match="only reviewers approve"):
        approve_current_build(site_dir, who=EDITOR)
    refused = newsletter(site_dir, "send", ISSUE, "--yes")
    assert refused.returncode == 1 and "1 more approval by a reviewer (1 of 2)" in refused.stderr


def test_review_approvals_must_be_a_sensible_number(site_dir):
    make_review_site(site_dir)
    toml = site_dir / "newsletter.toml"
    toml.write_text(toml.read_text().replace("approvals = 1", "approvals = 0"))
    with pytest.raises(ConfigError, match="review.approvals must be a whole number from 1 to 20"):
        Site.load(site_dir)


def test_the_staff_revision_upgrades_an_existing_database_and_downgrades_cleanly(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    try:
        assert upgrade(engine, "0004_send_run_incomplete") == "0004_send_run_incomplete"
        assert "staff_accounts" not in sa.inspect(engine).get_table_names()
        assert upgrade(engine, "0005_staff_review") == "0005_staff_review"
        tables = set(sa.inspect(engine).get_table_names())
        assert {"staff_accounts", "staff_sessions", "staff_sign_in_failures", "review_events"} <= tables
        with engine.begin() as conn:
            command.downgrade(alembic_config(conn), "0004_send_run_incomplete")
        assert current_revision(engine) == "0004_send_run_incomplete"
        assert not {"staff_accounts", "review_events"} & set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()
