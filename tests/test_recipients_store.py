"""The subscriber store on a real SQLite file and a real PostgreSQL: eligibility, the ledger, erasure, export, migrations."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
import sqlalchemy as sa

from newsletters.config import Site
from newsletters.errors import ConfigError, RecipientError
from recipients import ConfirmationDue, Recipient, SignUp, Store, open_store
from recipients.export import records, write_csv, write_json
from foundation.migrate import HEAD, current_revision, head_revision, upgrade
from foundation.tables import consent_events, metadata, subscribers, suppressions

KEY = "test-secret-key-for-recipients-0123456789"


@pytest.fixture
def db_url(database_url) -> str:
    """A fresh database, on SQLite and on PostgreSQL (each test that uses it runs on both)."""
    return database_url


@pytest.fixture
def store(db_url):
    with Store(db_url, secret_key=KEY, double_opt_in=True) as store:
        yield store


def emails(store: Store) -> list[str]:
    return [r.email for r in store.eligible()]


def every_value(store: Store) -> str:
    """Every value in every table of the database, as text (a dump that works on SQLite and PostgreSQL)."""
    with store.engine.connect() as conn:
        return "\n".join(str(row) for table in metadata.sorted_tables for row in conn.execute(table.select()))


def web_signup(store: Store, email: str, name: str = "") -> ConfirmationDue:
    """A sign-up from the form whose confirmation mail went out; returns what its link carries."""
    signup = store.subscribe(email, name, source="https://clinic.example.com/subscribe", consent_text="wording v1",
                             ip="192.0.2.7", user_agent="Firefox/140")
    if signup.confirmation:
        store.confirmation_sent(signup.confirmation)
    return signup.confirmation


def test_eligible_means_active_consented_confirmed_and_not_suppressed(store):
    store.add("admin.added@example.com", first_name="Ada")
    confirmed = web_signup(store, "confirmed@example.com")
    store.confirm(confirmed.public_id, confirmed.nonce)
    web_signup(store, "pending@example.com")
    store.add("left@example.com")
    store.unsubscribe_email("left@example.com")
    store.add("bounced@example.com")
    store.record_bounce(store.get("bounced@example.com").id, "550 5.1.1 no such user")
    store.add("complained@example.com")
    store.record_complaint(store.get("complained@example.com").id, "ARF report")
    store.add("forgotten@example.com")
    store.forget("forgotten@example.com")

    assert emails(store) == ["admin.added@example.com", "confirmed@example.com"]
    assert store.count_eligible() == 2
    first = next(store.eligible())
    assert isinstance(first, Recipient) and first.first_name == "Ada" and first.public_id
    assert first.public_id != str(first.id) and "@" not in first.public_id


def test_status_edited_by_hand_does_not_make_anyone_eligible(store, db_url):
    store.add("reactivated@example.com")
    store.unsubscribe_email("reactivated@example.com")
    store.add("suppressed@example.com")
    engine = sa.create_engine(db_url)
    with engine.begin() as conn:
        # Someone "fixes" statuses in a database tool, and inserts a row with no consent at all.
        conn.execute(subscribers.update().values(status="active"))
        conn.execute(subscribers.insert().values(
            public_id="handmade", email="nobody.asked@example.com", email_hash="0" * 64,
            attributes={}, status="active", created_at=datetime.now(timezone.utc)))
        conn.execute(suppressions.insert().values(
            email_hash=store.hash("suppressed@example.com"), reason="erased", created_at=datetime.now(timezone.utc)))
    engine.dispose()

    # Unsubscribed since their consent; no consent event; on the suppression list.
    assert emails(store) == []


def test_double_opt_in_applies_to_web_sign_ups_only(db_url):
    with Store(db_url, secret_key=KEY, double_opt_in=False) as single:
        single.add("imported@example.com")
        web_signup(single, "web@example.com")
        assert single.get("web@example.com").status == "active"
        assert emails(single) == ["imported@example.com", "web@example.com"]
    # Turning double opt-in on later: an unconfirmed web sign-up is no longer mailed.
    with Store(db_url, secret_key=KEY, double_opt_in=True) as double:
        assert emails(double) == ["imported@example.com"]


def test_someone_who_left_and_signs_up_again_must_confirm_even_without_double_opt_in(db_url):
    with Store(db_url, secret_key=KEY, double_opt_in=False) as store:
        store.add("back@example.com")
        store.unsubscribe_email("back@example.com")
        signup = store.subscribe("back@example.com", source="form", consent_text="wording")
        assert signup.outcome == "pending"
        assert store.get("back@example.com").status == "pending"
        assert signup.confirmation.email == "back@example.com"
        assert emails(store) == []
        store.confirm(signup.confirmation.public_id, signup.confirmation.nonce)
        assert emails(store) == ["back@example.com"]


def test_eligible_streams_in_batches_ordered_by_id(store):
    for n in range(10):
        store.add(f"person{n:02d}@example.com")
    statements = []
    sa.event.listen(store.engine, "before_cursor_execute",
                    lambda conn, cursor, statement, *rest: statements.append(statement))

    got = [r.email for r in store.eligible(batch_size=3)]

    assert got == [f"person{n:02d}@example.com" for n in range(10)]
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 4  # 3 + 3 + 3 + 1 rows: never all rows in one go
    assert all("LIMIT" in s.upper() for s in selects)


def test_web_sign_up_ledger_records_source_wording_ip_and_user_agent(store):
    due = web_signup(store, "jane@example.com", "Jane")
    store.confirm(due.public_id, due.nonce, ip="192.0.2.8", user_agent="Firefox/140")
    store.unsubscribe(due.public_id, "one-click", ip="192.0.2.9", user_agent="Gmail")

    ledger = store.ledger(store.get("jane@example.com").id)

    assert [(e.event, e.method, e.channel) for e in ledger] == [
        ("subscribed", "web", None), ("confirmed", None, None), ("unsubscribed", None, "one-click")]
    subscribed = ledger[0]
    assert subscribed.source == "https://clinic.example.com/subscribe"
    assert subscribed.consent_text == "wording v1"
    assert (subscribed.ip, subscribed.user_agent) == ("192.0.2.7", "Firefox/140")
    assert all(e.at.tzinfo is not None and e.at.utcoffset().total_seconds() == 0 for e in ledger)


def test_unsubscribe_is_idempotent_and_the_ledger_is_only_appended_to(store):
    store.add("jane@example.com")
    public_id = store.get("jane@example.com").public_id
    assert store.unsubscribe(public_id, "link") is True
    assert store.unsubscribe(public_id, "link") is False
    assert store.unsubscribe("no-such-public-id", "link") is False
    assert [e.event for e in store.ledger(store.get("jane@example.com").id)] == ["subscribed", "unsubscribed"]


def test_bounce_and_complaint_set_the_status_and_are_recorded(store):
    store.add("a@example.com")
    store.add("b@example.com")
    a, b = store.get("a@example.com"), store.get("b@example.com")

    assert store.record_bounce(a.id, "550 5.1.1 user unknown") is True
    assert store.record_complaint(b.id, "abuse report") is True
    assert store.record_complaint(a.id) is True  # a complaint outranks a bounce

    assert store.get("a@example.com").status == "complained"
    assert store.get("b@example.com").status == "complained"
    assert [(e.event, e.detail) for e in store.ledger(a.id)][1:] == [
        ("bounced", "550 5.1.1 user unknown"), ("complained", None)]
    with pytest.raises(RecipientError):
        store.record_bounce(9999, "no such id")


def test_forget_erases_personal_data_but_keeps_the_proof_and_blocks_the_address(store):
    due = web_signup(store, "Jane.Doe@example.com", "Jane")
    public_id = due.public_id
    store.confirm(public_id, due.nonce, ip="192.0.2.8", user_agent="Firefox/140")

    assert store.forget("jane.doe@EXAMPLE.com") is True

    person = store.by_public_id(public_id)
    assert (person.email, person.first_name, person.last_name, person.attributes, person.status) == (
        None, "", "", {}, "erased")
    ledger = store.ledger(person.id)
    assert [e.event for e in ledger] == ["subscribed", "confirmed", "erased"]
    assert all(e.ip is None and e.user_agent is None and e.detail is None for e in ledger)
    assert ledger[0].at <= ledger[1].at  # times stay: the proof of what happened when
    assert store.is_suppressed("JANE.DOE@example.com")
    dump = every_value(store)
    assert "Jane" not in dump and "192.0.2.8" not in dump and "Firefox" not in dump

    with pytest.raises(RecipientError, match="forgotten"):
        store.add("jane.doe@example.com")
    assert store.subscribe("jane.doe@example.com", source="form", consent_text="x") == SignUp("suppressed")
    assert store.stats()["total"] == 1


def test_forgetting_an_unknown_address_still_suppresses_it(store):
    assert store.forget("never.here@example.com") is False
    with pytest.raises(RecipientError, match="forgotten"):
        store.add("never.here@example.com")


def test_addresses_differing_only_in_case_are_one_person(store):
    store.add("Jane.Doe@Example.COM")
    with pytest.raises(RecipientError, match="already on the list"):
        store.add("jane.doe@example.com")
    assert store.get("JANE.DOE@example.com").email == "Jane.Doe@example.com"  # local part as given


def test_names_that_would_break_a_mail_header_are_refused(store):
    for bad in ("Jane\r\nBcc: all@example.com", "=?utf-8?b?QWRtaW4=?=", "Nul\x00"):
        with pytest.raises(RecipientError, match="first_name"):
            store.add("jane@example.com", first_name=bad)
    assert store.stats()["total"] == 0


def test_export_holds_everything_including_the_ledger(store, capsys):
    import io

    store.add("jane@example.com", first_name="Jane", source="reception desk", consent_text="wording v2")
    store.unsubscribe_email("jane@example.com", "reply")
    store.add("tom@example.com")

    [jane] = records(store, "jane@example.com")
    assert jane["email"] == "jane@example.com" and jane["first_name"] == "Jane" and jane["status"] == "unsubscribed"
    assert [(e["event"], e["source"], e["channel"]) for e in jane["ledger"]] == [
        ("subscribed", "reception desk", None), ("unsubscribed", None, "reply")]

    out = io.StringIO()
    assert write_json(records(store), out) == 2
    assert [p["email"] for p in json.loads(out.getvalue())] == ["jane@example.com", "tom@example.com"]
    out = io.StringIO()
    write_csv(records(store), out)
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 + 3  # header + one line per ledger event
    assert "wording v2" in lines[1] and "reply" in lines[2]


def test_stats_count_every_status(store):
    store.add("a@example.com")
    store.add("b@example.com")
    store.unsubscribe_email("b@example.com")
    web_signup(store, "c@example.com")
    counts = store.stats()
    assert (counts["active"], counts["unsubscribed"], counts["pending"], counts["total"], counts["eligible"]) == (
        1, 1, 1, 3, 1)


def test_a_baseline_database_upgrades_to_head_keeping_its_data(db_url):
    engine = sa.create_engine(db_url)
    upgrade(engine, "0001_baseline")
    with engine.begin() as conn:
        subscriber_id = conn.execute(subscribers.insert().values(
            public_id="p1", email="old@example.com", email_hash="h" * 64, attributes={},
            status="unsubscribed", created_at=datetime(2024, 1, 1, tzinfo=timezone.utc))).inserted_primary_key[0]
        conn.execute(consent_events.insert().values(
            subscriber_id=subscriber_id, event="unsubscribed", at=datetime(2024, 2, 1, tzinfo=timezone.utc),
            recorded_at=datetime(2024, 2, 1, tzinfo=timezone.utc), channel="link"))
    engine.dispose()

    with Store(db_url, secret_key=KEY) as store:
        assert current_revision(store.engine) == head_revision()
        assert store.by_public_id("p1").status == "unsubscribed"
        assert [e.channel for e in store.ledger(subscriber_id)] == ["link"]
    with Store(db_url, secret_key=KEY) as again:  # opening twice is harmless
        assert current_revision(again.engine) == head_revision()
        assert again.stats()["total"] == 1


def test_the_revision_a_current_database_is_checked_against_is_the_newest_migration_script():
    """``HEAD`` spares every command alembic's start-up; a new migration that forgot to move it fails here."""
    assert HEAD == head_revision()


