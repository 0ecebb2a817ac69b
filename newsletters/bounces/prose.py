"""Bounces written for people, not programs: Exim, qmail, Lotus Domino, old Exchange, Yahoo, GMX, Zoho, Orange.

These say in words which addresses failed, then paste the server's reply and
often the message itself. The reading: find the sentence that opens the list
of failed addresses (each MTA has its own, listed below), take the addresses
after it that are not ours or a postmaster's, and read the words around each
one with ``classify``. Exim's and Gmail's ``X-Failed-Recipients`` header, when
present, names the addresses outright.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import Message

from . import mime
from .classify import PERMANENT_WORDS, SMTP_CODE_RE, find_status
from .identify import ADDRESS_RE, first_address

# The sentence after which an MTA lists the failed addresses.
FAILURE_INTRO_RE = re.compile(
    r"|".join(
        (
            r"the following address\(es\) failed",  # Exim, GMX, Zoho
            r"following addresses had (?:permanent fatal|transient non-fatal) errors",  # Sendmail
            r"wasn't able to deliver your message to the following addresses",  # qmail
            r"unable to deliver your message to the following address",  # Yahoo
            r"could not be delivered to (?:one or more|the following)",  # Postfix text, generic
            r"(?:delivery|message) to the following recipients? (?:failed|has failed)",  # Exchange, Proofpoint
            r"delivery has failed to these recipients",  # Exchange 2007+
            r"following recipient\(s\) (?:cannot|could not) be reached",  # Exchange 2003
            r"your message (?:to|for) .{0,80}? ?(?:couldn't|could not|can't|cannot|wasn't|was not|won't) be delivered",
            r"your message wasn't delivered to",  # Gmail
            r"was not delivered to",  # Lotus Domino
            r"(?:recipients?|addresses?) (?:that|which) (?:failed|could not be reached)",
            r"has not yet been delivered to one or more",  # Exim delay warning
            r"your message to the following recipients cannot be delivered",  # Courier
            r"an error occurred while trying to deliver the mail to the following recipients",  # Amazon SES
            r"votre message n'a pas pu (?:être|etre) (?:remis|délivré|delivre)",  # Orange
            r"adresse\(s\) en (?:échec|echec)",
            r"konnte nicht (?:an|zugestellt)|nicht zugestellt werden|folgende adresse\(n\)",  # GMX/web.de German
            r"no se pudo entregar|no ha podido ser entregado",  # Spanish providers
            r"failed recipients?:",
            r"undeliverable (?:to|address)",
        )
    ),
    re.I,
)
TEMPORARY_BANNER_RE = re.compile(
    r"not yet been delivered|delivery attempts will continue|will (?:continue|keep) (?:to )?tr(?:y|ying)|"
    r"this is a warning|warning message only|still trying|temporary (?:failure|error|problem)|"
    r"transient non-fatal|will be retried|has been delayed|is delayed",
    re.I,
)
DAEMON_LOCAL_RE = re.compile(r"^(?:mailer[-_]?daemon|mail[-_]?daemon|postmaster|mail[-_]?delivery|bounces?|nobody|mdaemon|noreply)(?:[+@]|$)", re.I)
DAEMON_NAME_RE = re.compile(r"mail delivery (?:system|subsystem|service)|mailer.daemon|postmaster|mail administrator|microsoft outlook|system administrator|mail delivery", re.I)
BOUNCE_SUBJECT_RE = re.compile(
    r"undeliver|undelivered|not delivered|delivery (?:status notification|failure|failed|has failed|problem|report|notification|incomplete)|"
    r"returned mail|returned to sender|failure notice|mail delivery failed|could not be delivered|delivery warning|"
    r"warning: (?:message|could not)|nondeliverable|non[- ]remis|non distribuable|[ée]chec de (?:la )?remise|"
    r"unzustellbar|nicht zugestellt|unzustellbare|no se puede entregar|no entregado|entrega fallida|"
    r"message not delivered|delivery status|mail system error|rejected:",
    re.I,
)
FORWARDED_RE = re.compile(r"^\s*(?:fwd?|fw|tr|wg|rv|i)\s*:", re.I)
_URL_RE = re.compile(r"(?:https?|mailto):\S+", re.I)
MAX_RECIPIENTS = 20
SNIPPET = 800


@dataclass
class Failure:
    address: str
    status: str
    text: str  # the words about this address, for classify


def looks_like_bounce(msg: Message) -> bool:
    """Sent by a mail system about a failed delivery (its sender, subject or Exim/Gmail's header say so)."""
    if mime.header(msg, "X-Failed-Recipients"):
        return True
    sender = mime.header(msg, "From")
    address = first_address(sender)
    if address and DAEMON_LOCAL_RE.match(address):
        return True
    if DAEMON_NAME_RE.search(sender.split("<")[0]):
        return True
    subject = mime.header(msg, "Subject")
    if FORWARDED_RE.match(subject):  # a person passing a bounce on is not a mail system reporting one
        return False
    return bool(BOUNCE_SUBJECT_RE.search(subject))


def failed_recipients(msg: Message) -> list[str]:
    """The addresses in Exim's and Gmail's X-Failed-Recipients header."""
    found = (first_address(value) for value in mime.header(msg, "X-Failed-Recipients").split(","))
    return [address for address in found if address][:MAX_RECIPIENTS]


def ours(msg: Message, returned: Message | None) -> set[str]:
    """Addresses that are the sender's, not a failed recipient's: the report's To, our From, postmasters."""
    found = set()
    for source, names in ((msg, ("To", "Return-Path", "Delivered-To", "X-Original-To", "From", "Sender")),
                          (returned, ("From", "Reply-To", "Sender", "Return-Path"))):
        if source is None:
            continue
        for name in names:
            for value in mime.headers(source, name):
                found.update(match.lower() for match in ADDRESS_RE.findall(value))
    return found


def failures(msg: Message, human: str, returned: Message | None) -> tuple[list[Failure], bool | None]:
    """The failed addresses with the words about each, and whether the report calls them permanent."""
    intro = FAILURE_INTRO_RE.search(human)
    region = human[intro.start():] if intro else human
    permanent: bool | None = None
    if TEMPORARY_BANNER_RE.search(human) and not re.search(r"permanent error|permanent fatal|given up|gave up", human, re.I):
        permanent = False
    elif PERMANENT_WORDS.search(human):
        permanent = True

    skip = ours(msg, returned)
    listed = failed_recipients(msg)
    text_no_urls = _URL_RE.sub(" ", region)
    spots = [(m.start(), m.group(0).lower()) for m in ADDRESS_RE.finditer(text_no_urls)]
    candidates = listed or [
        address for _pos, address in spots if address not in skip and not DAEMON_LOCAL_RE.match(address)
    ]
    if not intro and not listed and not find_status(region) and not SMTP_CODE_RE.search(region):
        return [], permanent
    out: list[Failure] = []
    chosen = list(dict.fromkeys(candidates))[:MAX_RECIPIENTS]
    chosen_set = set(chosen)
    for address in chosen:
        at = next((pos for pos, found in spots if found == address), 0)
        others = [pos for pos, found in spots if pos > at and found != address and found in chosen_set]
        end = min(others) if others else at + SNIPPET
        snippet = text_no_urls[at:end]
        status = find_status(snippet)
        out.append(Failure(address, status, snippet if (status or _says_something(snippet)) else region[:4000]))
    if not out and (intro or listed):
        out.append(Failure("", find_status(region), region[:4000]))
    return out, permanent


def _says_something(snippet: str) -> bool:
    """Whether the words right after an address hold a reply (a code or more than the address alone)."""
    return len(snippet.strip()) > 60
