"""The relays' webhook settings from the site's environment, read and checked once."""

from __future__ import annotations

import base64
import binascii
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key, load_pem_public_key

from ..errors import ConfigError
from ..tls import verified_tls_context
from .replays import FileReplayStore, MemoryReplayStore, ReplayStore

WHERE = "environment/.env"
DEFAULT_MAX_AGE = 900.0  # seconds a signed post stays acceptable (and its replay key remembered)


@dataclass(frozen=True)
class WebhookSettings:
    """What each relay's verifier needs; a relay without its secret is refused, never trusted."""

    ses_topic_arns: tuple[str, ...] = ()  # SES_SNS_TOPIC_ARN: only these topics (empty: any topic)
    sns_cert_url_prefixes: tuple[str, ...] = ()  # SES_SNS_CERT_URL_PREFIXES: instead of sns.<region>.amazonaws.com
    sns_cafile: str | None = None  # SES_SNS_CA_FILE: a private CA for fetching certificates (tests, mirrors)
    postmark_user: str = ""
    postmark_password: str = field(default="", repr=False)
    postmark_token: str = field(default="", repr=False)
    mailgun_signing_key: str = field(default="", repr=False)
    sendgrid_public_key: ec.EllipticCurvePublicKey | None = field(default=None, repr=False)
    max_age: float = DEFAULT_MAX_AGE
    fetch_timeout: float = 10.0
    replays: ReplayStore = field(default_factory=MemoryReplayStore, compare=False, repr=False)

    @classmethod
    def from_site(cls, site, *, replays: ReplayStore | None = None) -> "WebhookSettings":
        arns = tuple(a.strip() for a in (site.setting("SES_SNS_TOPIC_ARN") or "").split(",") if a.strip())
        prefixes = tuple(
            cert_url_prefix(p.strip()) for p in (site.setting("SES_SNS_CERT_URL_PREFIXES") or "").split(",")
            if p.strip()
        )
        cafile = site.setting("SES_SNS_CA_FILE")
        if cafile and not Path(cafile).is_absolute():
            cafile = str(site.root / cafile)
        user, password = site.setting("POSTMARK_WEBHOOK_USER") or "", site.setting("POSTMARK_WEBHOOK_PASSWORD") or ""
        if bool(user) != bool(password):
            raise ConfigError("POSTMARK_WEBHOOK_USER and POSTMARK_WEBHOOK_PASSWORD go together", where=WHERE)
        if ":" in user:
            raise ConfigError("POSTMARK_WEBHOOK_USER must not contain ':'", where=WHERE)
        max_age = site.float_setting("WEBHOOK_MAX_AGE", DEFAULT_MAX_AGE)
        if not 30 <= max_age <= 86400:
            raise ConfigError(f"WEBHOOK_MAX_AGE must be between 30 and 86400 seconds, not {max_age:g}", where=WHERE)
        key = site.setting("SENDGRID_WEBHOOK_PUBLIC_KEY")
        if replays is None:
            replay_file = site.setting("WEBHOOK_REPLAY_FILE")
            if replay_file and not Path(replay_file).is_absolute():
                replay_file = str(site.root / replay_file)
            replays = FileReplayStore(replay_file) if replay_file else MemoryReplayStore()
        return cls(
            ses_topic_arns=arns, sns_cert_url_prefixes=prefixes, sns_cafile=cafile,
            postmark_user=user, postmark_password=password, postmark_token=site.setting("POSTMARK_WEBHOOK_TOKEN") or "",
            mailgun_signing_key=site.setting("MAILGUN_WEBHOOK_SIGNING_KEY") or "",
            sendgrid_public_key=sendgrid_key(key) if key else None,
            max_age=max_age, replays=replays,
        )

    def tls_context(self) -> ssl.SSLContext:
        return verified_tls_context(self.sns_cafile, "SES_SNS_CA_FILE")


def cert_url_prefix(text: str) -> str:
    """An allowed certificate URL prefix: https, a host, and a path ending in "/"."""
    parts = urlsplit(text)
    if parts.scheme != "https" or not parts.hostname or parts.username or parts.query or parts.fragment:
        raise ConfigError(
            f"SES_SNS_CERT_URL_PREFIXES: {text!r} is not an https://host/path/ prefix", where=WHERE,
        )
    return text if text.endswith("/") else text + "/"


def sendgrid_key(text: str) -> ec.EllipticCurvePublicKey:
    """SendGrid's verification key as its console shows it (base64 DER), or as a PEM block."""
    try:
        if "BEGIN PUBLIC KEY" in text:
            key = load_pem_public_key(text.replace("\\n", "\n").encode("ascii"))
        else:
            key = load_der_public_key(base64.b64decode("".join(text.split()), validate=True))
    except (ValueError, binascii.Error, UnsupportedAlgorithm, UnicodeEncodeError):
        raise ConfigError(
            "SENDGRID_WEBHOOK_PUBLIC_KEY is not a public key", where=WHERE,
            hint="paste the verification key from SendGrid's Mail Settings > Signed Event Webhook",
        ) from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise ConfigError("SENDGRID_WEBHOOK_PUBLIC_KEY must be an ECDSA P-256 key", where=WHERE)
    return key
