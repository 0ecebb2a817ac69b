"""The SMTP transport against real servers on 127.0.0.1: replies, reuse, refusals, drops, TLS."""

from __future__ import annotations

import mailbox
import re
import socket
import ssl
import threading

import pytest

from newsletters.errors import ConfigError, TransportError
from newsletters.transport import (
    ConnectionLost,
    MaildirTransport,
    SMTPRefused,
    SMTPSettings,
    SMTPTransport,
    clean_reply_text,
    is_canonical,
)
from tests.smtp_servers import HostileServer, Inbox, make_certificate, server_tls_context, smtp_server

SENDER = "news@clinic.example.com"
MESSAGE = (
    b"From: news@clinic.example.com\r\nTo: ann@example.org\r\nSubject: Hello\r\n\r\n"
    b"first line\r\n.a line that starts with a dot\r\n.\r\nlast line\r\n"
)


def plain(port: int, **kw) -> SMTPTransport:
    return SMTPTransport(SMTPSettings(host="127.0.0.1", port=port, security="none", timeout=5, **kw))


@pytest.mark.parametrize("pipelining", [False, True], ids=["one-command-at-a-time", "pipelined"])
def test_message_arrives_intact_and_the_servers_final_reply_is_returned(pipelining):
    inbox = Inbox(pipelining=pipelining)
    with smtp_server(inbox) as (host, port):
        transport = plain(port)
        reply = transport.send(SENDER, ["ann@example.org"], MESSAGE)
        transport.close()
    assert (reply.code, reply.text) == (250, "2.0.0 queued")
    assert inbox.messages[0].rcpt_tos == ["ann@example.org"]
    assert inbox.messages[0].mail_from == SENDER
    # aiosmtpd undoes the dot-stuffing: what arrives is what we sent, lone dot line included.
    assert inbox.messages[0].content == MESSAGE


def test_one_connection_carries_many_messages():
    inbox = Inbox(pipelining=True)
    with smtp_server(inbox) as (host, port):
        transport = plain(port)
        for n in range(5):
            transport.send(SENDER, [f"reader{n}@example.org"], MESSAGE)
        transport.close()
    assert inbox.connections == 1
    assert sorted(inbox.copies()) == [f"reader{n}@example.org" for n in range(5)]


@pytest.mark.parametrize("pipelining", [False, True], ids=["one-command-at-a-time", "pipelined"])
def test_temporary_refusal_at_rcpt_is_reported_and_the_connection_stays_usable(pipelining):
    inbox = Inbox(pipelining=pipelining, rcpt_script={"grey@example.org": ["451 4.7.1 greylisted"]})
    with smtp_server(inbox) as (host, port):
        transport = plain(port)
        with pytest.raises(SMTPRefused) as refused:
            transport.send(SENDER, ["grey@example.org"], MESSAGE)
        transport.send(SENDER, ["grey@example.org"], MESSAGE)
        transport.close()
    assert (refused.value.code, refused.value.stage, refused.value.permanent) == (451, "rcpt", False)
    assert inbox.copies() == {"grey@example.org": 1}
    assert inbox.connections == 1


@pytest.mark.parametrize(
    "reply, bad_recipient",
    [
        ("550 5.1.1 <gone@example.org>: no such user", True),
        ("550 5.1.10 null MX", True),
        ("550 5.7.1 rejected by policy", False),
        ("550 5.1.8 bad sender domain", False),  # about us, not about the subscriber
        ("550 no such user here", False),  # no enhanced code: we cannot tell
    ],
)
def test_permanent_refusal_says_whether_the_mailbox_does_not_exist(reply, bad_recipient):
    inbox = Inbox(rcpt_script={"gone@example.org": [reply]})
    with smtp_server(inbox) as (host, port):
        transport = plain(port)
        with pytest.raises(SMTPRefused) as refused:
            transport.send(SENDER, ["gone@example.org"], MESSAGE)
        transport.close()
    assert refused.value.permanent
    assert refused.value.bad_recipient is bad_recipient
    assert inbox.messages == []


