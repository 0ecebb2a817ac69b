"""One build of the issue as the preview page shows it, or why the build failed.

Each build goes into a private temporary folder that is removed right after it
was read, so the preview never leaves half-written files in ``build/``. The
frames show the *sample message* (``sample.eml``: the sample recipient's name and
links filled in), decoded, rather than ``email.html`` with its placeholders.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import re
import secrets
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from ..build import build_issue
from ..checks import run_checks
from ..config import Site
from ..delivery.session import content_digest
from ..errors import NewsletterError
from ..personalize import SAMPLE_RECIPIENT
from ..render import FIRST_NAME
from ..review import approval_digest
from .markers import mark_finding_lines

# Titles staff read above an error; the class says which file to look at.
ERROR_TITLES = {
    "ConfigError": "The site settings (newsletter.toml or .env) have a problem",
    "IssueFileError": "The issue file has a problem",
    "ArticleError": "An article could not be read",
    "RenderError": "A template could not be rendered",
    "HeaderInjectionError": "A header value is not allowed",
}

_WHERE_LINE = re.compile(r"^(.+?):(\d+)$")
_MESSAGE_LINE = re.compile(r"\bline (\d+)\b")



@dataclass(frozen=True)
class BuildProblem:
    """Why the latest build failed, in the words the page shows."""

    title: str
    message: str
    where: str | None = None
    hint: str | None = None
    detail: str | None = None  # a traceback, only for errors that are bugs in this program
    excerpt: tuple[tuple[int, str, bool], ...] = ()  # (line number, text, is the line named) around the error

    @classmethod
    def from_exception(cls, exc: BaseException) -> "BuildProblem":
        if isinstance(exc, NewsletterError):
            title = ERROR_TITLES.get(type(exc).__name__, "The issue could not be built")
            return cls(
                title=title,
                message=exc.message,
                where=exc.where,
                hint=exc.hint,
                excerpt=source_excerpt(exc.where, exc.message),
            )
        return cls(
            title="Unexpected error while building (a bug in newsletter; please report it)",
            message=f"{type(exc).__name__}: {exc}",
            detail="".join(traceback.format_exception(exc)),
        )


def source_excerpt(where: str | None, message: str, context: int = 2) -> tuple[tuple[int, str, bool], ...]:
    """The lines around the one an error names (``file:12``, or a file and "line 12" in the message).

    Staff then see the typo itself, not only its coordinates.
    """
    if not where:
        return ()
    match = _WHERE_LINE.match(where)
    if match:
        path, line = Path(match.group(1)), int(match.group(2))
    else:
        found = _MESSAGE_LINE.search(message)
        if not found:
            return ()
        path, line = Path(where), int(found.group(1))
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ()
    if not 1 <= line <= len(lines):
        return ()
    first, last = max(1, line - context), min(len(lines), line + context)
    return tuple((n, lines[n - 1], n == line) for n in range(first, last + 1))


@dataclass(frozen=True)
class FindingView:
    """A pre-send finding as the page lists it; ``marked`` says the HTML copy carries its marker."""

    number: int
    rule: str
    severity: str
    where: str
    text: str
    fix: str
    accepted_reason: str | None
    html_line: int | None
    marked: bool = False

    def to_json(self) -> dict:
        return {"number": self.number, "text": self.text, "marked": self.marked}


@dataclass(frozen=True)
class Snapshot:
    """Everything one build produced for the page; replaced whole, never changed."""

    version: str
    issue_path: Path
    built_at: dt.datetime
    seconds: float
    problem: BuildProblem | None = None
    subject: str = ""
    preheader: str = ""
    html: str = ""  # the sample message's HTML part, with finding markers added
    text: str = ""
    headers: list[tuple[str, str]] = field(default_factory=list)
    web_html: str = ""
    eml: bytes = b""
    warnings: list[str] = field(default_factory=list)
    findings: list[FindingView] = field(default_factory=list)
    checks_ran: bool = False
    checks_note: str = ""
    watched: int = 0
    digest: str = ""  # what an approval of this build is bound to (newsletters.review.approval_digest)
    issue_slug: str = ""

    @property
    def ok(self) -> bool:
        return self.problem is None


def read_sample_message(eml: bytes) -> tuple[str, str, list[tuple[str, str]]]:
    """The HTML part, the text part and the headers of the sample message, decoded."""
    message = email.message_from_bytes(eml, policy=email.policy.default)
    html_part = message.get_body(("html",))
    text_part = message.get_body(("plain",))
    if html_part is None or text_part is None:
        raise NewsletterError(
            "the sample message lacks an HTML or a plain-text part",
            where="sample.eml",
            hint="the build must write multipart/alternative with both parts",
        )
    headers = [(name, str(value)) for name, value in message.items()]
    return html_part.get_content(), text_part.get_content(), headers


def _findings(site: Site, result) -> tuple[list[FindingView] | None, str]:
    """The findings (None when the checks did not run) and a note on how they were run."""
    try:
        report = run_checks(site, result, spamassassin=False)
    except NewsletterError as exc:
        return None, f"The pre-send checks could not run: {exc}"
    except Exception as exc:  # a bug in a check must not hide the preview
        return None, f"The pre-send checks failed ({type(exc).__name__}: {exc}); `newsletter check` shows more."
    views = [
        FindingView(
            number=n,
            rule=f.rule,
            severity=f.severity,
            where=f.where,
            text=f.text,
            fix=f.fix,
            accepted_reason=f.accepted_reason,
            html_line=f.html_line,
        )
        for n, f in enumerate(report.findings, 1)
    ]
    return views, "SpamAssassin is not run in the preview (it takes seconds); `newsletter check ISSUE` runs it."


class PreviewBuilder:
    """Builds the issue into a private temporary folder and turns the result into a Snapshot."""

    def __init__(self, site_root: Path, issue_path: Path, *, checks: bool = True):
        self.site_root = site_root
        self.issue_path = issue_path
        self.checks = checks
        self._token = secrets.token_hex(4)  # a restarted server never reuses an old version
        self._count = 0

    def _next_version(self) -> str:
        self._count += 1
        return f"{self._token}-{self._count}"

    def build(self) -> Snapshot:
        started = time.perf_counter()
        try:
            site = Site.load(self.site_root)
            with tempfile.TemporaryDirectory(prefix="newsletter-preview-") as out_dir:
                result = build_issue(site, self.issue_path, out_dir=Path(out_dir))
                digest = approval_digest(site, result.issue.path, content_digest(result.rendered))
                eml = Path(result.paths["sample.eml"]).read_bytes()
                web_html = Path(result.paths["web.html"]).read_text(encoding="utf-8")
                # The checks run while the built files still exist, in case a rule reads them.
                findings, checks_note = _findings(site, result) if self.checks else (None, "")
            html, text, headers = read_sample_message(eml)
            checks_ran = findings is not None
            findings = findings or []
            html, marked = mark_finding_lines(
                html, [(f.number, f.html_line, f.text) for f in findings if f.html_line]
            )
            findings = [_with_marked(f, f.number in marked) for f in findings]
            subject = next((value for name, value in headers if name.lower() == "subject"), result.rendered.subject)
            return Snapshot(
                version=self._next_version(),
                issue_path=self.issue_path,
                built_at=dt.datetime.now(),
                seconds=time.perf_counter() - started,
                subject=subject,
                preheader=_as_sample(result.rendered.preheader),
                html=html,
                text=text,
                headers=headers,
                web_html=web_html,
                eml=eml,
                warnings=list(result.warnings),
                findings=findings,
                checks_ran=checks_ran,
                checks_note=checks_note,
                digest=digest,
                issue_slug=result.issue.slug,
            )
        except Exception as exc:  # every failure becomes a page, so the server keeps serving
            return Snapshot(
                version=self._next_version(),
                issue_path=self.issue_path,
                built_at=dt.datetime.now(),
                seconds=time.perf_counter() - started,
                problem=BuildProblem.from_exception(exc),
            )


def _as_sample(text: str) -> str:
    """The preheader as the sample recipient reads it ({first_name} may be in it)."""
    return text.replace(FIRST_NAME, SAMPLE_RECIPIENT[2])


def _with_marked(finding: FindingView, marked: bool) -> FindingView:
    return FindingView(**{**finding.__dict__, "marked": marked})
