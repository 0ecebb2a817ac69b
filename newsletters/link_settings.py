"""Settings that would send dead or wrong links, refused before mail leaves this machine.

Every unsubscribe, confirm and "view online" link starts with ``PUBLIC_URL``,
and the sender's domain is where replies and bounces go. Copied from an example
(``news.example.com``) or left at the default (``http://127.0.0.1:8080``), they
work in the outbox and against a test server on this machine, and nowhere else:
a real subscriber's one-click unsubscribe would go nowhere. So when mail goes to
an SMTP host off this machine, such values are an error: ``send`` refuses before
connecting and ``check`` reports an error finding, from this one rule.

Reserved names: RFC 2606 and RFC 6761 (``example``, ``test``, ``invalid``,
``localhost`` and ``example.com/.net/.org``), RFC 8375 (``home.arpa``) and
RFC 6762's ``local``.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

from .errors import ConfigError
from .transport import smtp_settings

RESERVED_DOMAINS = (
    "example", "test", "invalid", "localhost", "local", "home.arpa", "example.com", "example.net", "example.org",
)


@dataclass(frozen=True)
class LinkProblem:
    setting: str  # what to change, named as the user writes it
    message: str
    hint: str


def is_reserved_domain(host: str) -> bool:
    host = host.lower().rstrip(".")
    return any(host == name or host.endswith("." + name) for name in RESERVED_DOMAINS)


def _address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def is_loopback_host(host: str) -> bool:
    """A name or address that can only mean this machine (a local relay, a test server)."""
    host = host.lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    address = _address(host)
    return address is not None and address.is_loopback


def mail_leaves_this_machine(site) -> bool:
    """True when messages go to an SMTP host elsewhere: not the outbox, not a loopback server."""
    settings = smtp_settings(site)
    return settings is not None and not is_loopback_host(settings.host)


def link_problems(site) -> list[LinkProblem]:
    """What would make links or the sender wrong for real recipients; nothing while mail stays on this machine."""
    if not mail_leaves_this_machine(site):
        return []
    problems = []
    public = site.public_url
    host = urlsplit(public).hostname or ""
    address = _address(host)
    if not host or is_reserved_domain(host):
        problems.append(LinkProblem(
            "PUBLIC_URL", f"PUBLIC_URL is {public}, a reserved example or test address: every unsubscribe and "
            "confirm link would be dead", "set PUBLIC_URL in .env to the https address where `newsletter serve` is "
            "reachable, e.g. https://news.your-clinic.co.uk"))
    elif address is not None and (address.is_loopback or address.is_private or address.is_link_local
                                  or address.is_unspecified or address.is_reserved):
        problems.append(LinkProblem(
            "PUBLIC_URL", f"PUBLIC_URL is {public}, an address only this machine or its network can reach: "
            "subscribers' unsubscribe and confirm links would not open", "set PUBLIC_URL in .env to the public "
            "https address of `newsletter serve` (behind your reverse proxy)"))
    sender = site.config.sender_address
    domain = sender.rpartition("@")[2]
    if is_reserved_domain(domain):
        problems.append(LinkProblem(
            "sender.address", f"the sender address {sender} is on a reserved example domain: replies and bounces "
            "would go nowhere and receivers reject it", "set [sender] address in newsletter.toml to an address on "
            "your clinic's own domain"))
    return problems


def refuse_dead_links(site) -> None:
    """Raise ConfigError naming the setting, before any connection, when real mail would carry dead links."""
    problems = link_problems(site)
    if problems:
        first = problems[0]
        others = f" (and {len(problems) - 1} more: run `newsletter check`)" if len(problems) > 1 else ""
        raise ConfigError(first.message + others, where=first.setting, hint=first.hint)
