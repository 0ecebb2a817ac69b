"""Real SMTP servers on 127.0.0.1 for the send tests: a normal one, a scripted one, a hostile one.

``Inbox`` is an aiosmtpd handler that keeps what it accepts and can refuse by
script (per address and attempt). ``HostileServer`` is a small hand-written
server, because aiosmtpd only lets a handler act once the whole message is in,
and the interesting failures are elsewhere: a connection cut in the middle of
the data, a reply that never comes, or one that is garbage. It counts a message
as *delivered* the moment the end-of-data dot arrives, unless it then refuses
it: the strictest reading, under which a client that retries after losing the
reply has sent a second copy.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import random
import socket
import socketserver
import ssl
import threading
import time
from collections import Counter, defaultdict
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from aiosmtpd.controller import Controller


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes


class _Controller(Controller):
    """aiosmtpd's Controller on a port the OS picks (port 0), reporting the real one."""

    def _trigger_server(self):
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


class Inbox:
    """An aiosmtpd handler that keeps every accepted message.

    ``rcpt_script`` / ``data_script`` map an address to the replies for its
    successive attempts at RCPT / at the end of the data; an attempt beyond the
    list, or ``None``, is accepted. A reply starting with 421 also closes the
    connection, as a real server does; ``"drop"`` at the end of the data closes
    it without any reply (the message is then in ``unreplied``, not in
    ``messages``).

    ``stall_after=n``: after n accepted messages, hold every further end-of-data
    reply until ``release`` is set, then refuse with 421 (a server that died
    before queueing): what a client killed meanwhile leaves as "unknown".
    """

    def __init__(
        self,
        *,
        rcpt_script: dict[str, list[str | None]] | None = None,
        data_script: dict[str, list[str | None]] | None = None,
        pipelining: bool = False,
        stall_after: int | None = None,
        keep_stalled: bool = False,
        after_each: Callable[[int], object] | None = None,
    ):
        self.rcpt_script = rcpt_script or {}
        self.data_script = data_script or {}
        self.pipelining = pipelining
        self.stall_after = stall_after
        self.keep_stalled = keep_stalled
        self.after_each = after_each  # called with the number of messages kept so far
        self.release = threading.Event()
        self.messages: list[Received] = []
        self.unreplied: list[Received] = []
        self.rcpt_attempts: Counter = Counter()
        self.data_attempts: Counter = Counter()
        self.stalled = 0
        self.connections = 0
        # When (time.monotonic(), in the test's process) each address's messages were accepted.
        self.accepted_at: dict[str, list[float]] = defaultdict(list)

    # What a test asks: who got how many copies.
    def copies(self) -> Counter:
        return Counter(r for m in self.messages for r in m.rcpt_tos)

    def message_for(self, address: str) -> bytes:
        (content,) = [m.content for m in self.messages if address in m.rcpt_tos]
        return content

    def _keep(self, received: Received) -> None:
        self.messages.append(received)
        now = time.monotonic()
        for address in received.rcpt_tos:
            self.accepted_at[address].append(now)

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        self.connections += 1
        if self.pipelining:
            responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        n = self.rcpt_attempts[address]
        self.rcpt_attempts[address] += 1
        script = self.rcpt_script.get(address, [])
        reply = script[n] if n < len(script) else None
        if reply:
            if reply.startswith("421"):
                await server.push(reply)
                server.transport.close()
            return reply
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        received = Received(envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.original_content))
        address = envelope.rcpt_tos[0]
        n = self.data_attempts[address]
        self.data_attempts[address] += 1
        script = self.data_script.get(address, [])
        reply = script[n] if n < len(script) else None
        if reply == "drop":
            self.unreplied.append(received)
            server.transport.close()
            return "250 never seen by the client"
        if reply:
            if reply.startswith("421"):
                await server.push(reply)
                server.transport.close()
            return reply
        if self.stall_after is not None and len(self.messages) >= self.stall_after:
            self.stalled += 1
            if self.keep_stalled:  # this server has queued it; only the reply is late
                self._keep(received)
            while not self.release.is_set():
                await _sleep(0.02)
            return "421 4.3.0 shutting down" if not self.keep_stalled else "250 2.0.0 queued (late)"
        self._keep(received)
        if self.after_each is not None:
            self.after_each(len(self.messages))
        return "250 2.0.0 queued"


