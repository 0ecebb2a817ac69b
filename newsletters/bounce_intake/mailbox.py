"""Fetching bounces from a mailbox over IMAP or POP3, TLS always on and always verified.

A site points either ``BOUNCE_IMAP_HOST`` or ``BOUNCE_POP3_HOST`` at the mailbox
that receives its bounces (the return path of its messages). Both protocols give
the same small interface: ``unprocessed()`` yields ``(uid, raw bytes)`` of the
messages not handled yet, and ``mark_processed(uid)`` records that one was. A
message is marked only when the caller says so, after it has applied what the
message says: a crash in between re-reads the message next time rather than
losing it, so applying must be idempotent (the evidence names the message).

How "processed" is kept:

* IMAP with ``BOUNCE_PROCESSED_FOLDER``: the message is moved there;
* IMAP without: it gets ``\\Seen`` and the keyword ``$NewsletterProcessed``, and
  later fetches skip messages with that keyword (not merely ``\\Seen`` ones: a
  person reading the mailbox must not hide a bounce from us);
* POP3: it is deleted, which the server carries out only when the session ends
  with QUIT, so an interrupted run deletes nothing.

Network and transactions do not mix: the caller reads a message, applies it in a
database transaction, commits, then marks it.
"""

from __future__ import annotations

import base64
import imaplib
import poplib
import re
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Protocol

from ..errors import ConfigError
from ..tls import verified_tls_context
from .errors import MailboxError

PROTOCOLS = ("imap", "pop3")
TLS_MODES = ("ssl", "starttls")
DEFAULT_PORTS = {("imap", "ssl"): 993, ("imap", "starttls"): 143, ("pop3", "ssl"): 995, ("pop3", "starttls"): 110}
PROCESSED_KEYWORD = "$NewsletterProcessed"
WHERE = "environment/.env"
_UNSAFE = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class MailboxSettings:
    protocol: str  # "imap" or "pop3"
    host: str
    user: str
    password: str = field(repr=False)
    port: int = 993
    tls: str = "ssl"
    cafile: str | None = None  # a private CA to trust as well as the system's
    folder: str = "INBOX"  # IMAP only
    processed_folder: str | None = None  # IMAP only
    timeout: float = 30.0

    def __post_init__(self):
        """Refuse what would corrupt a protocol line: a value with CR or LF could smuggle a command."""
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {PROTOCOLS}, not {self.protocol!r}")
        if self.tls not in TLS_MODES:
            raise ConfigError(f"{self.setting('TLS')} must be ssl or starttls, not {self.tls!r}", where=WHERE)
        for key in ("HOST", "USER", "PASSWORD", "FOLDER", "PROCESSED_FOLDER"):
            value = getattr(self, {"PROCESSED_FOLDER": "processed_folder"}.get(key, key.lower()))
            if value and _UNSAFE.search(value):
                raise ConfigError(f"{self.setting(key)} holds a control character", where=WHERE)
        if self.processed_folder and self.processed_folder == self.folder:
            raise ConfigError("BOUNCE_PROCESSED_FOLDER must differ from BOUNCE_IMAP_FOLDER", where=WHERE)

    def setting(self, key: str) -> str:
        """The environment name of one of these settings, for error messages."""
        if key == "PROCESSED_FOLDER":
            return "BOUNCE_PROCESSED_FOLDER"
        return f"BOUNCE_{self.protocol.upper()}_{key}"

    def tls_context(self) -> ssl.SSLContext:
        """Certificates and host names are always checked; a private CA may be trusted too."""
        return verified_tls_context(self.cafile, self.setting("CA_FILE"))


