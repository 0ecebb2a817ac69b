"""``newsletter bounces fetch`` against a real Dovecot on 127.0.0.1 (TLS from a test CA), holding the bounces
of messages a real send handed to aiosmtpd: applied once, and a second fetch changes nothing.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from newsletters.cli import cli
from newsletters.config import Site
from newsletters.delivery import prepare_send
from recipients import open_store
from tests import returned_mail
from tests.dovecot_server import dovecot_missing, start_dovecot, stop_dovecot
from tests.send_fixtures import ISSUE, add_subscribers, make_send_site, smtp_settings, write_env
from tests.smtp_servers import Inbox, smtp_server

pytestmark = pytest.mark.skipif(bool(dovecot_missing()), reason=dovecot_missing() or "")

MAILBOX_SETTINGS = ("BOUNCE_ADDRESS", "BOUNCE_IMAP_HOST", "BOUNCE_POP3_HOST", "BOUNCE_PROCESSED_FOLDER")


@pytest.fixture(scope="module")
def dovecot_server():
    server = start_dovecot()
    yield server
    stop_dovecot(server)



def mailbox_env(account, protocol: str, **extra) -> dict:
    settings = account.settings(protocol)
    prefix = f"BOUNCE_{protocol.upper()}_"
    return {
        prefix + "HOST": settings.host, prefix + "PORT": settings.port, prefix + "TLS": settings.tls,
        prefix + "USER": settings.user, prefix + "PASSWORD": settings.password, prefix + "CA_FILE": settings.cafile,
        **extra,
    }


def statuses(site_dir, addresses) -> list[str]:
    with open_store(Site.load(site_dir)) as store:
        return [store.get(a).status for a in addresses]


def fetch(site_dir) -> list[dict]:
    result = CliRunner().invoke(cli, ["--site", str(site_dir), "bounces", "fetch", "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


@pytest.mark.parametrize("protocol", ["imap", "pop3"])
def test_fetch_applies_the_mailbox_once_and_a_second_fetch_changes_nothing(site_dir, dovecot_server, protocol):
    account = dovecot_server.add_account()
    inbox = Inbox()
    with smtp_server(inbox) as (_host, port):
        smtp = smtp_settings(port, BOUNCE_ADDRESS="bounces@larkfield-clinic.example.com")
        site_dir = make_send_site(site_dir, **smtp)
        readers = add_subscribers(site_dir, 4)
        with prepare_send(Site.load(site_dir), site_dir / ISSUE, run_checks=False) as plan:
            plan.execute(handle_signals=False)
    sent = {m.rcpt_tos[0]: m for m in inbox.messages}
    account.deliver(returned_mail.hard(sent[readers[0]]))
    account.deliver(returned_mail.complaint(sent[readers[1]]))
    account.deliver(returned_mail.auto_reply(sent[readers[2]]))
    account.deliver(returned_mail.forged_hard(readers[3], to="bounces@larkfield-clinic.example.com"))
    write_env(site_dir, **smtp, **mailbox_env(account, protocol))

    first = fetch(site_dir)
    after_first = statuses(site_dir, readers)
    second = fetch(site_dir)

    assert sorted(row["outcome"] for row in first) == ["bounced", "complained", "ignored", "unmatched"]
    assert after_first == ["bounced", "complained", "active", "active"]
    assert second == []
    assert statuses(site_dir, readers) == after_first


def test_fetch_moves_processed_messages_to_the_processed_folder(site_dir, dovecot_server):
    account = dovecot_server.add_account()
    account.create_folder("Processed")
    site_dir = make_send_site(site_dir)
    account.deliver(returned_mail.forged_hard("nobody@example.org", to="bounces@larkfield-clinic.example.com"))
    write_env(site_dir, **mailbox_env(account, "imap", BOUNCE_PROCESSED_FOLDER="Processed"))

    assert [row["outcome"] for row in fetch(site_dir)] == ["unmatched"]
    assert account.messages_in("INBOX") == [] and len(account.messages_in("Processed")) == 1
    assert fetch(site_dir) == []


def test_fetch_without_a_mailbox_says_what_to_set(site_dir):
    site_dir = make_send_site(site_dir)

    result = CliRunner().invoke(cli, ["--site", str(site_dir), "bounces", "fetch"])

    assert result.exit_code == 1
    assert "no bounce mailbox is set" in result.output and "BOUNCE_IMAP_HOST" in result.output