class GatedInbox(Inbox):
    """An Inbox that, once ``hold_when(self)`` is true, holds every end-of-data reply until ``release``.

    Held messages are then accepted as usual. A server that is slow for a
    while: the test changes the list during the pause, knowing exactly which
    messages were already in flight (``holding`` of them, at most one per
    connection) and that nobody else can be accepted before it releases.
    """

    def __init__(self, *, hold_when: Callable[["GatedInbox"], bool], **kwargs):
        super().__init__(**kwargs)
        self.hold_when = hold_when
        self.gate_closed = False
        self.holding = 0

    async def handle_DATA(self, server, session, envelope):
        if not self.release.is_set() and (self.gate_closed or self.hold_when(self)):
            self.gate_closed = True
            self.holding += 1
            while not self.release.is_set():
                await _sleep(0.02)
        return await super().handle_DATA(server, session, envelope)


class StallingInbox(Inbox):
    """An Inbox that stalls ``seconds`` before answering the end of data of a message to ``address``.

    The first such message only: ``stall_began`` is set when the stall starts, and
    the message is accepted when it ends. The rest of the server (other
    connections) keeps working meanwhile.
    """

    def __init__(self, *, address: str, seconds: float, **kwargs):
        super().__init__(**kwargs)
        self.address = address
        self.seconds = seconds
        self.stall_began = threading.Event()
        self.stall_started: float | None = None

    async def handle_DATA(self, server, session, envelope):
        if self.address in envelope.rcpt_tos and not self.stall_began.is_set():
            self.stall_started = time.monotonic()
            self.stall_began.set()
            await _sleep(self.seconds)
        return await super().handle_DATA(server, session, envelope)


async def _sleep(seconds: float) -> None:
    import asyncio

    await asyncio.sleep(seconds)


@contextmanager
def smtp_server(
    handler,
    *,
    tls_context: ssl.SSLContext | None = None,
    require_starttls: bool = False,
    port: int = 0,
    **smtp_kwargs,
) -> Iterator[tuple[str, int]]:
    """A real aiosmtpd server on 127.0.0.1 (on ``port``, or one the OS picks); yields (host, port)."""
    controller = _Controller(
        handler,
        hostname="127.0.0.1",
        port=port,
        tls_context=tls_context,
        require_starttls=require_starttls,
        **smtp_kwargs,
    )
    controller.start()
    try:
        yield "127.0.0.1", controller.port
    finally:
        handler_release = getattr(handler, "release", None)
        if handler_release is not None:
            handler_release.set()
        controller.stop()


# -- TLS -------------------------------------------------------------------------------

def make_certificate(folder: Path, common_name: str = "localhost") -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost; returns (cert.pem, key.pem)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


def server_tls_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


# -- a hostile server ---------------------------------------------------------------------

# What the hostile server may do with one message (or, for "greet-421", one connection).
ACTIONS = (
    "accept",
    "mail-451",  # MAIL FROM: temporary refusal
    "rcpt-451",  # greylisting
    "rcpt-421",  # "closing", then closes
    "rcpt-550",  # 550 5.1.1: no such mailbox
    "rcpt-drop",  # closes after RCPT, no reply
    "data-drop",  # closes after the DATA command, no 354
    "body-drop",  # closes in the middle of the message data
    "end-451",  # full message, then a temporary refusal: not delivered
    "end-552",  # full message, then a permanent refusal: not delivered
    "end-drop",  # full message, then closes without a reply: DELIVERED
    "end-slow",  # full message, replies 250 only after the client gave up: DELIVERED
    "end-garbage",  # full message, then a reply that is not SMTP: DELIVERED
)
DELIVERED_ACTIONS = {"accept", "end-drop", "end-slow", "end-garbage"}