def mailbox_settings(site) -> MailboxSettings | None:
    """The bounce mailbox the site's environment names, or None when it names none."""
    imap_host, pop3_host = site.setting("BOUNCE_IMAP_HOST"), site.setting("BOUNCE_POP3_HOST")
    if imap_host and pop3_host:
        raise ConfigError(
            "both BOUNCE_IMAP_HOST and BOUNCE_POP3_HOST are set", where=WHERE, hint="keep the one your mailbox speaks"
        )
    if not (imap_host or pop3_host):
        return None
    protocol, prefix = ("imap", "BOUNCE_IMAP_") if imap_host else ("pop3", "BOUNCE_POP3_")
    tls = (site.setting(prefix + "TLS") or "ssl").lower()
    if tls not in TLS_MODES:
        raise ConfigError(f"{prefix}TLS must be ssl or starttls, not {tls!r}", where=WHERE)
    user, password = site.setting(prefix + "USER"), site.setting(prefix + "PASSWORD")
    if not user or not password:
        raise ConfigError(f"{prefix}USER and {prefix}PASSWORD must both be set", where=WHERE)
    cafile = site.setting(prefix + "CA_FILE")
    if cafile and not Path(cafile).is_absolute():
        cafile = str(site.root / cafile)
    return MailboxSettings(
        protocol=protocol, host=imap_host or pop3_host, user=user, password=password, tls=tls, cafile=cafile,
        port=site.int_setting(prefix + "PORT", DEFAULT_PORTS[protocol, tls]),
        folder=site.setting("BOUNCE_IMAP_FOLDER") or "INBOX", processed_folder=site.setting("BOUNCE_PROCESSED_FOLDER"),
        timeout=site.float_setting("BOUNCE_MAILBOX_TIMEOUT", 30.0),
    )


class BounceMailbox(Protocol):
    description: str

    def unprocessed(self) -> Iterator[tuple[str, bytes]]: ...

    def mark_processed(self, uid: str) -> None: ...

    def close(self) -> None: ...


def open_mailbox(settings: MailboxSettings) -> "IMAPMailbox | POP3Mailbox":
    """A connected, logged-in mailbox; use it in a ``with`` block so it is always closed."""
    return IMAPMailbox(settings) if settings.protocol == "imap" else POP3Mailbox(settings)


def process_mailbox(settings: MailboxSettings, handle: Callable[[str, bytes], object]) -> int:
    """Give each unprocessed message to ``handle(uid, raw)`` and mark it once ``handle`` has returned.

    An exception from ``handle`` ends the session with that message (and the
    ones after it) unmarked, so the next fetch reads them again; the messages
    handled before it stay marked (POP3 deletes them at the QUIT that still
    ends the session). Returns how many messages were handled.
    """
    handled = 0
    with open_mailbox(settings) as box:
        for uid, raw in box.unprocessed():
            handle(uid, raw)
            box.mark_processed(uid)
            handled += 1
    return handled