def test_421_closes_and_the_next_message_reconnects():
    inbox = Inbox(rcpt_script={"a@example.org": ["421 4.3.2 too many messages, closing"]})
    with smtp_server(inbox) as (host, port):
        transport = plain(port)
        with pytest.raises(SMTPRefused) as refused:
            transport.send(SENDER, ["a@example.org"], MESSAGE)
        transport.send(SENDER, ["a@example.org"], MESSAGE)
        transport.close()
    assert refused.value.code == 421
    assert inbox.connections == 2
    assert inbox.copies() == {"a@example.org": 1}


def test_connection_lost_after_the_data_means_handed_over():
    inbox = Inbox(data_script={"a@example.org": ["drop"]})
    with smtp_server(inbox) as (host, port):
        transport = plain(port)
        with pytest.raises(ConnectionLost) as lost:
            transport.send(SENDER, ["a@example.org"], MESSAGE)
    assert lost.value.handed_over is True
    assert len(inbox.unreplied) == 1


@pytest.mark.parametrize("action", ["body-drop", "data-drop", "rcpt-drop"])
def test_connection_lost_before_the_end_of_data_means_not_handed_over(action):
    # 16 MB: more than the kernel buffers hold, so the cut reaches us while we still write.
    # (A small message fits in the buffers whole; a cut after that is indistinguishable from a
    # lost reply, and is rightly reported as handed over: see the next test.)
    big = MESSAGE + b"x" * 990 + b"\r\n" * 1 + (b"y" * 998 + b"\r\n") * 16_000
    with HostileServer(choose=lambda address, attempt, rng: action) as (host, port):
        transport = plain(port)
        with pytest.raises(ConnectionLost) as lost:
            transport.send(SENDER, ["a@example.org"], big)
    assert lost.value.handed_over is False


def test_garbage_reply_to_the_data_counts_as_handed_over_and_is_cleaned_for_display():
    with HostileServer(choose=lambda address, attempt, rng: "end-garbage") as (host, port):
        transport = plain(port)
        with pytest.raises(ConnectionLost) as lost:
            transport.send(SENDER, ["a@example.org"], MESSAGE)
    assert lost.value.handed_over is True
    assert "\x1b" not in str(lost.value)
    assert clean_reply_text("ok\x1b[31m red\r\n") == "ok [31m red"


def test_a_connection_the_server_closed_while_idle_is_reopened_without_losing_the_message():
    server = HostileServer(max_per_connection=1)
    with server as (host, port):
        transport = plain(port)
        transport.send(SENDER, ["a@example.org"], MESSAGE)
        reply = transport.send(SENDER, ["b@example.org"], MESSAGE)  # the server hangs up at MAIL FROM
        transport.close()
    assert reply.code == 250
    assert server.delivered == {"a@example.org": 1, "b@example.org": 1}


def test_addresses_with_line_breaks_never_reach_the_wire():
    inbox = Inbox()
    with smtp_server(inbox) as (host, port):
        transport = plain(port)
        with pytest.raises(SMTPRefused) as refused:
            transport.send(SENDER, ["a@example.org>\r\nRCPT TO:<b@example.org"], MESSAGE)
        transport.close()
    assert refused.value.stage == "local"
    assert inbox.rcpt_attempts == {}


def test_cannot_connect_is_a_connection_failure_at_connect():
    transport = plain(1)  # nothing listens on port 1
    with pytest.raises(ConnectionLost) as lost:
        transport.send(SENDER, ["a@example.org"], MESSAGE)
    assert (lost.value.stage, lost.value.handed_over) == ("connect", False)


# -- TLS ------------------------------------------------------------------------------------

@pytest.fixture
def certificate(tmp_path):
    return make_certificate(tmp_path / "tls")


def test_starttls_refuses_a_server_whose_certificate_is_not_trusted(certificate):
    cert, key = certificate
    inbox = Inbox()
    with smtp_server(inbox, tls_context=server_tls_context(cert, key), require_starttls=True) as (host, port):
        transport = SMTPTransport(SMTPSettings(host=host, port=port, security="starttls", timeout=5))
        with pytest.raises(TransportError) as error:
            transport.send(SENDER, ["a@example.org"], MESSAGE)
    assert not isinstance(error.value, ConnectionLost)  # not worth retrying: a setting must change
    assert "certificate is not trusted" in str(error.value)
    assert "SMTP_CA_FILE" in str(error.value)
    assert inbox.messages == []