def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path):
    """SQLite only: WAL and foreign keys are SQLite settings (PostgreSQL has both by nature)."""
    with Store(f"sqlite:///{tmp_path / 'newsletter.db'}", secret_key=KEY) as store:
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        with pytest.raises(sa.exc.IntegrityError):
            with store.engine.begin() as conn:
                conn.execute(consent_events.insert().values(
                    subscriber_id=424242, event="confirmed", at=datetime.now(timezone.utc),
                    recorded_at=datetime.now(timezone.utc)))


def test_a_different_secret_key_is_refused_so_suppression_cannot_silently_lapse(store, db_url):
    store.forget("gone@example.com")
    with pytest.raises(ConfigError, match="not the key this subscriber database was created with"):
        Store(db_url, secret_key="another-secret-key-0123456789")


def test_open_store_uses_the_site_folder_and_needs_a_real_secret_key(site_dir, monkeypatch):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    with pytest.raises(ConfigError, match="SECRET_KEY is not set") as caught:
        open_store(Site.load(site_dir))
    assert "secrets.token_urlsafe" in str(caught.value)
    monkeypatch.setenv("SECRET_KEY", "change-me")
    with pytest.raises(ConfigError, match="placeholder"):
        open_store(Site.load(site_dir))

    monkeypatch.setenv("SECRET_KEY", KEY)
    with open_store(Site.load(site_dir)) as store:
        store.add("jane@example.com")
    assert (site_dir / "newsletter.db").is_file()

    other = site_dir / "elsewhere.db"
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{other}")
    with open_store(Site.load(site_dir)) as store:
        assert store.stats()["total"] == 0
    assert other.is_file()


