"""Issue files: the TOML that marketing edits each month, checked field by field.

An issue file says what goes into one newsletter and in which order. Article
sources are paths relative to the site folder (or absolute, or http(s) URLs),
read by ``newsletters.articles``. Every problem names the file and the key, so a
typo never becomes a half-built newsletter.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path

from .errors import IssueFileError
from .toml_errors import load_toml

MODES = ("full", "excerpt")
SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")
KNOWN_KEYS = {"subject", "preheader", "date", "slug", "intro", "articles", "cta", "accept"}


@dataclass(frozen=True)
class IssueArticle:
    source: str
    mode: str = "excerpt"


@dataclass(frozen=True)
class CallToAction:
    text: str
    url: str


@dataclass(frozen=True)
class Acceptance:
    """A pre-send check finding that marketing decided to accept, and why."""

    rule: str
    reason: str


@dataclass
class Issue:
    path: Path
    subject: str
    date: dt.date
    slug: str
    preheader: str = ""
    intro: str = ""
    articles: list[IssueArticle] = field(default_factory=list)
    cta: CallToAction | None = None
    accept: list[Acceptance] = field(default_factory=list)


def _require_str(data: dict, key: str, where: str, *, required: bool, default: str = "") -> str:
    if key not in data:
        if required:
            raise IssueFileError(f"missing required key `{key}`", where=where, hint=f'add `{key} = "..."`')
        return default
    value = data[key]
    if not isinstance(value, str):
        raise IssueFileError(f"`{key}` must be a string, not {type(value).__name__}", where=where)
    return value


def _parse_date(value, where: str) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    raise IssueFileError(
        f"`date` must be a date like 2026-11-01, not {value!r}", where=where, hint="write date = 2026-11-01"
    )


def parse_issue(data: dict, path: Path) -> Issue:
    where = str(path)
    unknown = sorted(set(data) - KNOWN_KEYS)
    if unknown:
        raise IssueFileError(
            f"unknown key `{unknown[0]}`", where=where, hint=f"expected one of: {', '.join(sorted(KNOWN_KEYS))}"
        )
    subject = _require_str(data, "subject", where, required=True).strip()
    if not subject:
        raise IssueFileError("`subject` is empty", where=where)
    if "date" not in data:
        raise IssueFileError("missing required key `date`", where=where, hint="add `date = 2026-11-01`")
    date = _parse_date(data["date"], where)
    slug = _require_str(data, "slug", where, required=False, default=date.strftime("%Y-%m"))
    if not SLUG_RE.match(slug):
        raise IssueFileError(
            f"`slug` {slug!r} may hold only lower-case letters, digits and hyphens", where=where, hint='e.g. slug = "2026-11"'
        )

    raw_articles = data.get("articles", [])
    if not isinstance(raw_articles, list) or not raw_articles:
        raise IssueFileError(
            "an issue needs at least one [[articles]] entry",
            where=where,
            hint='add\n[[articles]]\nsource = "articles/my-post.md"\nmode = "full"',
        )
    articles = []
    for n, entry in enumerate(raw_articles, 1):
        at = f"{where}: articles[{n}]"
        if not isinstance(entry, dict):
            raise IssueFileError("each entry must be an [[articles]] table", where=at)
        extra = sorted(set(entry) - {"source", "mode"})
        if extra:
            raise IssueFileError(f"unknown key `{extra[0]}`", where=at, hint="expected `source` and `mode`")
        source = _require_str(entry, "source", at, required=True).strip()
        if not source:
            raise IssueFileError("`source` is empty", where=at)
        mode = _require_str(entry, "mode", at, required=False, default="excerpt")
        if mode not in MODES:
            raise IssueFileError(f"`mode` must be \"full\" or \"excerpt\", not {mode!r}", where=at)
        articles.append(IssueArticle(source=source, mode=mode))

    cta = None
    if "cta" in data:
        raw = data["cta"]
        if not isinstance(raw, dict):
            raise IssueFileError("`cta` must be a table with `text` and `url`", where=where)
        at = f"{where}: cta"
        cta = CallToAction(
            text=_require_str(raw, "text", at, required=True), url=_require_str(raw, "url", at, required=True)
        )
        if not cta.url.startswith(("https://", "http://", "mailto:", "tel:")):
            raise IssueFileError(f"`cta.url` must be an absolute link, not {cta.url!r}", where=where)

    accept = []
    for n, entry in enumerate(data.get("accept", []), 1):
        at = f"{where}: accept[{n}]"
        if not isinstance(entry, dict):
            raise IssueFileError("each entry must be an [[accept]] table with `rule` and `reason`", where=at)
        rule = _require_str(entry, "rule", at, required=True).strip()
        reason = _require_str(entry, "reason", at, required=True).strip()
        if not reason:
            raise IssueFileError("an acceptance needs a reason", where=at, hint="say why this finding is acceptable")
        accept.append(Acceptance(rule=rule, reason=reason))

    return Issue(
        path=path,
        subject=subject,
        date=date,
        slug=slug,
        preheader=_require_str(data, "preheader", where, required=False).strip(),
        intro=_require_str(data, "intro", where, required=False),
        articles=articles,
        cta=cta,
        accept=accept,
    )


def load_issue(path: str | Path) -> Issue:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise IssueFileError("no such issue file", where=str(path), hint="give the path of a .toml file in issues/") from None
    except UnicodeDecodeError:
        raise IssueFileError("not UTF-8 text", where=str(path)) from None
    data = load_toml(text, path, IssueFileError)
    return parse_issue(data, path)