def test_starttls_works_when_told_to_trust_the_certificate(certificate):
    cert, key = certificate
    inbox = Inbox()
    with smtp_server(inbox, tls_context=server_tls_context(cert, key), require_starttls=True) as (host, port):
        transport = SMTPTransport(SMTPSettings(host=host, port=port, security="starttls", timeout=5, cafile=str(cert)))
        reply = transport.send(SENDER, ["a@example.org"], MESSAGE)
        transport.close()
    assert reply.code == 250
    assert inbox.copies() == {"a@example.org": 1}


def test_over_tls_the_next_envelope_still_goes_ahead_and_both_messages_arrive_intact(certificate):
    """On TLS the message and the next envelope are two writes (a failed TLS write cannot say whether the
    dot went), and the server still answers them together."""
    cert, key = certificate
    inbox = Inbox(pipelining=True)
    with smtp_server(inbox, tls_context=server_tls_context(cert, key), require_starttls=True) as (host, port):
        transport = SMTPTransport(SMTPSettings(host=host, port=port, security="starttls", timeout=5, cafile=str(cert)))
        transport.send(SENDER, ["ann@example.org"], MESSAGE, then=(SENDER, ["bob@example.org"], MESSAGE))
        reply = transport.send(SENDER, ["bob@example.org"], MESSAGE)
        transport.close()
    assert reply.code == 250
    assert inbox.copies() == {"ann@example.org": 1, "bob@example.org": 1}
    assert [m.content for m in inbox.messages] == [MESSAGE, MESSAGE]
    assert inbox.connections == 2  # EHLOs, before and after STARTTLS: the one connection, never reopened


def test_starttls_refuses_a_server_that_does_not_offer_it():
    with smtp_server(Inbox()) as (host, port):
        transport = SMTPTransport(SMTPSettings(host=host, port=port, security="starttls", timeout=5))
        with pytest.raises(TransportError, match="does not offer STARTTLS"):
            transport.send(SENDER, ["a@example.org"], MESSAGE)


def test_implicit_tls_verifies_too(certificate):
    cert, key = certificate
    inbox = Inbox()
    with smtp_server(inbox, ssl_context=server_tls_context(cert, key)) as (host, port):
        untrusted = SMTPTransport(SMTPSettings(host=host, port=port, security="ssl", timeout=5))
        with pytest.raises(TransportError, match="not trusted"):
            untrusted.send(SENDER, ["a@example.org"], MESSAGE)
        trusted = SMTPTransport(SMTPSettings(host=host, port=port, security="ssl", timeout=5, cafile=str(cert)))
        trusted.send(SENDER, ["a@example.org"], MESSAGE)
        trusted.close()
    assert inbox.copies() == {"a@example.org": 1}


def test_password_is_never_sent_over_an_unencrypted_connection_to_another_host():
    with pytest.raises(ConfigError, match="unencrypted"):
        SMTPTransport(SMTPSettings(host="smtp.example.com", port=25, security="none", username="u", password="p"))


def test_tls_context_always_verifies():
    context = SMTPSettings(host="smtp.example.com").tls_context()
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


def test_maildir_outbox_keeps_each_message_as_a_file(tmp_path):
    transport = MaildirTransport(tmp_path / "outbox")
    reply = transport.send(SENDER, ["a@example.org"], MESSAGE)
    box = mailbox.Maildir(tmp_path / "outbox", create=False)
    assert reply.code == 250
    assert [m["Subject"] for m in box] == ["Hello"]


def test_bare_line_ends_are_made_crlf_so_nothing_can_be_smuggled_after_a_fake_end_of_data():
    smuggling = (
        b"From: news@clinic.example.com\nTo: ann@example.org\nSubject: Hello\n\nfirst\n.\r\n"
        b"MAIL FROM:<evil@example.net>\r\nRCPT TO:<victim@example.org>\r\nDATA\r\nSubject: forged\r\n\r\nx\r\n.\r\n"
    )
    inbox = Inbox()
    with smtp_server(inbox) as (host, port):
        transport = plain(port)
        transport.send(SENDER, ["ann@example.org"], smuggling)
        transport.close()
    (received,) = inbox.messages  # one message, not two
    assert received.rcpt_tos == ["ann@example.org"]
    assert b"\r\nMAIL FROM:<evil@example.net>\r\n" in received.content  # delivered as text inside it
    assert not re.search(rb"\r(?!\n)|(?<!\r)\n", received.content)  # CRLF line ends only