def test_repeated_sign_ups_of_a_pending_address_send_one_confirmation_per_ten_minutes(store):
    sent = []
    for _ in range(3):
        signup = store.subscribe("jane@example.com", source="form", consent_text="x")
        if signup.confirmation:
            sent.append(signup.confirmation)
            store.confirmation_sent(signup.confirmation)
    assert len(sent) == 1
    assert [e.event for e in store.ledger(store.get("jane@example.com").id)] == ["subscribed"]


def test_a_confirmation_mail_that_could_not_be_sent_stays_owed_until_it_is(store):
    """The mail goes out after the sign-up commits; if it fails, the next sign-up or a resend sends it."""
    first = store.subscribe("jane@example.com", source="form", consent_text="x")
    assert first.outcome == "pending" and store.confirmations_due() == [first.confirmation]
    again = store.subscribe("jane@example.com", source="form", consent_text="x")  # not throttled: nothing went out
    assert again.confirmation is not None and again.confirmation.nonce != first.confirmation.nonce
    assert store.confirmations_due() == [again.confirmation]
    store.confirmation_sent(first.confirmation)  # a late success of the older mail does not pay the newer one
    assert store.confirmations_due() == [again.confirmation]
    store.confirmation_sent(again.confirmation)
    assert store.confirmations_due() == []
    assert store.get("jane@example.com").status == "pending"


def test_an_old_confirmation_link_does_not_undo_an_unsubscribe(store):
    due = web_signup(store, "jane@example.com")
    assert store.confirm(due.public_id, due.nonce) == "confirmed"
    assert store.confirm(due.public_id, due.nonce) == "already"
    store.unsubscribe(due.public_id, "link")

    assert store.confirm(due.public_id, due.nonce) == "invalid"
    assert store.get("jane@example.com").status == "unsubscribed"
    assert emails(store) == []


def test_a_link_from_an_earlier_sign_up_confirms_nothing_after_a_newer_one(store):
    """Issue 9: a confirm link belongs to one sign-up; resubscribing after leaving makes the old one void."""
    old = web_signup(store, "jane@example.com")
    store.unsubscribe(old.public_id, "link")
    new = web_signup(store, "jane@example.com")
    assert store.confirm(old.public_id, old.nonce) == "invalid"
    assert store.get("jane@example.com").status == "pending"
    assert store.confirm(new.public_id, new.nonce) == "confirmed"
