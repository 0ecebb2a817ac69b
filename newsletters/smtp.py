"""The SMTP client: replies, refusals, settings, and one connection that speaks MAIL/RCPT/DATA itself.

The client speaks the protocol itself rather than through
``smtplib.sendmail`` for two reasons that matter to exactly-once delivery:

* it knows whether the end-of-data dot went out. A connection lost *before*
  the dot cannot have delivered anything (RFC 5321 §4.1.1.4: an unfinished
  DATA is discarded), so the message may be retried; lost *after* the dot, the
  server may have queued it, so ``ConnectionLost.handed_over`` is true and the
  delivery pipe must not resend on its own;
* it pipelines MAIL, RCPT and DATA (RFC 2920) when the server offers it, and
  sends the next message's MAIL, RCPT and DATA right behind this message's
  end-of-data dot (``send(..., then=...)``), which RFC 2920 also allows: one
  round trip per message instead of two. The next message's DATA is then
  open on the server before it is known whether that message may go; when it
  may not, the connection is dropped, and an unfinished DATA delivers nothing.

``Reply``, ``SMTPRefused`` and ``ConnectionLost`` live here because every
transport answers in SMTP's terms; ``newsletters.transport`` re-exports them.
"""

from __future__ import annotations

import base64
import re
import socket
import ssl
import time
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable, Sequence

from .errors import ConfigError, TransportError
from .tls import verified_tls_context

# A hostile server must not make us buffer without bound or paint the terminal.
MAX_LINE = 4096
MAX_REPLY_LINES = 100
MAX_REPLY_TEXT = 500
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]+")
_UNUSABLE_IN_ADDRESS = re.compile(r"[\r\n\0<> ]")  # would end or break the command it stands in
_ENHANCED = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})\b")
_END_OF_DATA = b".\r\n"  # the line that ends a message's data (RFC 5321 4.1.1.4)


def clean_reply_text(text: str) -> str:
    """Server text as it may be stored and printed: no control characters, bounded length."""
    text = _CONTROL.sub(" ", text).strip()
    return text if len(text) <= MAX_REPLY_TEXT else text[: MAX_REPLY_TEXT - 1] + "…"


@dataclass(frozen=True)
class Reply:
    code: int
    text: str

    def __str__(self) -> str:
        return f"{self.code} {self.text}".strip()

    @property
    def enhanced(self) -> str:
        """The RFC 3463 status code at the start of the text ("5.1.1"), or ""."""
        m = _ENHANCED.match(self.text)
        return m.group(0) if m else ""


class SMTPRefused(TransportError):
    """The server answered the message with a 4xx or 5xx reply.

    ``stage`` says which command drew it: "connect", "mail", "rcpt", "data"
    (the DATA command) or "end" (the reply to the finished message).
    """

    def __init__(self, code: int, text: str, *, where: str | None = None, stage: str = "rcpt"):
        text = clean_reply_text(text)
        super().__init__(f"{code} {text}".strip(), where=where)
        self.code = code
        self.text = text
        self.stage = stage

    @property
    def permanent(self) -> bool:
        return self.code >= 500

    @property
    def enhanced(self) -> str:
        return Reply(self.code, self.text).enhanced

    @property
    def bad_recipient(self) -> bool:
        """A permanent "this mailbox does not exist" (5.1.x about the recipient, not the sender).

        5.1.7 and 5.1.8 speak of the *sender's* address, and a refusal of MAIL FROM
        is about us, so neither may mark a subscriber as bounced.
        """
        code = self.enhanced
        return (
            self.permanent
            and self.stage in ("rcpt", "end")
            and code.startswith("5.1.")
            and code not in ("5.1.7", "5.1.8")
        )


class ConnectionLost(TransportError):
    """The connection dropped or timed out.

    ``handed_over`` is true when the whole message, end-of-data dot included,
    had been written: the server may have accepted it, so nobody knows whether
    the recipient got it.
    """

    def __init__(self, message: str, *, where: str | None = None, handed_over: bool = False, stage: str = "message"):
        super().__init__(message, where=where)
        self.handed_over = handed_over
        self.stage = stage  # "connect": the session could not even be set up



SECURITY_MODES = ("starttls", "ssl", "none")
LOOPBACK = ("127.0.0.1", "::1", "localhost")