def test_a_message_its_caller_no_longer_wants_once_the_data_is_open_never_goes_and_the_next_one_does():
    """``ready`` is the delivery pipe's claim: answered false, or failing, after the server said 354."""
    inbox = Inbox(pipelining=True)
    asked = []
    with smtp_server(inbox) as (host, port):
        transport = plain(port)
        assert transport.send(SENDER, ["ann@example.org"], MESSAGE, ready=lambda: asked.append(1)) is None
        with pytest.raises(ZeroDivisionError):
            transport.send(SENDER, ["bob@example.org"], MESSAGE, ready=lambda: 1 / 0)
        reply = transport.send(SENDER, ["cy@example.org"], MESSAGE, ready=lambda: True)
        transport.close()
    assert asked == [1] and reply.code == 250
    assert inbox.rcpt_attempts == {"ann@example.org": 1, "bob@example.org": 1, "cy@example.org": 1}
    assert [m.rcpt_tos for m in inbox.messages] == [["cy@example.org"]]  # no data ever followed the others
    assert inbox.connections == 3  # each refusal hung up: an opened DATA ends only with a message or that


def test_is_canonical_accepts_only_what_data_takes_as_it_is():
    assert is_canonical(b"a\r\nb\r\n")
    assert not is_canonical(b"a\nb\r\n")
    assert not is_canonical(b"a\rb\r\n")
    assert not is_canonical(b"a\n\rb")  # as many CRs as LFs, none paired
    assert not is_canonical(b"a\r\n.\r\nb\r\n")  # a dot to stuff
    assert not is_canonical(b".a\r\n")
    assert not is_canonical(b"a\r\nb")  # no final CRLF
    assert is_canonical(b"a.\r\n=2E\r\n")


def test_a_message_vouched_for_goes_out_as_it_is_and_one_that_is_not_is_stuffed():
    """``canonical=True`` skips the stuffing; the flag is only passed for what is_canonical accepts."""
    inbox = Inbox()
    with smtp_server(inbox) as (host, port):
        transport = plain(port)
        transport.send(SENDER, ["ann@example.org"], b"Subject: a\r\n\r\nline\r\n=2Eone\r\n", canonical=True)
        transport.send(SENDER, ["ann@example.org"], b"Subject: b\r\n\r\nline\r\n.one\r\n.\r\n..two\r\n")
        transport.close()
    first, second = (m.content for m in inbox.messages)
    assert first == b"Subject: a\r\n\r\nline\r\n=2Eone\r\n"
    assert second == b"Subject: b\r\n\r\nline\r\n.one\r\n.\r\n..two\r\n"  # stuffed on the wire, unstuffed by the server


def test_login_over_starttls_and_a_refused_password_is_a_setting_to_fix(certificate):
    from aiosmtpd.smtp import AuthResult

    cert, key = certificate

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = auth_data.login == b"clinic" and auth_data.password == b"correct horse"
        return AuthResult(success=ok, handled=False)

    inbox = Inbox()
    with smtp_server(
        inbox, tls_context=server_tls_context(cert, key), require_starttls=True,
        authenticator=authenticator, auth_required=True,
    ) as (host, port):
        good = SMTPTransport(SMTPSettings(
            host=host, port=port, security="starttls", timeout=5, cafile=str(cert),
            username="clinic", password="correct horse",
        ))
        good.send(SENDER, ["a@example.org"], MESSAGE)
        good.close()
        wrong = SMTPTransport(SMTPSettings(
            host=host, port=port, security="starttls", timeout=5, cafile=str(cert),
            username="clinic", password="wrong",
        ))
        with pytest.raises(TransportError, match="login refused") as refused:
            wrong.verify()
    assert not isinstance(refused.value, ConnectionLost)
    assert "SMTP_PASSWORD" in str(refused.value)
    assert inbox.copies() == {"a@example.org": 1}


