"""The double opt-in message: one link, the clinic's name, and what happens if you ignore it.

It is a transactional message the person just asked for, so it carries no
tracking and no marketing; it goes through the same transport as newsletters
(SMTP, or the site's maildir outbox when SMTP_HOST is unset).
"""

from __future__ import annotations

from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from html import escape

from recipients import ConfirmationDue, Store
from recipients.tokens import CONFIRM_MAX_AGE, confirm_url

from ..delivery.retry import judge
from ..errors import DeliveryError, TransportError
from ..transport import ConnectionLost, open_transport


def build_confirmation(site, address: str, first_name: str, link: str) -> EmailMessage:
    config = site.config
    days = CONFIRM_MAX_AGE // 86400
    greeting = f"Hello {first_name}," if first_name else "Hello,"
    text = (
        f"{greeting}\n\n"
        f"Please confirm that you would like to receive {config.name}'s newsletter: open this link:\n\n"
        f"{link}\n\n"
        f"The link works for {days} days. If you did not ask for this, ignore this e-mail: "
        f"you will not be subscribed and will hear nothing more from us.\n\n"
        f"{config.name}\n{config.postal_address}\n"
    )
    html = f"""<!doctype html>
<html lang="{escape(config.language)}"><head><meta charset="utf-8"><title>Please confirm your subscription</title></head>
<body style="font-family: Arial, sans-serif; color: {escape(config.text_color)}; line-height: 1.5;">
<p>{escape(greeting)}</p>
<p>Please confirm that you would like to receive {escape(config.name)}'s newsletter: press this button.</p>
<p><a href="{escape(link)}" style="display: inline-block; padding: 12px 20px; background: {escape(config.primary_color)};
color: #ffffff; text-decoration: none; border-radius: 4px;">Yes, subscribe me</a></p>
<p>Or copy this link into your browser: {escape(link)}</p>
<p>The link works for {days} days. If you did not ask for this, ignore this e-mail: you will not be subscribed
and will hear nothing more from us.</p>
<p>{escape(config.name)}<br>{escape(config.postal_address)}</p>
</body></html>
"""
    message = EmailMessage()
    message["Subject"] = f"Please confirm your subscription to {config.name}"
    message["From"] = Address(config.sender_name, addr_spec=config.sender_address)
    # The name came from a public form; it is checked, but the address alone is enough here.
    message["To"] = Address(addr_spec=address)
    if config.sender_reply_to:
        message["Reply-To"] = config.sender_reply_to
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = make_msgid(domain=config.sender_domain)
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return message


def send_confirmation(site, store: Store, due: ConfirmationDue) -> None:
    """Send one owed confirmation mail, then tell the store it went out.

    Called after the sign-up committed, never inside a transaction: a slow or
    stalled mail server holds no database lock. A TransportError propagates and
    the mail stays owed (``confirmations_due``).
    """
    link = confirm_url(site, due.public_id, due.nonce)
    message = build_confirmation(site, due.email, due.first_name, link)
    transport = open_transport(site)
    try:
        transport.send(site.config.sender_address, [due.email], message.as_bytes())
    finally:
        transport.close()
    store.confirmation_sent(due)


def send_due_confirmations(site, store: Store) -> tuple[int, list[tuple[str, str]]]:
    """Send every confirmation mail still owed; returns (sent, [(address, why not)]).

    A refusal of one address (a 4xx or 5xx to its RCPT or data) is noted and
    the next one tried. A failure that is the server's (it cannot be reached,
    refuses our login or TLS) stops at once with a DeliveryError saying how
    many are still owed: every further mail would fail alike, each after up to
    SMTP_TIMEOUT, and one line says more than a hundred identical ones.
    """
    owed = store.confirmations_due()
    sent, failed = 0, []
    for due in owed:
        try:
            send_confirmation(site, store, due)
            sent += 1
        except TransportError as exc:
            verdict = judge(exc)
            if verdict.abort or isinstance(exc, ConnectionLost):  # the server's trouble, not this address's
                still = len(owed) - sent
                raise DeliveryError(
                    f"the mail server did not take the confirmation e-mails ({exc.message}): "
                    f"{sent} sent, {still} still owed",
                    where=exc.where,
                    hint="run `newsletter recipients resend-confirmations` again once the mail server answers",
                ) from None
            failed.append((due.email, exc.message))
    return sent, failed
