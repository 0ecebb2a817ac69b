"""Fetching bounces from a real Dovecot on 127.0.0.1 over IMAP and POP3, with TLS from a test CA.

One Dovecot (``tests.dovecot_server``) serves this module; each test gets its
own account holding three bounce messages, so what one test marks no other sees.
"""

from __future__ import annotations

import pytest

from newsletters.bounce_intake.errors import MailboxError
from newsletters.bounce_intake.mailbox import PROCESSED_KEYWORD, mailbox_settings, open_mailbox, process_mailbox
from newsletters.config import Site
from newsletters.errors import ConfigError
from tests.dovecot_server import bounce_messages, dovecot_missing, free_ports, start_dovecot, stop_dovecot
from tests.loopback_ca import LoopbackCA

pytestmark = pytest.mark.skipif(bool(dovecot_missing()), reason=dovecot_missing() or "")


@pytest.fixture(scope="module")
def dovecot_server():
    server = start_dovecot()
    yield server
    stop_dovecot(server)


@pytest.fixture
def dovecot(dovecot_server):
    """A fresh account on the running Dovecot, its INBOX holding ``bounce_messages()``."""
    return dovecot_server.add_account(bounce_messages())


def fetch(settings) -> list[tuple[str, bytes]]:
    with open_mailbox(settings) as box:
        return list(box.unprocessed())


def fetch_and_mark(settings) -> list[bytes]:
    with open_mailbox(settings) as box:
        got = []
        for uid, raw in box.unprocessed():
            got.append(raw)
            box.mark_processed(uid)
        return got


@pytest.mark.parametrize("protocol", ["imap", "pop3"])
@pytest.mark.parametrize("tls", ["ssl", "starttls"])
def test_fetch_gets_every_bounce_once_and_a_second_fetch_gets_nothing(dovecot, protocol, tls):
    settings = dovecot.settings(protocol, tls)

    first = fetch_and_mark(settings)
    second = fetch(settings)

    assert sorted(first) == sorted(bounce_messages())
    assert second == []


@pytest.mark.parametrize("protocol", ["imap", "pop3"])
def test_messages_not_marked_are_read_again_so_a_crash_loses_nothing(dovecot, protocol):
    settings = dovecot.settings(protocol)
    with open_mailbox(settings) as box:
        uids = [uid for uid, _ in box.unprocessed()]
        box.mark_processed(uids[0])  # the run handled one message, then stopped

    again = fetch(settings)

    assert len(again) == 2
    assert sorted(raw for _, raw in again) == sorted(bounce_messages()[1:])


@pytest.mark.parametrize("protocol", ["imap", "pop3"])
def test_process_mailbox_marks_what_was_handled_and_stops_at_the_first_failure(dovecot, protocol):
    settings = dovecot.settings(protocol)
    seen = []

    def handle(uid, raw):
        if len(seen) == 1:
            raise RuntimeError("database is locked")
        seen.append(raw)

    with pytest.raises(RuntimeError):
        process_mailbox(settings, handle)
    handled_again = []
    count = process_mailbox(settings, lambda uid, raw: handled_again.append(raw))

    assert count == 2 and len(seen) == 1
    assert sorted(seen + handled_again) == sorted(bounce_messages())
    assert process_mailbox(settings, lambda uid, raw: None) == 0


def test_pop3_deletes_nothing_when_the_session_breaks_before_quit(dovecot):
    box = open_mailbox(dovecot.settings("pop3"))
    for uid, _ in box.unprocessed():
        box.mark_processed(uid)
    box._pop.sock.close()  # the process died: no QUIT reached the server

    assert len(fetch(dovecot.settings("pop3"))) == 3


def test_imap_flags_processed_messages_and_leaves_them_in_the_folder(dovecot):
    fetch_and_mark(dovecot.settings())

    files = [p.name for p in (dovecot.maildir / "cur").iterdir()]
    assert len(files) == 3 and all(name.endswith("S") or ",S" in name for name in files)
    keywords = (dovecot.maildir / "dovecot-keywords").read_text()
    assert PROCESSED_KEYWORD in keywords


def test_a_bounce_someone_read_in_a_mail_client_is_still_fetched(dovecot):
    fetch_and_mark(dovecot.settings())
    late = b"From: MAILER-DAEMON@example.net\r\nSubject: late bounce\r\n\r\nread by a person\r\n"
    dovecot.deliver(late, seen=True)

    assert [raw for _, raw in fetch(dovecot.settings())] == [late]


def test_imap_moves_processed_messages_to_the_processed_folder(dovecot):
    dovecot.create_folder("Processed")
    settings = dovecot.settings("imap", "starttls", processed_folder="Processed")

    fetch_and_mark(settings)

    assert fetch(settings) == []
    assert sorted(dovecot.messages_in("Processed")) == sorted(bounce_messages())
    assert dovecot.messages_in("INBOX") == []


