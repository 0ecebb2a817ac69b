"""DKIM signatures (dkimpy) over each finished message, when the site has a key.

Gmail and Yahoo honour one-click unsubscribe only when ``List-Unsubscribe`` and
``List-Unsubscribe-Post`` are covered by a valid DKIM signature (RFC 8058 §4),
so those are always signed, and "over-signed" (listed once more than they
occur) together with From, To and Subject: a header added in transit would then
break the signature instead of riding on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError

SIGNED_HEADERS = (
    b"from", b"to", b"subject", b"date", b"message-id", b"reply-to",
    b"list-unsubscribe", b"list-unsubscribe-post", b"list-id",
    b"mime-version", b"content-type",
)
OVERSIGNED = (b"from", b"to", b"subject", b"list-unsubscribe", b"list-unsubscribe-post")
SETTINGS = ("DKIM_PRIVATE_KEY_FILE", "DKIM_SELECTOR", "DKIM_DOMAIN")


@dataclass(frozen=True)
class DKIMSigner:
    selector: bytes
    domain: bytes
    private_key: bytes = b""

    def sign(self, message: bytes) -> bytes:
        """The message with a ``DKIM-Signature:`` header in front."""
        # dkimpy (with dnspython) takes 19 ms to import, paid by every send of a site without DKIM, once per
        # sender process; here only sites with a key pay it, once (later imports are a dictionary lookup).
        import dkim

        present = {line.split(b":", 1)[0].strip().lower() for line in _header_lines(message)}
        include = [h for h in SIGNED_HEADERS if h in present] + [h for h in OVERSIGNED if h in present]
        signature = dkim.sign(
            message,
            self.selector,
            self.domain,
            self.private_key,
            canonicalize=(b"relaxed", b"relaxed"),
            include_headers=include,
        )
        return signature + message

    @classmethod
    def from_site(cls, site) -> "DKIMSigner | None":
        """The site's signer, None when DKIM is not configured; ConfigError when half-configured."""
        values = {name: site.setting(name) for name in SETTINGS}
        if not any(values.values()):
            return None
        missing = [name for name, value in values.items() if not value]
        if missing:
            raise ConfigError(
                f"DKIM is half configured: {', '.join(missing)} not set",
                where="environment/.env",
                hint="set all of DKIM_PRIVATE_KEY_FILE, DKIM_SELECTOR and DKIM_DOMAIN, or none",
            )
        path = Path(values["DKIM_PRIVATE_KEY_FILE"])
        if not path.is_absolute():
            path = site.root / path
        try:
            key = path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"cannot read the DKIM key: {exc.strerror}", where=str(path)) from None
        domain = values["DKIM_DOMAIN"].strip().lower()
        sender_domain = site.config.sender_domain
        if not (sender_domain == domain or sender_domain.endswith("." + domain)):
            raise ConfigError(
                f"DKIM_DOMAIN {domain} does not match the sender's domain {sender_domain}",
                where="environment/.env",
                hint="DMARC only counts a signature of the From domain (or a parent of it)",
            )
        signer = cls(values["DKIM_SELECTOR"].strip().encode(), domain.encode(), key)
        import dkim  # see ``sign``

        try:  # fail now, not on the first subscriber
            signer.sign(b"From: a@" + domain.encode() + b"\r\nSubject: key check\r\n\r\nkey check\r\n")
        except dkim.DKIMException as exc:
            raise ConfigError(
                f"the DKIM key cannot sign: {exc}",
                where=str(path),
                hint="give an RSA key in PEM (BEGIN RSA PRIVATE KEY) or an Ed25519 key with pynacl installed",
            ) from None
        return signer


def _header_lines(message: bytes):
    end = message.find(b"\r\n\r\n")
    head = message[: end if end >= 0 else len(message)]
    for line in head.split(b"\r\n"):
        if line and line[:1] not in (b" ", b"\t"):
            yield line
