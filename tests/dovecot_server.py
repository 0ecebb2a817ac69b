"""A real Dovecot (Debian's dovecot-imapd and dovecot-pop3d) on 127.0.0.1, started by the test itself.

Nothing of the system's Dovecot set-up is used: the server reads only the
config file written here (``dovecot -F -c PATH``), listens on free loopback
ports for IMAP (STARTTLS), IMAPS, POP3 (STLS) and POP3S, presents a
certificate from a CA made for the test, and serves one passwd-file user whose
maildir sits in the test's folder. Run as root, Dovecot's own processes take
the unprivileged users Debian's package made (``dovecot``/``dovenull``, or
``nobody``) and the mail belongs to ``nobody``; run as anyone else, everything
runs as that user (Dovecot's "rootless" mode).
"""

from __future__ import annotations

import functools
import grp
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

from newsletters.bounce_intake.mailbox import MailboxSettings, modified_utf7
from tests.loopback_ca import LoopbackCA

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
PASSWORD = "s3cret-pässword"
ACCOUNTS = 100
OLD_IMAP_USER = "old-imap"


def dovecot_missing() -> str | None:
    """Why the Dovecot tests cannot run here, or None when they can.

    Under ``make test`` (NEWSLETTER_REQUIRE_SERVERS=1, after it installed Debian's
    packages) this always says they can: a missing Dovecot then fails the run
    instead of hiding behind a skip.
    """
    if os.environ.get("NEWSLETTER_REQUIRE_SERVERS") == "1":
        return None
    if not all(os.path.exists(p) for p in (DOVECOT, "/usr/lib/dovecot/imap", "/usr/lib/dovecot/pop3")):
        return "Debian's dovecot-imapd and dovecot-pop3d are not installed (`make system-deps` installs them)"
    return None