def test_a_server_without_move_gets_copy_and_deleted_and_expunges_nothing_else(dovecot_server):
    """Without MOVE and UIDPLUS the message is copied and flagged \\Deleted; no EXPUNGE or CLOSE removes
    a message someone else flagged \\Deleted."""
    old_server = dovecot_server.add_account(bounce_messages(), old_imap=True)
    old_server.create_folder("Processed")
    someone_elses = b"From: someone@example.net\r\nSubject: deleted in a mail client\r\n\r\nkeep\r\n"
    old_server.deliver(someone_elses)
    settings = old_server.settings(processed_folder="Processed")
    with open_mailbox(settings) as box:
        assert "MOVE" not in box._capabilities
        for uid, raw in box.unprocessed():
            if raw == someone_elses:
                box._imap.uid("STORE", uid, "+FLAGS", "(\\Deleted)")
            else:
                box.mark_processed(uid)

    assert fetch(settings) == []
    assert sorted(old_server.messages_in("Processed")) == sorted(bounce_messages())
    assert someone_elses in old_server.messages_in("INBOX")


def test_a_folder_with_a_non_ascii_name_is_read(dovecot):
    raw = bounce_messages()[0]
    dovecot.deliver(raw, folder="Rückläufer")
    dovecot.deliver(raw, folder="Rückläufer.Erledigt")  # Maildir++: a subfolder is a dotted name

    settings = dovecot.settings(folder="Rückläufer", processed_folder="Rückläufer.Erledigt")
    assert fetch_and_mark(settings) == [raw]
    assert len(dovecot.messages_in("Rückläufer.Erledigt")) == 2


def test_a_server_certificate_from_another_ca_is_refused_naming_the_ca_setting(dovecot, tmp_path):
    other_ca = LoopbackCA.create("Some other CA").write(tmp_path / "other-ca.pem")

    for protocol in ("imap", "pop3"):
        with pytest.raises(MailboxError) as refused:
            open_mailbox(dovecot.settings(protocol, cafile=str(other_ca)))
        text = str(refused.value)
        assert "certificate is not trusted" in text and "\n" not in text
        assert f"BOUNCE_{protocol.upper()}_CA_FILE" in text


def test_a_wrong_password_is_refused_naming_the_user_and_password_settings(dovecot):
    for protocol in ("imap", "pop3"):
        with pytest.raises(MailboxError) as refused:
            open_mailbox(dovecot.settings(protocol, password="wrong"))
        text = str(refused.value)
        assert f"refused the login of '{dovecot.user}'" in text
        assert f"BOUNCE_{protocol.upper()}_PASSWORD" in text and "wrong" not in text


def test_tls_at_once_on_the_starttls_port_fails_naming_the_tls_setting(dovecot):
    settings = dovecot.settings("imap", "ssl", port=dovecot.server.ports["imap"])

    with pytest.raises(MailboxError) as failed:
        open_mailbox(settings)

    assert "TLS failed" in str(failed.value) and "BOUNCE_IMAP_TLS" in str(failed.value)


def test_an_unknown_folder_is_named_with_the_folders_there_are(dovecot):
    with pytest.raises(MailboxError) as missing:
        open_mailbox(dovecot.settings(folder="Bounces"))
    assert "no folder 'Bounces'" in str(missing.value) and "INBOX" in str(missing.value)
    assert "BOUNCE_IMAP_FOLDER" in str(missing.value)

    with pytest.raises(MailboxError) as missing:
        open_mailbox(dovecot.settings(processed_folder="Done"))
    assert "no folder 'Done'" in str(missing.value) and "BOUNCE_PROCESSED_FOLDER" in str(missing.value)


def test_nothing_listening_is_a_clear_connection_error(dovecot):
    with pytest.raises(MailboxError) as failed:
        open_mailbox(dovecot.settings(port=free_ports(1)[0]))

    assert "cannot connect" in str(failed.value) and "BOUNCE_IMAP_PORT" in str(failed.value)