def _tls_failure(settings: MailboxSettings, where: str, exc: Exception) -> MailboxError:
    """One sentence for each way TLS set-up fails, naming the setting that fixes it."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return MailboxError(
            f"the server's certificate is not trusted ({exc.verify_message})", where=where,
            hint=f"check {settings.setting('HOST')}, or set {settings.setting('CA_FILE')} to the CA that signed it",
        )
    other = "starttls" if settings.tls == "ssl" else "ssl"
    return MailboxError(
        f"TLS failed: {getattr(exc, 'reason', None) or exc}", where=where,
        hint=f"check {settings.setting('TLS')} (this port may want {other}) and {settings.setting('PORT')}",
    )


class _Session:
    """What both protocols share: the settings, a name for messages, and ``with`` support."""

    def __init__(self, settings: MailboxSettings):
        self.settings = settings
        self.where = f"{settings.protocol.upper()} {settings.host}:{settings.port}"
        self.description = f"{self.where} ({settings.tls})"

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _connect_error(self, exc: OSError) -> MailboxError:
        return MailboxError(
            f"cannot connect: {exc}", where=self.where,
            hint=f"check {self.settings.setting('HOST')} and {self.settings.setting('PORT')}",
        )

    def _login_refused(self) -> MailboxError:
        s = self.settings
        return MailboxError(
            f"the server refused the login of {s.user!r}", where=self.where,
            hint=f"check {s.setting('USER')} and {s.setting('PASSWORD')}",
        )

    def close(self) -> None:
        raise NotImplementedError


def imap_quote(name: str) -> str:
    """A folder name as an IMAP quoted string, in modified UTF-7 (RFC 3501 §5.1.3)."""
    return '"' + modified_utf7(name).replace("\\", "\\\\").replace('"', '\\"') + '"'


def modified_utf7(name: str) -> str:
    """Printable ASCII as itself ("&" as "&-"), any other run as "&" + UTF-16 in base64 with "," + "-"."""
    out, run = [], []
    for char in name + "\x00":  # the NUL only flushes the last run
        if " " <= char <= "~" or char == "\x00":
            if run:
                encoded = base64.b64encode("".join(run).encode("utf-16-be")).decode("ascii")
                out.append("&" + encoded.rstrip("=").replace("/", ",") + "-")
                run = []
            if char != "\x00":
                out.append("&-" if char == "&" else char)
        else:
            run.append(char)
    return "".join(out)


def decode_modified_utf7(name: str) -> str:
    """The folder name a person reads, from its modified UTF-7 form (bad forms are kept as they are)."""

    def run(match: re.Match) -> str:
        text = match.group(1)
        if not text:
            return "&"
        padded = text.replace(",", "/") + "=" * (-len(text) % 4)
        try:
            return base64.b64decode(padded).decode("utf-16-be")
        except (ValueError, UnicodeDecodeError):
            return match.group(0)

    return re.sub(r"&([A-Za-z0-9+,]*)-", run, name)


class IMAPMailbox(_Session):
    """One IMAP session on the bounce folder; see the module's docstring for how it marks."""

    def __init__(self, settings: MailboxSettings):
        super().__init__(settings)
        self._imap = self._connect()
        try:
            self._login()
            self._capabilities = self._fetch_capabilities()
            self._select()
        except BaseException:
            self.close()
            raise

    def _connect(self) -> imaplib.IMAP4:
        s = self.settings
        context = s.tls_context()
        try:
            if s.tls == "ssl":
                return imaplib.IMAP4_SSL(s.host, s.port, ssl_context=context, timeout=s.timeout)
            imap = imaplib.IMAP4(s.host, s.port, timeout=s.timeout)
        except ssl.SSLError as exc:
            raise _tls_failure(s, self.where, exc) from None
        except (OSError, imaplib.IMAP4.error) as exc:
            raise self._connect_error(OSError(str(exc))) from None
        try:
            imap.starttls(ssl_context=context)
        except ssl.SSLError as exc:
            raise _tls_failure(s, self.where, exc) from None
        except (OSError, imaplib.IMAP4.error) as exc:
            raise MailboxError(
                f"STARTTLS failed: {exc}", where=self.where, hint=f"set {s.setting('TLS')}=ssl if this port wants TLS at once"
            ) from None
        return imap

    def _login(self) -> None:
        s = self.settings
        try:
            if "AUTH=PLAIN" in self._imap.capabilities:
                # AUTHENTICATE PLAIN carries UTF-8; LOGIN's quoted strings are ASCII only.
                secret = f"\0{s.user}\0{s.password}".encode("utf-8")
                self._imap.authenticate("PLAIN", lambda _challenge: secret)
            else:
                self._imap.login(s.user, s.password)
        except (imaplib.IMAP4.error, UnicodeEncodeError):
            raise self._login_refused() from None
        except OSError as exc:
            raise self._connect_error(exc) from None

    def _fetch_capabilities(self) -> set[str]:
        """What the server offers once logged in (MOVE, UIDPLUS often appear only then)."""
        typ, data = self._imap.capability()
        return set((data[0] or b"").decode("ascii", "replace").upper().split()) if typ == "OK" else set()

    def _folder_names(self) -> list[str]:
        typ, data = self._imap.list()
        names = []
        for line in data if typ == "OK" else []:
            if isinstance(line, bytes):
                name = decode_modified_utf7(line.rsplit(b" ", 1)[-1].decode("ascii", "replace").strip('"'))
                names.append(_UNSAFE.sub("?", name)[:60])  # the server's words, shown on our terminal
        return names[:12]

    def _no_folder(self, name: str, setting: str) -> MailboxError:
        known = ", ".join(self._folder_names()) or "none listed"
        return MailboxError(f"the mailbox has no folder {name!r} (it has: {known})", where=self.where,
                            hint=f"fix {setting}")

    def _select(self) -> None:
        s = self.settings
        typ, _ = self._imap.select(imap_quote(s.folder))
        if typ != "OK":
            raise self._no_folder(s.folder, "BOUNCE_IMAP_FOLDER")
        _, flags = self._imap.response("PERMANENTFLAGS")
        allowed = b" ".join(f for f in flags if isinstance(f, bytes))
        if s.processed_folder:
            typ, _ = self._imap.status(imap_quote(s.processed_folder), "(MESSAGES)")
            if typ != "OK":
                raise self._no_folder(s.processed_folder, "BOUNCE_PROCESSED_FOLDER")
        elif b"\\*" not in allowed and PROCESSED_KEYWORD.encode() not in allowed:
            raise MailboxError(
                f"the server does not keep the keyword {PROCESSED_KEYWORD} on messages in {s.folder!r}",
                where=self.where, hint="set BOUNCE_PROCESSED_FOLDER to a folder processed bounces move to",
            )

    def unprocessed(self) -> Iterator[tuple[str, bytes]]:
        """Each message not yet marked, as (UID, the message's bytes); reading marks nothing."""
        typ, data = self._command("UID SEARCH", "SEARCH", "UNDELETED", "UNKEYWORD", PROCESSED_KEYWORD)
        for uid in (data[0] or b"").split():
            typ, parts = self._command("UID FETCH", "FETCH", uid.decode("ascii"), "(BODY.PEEK[])")
            raw = next((p[1] for p in parts if isinstance(p, tuple) and len(p) == 2), None)
            if raw is not None:  # expunged meanwhile by someone else: nothing to read
                yield uid.decode("ascii"), raw

    def mark_processed(self, uid: str) -> None:
        """Move the message to BOUNCE_PROCESSED_FOLDER, or flag it with the processed keyword."""
        if not uid.isdigit():
            raise ValueError(f"not an IMAP UID: {uid!r}")
        target = self.settings.processed_folder
        if not target:
            self._command("UID STORE", "STORE", uid, "+FLAGS.SILENT", f"(\\Seen {PROCESSED_KEYWORD})")
        elif "MOVE" in self._capabilities:
            self._command("UID MOVE", "MOVE", uid, imap_quote(target))
        else:
            self._command("UID COPY", "COPY", uid, imap_quote(target))
            self._command("UID STORE", "STORE", uid, "+FLAGS.SILENT", "(\\Deleted)")
            if "UIDPLUS" in self._capabilities:  # plain EXPUNGE would also remove others' \Deleted messages
                self._command("UID EXPUNGE", "EXPUNGE", uid)

    def _command(self, name: str, verb: str, *args: str):
        try:
            typ, data = self._imap.uid(verb, *args)
        except (imaplib.IMAP4.error, OSError) as exc:
            raise MailboxError(f"{name} failed: {exc}", where=self.where) from None
        if typ != "OK":
            text = b" ".join(d for d in data if isinstance(d, bytes)).decode("utf-8", "replace")
            raise MailboxError(f"{name} refused: {_UNSAFE.sub(' ', text)[:200]}", where=self.where)
        return typ, data

    def close(self) -> None:
        imap, self._imap = getattr(self, "_imap", None), None
        if imap is None:
            return
        try:
            imap.logout()  # not CLOSE: that would also expunge messages others flagged \\Deleted
        except (imaplib.IMAP4.error, OSError):
            pass