def free_ports(count: int) -> list[int]:
    """Ports nobody listens on right now (held open together so they differ)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


@functools.cache
def bounce_messages() -> tuple[bytes, ...]:
    """Three messages of the kinds a bounce mailbox holds, written for these tests (the same bytes each call)."""
    dsn = EmailMessage()
    dsn["From"] = "MAILER-DAEMON@mx.example.net (Mail Delivery System)"
    dsn["To"] = "bounces@clinic.example"
    dsn["Subject"] = "Undelivered Mail Returned to Sender"
    dsn["Message-ID"] = "<dsn-1@mx.example.net>"
    dsn.set_content("I'm sorry to have to inform you that your message could not be delivered.\n")
    dsn.add_attachment(
        "Reporting-MTA: dns; mx.example.net\n\nFinal-Recipient: rfc822; gone@example.net\n"
        "Action: failed\nStatus: 5.1.1\nDiagnostic-Code: smtp; 550 5.1.1 user unknown\n",
        subtype="delivery-status",
    )
    full = EmailMessage()
    full["From"] = "postmaster@mail.example.org"
    full["To"] = "bounces@clinic.example"
    full["Subject"] = "Delivery delayed: mailbox full"
    full["Message-ID"] = "<full-2@mail.example.org>"
    full.set_content("452 4.2.2 The mailbox of full@example.org is over quota.\n")
    arf = EmailMessage()
    arf["From"] = "feedback@fbl.example.com"
    arf["To"] = "bounces@clinic.example"
    arf["Subject"] = "Complaint about message from 192.0.2.1"
    arf["Message-ID"] = "<arf-3@fbl.example.com>"
    arf.set_content("This is an email abuse report.\n")
    arf.add_attachment("Feedback-Type: abuse\nUser-Agent: ExampleFBL/1.0\nVersion: 1\n", subtype="feedback-report")
    return tuple(m.as_bytes(policy=m.policy.clone(linesep="\r\n")) for m in (dsn, full, arf))


@dataclass
class Account:
    """One mailbox user on a running Dovecot, with its own maildir: what one test reads and marks."""

    server: "Dovecot"
    user: str
    password: str = PASSWORD

    @property
    def maildir(self) -> Path:
        return self.server.folder / "mail" / self.user

    def folder_path(self, name: str) -> Path:
        """The maildir folder behind an IMAP folder name (Dovecot's Maildir++ layout, names in modified UTF-7)."""
        return self.maildir if name == "INBOX" else self.maildir / f".{modified_utf7(name)}"

    def create_folder(self, name: str) -> None:
        for sub in ("cur", "new", "tmp"):
            (self.folder_path(name) / sub).mkdir(parents=True, exist_ok=True)
        self.server.own(self.maildir)

    def deliver(self, raw: bytes, *, seen: bool = False, folder: str = "INBOX") -> None:
        """Put a message in the maildir as a delivery agent would (``seen``: read in a mail client)."""
        self.create_folder(folder)
        name = f"{time.time_ns()}.test{os.getpid()}.localhost"
        where = self.folder_path(folder)
        tmp = where / "tmp" / name
        tmp.write_bytes(raw)
        tmp.rename(where / "cur" / f"{name}:2,S" if seen else where / "new" / name)
        self.server.own(self.maildir)

    def messages_in(self, folder: str) -> list[bytes]:
        where = self.folder_path(folder)
        return [p.read_bytes() for sub in ("new", "cur") if (where / sub).is_dir() for p in (where / sub).iterdir()]

    def settings(self, protocol: str = "imap", tls: str = "ssl", **changes) -> MailboxSettings:
        """MailboxSettings for this account, with any field changed."""
        port = self.server.ports[f"{protocol}{'s' if tls == 'ssl' else ''}"]
        values = dict(protocol=protocol, host="127.0.0.1", port=port, tls=tls, user=self.user,
                      password=self.password, cafile=str(self.server.ca_file), timeout=10.0)
        values.update(changes)
        return MailboxSettings(**values)


@dataclass
class Dovecot:
    """A running Dovecot, its passwd file and the maildirs behind it."""

    folder: Path
    ca: LoopbackCA
    ca_file: Path
    ports: dict[str, int]
    process: subprocess.Popen | None = None
    mail_uid: int = field(default_factory=os.getuid)
    mail_gid: int = field(default_factory=os.getgid)
    accounts: int = 0

    def add_account(self, messages=(), *, old_imap: bool = False) -> Account:
        """The next unused user, its INBOX holding ``messages``.

        The users are all in the passwd file from the start: Dovecot re-reads a
        changed passwd file at most once a second, and tests come faster.
        ``old_imap``: the one user whose server offers plain IMAP4rev1 only (no
        MOVE, no UIDPLUS), as an older server would.
        """
        if old_imap:
            account = Account(self, OLD_IMAP_USER)
        elif self.accounts >= ACCOUNTS:
            raise RuntimeError(f"all {ACCOUNTS} test accounts of this Dovecot are used")
        else:
            self.accounts += 1
            account = Account(self, f"bounces{self.accounts}")
        account.create_folder("INBOX")
        for raw in messages:
            account.deliver(raw)
        return account

    def own(self, path: Path) -> None:
        """As root, the mail belongs to the unprivileged user Dovecot reads it as."""
        if os.getuid() == 0:
            for root, dirs, files in os.walk(path):
                os.chown(root, self.mail_uid, self.mail_gid)
                for name in files:
                    os.chown(os.path.join(root, name), self.mail_uid, self.mail_gid)

    def log(self) -> str:
        path = self.folder / "dovecot.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    # -- life cycle ---------------------------------------------------------------
    def write_config(self) -> Path:
        if os.getuid() == 0:
            internal = "dovecot" if _user_exists("dovecot") else "nobody"
            group = grp.getgrgid(pwd.getpwnam(internal).pw_gid).gr_name
            login = "dovenull" if _user_exists("dovenull") else "nobody"
            nobody = pwd.getpwnam("nobody")
            self.mail_uid, self.mail_gid = nobody.pw_uid, nobody.pw_gid
        else:
            internal = login = pwd.getpwuid(os.getuid()).pw_name
            group = grp.getgrgid(os.getgid()).gr_name  # Debian's default group, dovecot, is not ours to chown to
        cert, key = self.ca.issue(self.folder)
        f = self.folder
        users = [(f"bounces{n}", "") for n in range(1, ACCOUNTS + 1)]
        users.append((OLD_IMAP_USER, "userdb_imap_capability=IMAP4rev1"))
        (f / "passwd").write_text(
            "".join(
                f"{user}:{{PLAIN}}{PASSWORD}:{self.mail_uid}:{self.mail_gid}::{f / 'home' / user}::{extra}\n"
                for user, extra in users
            ),
            encoding="utf-8",
        )
        p = self.ports
        config = f"""\
base_dir = {f / 'run'}
state_dir = {f / 'state'}
log_path = {f / 'dovecot.log'}
instance_name = newsletter-test-{f.name}
protocols = imap pop3
listen = 127.0.0.1
ssl = required
ssl_cert = <{cert}
ssl_key = <{key}
auth_mechanisms = plain
auth_failure_delay = 0
disable_plaintext_auth = yes
default_internal_user = {internal}
default_login_user = {login}
default_internal_group = {group}
first_valid_uid = 1
mail_location = maildir:{f / 'mail'}/%u
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {f / 'passwd'}
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {f / 'passwd'}
}}
service anvil {{
  chroot =
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    port = {p['imap']}
  }}
  inet_listener imaps {{
    port = {p['imaps']}
    ssl = yes
  }}
}}
service pop3-login {{
  chroot =
  inet_listener pop3 {{
    port = {p['pop3']}
  }}
  inet_listener pop3s {{
    port = {p['pop3s']}
    ssl = yes
  }}
}}
"""
        path = f / "dovecot.conf"
        path.write_text(config, encoding="utf-8")
        return path

    def start(self) -> None:
        config = self.write_config()
        self.process = subprocess.Popen(
            [DOVECOT, "-F", "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"dovecot exited: {self.process.stderr.read().decode(errors='replace')}{self.log()}")
            if all(_listening(port) for port in self.ports.values()):
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"dovecot did not start listening within 20 s: {self.log()}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        if self.process and self.process.stderr:
            self.process.stderr.close()


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def start_dovecot() -> Dovecot:
    """A running Dovecot without accounts yet (``add_account``); call ``stop_dovecot`` after."""
    folder = Path(tempfile.mkdtemp(prefix="nl-dovecot-"))
    folder.chmod(0o755)  # Dovecot's unprivileged processes must reach their sockets and the mail
    ca = LoopbackCA.create()
    names = ("imap", "imaps", "pop3", "pop3s")
    server = Dovecot(folder=folder, ca=ca, ca_file=ca.write(folder / "ca.pem"), ports=dict(zip(names, free_ports(4))))
    try:
        server.start()
    except BaseException:
        stop_dovecot(server)
        raise
    return server


def stop_dovecot(server: Dovecot) -> None:
    server.stop()
    shutil.rmtree(server.folder, ignore_errors=True)
