"""What comes back after a real send, written by the tests: DSNs, an ARF complaint, an auto-reply, a forgery.

Each is built from a message our sender really handed over (``Received``:
envelope sender, recipient, bytes), the way a receiving server builds its
report: sent to the envelope sender (the VERP return path when
BOUNCE_ADDRESS is set), with the returned message's headers attached.
"""

from __future__ import annotations

import uuid

MTA = "mx.example.org"


def _headers_of(content: bytes) -> str:
    head = content.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    return head.decode("utf-8", "replace").replace("\r\n", "\n")


def dsn(received, status: str, diagnostic: str, *, action: str = "failed") -> bytes:
    """An RFC 3464 delivery status notification for ``received`` (Postfix-shaped)."""
    recipient = received.rcpt_tos[0]
    boundary = uuid.uuid4().hex
    text = f"""Return-Path: <>
From: MAILER-DAEMON@{MTA} (Mail Delivery System)
To: {received.mail_from}
Subject: Undelivered Mail Returned to Sender
Message-ID: <{uuid.uuid4().hex}@{MTA}>
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"

--{boundary}
Content-Type: text/plain; charset=us-ascii

This is the mail system at host {MTA}.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients.

<{recipient}>: host {MTA} said: {diagnostic}

--{boundary}
Content-Type: message/delivery-status

Reporting-MTA: dns; {MTA}

Final-Recipient: rfc822; {recipient}
Original-Recipient: rfc822;{recipient}
Action: {action}
Status: {status}
Diagnostic-Code: smtp; {diagnostic}

--{boundary}
Content-Type: text/rfc822-headers

{_headers_of(received.content)}
--{boundary}--
"""
    return text.replace("\n", "\r\n").encode("utf-8")


def hard(received) -> bytes:
    return dsn(received, "5.1.1", "550 5.1.1 <%s>: Recipient address rejected: User unknown" % received.rcpt_tos[0])


def soft(received) -> bytes:
    return dsn(received, "4.2.2", "452 4.2.2 Mailbox full: user is over quota", action="delayed")


def complaint(received) -> bytes:
    """An RFC 5965 ARF report from a mailbox provider's feedback loop, with the whole message returned."""
    boundary = uuid.uuid4().hex
    head = f"""From: fbl@{MTA}
To: abuse@larkfield-clinic.example.com
Subject: Complaint about a message from larkfield-clinic.example.com
Message-ID: <{uuid.uuid4().hex}@{MTA}>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="{boundary}"

--{boundary}
Content-Type: text/plain

This is an e-mail abuse report for a message received from a sender of yours.

--{boundary}
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: ExampleFBL/1.0
Version: 1
Original-Rcpt-To: {received.rcpt_tos[0]}
Original-Mail-From: {received.mail_from}

--{boundary}
Content-Type: message/rfc822

"""
    return head.replace("\n", "\r\n").encode() + received.content + f"\r\n--{boundary}--\r\n".encode()


def auto_reply(received) -> bytes:
    text = f"""From: {received.rcpt_tos[0]}
To: {received.mail_from}
Subject: Out of office: Winter skin notes
Auto-Submitted: auto-replied
Message-ID: <{uuid.uuid4().hex}@{MTA}>

I am away until Monday and will read your message when I am back.
"""
    return text.replace("\n", "\r\n").encode()


def forged_hard(address: str, to: str) -> bytes:
    """A bounce anyone could write: names an address of the list, proves nothing we sent."""
    text = f"""From: MAILER-DAEMON@{MTA}
To: {to}
Subject: Undelivered Mail Returned to Sender
Message-ID: <{uuid.uuid4().hex}@{MTA}>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="b"

--b
Content-Type: text/plain

<{address}>: host {MTA} said: 550 5.1.1 User unknown

--b
Content-Type: message/delivery-status

Reporting-MTA: dns; {MTA}

Final-Recipient: rfc822; {address}
Action: failed
Status: 5.1.1

--b
Content-Type: text/rfc822-headers

From: News <news@larkfield-clinic.example.com>
To: {address}
Subject: Winter skin notes
Message-ID: <2026-11-send-test.1.0123456789abcdef01234567@larkfield-clinic.example.com>

--b--
"""
    return text.replace("\n", "\r\n").encode()