MAX_POP3_LINE = 1024 * 1024


class _LongLines:
    """poplib refuses lines over 2048 bytes; returned messages hold HTML lines far longer than that."""

    def _getline(self):
        line = self.file.readline(MAX_POP3_LINE + 1)
        if len(line) > MAX_POP3_LINE:
            raise poplib.error_proto(f"a line longer than {MAX_POP3_LINE} bytes")
        if not line:
            raise poplib.error_proto("-ERR EOF")
        if line.endswith(b"\r\n"):
            return line[:-2], len(line)
        return line.rstrip(b"\r\n"), len(line)


class _POP3(_LongLines, poplib.POP3):
    pass


class _POP3_SSL(_LongLines, poplib.POP3_SSL):
    pass


class POP3Mailbox(_Session):
    """One POP3 session; processed messages are deleted when the session ends with QUIT."""

    def __init__(self, settings: MailboxSettings):
        super().__init__(settings)
        self._pop = self._connect()
        self._numbers: dict[str, bytes] = {}
        try:
            self._login()
        except BaseException:
            self.close()
            raise

    def _connect(self) -> poplib.POP3:
        s = self.settings
        context = s.tls_context()
        try:
            if s.tls == "ssl":
                return _POP3_SSL(s.host, s.port, timeout=s.timeout, context=context)
            pop = _POP3(s.host, s.port, timeout=s.timeout)
        except ssl.SSLError as exc:
            raise _tls_failure(s, self.where, exc) from None
        except (OSError, poplib.error_proto) as exc:
            raise self._connect_error(OSError(str(exc))) from None
        try:
            pop.stls(context=context)
        except ssl.SSLError as exc:
            raise _tls_failure(s, self.where, exc) from None
        except (OSError, poplib.error_proto) as exc:
            raise MailboxError(
                f"STLS failed: {exc}", where=self.where, hint=f"set {s.setting('TLS')}=ssl if this port wants TLS at once"
            ) from None
        return pop

    def _login(self) -> None:
        s = self.settings
        try:
            self._pop.user(s.user)
            self._pop.pass_(s.password)
        except poplib.error_proto:
            raise self._login_refused() from None
        except OSError as exc:
            raise self._connect_error(exc) from None

    def unprocessed(self) -> Iterator[tuple[str, bytes]]:
        """Each message still on the server, as (its UIDL, the message's bytes)."""
        try:
            _, listing, _ = self._pop.uidl()
        except (poplib.error_proto, OSError) as exc:
            raise MailboxError(f"UIDL failed: {exc}", where=self.where) from None
        for line in listing:
            number, _, uid = line.partition(b" ")
            self._numbers[uid.decode("ascii", "replace")] = number
        for uid, number in list(self._numbers.items()):
            try:
                _, lines, _ = self._pop.retr(int(number))
            except (poplib.error_proto, OSError) as exc:
                raise MailboxError(f"RETR {int(number)} failed: {exc}", where=self.where) from None
            yield uid, b"\r\n".join(lines) + b"\r\n"

    def mark_processed(self, uid: str) -> None:
        number = self._numbers.get(uid)
        if number is None:
            raise ValueError(f"not a message of this session: {uid!r}")
        try:
            self._pop.dele(int(number))
        except (poplib.error_proto, OSError) as exc:
            raise MailboxError(f"DELE {int(number)} failed: {exc}", where=self.where) from None

    def close(self) -> None:
        pop, self._pop = getattr(self, "_pop", None), None
        if pop is None:
            return
        try:
            pop.quit()
        except (poplib.error_proto, OSError):
            pop.close()