def test_verify_names_the_setting_when_nothing_listens():
    with pytest.raises(TransportError, match="SMTP_HOST, SMTP_PORT"):
        plain(1).verify(pause=0)


# -- the next message's envelope behind this one's dot (``send(then=...)``) -----------------------

class Eavesdropper:
    """One connection that offers PIPELINING and, before answering each end of data, waits a moment
    and keeps what has arrived after the dot: what the client sent without waiting for that reply."""

    def __init__(self, wait: float = 0.3):
        self.wait = wait
        self.after_dot: list[bytes] = []
        self.delivered: list[bytes] = []  # each message's RCPT line
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        conn, _ = self._server.accept()
        conn.sendall(b"220 eavesdropper\r\n")
        buf, rcpt = b"", b""
        while True:
            if b"\n" not in buf:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                buf += chunk
                continue
            line, buf = buf.split(b"\n", 1)
            verb = line[:4].upper()
            if verb == b"EHLO":
                conn.sendall(b"250-eavesdropper\r\n250 PIPELINING\r\n")
            elif verb == b"RCPT":
                rcpt = line.strip()
                conn.sendall(b"250 ok\r\n")
            elif verb == b"DATA":
                conn.sendall(b"354 go on\r\n")
                while b"\r\n.\r\n" not in buf:
                    buf += conn.recv(65536)
                buf = buf.split(b"\r\n.\r\n", 1)[1]
                conn.settimeout(self.wait)  # the client is waiting for our reply now: what else comes?
                try:
                    while not buf.endswith(b"DATA\r\n"):
                        chunk = conn.recv(65536)
                        if not chunk:
                            break
                        buf += chunk
                except TimeoutError:
                    pass
                conn.settimeout(None)
                self.after_dot.append(buf)
                self.delivered.append(rcpt)
                conn.sendall(b"250 queued\r\n")
            elif verb == b"QUIT":
                conn.sendall(b"221 bye\r\n")
                break
            else:
                conn.sendall(b"250 ok\r\n")
        conn.close()
        self._server.close()


def test_the_next_envelope_goes_behind_the_dot_and_both_are_answered_in_one_round_trip():
    server = Eavesdropper()
    transport = plain(server.port)
    first = transport.send(SENDER, ["ann@example.org"], MESSAGE, then=(SENDER, ["bob@example.org"], MESSAGE))
    second = transport.send(SENDER, ["bob@example.org"], MESSAGE)  # as announced: its envelope is not sent again
    transport.close()
    server._thread.join(5)
    assert first.code == second.code == 250
    assert server.delivered == [b"RCPT TO:<ann@example.org>", b"RCPT TO:<bob@example.org>"]
    # While the server held its answer to the first message, the second's envelope was already there.
    assert server.after_dot == [
        f"MAIL FROM:<{SENDER}>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n".encode(),
        b"",  # the last message announced nothing: the client waited
    ]


def test_a_message_larger_than_the_socket_buffers_goes_whole_with_the_next_envelope_behind_it():
    """The message, its dot and the next envelope go in one gathering write; the kernel takes a 16 MB
    message a part at a time, and each write must go on exactly where the last one stopped."""
    big = MESSAGE + (b"y" * 998 + b"\r\n") * 16_000
    inbox = Inbox(pipelining=True)
    with smtp_server(inbox) as (host, port):
        transport = plain(port)
        first = transport.send(SENDER, ["ann@example.org"], big, then=(SENDER, ["bob@example.org"], MESSAGE))
        second = transport.send(SENDER, ["bob@example.org"], MESSAGE)
        transport.close()
    assert first.code == second.code == 250
    assert [m.content for m in inbox.messages] == [big, MESSAGE]
    assert inbox.connections == 1


class _ShortWrites:
    """A socket that takes at most ``chunk`` bytes per write and breaks once ``breaks_at`` bytes went
    (with no ``sendmsg``, as on Windows)."""

    def __init__(self, breaks_at: int, chunk: int = 7):
        self.took, self.breaks_at, self.chunk = bytearray(), breaks_at, chunk

    def send(self, data) -> int:
        if len(self.took) >= self.breaks_at:
            raise BrokenPipeError("broken")
        n = min(self.chunk, len(data), self.breaks_at - len(self.took))
        self.took += bytes(data[:n])
        return n


