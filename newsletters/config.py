"""The site folder: ``newsletter.toml`` for what the clinic is, the environment for secrets.

A site folder works like a Pelican or MkDocs project: every command runs on the
current folder unless ``--site DIR`` names another. What may be public (name,
address, colours) lives in ``newsletter.toml`` and is committed; what must not be
(SMTP password, SECRET_KEY) comes from the process environment or the site's
``.env`` file, the environment winning.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dotenv import dotenv_values

from .errors import ConfigError
from .toml_errors import load_toml

CONFIG_NAME = "newsletter.toml"

# (section, key) -> (type, required, default). Kept as data so `init`, the loader
# and the README describe the same thing.
SCHEMA: dict[tuple[str, str], tuple[type, bool, Any]] = {
    ("site", "name"): (str, True, None),
    ("site", "website"): (str, True, None),
    ("site", "postal_address"): (str, True, None),
    ("site", "phone"): (str, False, ""),
    ("site", "logo_url"): (str, False, ""),
    ("site", "country"): (str, False, "GB"),
    ("site", "language"): (str, False, "en-GB"),
    ("sender", "name"): (str, True, None),
    ("sender", "address"): (str, True, None),
    ("sender", "reply_to"): (str, False, ""),
    ("brand", "primary_color"): (str, False, "#1f4e5f"),
    ("brand", "accent_color"): (str, False, "#b5593c"),  # 4.7:1 under white button text and on white (WCAG AA)
    ("brand", "background_color"): (str, False, "#f4f1ec"),
    ("brand", "text_color"): (str, False, "#222222"),
    ("footer", "text"): (str, False, ""),
    ("footer", "why"): (str, False, "You receive this e-mail because you subscribed to our newsletter."),
    ("subscribe", "consent_text"): (
        str,
        False,
        "Yes, please e-mail me the monthly newsletter with news and offers. I can unsubscribe at any time.",
    ),
    ("subscribe", "double_opt_in"): (bool, False, True),
    # What `{first_name}` becomes when a subscriber gave no first name ("Hi there,").
    ("personalization", "first_name_fallback"): (str, False, "there"),
    # Campaign tags on links to the clinic's own website (newsletters/tracking.py); off unless asked for.
    ("tracking", "utm"): (bool, False, False),
    ("tracking", "utm_source"): (str, False, "newsletter"),
    ("tracking", "utm_medium"): (str, False, "email"),
    ("tracking", "utm_campaign"): (str, False, ""),  # empty: the issue's slug
    # `send` refuses unless the current build has `approvals` approvals by reviewers (newsletters.review).
    ("review", "required"): (bool, False, False),
    ("review", "approvals"): (int, False, 1),
    # Bounces that arrive after a send (newsletters/bounces/apply.py): a soft bounce takes someone off the
    # list once `soft_limit` of their last `soft_issues` sends (runs) came back soft.
    ("bounces", "soft_limit"): (int, False, 3),
    ("bounces", "soft_issues"): (int, False, 3),
}


@dataclass(frozen=True)
class SiteConfig:
    """What ``newsletter.toml`` says, with defaults filled in."""

    name: str
    website: str
    postal_address: str
    sender_name: str
    sender_address: str
    phone: str = ""
    logo_url: str = ""
    country: str = "GB"
    language: str = "en-GB"
    sender_reply_to: str = ""
    primary_color: str = "#1f4e5f"
    accent_color: str = "#b5593c"
    background_color: str = "#f4f1ec"
    text_color: str = "#222222"
    footer_text: str = ""
    footer_why: str = ""
    consent_text: str = ""
    double_opt_in: bool = True
    personalization_first_name_fallback: str = "there"
    tracking_utm: bool = False
    tracking_utm_source: str = "newsletter"
    tracking_utm_medium: str = "email"
    tracking_utm_campaign: str = ""
    review_required: bool = False
    review_approvals: int = 1
    bounces_soft_limit: int = 3
    bounces_soft_issues: int = 3
    raw: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def sender_domain(self) -> str:
        return self.sender_address.rpartition("@")[2].lower()


def _field_name(section: str, key: str) -> str:
    if section in ("site", "brand", "subscribe"):
        return key
    return f"{section}_{key}"


def parse_config(data: dict, path: Path) -> SiteConfig:
    values: dict[str, Any] = {}
    for (section, key), (typ, required, default) in SCHEMA.items():
        table = data.get(section, {})
        if not isinstance(table, dict):
            raise ConfigError(f"[{section}] must be a table", where=str(path))
        if key in table:
            value = table[key]
            example = {bool: "true", int: "3"}.get(typ, '"..."')
            if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
                raise ConfigError(
                    f"{section}.{key} must be {'an' if typ is int else 'a'} {typ.__name__}, not {type(value).__name__}",
                    where=str(path),
                    hint=f"e.g. {key} = {example}",
                )
        elif required:
            raise ConfigError(
                f"missing required key {section}.{key}",
                where=str(path),
                hint=f"add `{key} = \"...\"` under [{section}]",
            )
        else:
            value = default
        values[_field_name(section, key)] = value
    website = values["website"]
    if not website.startswith(("https://", "http://")):
        raise ConfigError(
            f"site.website must be an absolute http(s) URL, not {website!r}",
            where=str(path),
            hint='e.g. website = "https://www.example-clinic.co.uk"',
        )
    if "@" not in values["sender_address"]:
        raise ConfigError(
            f"sender.address is not an e-mail address: {values['sender_address']!r}",
            where=str(path),
            hint='e.g. address = "news@example-clinic.co.uk" under [sender]',
        )
    for key in ("utm_source", "utm_medium"):
        if not values[f"tracking_{key}"].strip():
            raise ConfigError(f"tracking.{key} is empty", where=str(path), hint="remove the key for the default, or give it a value")
    if isinstance(values["review_approvals"], bool) or not 1 <= values["review_approvals"] <= 20:
        raise ConfigError(
            f"review.approvals must be a whole number from 1 to 20, not {values['review_approvals']!r}",
            where=str(path),
            hint="e.g. approvals = 2 under [review]",
        )
    limit, issues = values["bounces_soft_limit"], values["bounces_soft_issues"]
    if not 1 <= limit <= issues <= 100:
        raise ConfigError(
            f"bounces.soft_limit ({limit}) must be at least 1 and at most bounces.soft_issues ({issues}, at most 100)",
            where=str(path),
            hint="e.g. soft_limit = 3 and soft_issues = 3 under [bounces]",
        )
    values["website"] = website.rstrip("/")
    return SiteConfig(**values, raw=data)


@dataclass(frozen=True)
class Site:
    """A site folder, its config and the environment it runs with."""

    root: Path
    config: SiteConfig
    env: dict[str, str]

    @classmethod
    def load(cls, root: str | os.PathLike | None = None) -> "Site":
        root = Path(root or ".").resolve()
        path = root / CONFIG_NAME
        if not path.is_file():
            raise ConfigError(
                f"no {CONFIG_NAME} here",
                where=str(root),
                hint="run this in a site folder, pass --site DIR, or create one with `newsletter init DIR`",
            )
        data = load_toml(path.read_text(encoding="utf-8"), path, ConfigError)
        config = parse_config(data, path)
        env = {k: v for k, v in dotenv_values(root / ".env").items() if v is not None}
        env.update(os.environ)  # the real environment wins over .env
        return cls(root=root, config=config, env=env)

    # Settings that may hold secrets or differ per machine come from the environment.
    def setting(self, name: str, default: str | None = None) -> str | None:
        value = self.env.get(name)
        return value if value not in (None, "") else default

    def int_setting(self, name: str, default: int) -> int:
        value = self.setting(name)
        if value is None:
            return default
        try:
            return int(value)
        except ValueError:
            raise ConfigError(f"{name} must be a whole number, not {value!r}", where="environment/.env") from None

    def float_setting(self, name: str, default: float) -> float:
        value = self.setting(name)
        if value is None:
            return default
        try:
            return float(value)
        except ValueError:
            raise ConfigError(f"{name} must be a number, not {value!r}", where="environment/.env") from None

    @property
    def public_url(self) -> str:
        """Base of every link a subscriber clicks (unsubscribe, confirm, view online)."""
        return (self.setting("PUBLIC_URL") or "http://127.0.0.1:8080").rstrip("/")

    @property
    def database_url(self) -> str:
        return self.setting("DATABASE_URL") or f"sqlite:///{self.root / 'newsletter.db'}"

    @property
    def articles_dir(self) -> Path:
        return self.root / "articles"

    @property
    def issues_dir(self) -> Path:
        return self.root / "issues"

    @property
    def build_dir(self) -> Path:
        return self.root / "build"

    @property
    def outbox_dir(self) -> Path:
        return self.root / "outbox"

    @property
    def reports_dir(self) -> Path:
        return self.root / "reports"

    @property
    def templates_dir(self) -> Path:
        """A site may override any default template by putting one of the same name here."""
        return self.root / "templates"
