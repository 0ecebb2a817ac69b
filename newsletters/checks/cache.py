"""Check results kept beside a build, reused while the build's content is unchanged.

``newsletter build`` and ``check`` run every rule, SpamAssassin included (a
second or so). ``send`` builds the issue again right after and would score the
same message again. So a full check run (with SpamAssassin) is written to
``build/<slug>/.checks.json`` under a digest of everything the rules read,
and a later run over a build with the same digest reads it instead:

- the rendered subject, preheader, HTML and text (what ``send`` delivers), and
  the sample message SpamAssassin scores, less what differs on every build
  (its Date, Message-ID and MIME boundary) but with every header and link
  that comes from ``.env`` (``PUBLIC_URL``) or ``newsletter.toml``;
- the site's ``newsletter.toml`` (sender, colours, ``[checks]``) and its
  ``checks.toml``, and the issue file's ``[[accept]]`` tables;
- the size of every local image file the e-mail shows (``image-too-heavy``);
- whether and which SpamAssassin is installed, and this program's version.

Change any of it and the digest changes, so every rule runs again. The
cache is only an optimisation: a file that cannot be read or written is
ignored, and the checks run.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

from .. import __version__
from ..build import write_atomically
from .document import MailDocument
from .mail_rules import local_image_file
from .model import CheckReport, Finding, SpamResult, SpamRule
from .settings import CheckSettings
from .spamassassin import spamassassin_path

CACHE_NAME = ".checks.json"
FORMAT = 1


def content_digest(doc: MailDocument, settings: CheckSettings) -> str:
    """SHA-256 over everything the rules read (see the module docstring)."""
    h = hashlib.sha256()

    def add(value) -> None:
        h.update(str(value).encode("utf-8"))
        h.update(b"\0")

    for part in (FORMAT, __version__, doc.subject, doc.preheader, doc.html, doc.text):
        add(part)
    add(_steady(doc.sample_eml or b""))
    config = getattr(doc.site, "config", None)
    add(json.dumps(getattr(config, "raw", {}), sort_keys=True, default=str))
    rules_file = settings.site_rules_path
    add(rules_file.read_bytes() if rules_file is not None and rules_file.is_file() else b"")
    for acceptance in getattr(doc.issue, "accept", []) or []:
        add((acceptance.rule, acceptance.reason))
    for img in doc.images():
        path = local_image_file(doc, img.get("src") or "")
        add((str(path), path.stat().st_size) if path is not None else "-")
    spamassassin = spamassassin_path()
    add((spamassassin, _mtime(spamassassin)) if spamassassin else "no spamassassin")
    return h.hexdigest()


_VOLATILE_HEADER = re.compile(rb"^(?:Date|Message-ID):[^\r\n]*\r?\n", re.M | re.I)
_BOUNDARY = re.compile(rb"=_nl_[0-9a-f]+")


def _steady(message: bytes) -> bytes:
    """The sample message without what changes on every build of the same content."""
    return _BOUNDARY.sub(b"=_nl_", _VOLATILE_HEADER.sub(b"", message))


def _mtime(path: str) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return 0


def load(folder: Path, digest: str) -> CheckReport | None:
    """The report stored for this digest, or None (no file, another digest, or not readable)."""
    try:
        data = json.loads((Path(folder) / CACHE_NAME).read_text(encoding="utf-8"))
        if data.get("format") != FORMAT or data.get("digest") != digest:
            return None
        return report_from_json(data["report"], data.get("rules_run", []))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def store(folder: Path, digest: str, report: CheckReport) -> None:
    """Keep ``report`` for the build in ``folder``; a folder we cannot write to just means no reuse."""
    data = {"format": FORMAT, "digest": digest, "rules_run": list(report.rules_run), "report": report.to_json()}
    try:
        write_atomically({Path(folder) / CACHE_NAME: json.dumps(data, ensure_ascii=False).encode("utf-8")})
    except OSError:
        pass


def report_from_json(data: dict, rules_run) -> CheckReport:
    findings = [
        Finding(
            rule=f["rule"], severity=f["severity"], where=f["where"], text=f["text"], fix=f["fix"],
            accepted_reason=f.get("accepted_reason"), html_line=f.get("html_line"),
        )
        for f in data["findings"]
    ]
    spam = data.get("spamassassin")
    result = None
    if spam:
        result = SpamResult(
            score=spam["score"], required=spam["required"], version=spam.get("version", ""),
            rules=tuple(SpamRule(r["name"], r["score"], r["description"]) for r in spam["rules"]),
        )
    return CheckReport(findings=findings, spam=result, rules_run=tuple(rules_run), reused=True)
