"""Where finished messages go: an SMTP server, or a maildir outbox when none is set.

Like httpx's transports, this is a small interface (``send`` and ``close``) so
the delivery pipe never knows which one it talks to, and tests can record what
was sent without a network. Each transport speaks for *one* connection; the
delivery pipe opens as many as ``SMTP_CONNECTIONS`` asks for.

``send`` returns the server's final reply when it accepted the message. A
refusal raises ``SMTPRefused`` carrying the code (4xx temporary, 5xx permanent)
and the stage it came at; a connection that broke raises ``ConnectionLost``,
after which the transport reconnects on the next ``send``. The SMTP client
itself, and why it speaks the protocol without smtplib, is in
``newsletters.smtp``; its names are importable from here too.
"""

from __future__ import annotations

import mailbox
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, Sequence

from .errors import ConfigError
from .smtp import (  # noqa: F401  (re-exported: callers import the SMTP names from here)
    LOOPBACK,
    SECURITY_MODES,
    ConnectionLost,
    Envelope,
    Ready,
    Reply,
    SMTPRefused,
    SMTPSettings,
    SMTPTransport,
    clean_reply_text,
    is_canonical,
)


class Transport(Protocol):
    description: str

    def send(
        self, sender: str, recipients: Sequence[str], message: bytes, *, canonical: bool = False,
        ready: Ready | None = None, then: Envelope | None = None,
    ) -> Reply | None:
        """Hand ``message`` over. ``ready``, if given, is asked right before it goes: when it answers
        false, nothing is handed over and the result is None. ``then`` names the message the caller
        sends next, for a transport that can start on it early (see ``SMTPTransport.send``)."""

    def verify(self) -> None: ...

    def close(self) -> None: ...


class MaildirTransport:
    """Writes each message as a file in a maildir, for a demo or a site without SMTP.

    ``mailbox.Maildir.add`` writes into tmp/ and renames into new/, so a message is
    either wholly in the outbox or not at all.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self._box = mailbox.Maildir(self.path, create=True)
        self.description = f"maildir outbox {self.path}"

    def send(
        self, sender: str, recipients: Sequence[str], message: bytes, *, canonical: bool = False,
        ready: Ready | None = None, then: Envelope | None = None,
    ) -> Reply | None:
        if ready is not None and not ready():
            return None
        key = self._box.add(message)
        return Reply(250, f"stored as {key}")

    def verify(self) -> None:
        pass

    def close(self) -> None:
        pass


@dataclass
class RecordedMessage:
    sender: str
    recipients: list[str]
    message: bytes


@dataclass
class RecordingTransport:
    """Keeps messages in memory; for tests of code that only needs *a* transport."""

    sent: list[RecordedMessage] = field(default_factory=list)
    description: str = "recording transport (in memory)"

    def __post_init__(self):
        self._lock = threading.Lock()

    def send(
        self, sender: str, recipients: Sequence[str], message: bytes, *, canonical: bool = False,
        ready: Ready | None = None, then: Envelope | None = None,
    ) -> Reply | None:
        if ready is not None and not ready():
            return None
        with self._lock:
            self.sent.append(RecordedMessage(sender, list(recipients), message))
        return Reply(250, "recorded")

    def verify(self) -> None:
        pass

    def close(self) -> None:
        pass



def smtp_settings(site) -> SMTPSettings | None:
    """The SMTP settings from the site's environment, or None when SMTP_HOST is unset."""
    host = site.setting("SMTP_HOST")
    if not host:
        return None
    security = (site.setting("SMTP_SECURITY") or "starttls").lower()
    if security not in SECURITY_MODES:
        raise ConfigError(
            f"SMTP_SECURITY must be one of {', '.join(SECURITY_MODES)}, not {security!r}", where="environment/.env"
        )
    default_port = {"ssl": 465, "starttls": 587, "none": 25}[security]
    cafile = site.setting("SMTP_CA_FILE")
    if cafile and not Path(cafile).is_absolute():
        cafile = str(site.root / cafile)
    return SMTPSettings(
        host=host,
        port=site.int_setting("SMTP_PORT", default_port),
        security=security,
        username=site.setting("SMTP_USERNAME") or "",
        password=site.setting("SMTP_PASSWORD") or "",
        timeout=site.float_setting("SMTP_TIMEOUT", 30.0),
        cafile=cafile,
        helo_name=site.setting("SMTP_HELO_NAME"),
    )


def open_transport(site) -> Transport:
    """One connection's transport for this site: SMTP when SMTP_HOST is set, else the outbox."""
    settings = smtp_settings(site)
    if settings is None:
        return MaildirTransport(site.outbox_dir)
    return SMTPTransport(settings)