class HostileServer:
    """A threaded SMTP server that misbehaves on purpose.

    ``choose(address, attempt, rng) -> action`` decides per message; the default
    picks at random from ``weights``. ``greet_421`` is the chance a connection is
    refused at once; ``max_per_connection`` closes a connection after so many
    messages without a word. ``delivered`` counts, per address, the messages the
    server has (by the strict rule above); ``bounced_addresses`` always get 550 5.1.1.
    """

    def __init__(
        self,
        *,
        seed: int = 1,
        weights: dict[str, float] | None = None,
        choose: Callable[[str, int, random.Random], str] | None = None,
        greet_421: float = 0.0,
        max_per_connection: int | None = None,
        bounced_addresses: set[str] = frozenset(),
        slow_seconds: float = 1.5,
        pipelining: bool = True,
    ):
        self.rng = random.Random(seed)
        self.weights = weights or {"accept": 1.0}
        self.choose = choose or self._random_action
        self.greet_421 = greet_421
        self.max_per_connection = max_per_connection
        self.bounced_addresses = set(bounced_addresses)
        self.slow_seconds = slow_seconds
        self.pipelining = pipelining
        self.delivered: Counter = Counter()
        self.actions: Counter = Counter()
        self.attempts: Counter = Counter()
        self.lock = threading.Lock()
        self._server: socketserver.ThreadingTCPServer | None = None

    def _random_action(self, address: str, attempt: int, rng: random.Random) -> str:
        names = list(self.weights)
        return rng.choices(names, [self.weights[n] for n in names])[0]

    def __enter__(self) -> tuple[str, int]:
        owner = self

        class Handler(socketserver.StreamRequestHandler):
            timeout = 10

            def handle(self):
                owner._session(self.request, self.rfile)

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self._server = Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return "127.0.0.1", self._server.server_address[1]

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _session(self, sock: socket.socket, rfile) -> None:
        def say(line: str) -> None:
            sock.sendall(line.encode() + b"\r\n")

        with self.lock:
            refuse = self.rng.random() < self.greet_421
        if refuse:
            say("421 4.7.0 too busy, try later")
            return
        say("220 hostile.example.org ESMTP")
        served = 0
        action = "accept"
        address = ""
        while True:
            line = rfile.readline(4096)
            if not line:
                return
            command = line.strip().decode("utf-8", "replace")
            verb = command[:4].upper()
            if verb == "EHLO":
                extensions = ["PIPELINING"] if self.pipelining else []
                lines = ["hostile.example.org", *extensions, "8BITMIME", "SIZE 10485760"]
                for n, text in enumerate(lines):
                    say(("250 " if n == len(lines) - 1 else "250-") + text)
            elif verb == "HELO":
                say("250 hostile.example.org")
            elif verb == "MAIL":
                if self.max_per_connection is not None and served >= self.max_per_connection:
                    return  # hang up without a word
                action = "accept"
                address = ""
                say("250 2.1.0 sender ok")  # decided per recipient below
            elif verb == "RCPT":
                address = command.partition("<")[2].partition(">")[0]
                with self.lock:
                    self.attempts[address] += 1
                    action = (
                        "rcpt-550"
                        if address in self.bounced_addresses
                        else self.choose(address, self.attempts[address], self.rng)
                    )
                    self.actions[action] += 1
                if action == "mail-451":
                    say("451 4.3.0 mail system busy")  # pretend the sender was refused: a 4xx anyway
                elif action == "rcpt-451":
                    say("451 4.7.1 greylisted, come back later")
                elif action == "rcpt-421":
                    say("421 4.3.2 service shutting down")
                    return
                elif action == "rcpt-550":
                    say("550 5.1.1 <%s>: recipient address rejected: no such user" % address)
                elif action == "rcpt-drop":
                    return
                else:
                    say("250 2.1.5 recipient ok")
            elif verb == "DATA":
                if action in ("mail-451", "rcpt-451", "rcpt-550"):
                    say("554 5.5.1 no valid recipients")
                    continue
                if action == "data-drop":
                    return
                say("354 go ahead")
                lines = 0
                while True:
                    data = rfile.readline(65536)
                    if not data:
                        return
                    lines += 1
                    if action == "body-drop" and lines > 5:
                        return
                    if data == b".\r\n":
                        break
                served += 1
                if action in DELIVERED_ACTIONS:
                    with self.lock:
                        self.delivered[address] += 1
                if action == "end-451":
                    say("451 4.3.0 temporary local problem")
                elif action == "end-552":
                    say("552 5.3.4 message too big for policy")
                elif action == "end-drop":
                    return
                elif action == "end-slow":
                    time.sleep(self.slow_seconds)
                    try:
                        say("250 2.0.0 queued (slowly)")
                    except OSError:
                        pass
                    return
                elif action == "end-garbage":
                    sock.sendall(b"\x1b[31mOK THANKS\r\n")
                    return
                else:
                    say("250 2.0.0 queued as H%d" % served)
            elif verb == "RSET":
                action = "accept"
                say("250 2.0.0 reset")
            elif verb == "NOOP":
                say("250 2.0.0 ok")
            elif verb == "QUIT":
                say("221 2.0.0 bye")
                return
            else:
                say("502 5.5.2 command not recognised")
