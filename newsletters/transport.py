"""Where finished messages go: an SMTP server, or a maildir outbox when none is set.

Like httpx's transports, this is a small interface (``send`` and ``close``) so
the delivery pipe never knows which one it talks to, and tests can record what
was sent without a network. Each transport speaks for *one* connection; the
delivery pipe opens as many as ``SMTP_CONNECTIONS`` asks for.

``send`` returns the server's final reply when it accepted the message. A
refusal raises ``SMTPRefused`` carrying the code (4xx temporary, 5xx permanent);
a connection that broke raises ``ConnectionLost``, after which the transport
reconnects on the next ``send``.
"""

from __future__ import annotations

import mailbox
import smtplib
import socket
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, Sequence

from .errors import ConfigError, TransportError


@dataclass(frozen=True)
class Reply:
    code: int
    text: str

    def __str__(self) -> str:
        return f"{self.code} {self.text}".strip()


class SMTPRefused(TransportError):
    """The server answered the message with a 4xx or 5xx reply."""

    def __init__(self, code: int, text: str, *, where: str | None = None):
        super().__init__(f"{code} {text}".strip(), where=where)
        self.code = code
        self.text = text

    @property
    def permanent(self) -> bool:
        return self.code >= 500


class ConnectionLost(TransportError):
    """The connection dropped or timed out; whether the message arrived is not known."""


class Transport(Protocol):
    description: str

    def send(self, sender: str, recipients: Sequence[str], message: bytes) -> Reply: ...

    def close(self) -> None: ...


class MaildirTransport:
    """Writes each message as a file in a maildir, for a demo or a site without SMTP."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._box = mailbox.Maildir(self.path, create=True)
        self.description = f"maildir outbox {self.path}"

    def send(self, sender: str, recipients: Sequence[str], message: bytes) -> Reply:
        key = self._box.add(message)
        return Reply(250, f"stored as {key}")

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

    def send(self, sender: str, recipients: Sequence[str], message: bytes) -> Reply:
        with self._lock:
            self.sent.append(RecordedMessage(sender, list(recipients), message))
        return Reply(250, "recorded")

    def close(self) -> None:
        pass


SECURITY_MODES = ("starttls", "ssl", "none")


@dataclass(frozen=True)
class SMTPSettings:
    host: str
    port: int = 587
    security: str = "starttls"
    username: str = ""
    password: str = ""
    timeout: float = 30.0
    cafile: str | None = None  # trust this CA bundle as well (a private relay's certificate)

    def tls_context(self) -> ssl.SSLContext:
        # smtplib's own default does not verify certificates; this one always does.
        context = ssl.create_default_context()
        if self.cafile:
            context.load_verify_locations(cafile=self.cafile)
        return context


class SMTPTransport:
    """One reusable SMTP connection, opened on first use and reopened after a drop."""

    def __init__(self, settings: SMTPSettings):
        if settings.security not in SECURITY_MODES:
            raise ConfigError(
                f"SMTP_SECURITY must be one of {', '.join(SECURITY_MODES)}, not {settings.security!r}",
                where="environment/.env",
            )
        self.settings = settings
        self.description = f"SMTP {settings.host}:{settings.port} ({settings.security})"
        self._smtp: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        where = f"{s.host}:{s.port}"
        try:
            if s.security == "ssl":
                smtp = smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout, context=s.tls_context())
            else:
                smtp = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
                if s.security == "starttls":
                    smtp.starttls(context=s.tls_context())
            if s.username:
                smtp.login(s.username, s.password)
        except ssl.SSLCertVerificationError as exc:
            raise TransportError(
                f"the server's TLS certificate is not trusted: {exc.verify_message}",
                where=where,
                hint="fix the server's certificate, or set SMTP_CA_FILE to the CA that signed it",
            ) from None
        except smtplib.SMTPAuthenticationError as exc:
            raise TransportError(
                f"login refused: {exc.smtp_code} {exc.smtp_error.decode(errors='replace')}",
                where=where,
                hint="check SMTP_USERNAME and SMTP_PASSWORD",
            ) from None
        except smtplib.SMTPNotSupportedError as exc:
            raise TransportError(str(exc), where=where, hint="set SMTP_SECURITY to match the server") from None
        except (OSError, smtplib.SMTPException) as exc:
            raise ConnectionLost(f"cannot connect: {exc}", where=where) from None
        return smtp

    def send(self, sender: str, recipients: Sequence[str], message: bytes) -> Reply:
        if self._smtp is None:
            self._smtp = self._connect()
        smtp = self._smtp
        where = f"{self.settings.host}:{self.settings.port}"
        try:
            refused = smtp.sendmail(sender, list(recipients), message)
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = next(iter(exc.recipients.values()))
            self._reset()
            raise SMTPRefused(code, text.decode(errors="replace"), where=where) from None
        except smtplib.SMTPResponseException as exc:
            if exc.smtp_code == 421:  # the server is closing the connection
                self._drop()
            else:
                self._reset()
            text = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
            raise SMTPRefused(exc.smtp_code, text, where=where) from None
        except (smtplib.SMTPServerDisconnected, OSError, socket.timeout) as exc:
            self._drop()
            raise ConnectionLost(f"connection lost: {exc}", where=where) from None
        if refused:  # only one recipient per message here, so this is unreachable in practice
            code, text = next(iter(refused.values()))
            raise SMTPRefused(code, text.decode(errors="replace"), where=where)
        code, text = getattr(smtp, "last_data_reply", (250, b""))
        return Reply(code, text.decode(errors="replace") if isinstance(text, bytes) else str(text))

    def _reset(self) -> None:
        try:
            self._smtp.rset()
        except Exception:
            self._drop()

    def _drop(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            try:
                smtp.close()
            except Exception:
                pass

    def close(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            try:
                smtp.quit()
            except Exception:
                smtp.close()


def smtp_settings(site) -> SMTPSettings | None:
    """The SMTP settings from the site's environment, or None when SMTP_HOST is unset."""
    host = site.setting("SMTP_HOST")
    if not host:
        return None
    security = (site.setting("SMTP_SECURITY") or "starttls").lower()
    default_port = {"ssl": 465, "starttls": 587, "none": 25}.get(security, 587)
    return SMTPSettings(
        host=host,
        port=site.int_setting("SMTP_PORT", default_port),
        security=security,
        username=site.setting("SMTP_USERNAME") or "",
        password=site.setting("SMTP_PASSWORD") or "",
        timeout=site.float_setting("SMTP_TIMEOUT", 30.0),
        cafile=site.setting("SMTP_CA_FILE"),
    )


def open_transport(site) -> Transport:
    """One connection's transport for this site: SMTP when SMTP_HOST is set, else the outbox."""
    settings = smtp_settings(site)
    if settings is None:
        return MaildirTransport(site.outbox_dir)
    return SMTPTransport(settings)