def test_settings_come_from_the_sites_env_file(dovecot, site_dir, monkeypatch):
    for name in ("BOUNCE_IMAP_HOST", "BOUNCE_POP3_HOST", "BOUNCE_IMAP_PORT", "BOUNCE_PROCESSED_FOLDER"):
        monkeypatch.delenv(name, raising=False)
    (site_dir / "ca.pem").write_bytes(dovecot.server.ca_file.read_bytes())
    (site_dir / ".env").write_text(
        "BOUNCE_IMAP_HOST=127.0.0.1\n"
        f"BOUNCE_IMAP_PORT={dovecot.server.ports['imap']}\n"
        "BOUNCE_IMAP_TLS=starttls\n"
        f"BOUNCE_IMAP_USER={dovecot.user}\n"
        f"BOUNCE_IMAP_PASSWORD={dovecot.password}\n"
        "BOUNCE_IMAP_CA_FILE=ca.pem\n",  # relative to the site folder
        encoding="utf-8",
    )

    settings = mailbox_settings(Site.load(site_dir))

    assert settings.cafile == str(site_dir / "ca.pem") and settings.folder == "INBOX"
    assert "s3cret" not in repr(settings)
    assert len(fetch_and_mark(settings)) == 3


@pytest.mark.parametrize(
    "env, message",
    [
        ({}, None),
        ({"BOUNCE_IMAP_HOST": "imap.example.com", "BOUNCE_POP3_HOST": "pop.example.com"}, "both BOUNCE_IMAP_HOST"),
        ({"BOUNCE_IMAP_HOST": "imap.example.com", "BOUNCE_IMAP_TLS": "none"}, "BOUNCE_IMAP_TLS must be ssl or"),
        ({"BOUNCE_POP3_HOST": "pop.example.com", "BOUNCE_POP3_USER": "me"}, "BOUNCE_POP3_PASSWORD must both"),
        ({"BOUNCE_IMAP_HOST": "imap.example.com", "BOUNCE_IMAP_USER": "u", "BOUNCE_IMAP_PASSWORD": "p",
          "BOUNCE_PROCESSED_FOLDER": "INBOX"}, "BOUNCE_PROCESSED_FOLDER must differ"),
        ({"BOUNCE_IMAP_HOST": "imap.example.com", "BOUNCE_IMAP_USER": "u", "BOUNCE_IMAP_PASSWORD": "p",
          "BOUNCE_IMAP_FOLDER": "INBOX\r\nA1 DELETE INBOX"}, "BOUNCE_IMAP_FOLDER holds a control character"),
        ({"BOUNCE_POP3_HOST": "pop.example.com", "BOUNCE_POP3_USER": "me\r\nDELE 1", "BOUNCE_POP3_PASSWORD": "p"},
         "BOUNCE_POP3_USER holds a control character"),
    ],
    ids=["unset", "both-hosts", "no-tls", "no-password", "same-folder", "crlf-folder", "crlf-user"],
)
def test_bad_mailbox_settings_are_one_line_config_errors(site_dir, monkeypatch, env, message):
    for name in ("BOUNCE_IMAP_HOST", "BOUNCE_POP3_HOST", "BOUNCE_IMAP_FOLDER", "BOUNCE_PROCESSED_FOLDER"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    site = Site.load(site_dir)

    if message is None:
        assert mailbox_settings(site) is None
        return
    with pytest.raises(ConfigError) as bad:
        mailbox_settings(site)
    assert message in str(bad.value) and "\n" not in str(bad.value)


def test_pop3_defaults_to_port_995_and_imap_starttls_to_143(site_dir, monkeypatch):
    monkeypatch.delenv("BOUNCE_IMAP_HOST", raising=False)
    for name, value in {"BOUNCE_POP3_HOST": "pop.example.com", "BOUNCE_POP3_USER": "u",
                        "BOUNCE_POP3_PASSWORD": "p"}.items():
        monkeypatch.setenv(name, value)
    pop3 = mailbox_settings(Site.load(site_dir))
    assert (pop3.protocol, pop3.port, pop3.tls) == ("pop3", 995, "ssl")

    monkeypatch.delenv("BOUNCE_POP3_HOST")
    for name, value in {"BOUNCE_IMAP_HOST": "imap.example.com", "BOUNCE_IMAP_USER": "u",
                        "BOUNCE_IMAP_PASSWORD": "p", "BOUNCE_IMAP_TLS": "STARTTLS"}.items():
        monkeypatch.setenv(name, value)
    imap = mailbox_settings(Site.load(site_dir))
    assert (imap.protocol, imap.port, imap.tls) == ("imap", 143, "starttls")


@pytest.mark.parametrize("protocol", ["imap", "pop3"])
def test_a_bounce_with_very_long_lines_is_fetched_whole(dovecot, protocol):
    """Returned messages often carry HTML on one line far past RFC 5322's 998 characters."""
    fetch_and_mark(dovecot.settings(protocol))
    long_line = b"<p>" + b"x" * 50_000 + b"</p>"
    raw = b"From: MAILER-DAEMON@example.net\r\nSubject: returned\r\n\r\n" + long_line + b"\r\n.leading dot\r\n"
    dovecot.deliver(raw)

    assert [got for _, got in fetch(dovecot.settings(protocol))] == [raw]