@dataclass(frozen=True)
class SMTPSettings:
    host: str
    port: int = 587
    security: str = "starttls"
    username: str = ""
    password: str = field(default="", repr=False)
    timeout: float = 30.0
    cafile: str | None = None  # trust this CA bundle as well (a private relay's certificate)
    helo_name: str | None = None

    def tls_context(self) -> ssl.SSLContext:
        # smtplib's own default does not verify certificates; this one always does.
        return verified_tls_context(self.cafile, "SMTP_CA_FILE")


@lru_cache(maxsize=1)
def _local_hostname() -> str:
    # getfqdn may ask DNS; do it once per process, not once per connection.
    name = socket.getfqdn()
    return name if name and name.isascii() and " " not in name else "localhost.localdomain"


# ``send``'s last question before the message goes (see there): false means it must not go.
Ready = Callable[[], object]
# The message that follows on the same connection: (envelope sender, recipients, message).
Envelope = tuple[str, Sequence[str], bytes]
# An envelope sent ahead waits in an opened DATA, which servers time out (RFC 5321 §4.5.3.2 asks for at least
# 5 minutes): one older than this is not trusted, and the connection is opened anew instead.
AHEAD_MAX_AGE = 30.0

_BARE_CR = re.compile(rb"\r(?!\n)")
_DOT_AFTER_LINE_END = re.compile(rb"\n\.")


def _crlf_only(message: bytes) -> bool:
    """True when every CR is followed by LF and every LF preceded by CR.

    As many CRs as LFs and no CR without its LF imply no LF without its CR. Counts
    and a search that starts from a literal byte run at C speed; a look-behind
    regex would be ten times slower on a 60 KB message.
    """
    return message.count(b"\r") == message.count(b"\n") and not _BARE_CR.search(message)


def is_canonical(message: bytes) -> bool:
    """True when DATA can take the message as it is: CRLF line ends only, no line that starts
    with a dot (nothing to stuff), and a CRLF at the end.

    ``MessageFactory`` writes such messages (it encodes a leading dot as ``=2E``).
    Checking takes 90 µs on a 60 KB message, a search for a line-leading dot alone
    36 µs, so the delivery pipe checks the first message of each connection and
    then passes ``send(..., canonical=True)`` instead.
    """
    return (
        _crlf_only(message)
        and message.endswith(b"\r\n")
        and not message.startswith(b".")
        and not _DOT_AFTER_LINE_END.search(message)
    )


def _dot_stuff(message: bytes, canonical: bool = False) -> bytes:
    """The message as DATA needs it: CRLF line ends, leading dots doubled, ending in CRLF.

    A bare CR or LF is never passed on: next to a dot, a lenient server may read
    it as the end of the data and take what follows as a second message (SMTP
    smuggling). ``canonical`` is the caller's word that ``is_canonical`` holds.
    """
    if canonical:
        return message
    if not _crlf_only(message):
        message = re.sub(rb"\r\n|\r|\n", b"\r\n", message)
    if message.startswith(b"."):
        message = b"." + message
    if b"\r\n." in message:
        message = b"\r\n..".join(message.split(b"\r\n."))
    if not message.endswith(b"\r\n"):
        message += b"\r\n"
    return message


class _Lost(Exception):
    """Internal: the socket broke or the server spoke nonsense."""