class _ShortGatheringWrites(_ShortWrites):
    def sendmsg(self, buffers) -> int:
        return self.send(b"".join(bytes(b) for b in buffers))


@pytest.mark.parametrize("stub", [_ShortGatheringWrites, _ShortWrites], ids=["sendmsg", "send"])
def test_a_write_cut_short_tells_whether_the_dot_went(stub):
    """The exactly-once bookkeeping rests on the count of bytes the kernel took: a cut before the
    end-of-data dot means the message never went; at or after it, the message was handed over, and
    only the next envelope behind it is in doubt. (A real socket cannot be cut at a chosen byte.)"""
    from newsletters.smtp import _Lost

    body, envelope = b"Subject: x\r\n\r\nhello\r\n", b"MAIL FROM:<a@b.c>\r\n"
    whole = body + b".\r\n" + envelope
    for breaks_at, outcome in [(len(body) + 2, "lost"), (len(body) + 3, False), (len(whole) - 1, False),
                               (len(whole) + 1, True)]:
        transport = plain(1)
        transport._sock = stub(breaks_at)
        if outcome == "lost":
            with pytest.raises(_Lost):
                transport._write_message(body, envelope)
        else:
            assert transport._write_message(body, envelope) is outcome
        assert bytes(transport._sock.took) == whole[:breaks_at]  # in order, nothing written twice


def test_a_message_other_than_the_one_announced_goes_over_a_new_connection_and_the_announced_gets_nothing():
    inbox = Inbox(pipelining=True)
    with smtp_server(inbox) as (host, port):
        transport = plain(port)
        transport.send(SENDER, ["ann@example.org"], MESSAGE, then=(SENDER, ["bob@example.org"], MESSAGE))
        reply = transport.send(SENDER, ["cy@example.org"], MESSAGE, then=(SENDER, ["dee@example.org"], MESSAGE))
        transport.close()  # dee's DATA is open: closing must not end it with a message
    assert reply.code == 250
    assert inbox.rcpt_attempts == {"ann@example.org": 1, "bob@example.org": 1, "cy@example.org": 1,
                                   "dee@example.org": 1}
    assert inbox.copies() == {"ann@example.org": 1, "cy@example.org": 1}
    assert inbox.connections == 2


def test_a_refused_message_leaves_the_announced_next_one_on_the_same_connection():
    inbox = Inbox(pipelining=True, data_script={"ann@example.org": ["550 5.7.1 content refused"]})
    with smtp_server(inbox) as (host, port):
        transport = plain(port)
        with pytest.raises(SMTPRefused) as refused:
            transport.send(SENDER, ["ann@example.org"], MESSAGE, then=(SENDER, ["bob@example.org"], MESSAGE))
        reply = transport.send(SENDER, ["bob@example.org"], MESSAGE)
        transport.close()
    assert (refused.value.code, refused.value.stage) == (550, "end")
    assert reply.code == 250
    assert inbox.copies() == {"bob@example.org": 1}
    assert inbox.message_for("bob@example.org") == MESSAGE  # nothing (an RSET, say) slipped into bob's data
    assert inbox.connections == 1  # no RSET, no reconnect: the refusal ended ann's transaction, bob's had begun


def test_an_announced_envelope_with_a_line_break_is_never_written():
    inbox = Inbox(pipelining=True)
    with smtp_server(inbox) as (host, port):
        transport = plain(port)
        transport.send(SENDER, ["ann@example.org"], MESSAGE,
                       then=(SENDER, ["bob@example.org>\r\nRCPT TO:<eve@example.net"], MESSAGE))
        with pytest.raises(SMTPRefused) as refused:
            transport.send(SENDER, ["bob@example.org>\r\nRCPT TO:<eve@example.net"], MESSAGE)
        transport.close()
    assert refused.value.stage == "local"
    assert inbox.rcpt_attempts == {"ann@example.org": 1}