class SMTPTransport:
    """One reusable SMTP connection, opened on first use and reopened after a drop."""

    def __init__(self, settings: SMTPSettings):
        if settings.security not in SECURITY_MODES:
            raise ConfigError(
                f"SMTP_SECURITY must be one of {', '.join(SECURITY_MODES)}, not {settings.security!r}",
                where="environment/.env",
            )
        if settings.username and settings.security == "none" and settings.host not in LOOPBACK:
            raise ConfigError(
                "refusing to send SMTP_PASSWORD over an unencrypted connection",
                where="environment/.env",
                hint="set SMTP_SECURITY=starttls or ssl",
            )
        self.settings = settings
        self.where = f"{settings.host}:{settings.port}"
        self.description = f"SMTP {settings.host}:{settings.port} ({settings.security})"
        self._sock: socket.socket | None = None
        self._buf = bytearray()
        self._ext: dict[str, str] = {}
        self._used = False  # has this connection carried a message already?
        # The next message's envelope, written behind the last message's dot: for whom, what, and when.
        self._ahead: tuple[str, list[str], bytes] | None = None
        self._ahead_at = 0.0

    # -- wire ---------------------------------------------------------------
    def _write(self, data: bytes) -> None:
        if self._sock is None:
            raise _Lost("not connected")
        try:
            self._sock.sendall(data)
        except (OSError, ValueError) as exc:
            raise _Lost(f"write failed: {exc}") from None

    def _readline(self) -> bytes:
        while True:
            end = self._buf.find(b"\n")
            if end >= 0:
                line = bytes(self._buf[: end + 1])
                del self._buf[: end + 1]
                return line
            if len(self._buf) > MAX_LINE:
                raise _Lost("the server sent a reply line that is far too long")
            if self._sock is None:
                raise _Lost("not connected")
            try:
                chunk = self._sock.recv(65536)
            except (OSError, ValueError) as exc:
                raise _Lost(f"read failed: {exc}") from None
            if not chunk:
                raise _Lost("the server closed the connection")
            self._buf += chunk

    def _write_message(self, body: bytes, then: bytes) -> bool:
        """Write ``body`` and the dot that ends it, then ``then``; false when ``then`` did not all go.

        On a plain socket all of it goes in one gathering write (``sendmsg``: a 60 KB
        message is not copied to append the dot and the next envelope), counted
        rather than ``sendall``: a write that fails after the kernel took the dot has
        handed the message over, and only the count tells whether it did. TLS cannot
        count (``SSLSocket.send`` writes all or raises, records already out or not),
        so there the message goes first, alone, and a failure of that write still
        means the dot never went.
        """
        if self._sock is None:
            raise _Lost("not connected")
        if isinstance(self._sock, ssl.SSLSocket):
            self._write(body + _END_OF_DATA)
            try:
                if then:
                    self._sock.sendall(then)
            except (OSError, ValueError):
                return False  # the message went; reading its reply tells what became of it
            return True
        parts = (body, _END_OF_DATA, then)
        gather = hasattr(self._sock, "sendmsg")  # not on Windows: there the parts are joined, as before
        pending = [memoryview(part) for part in (parts if gather else (b"".join(parts),)) if part]
        message_size, sent = len(body) + len(_END_OF_DATA), 0
        try:
            while pending:
                n = self._sock.sendmsg(pending) if gather else self._sock.send(pending[0])
                sent += n
                while n and n >= len(pending[0]):
                    n -= len(pending.pop(0))
                if n:
                    pending[0] = pending[0][n:]
        except (OSError, ValueError) as exc:
            if sent < message_size:
                raise _Lost(f"write failed: {exc}") from None
            return False  # the message went; reading its reply tells what became of it
        return True

    def _reply(self) -> Reply:
        line = self._readline()
        if line[3:4] == b" " and line[:3].isdigit():  # most replies are one line: four per message
            text = line[4:].decode("utf-8", "replace").strip()
            self._lines = [text]
            return Reply(int(line[:3]), clean_reply_text(text))
        lines = []
        for n in range(MAX_REPLY_LINES):
            if n:
                line = self._readline()
            head, sep = line[:3], line[3:4]
            if not head.isdigit() or sep not in (b"-", b" ", b"\r", b"\n", b""):
                raise _Lost(f"not an SMTP reply: {clean_reply_text(line.decode('utf-8', 'replace'))!r}")
            lines.append(line[4:].decode("utf-8", "replace").strip())
            if sep != b"-":
                self._lines = lines
                return Reply(int(head), clean_reply_text(" ".join(t for t in lines if t)))
        raise _Lost("the server sent a reply of too many lines")

    def _command(self, line: str) -> Reply:
        self._write(line.encode("utf-8") + b"\r\n")
        return self._reply()

    # -- session --------------------------------------------------------------
    def _connect(self) -> None:
        s = self.settings
        try:
            sock = socket.create_connection((s.host, s.port), timeout=s.timeout)
            # Replies to pipelined commands and the next message's commands must not wait for ACKs.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError as exc:
            raise ConnectionLost(f"cannot connect: {exc}", where=self.where, stage="connect") from None
        self._sock, self._buf, self._used = sock, bytearray(), False
        try:
            if s.security == "ssl":
                self._sock = s.tls_context().wrap_socket(sock, server_hostname=s.host)
            greeting = self._reply()
            if greeting.code != 220:
                self._drop()
                if greeting.code >= 500:
                    raise TransportError(f"the server refuses us: {greeting}", where=self.where)
                raise SMTPRefused(greeting.code, greeting.text, where=self.where, stage="connect")
            self._ehlo()
            if s.security == "starttls":
                if "STARTTLS" not in self._ext:
                    self._drop()
                    raise TransportError(
                        "the server does not offer STARTTLS",
                        where=self.where,
                        hint="set SMTP_SECURITY to match the server (ssl, or none only on a trusted network)",
                    )
                reply = self._command("STARTTLS")
                if reply.code != 220:
                    self._drop()
                    raise TransportError(f"STARTTLS refused: {reply}", where=self.where)
                if self._buf:  # bytes sent before TLS began would be read as if protected (CVE-2011-0411)
                    self._drop()
                    raise TransportError("the server sent data before TLS started; refusing", where=self.where)
                self._sock = s.tls_context().wrap_socket(self._sock, server_hostname=s.host)
                self._ehlo()
            if s.username:
                self._login()
        except ssl.SSLCertVerificationError as exc:
            self._drop()
            raise TransportError(
                f"the server's TLS certificate is not trusted: {exc.verify_message}",
                where=self.where,
                hint="fix the server's certificate, or set SMTP_CA_FILE to the CA that signed it",
            ) from None
        except (ssl.SSLError, _Lost, OSError) as exc:
            self._drop()
            raise ConnectionLost(f"cannot set up the SMTP session: {exc}", where=self.where, stage="connect") from None

    def _ehlo(self) -> None:
        reply = self._command(f"EHLO {self.settings.helo_name or _local_hostname()}")
        if reply.code != 250:
            self._drop()
            raise TransportError(f"EHLO refused: {reply}", where=self.where)
        # The first line names the server; each following one is an extension and its argument.
        self._ext = {}
        for line in self._lines[1:]:
            keyword, _, arg = line.partition(" ")
            self._ext[keyword.upper()] = arg

    def _login(self) -> None:
        s = self.settings
        methods = self._ext.get("AUTH", "").upper().split()
        if "PLAIN" in methods:
            token = base64.b64encode(f"\0{s.username}\0{s.password}".encode()).decode()
            reply = self._command(f"AUTH PLAIN {token}")
        elif "LOGIN" in methods:
            reply = self._command("AUTH LOGIN")
            if reply.code == 334:
                reply = self._command(base64.b64encode(s.username.encode()).decode())
            if reply.code == 334:
                reply = self._command(base64.b64encode(s.password.encode()).decode())
        else:
            self._drop()
            raise TransportError(
                "the server offers no login method we speak (PLAIN, LOGIN)",
                where=self.where,
                hint="unset SMTP_USERNAME if the server needs no login, or check SMTP_SECURITY",
            )
        if reply.code != 235:
            self._drop()
            raise TransportError(f"login refused: {reply}", where=self.where, hint="check SMTP_USERNAME and SMTP_PASSWORD")

    def verify(self, attempts: int = 3, pause: float = 0.5) -> None:
        """Connect, greet, start TLS and log in now, so a wrong setting shows before anything is sent.

        A busy server (421) or a refused connection is tried again a few times,
        as either can be passing; a certificate or a password never is.
        """
        for attempt in range(1, attempts + 1):
            if self._sock is not None:
                return
            try:
                self._connect()
                return
            except ConnectionLost as exc:
                if attempt == attempts:
                    raise TransportError(
                        exc.message,
                        where=self.where,
                        hint="check SMTP_HOST, SMTP_PORT and SMTP_SECURITY, and that the server is up",
                    ) from None
            except SMTPRefused as exc:
                if attempt == attempts:
                    raise TransportError(
                        f"the server turns us away: {exc.code} {exc.text}", where=self.where, hint="try again later"
                    ) from None
            time.sleep(pause * attempt)

    # -- one message ------------------------------------------------------------
    def send(
        self, sender: str, recipients: Sequence[str], message: bytes, *, canonical: bool = False,
        ready: Ready | None = None, then: Envelope | None = None,
    ) -> Reply | None:
        """Hand one message over; ``canonical=True`` is the caller's word that ``is_canonical`` holds.

        (``MessageFactory`` output does; the delivery pipe checks the first message
        of each connection with ``is_canonical`` and passes the flag only if it
        holds.) It saves searching 60 KB for bare CRs, LFs and leading dots on
        every message.

        ``ready`` is asked once the server has taken the envelope and opened the
        data, right before the message goes: if it answers false nothing is
        handed over, the connection is dropped (an opened DATA ends only with a
        message or with the connection) and ``send`` returns None. The delivery
        pipe passes its claim here, so the claim's round trip to the database
        runs while the server answers MAIL, RCPT and DATA.

        ``then`` is the message the caller will send next on this connection: its
        envelope goes out in the same write as this message's dot, and the server
        answers both at once. The next ``send`` must be that message (the same
        sender, recipients and message); anything else, or a wait longer than
        ``AHEAD_MAX_AGE``, drops the connection first and starts anew.
        """
        recipients = list(recipients)
        if not recipients:
            raise ValueError("a message needs at least one recipient")
        if self._ahead is not None and not self._ahead_is(sender, recipients, message):
            self._drop()  # the DATA opened for another message ends with the connection: nothing delivered
        if self._sock is None:
            self._check_addresses(sender, recipients)  # an unusable address is refused before connecting
            self._connect()
        elif self._used:
            # A connection idle for long may have been closed by the server. If the
            # very first command finds it dead nothing was handed over: reconnect once.
            try:
                return self._transaction(sender, recipients, message, canonical, ready, then)
            except _Stale:
                self._drop()
                self._connect()
        try:
            return self._transaction(sender, recipients, message, canonical, ready, then)
        except _Stale as exc:
            self._drop()
            raise ConnectionLost(f"connection lost: {exc}", where=self.where) from None

    def _ahead_is(self, sender: str, recipients: list[str], message: bytes) -> bool:
        """Whether the envelope sent ahead is this message's, and recent enough to trust."""
        ahead_sender, ahead_recipients, ahead_message = self._ahead
        return (
            time.monotonic() - self._ahead_at <= AHEAD_MAX_AGE
            and ahead_sender == sender
            and ahead_recipients == recipients
            and (ahead_message is message or ahead_message == message)
        )

    def _check_addresses(self, sender: str, recipients: Sequence[str]) -> None:
        for address in (sender, *recipients):
            if _UNUSABLE_IN_ADDRESS.search(address):
                raise SMTPRefused(553, f"(not sent) unusable address {address!r}", where=self.where, stage="local")

    def _commands(self, sender: str, recipients: Sequence[str], message: bytes) -> list[str]:
        """The envelope's commands for this server (MAIL, RCPT..., DATA), without their line ends."""
        self._check_addresses(sender, recipients)
        utf8 = not (sender.isascii() and all(r.isascii() for r in recipients))
        if utf8 and "SMTPUTF8" not in self._ext:
            raise SMTPRefused(
                553,
                "(not sent) the server does not accept non-ASCII addresses (no SMTPUTF8)",
                where=self.where,
                stage="local",
            )
        params = ""
        if not message.isascii() and "8BITMIME" in self._ext:
            params += " BODY=8BITMIME"
        if utf8:
            params += " SMTPUTF8"
        return [f"MAIL FROM:<{sender}>{params}", *(f"RCPT TO:<{r}>" for r in recipients), "DATA"]

    def _transaction(
        self, sender: str, recipients: list[str], message: bytes, canonical: bool, ready: Ready | None,
        then: Envelope | None,
    ) -> Reply | None:
        sent_ahead, self._ahead = self._ahead is not None, None  # ``send`` dropped any other message's
        commands = [] if sent_ahead else self._commands(sender, recipients, message)
        stages = _stages(recipients)
        pipelined = "PIPELINING" in self._ext
        following = b""
        if then is not None and pipelined:
            try:
                following = _wire(self._commands(*then))
            except SMTPRefused:
                pass  # that message will be refused on its own turn, without an envelope sent ahead
        body = _dot_stuff(message, canonical)
        self._used = True
        refusal: tuple[Reply, str] | None = None
        opened_data = False
        try:
            if pipelined and not sent_ahead:
                self._write(_wire(commands))
            for n, stage in enumerate(stages):
                try:
                    reply = self._reply() if pipelined else self._command(commands[n])
                except _Lost as exc:
                    if refusal:  # e.g. 421 and then the server hung up, as it said it would
                        self._drop()
                        break
                    if n == 0:
                        raise _Stale(str(exc)) from None
                    raise
                ok = reply.code == 354 if stage == "data" else 200 <= reply.code < 300
                if stage == "data":
                    opened_data = reply.code == 354
                if not ok and refusal is None:
                    refusal = (reply, stage)
                    if not pipelined:
                        break
            if refusal:
                # The first refusal decides; later replies in a pipeline only echo it (503 …).
                reply, stage = refusal
                if self._sock is not None and opened_data:
                    # The server opened DATA despite the refusal: end it empty, then reset.
                    self._write(_END_OF_DATA)
                    self._reply()
                self._after_refusal(reply)
                code = reply.code if reply.code >= 400 else 451
                raise SMTPRefused(code, reply.text or f"unexpected reply {reply.code}", where=self.where, stage=stage)
            if ready is not None and not self._still_wanted(ready):
                return None
            # One write, dot included: if it fails before the kernel took the dot, the dot never
            # went out. (A server that gives up mid-data on a message larger than the socket
            # buffers makes this write fail; on a smaller one the cut shows only as a missing
            # reply, and the message is rightly "handed over": nobody can tell more.) The next
            # message's envelope, when there is one, rides in the same write, behind the dot.
            complete = self._write_message(body, following)
            if complete and following:
                self._ahead, self._ahead_at = (then[0], list(then[1]), then[2]), time.monotonic()
        except _Lost as exc:
            # Whatever broke, the end-of-data dot was not written: nothing can have been delivered.
            self._drop()
            raise ConnectionLost(f"connection lost before the message was complete: {exc}", where=self.where) from None
        try:
            reply = self._reply()
        except _Lost as exc:
            self._drop()
            raise ConnectionLost(
                f"connection lost after the message was handed over, before the server's reply: {exc}",
                where=self.where,
                handed_over=True,
            ) from None
        if not complete:  # part of the next envelope may be on the wire: nothing more can go on this connection
            self._drop()
        if 200 <= reply.code < 300:
            return reply
        if 400 <= reply.code < 600:
            self._after_refusal(reply)
            raise SMTPRefused(reply.code, reply.text, where=self.where, stage="end")
        self._drop()
        raise ConnectionLost(
            f"the server answered the finished message with {reply}, which is neither yes nor no",
            where=self.where,
            handed_over=True,
        )

    def _still_wanted(self, ready: Ready) -> bool:
        """Ask ``ready``; if the message is not to go after all, end the opened DATA the only safe way."""
        try:
            wanted = bool(ready())
        except BaseException:
            self._drop()
            raise
        if not wanted:
            self._drop()
        return wanted

    def _after_refusal(self, reply: Reply) -> None:
        if self._sock is None:
            return
        if reply.code == 421:  # the server is closing the connection
            self._drop()
            return
        if self._ahead is not None:  # the refusal ended that transaction; the next one has begun already
            return
        try:
            if self._command("RSET").code != 250:
                self._drop()
        except _Lost:
            self._drop()

    def _drop(self) -> None:
        sock, self._sock = self._sock, None
        self._buf = bytearray()
        self._ahead = None
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass

    def close(self) -> None:
        if self._sock is not None and self._ahead is None:  # inside an opened DATA only dropping ends it
            try:
                self._sock.settimeout(min(self.settings.timeout, 5.0))
                self._command("QUIT")
            except (_Lost, OSError):
                pass
        self._drop()


def _wire(commands: list[str]) -> bytes:
    """Commands as they go out in one write (RFC 2920 pipelining)."""
    return "".join(c + "\r\n" for c in commands).encode("utf-8")


def _stages(recipients: Sequence[str]) -> list[str]:
    """What each command of an envelope is (MAIL, one RCPT per recipient, DATA), to say where a refusal came."""
    return ["mail", *(["rcpt"] * len(recipients)), "data"]


class _Stale(Exception):
    """Internal: a reused connection was found dead at the first command of a message."""
