"""``newsletter new``: draft next month's issue file from what the blog published since the last one.

The draft is a starting point for marketing, not a finished issue: the newest
article goes in full, the others as excerpts, the subject and preheader come
from the articles, and comments in the file say what to check. It is written
only after it parses as a valid issue, and never over an existing file.
"""

from __future__ import annotations

import datetime as dt
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from .articles import Article, article_file_suffixes, is_url, published_date, read_source
from .config import Site
from .errors import ArticleError, IssueFileError
from .issues import SLUG_RE, load_issue, parse_issue

PREHEADER_LENGTH = 110
# What `newsletter send` writes after each session (newsletters/delivery/report.py): the record of what was sent.
SEND_REPORTS = "send-*.json"


@dataclass(frozen=True)
class Cutoff:
    """Which articles count as new: published after ``day`` (on or after it for --since)."""

    day: dt.date
    inclusive: bool
    label: str  # says where the day came from, in the words `new` prints
    sent_sources: frozenset[str] = frozenset()  # the articles of the last sent issue

    def why_left_out(self, article: Article) -> str | None:
        if article.source in self.sent_sources:
            return "already in the last sent issue"
        day = published_date(article)
        if day is None:
            return "it has no date, so it cannot be placed after the cut-off (give it one, or use --since)"
        if day < self.day or (day == self.day and not self.inclusive):
            return f"published {day}, before the cut-off"
        return None


@dataclass
class DraftNotes:
    """What ``newsletter new`` tells the user besides the path: the cut-off, what it left out, warnings."""

    cutoff: str = ""
    left_out: list[tuple[Article, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def draft_issue(
    site: Site,
    sources: list[str] | tuple[str, ...],
    *,
    since: dt.date | None = None,
    today: dt.date | None = None,
    out: Path | None = None,
    notes: DraftNotes | None = None,
) -> Path:
    """Write a new issue file from the articles in SOURCES and return its path.

    Without ``since``, articles published after the date of the last issue that
    was actually sent are taken (every article when nothing was sent yet): the
    issue files in issues/ include drafts and ``init``'s sample, which say
    nothing about what subscribers already got. ``since`` itself is inclusive.
    ``notes`` receives the cut-off, every article left out and why, and the
    warnings (an article or an old issue file that cannot be read).
    """
    notes = notes if notes is not None else DraftNotes()
    today = today or dt.date.today()
    path = Path(out) if out else site.issues_dir / f"{today:%Y-%m}.toml"
    slug = path.stem if out and SLUG_RE.match(path.stem) else f"{today:%Y-%m}"
    if path.exists():
        raise IssueFileError(
            "an issue file with this name already exists; not overwriting it",
            where=str(path),
            hint="edit that file, delete it, or pass --out issues/another-name.toml",
        )
    if not sources:
        raise ArticleError("no article sources given", hint="e.g. `newsletter new articles/` or a feed URL")
    articles = collect_articles(site, sources, notes.warnings)
    if since is not None:
        cutoff: Cutoff | None = Cutoff(since, True, f"--since {since}: articles published on or after {since}")
    else:
        cutoff = last_sent_cutoff(site, notes.warnings)
    notes.cutoff = cutoff.label if cutoff else (
        "no issue has been sent yet (no send report in reports/), so every article is drafted"
    )
    chosen = []
    for article in articles:
        reason = cutoff.why_left_out(article) if cutoff else None
        if reason is None:
            chosen.append(article)
        else:
            notes.left_out.append((article, reason))
    if not chosen:
        raise ArticleError(
            f"no new articles: {cutoff.label if cutoff else 'none could be read'}"
            + (f"; {len(notes.left_out)} left out (listed above)" if notes.left_out else ""),
            where=", ".join(sources),
            hint="pass --since DATE to go further back",
        )
    chosen.sort(key=lambda a: (published_date(a) or dt.date.min, a.published), reverse=True)

    since_day = cutoff.day if cutoff else None
    text = issue_toml(site, chosen, today=today, slug=slug, sources=sources, since=since_day, path=path)
    parse_issue(tomllib.loads(text), path)  # the draft must load, or nothing is written
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with path.open("x", encoding="utf-8") as handle:
            handle.write(text)
    except FileExistsError:
        raise IssueFileError(
            "an issue file with this name already exists; not overwriting it",
            where=str(path),
            hint="edit that file, rename it, or write the draft elsewhere with --out",
        ) from None
    return path


def collect_articles(site: Site, sources, warnings: list[str] | None = None) -> list[Article]:
    """Every article in the sources; a folder means each article file in it, a feed each entry.

    A source that cannot be read is a warning naming it (in ``warnings``), not
    the end of the draft: one broken post should not hide this month's others.
    """
    warnings = warnings if warnings is not None else []
    found: list[Article] = []
    seen: set[str] = set()
    for source in sources:
        for article in _read(site, source, warnings):
            key = article.url or article.source
            if key in seen:
                continue
            seen.add(key)
            found.append(article)
    return found


def _read(site: Site, source: str, warnings: list[str]) -> list[Article]:
    if is_url(source):
        return _read_or_warn(source, warnings, base_url=site.config.website)
    path = _locate(site, source)
    if path.is_dir():
        suffixes = article_file_suffixes()
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in suffixes and not p.name.startswith("."))
        if not files:
            warnings.append(f"{source}: no article files in this folder (expected {', '.join(sorted(suffixes))})")
        articles: list[Article] = []
        for file in files:
            articles += _read_or_warn(_site_relative(site, file), warnings, root=site.root, base_url=site.config.website)
        return articles
    return _read_or_warn(_site_relative(site, path), warnings, root=site.root, base_url=site.config.website)


def _read_or_warn(source: str, warnings: list[str], **options) -> list[Article]:
    try:
        return read_source(source, **options)
    except ArticleError as exc:
        warnings.append(f"{exc}: left out of the draft")
        return []


def _locate(site: Site, source: str) -> Path:
    """Paths are tried relative to the site folder first, then to the current folder."""
    candidate = Path(source).expanduser()
    if candidate.is_absolute():
        return candidate
    in_site = site.root / candidate
    if in_site.exists() or not candidate.exists():
        return in_site
    return candidate.resolve()


def _site_relative(site: Site, path: Path) -> str:
    """Issue files name sources relative to the site folder, so the site can move."""
    try:
        return path.resolve().relative_to(site.root).as_posix()
    except ValueError:
        return str(path.resolve())


def last_sent_cutoff(site: Site, warnings: list[str]) -> Cutoff | None:
    """The cut-off after the last issue that reached at least one subscriber, from the send reports.

    ``newsletter send`` rewrites ``reports/send-<slug>-run<N>.json`` after every
    session with the issue file it sent and how many messages the server
    accepted. A report or an issue file that cannot be read is a warning; the
    day the run started then stands in for the issue's date.
    """
    runs = []
    for report in sorted(site.reports_dir.glob(SEND_REPORTS)):
        try:
            data = json.loads(report.read_text(encoding="utf-8"))
            sent = int(data["summary"]["sent"])
            started = dt.datetime.fromisoformat(data["created_at"])
            if started.tzinfo is None:  # the ledger stores UTC; an older report may say so without an offset
                started = started.replace(tzinfo=dt.timezone.utc)
            issue_path = str(data["issue_path"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            warnings.append(f"{report}: not a send report that can be read ({type(exc).__name__}: {exc}); ignored")
            continue
        if sent > 0:
            runs.append((started, issue_path, report))
    if not runs:
        return None
    started, issue_path, report = max(runs)
    path = Path(issue_path) if Path(issue_path).is_absolute() else site.root / issue_path
    shown = _site_relative(site, path)
    try:
        issue = load_issue(path)
    except IssueFileError as exc:
        warnings.append(
            f"{exc}: the last sent issue (per {report.name}) cannot be read; "
            f"using the day it was sent, {started.date()}, as the cut-off"
        )
        return Cutoff(started.date(), False, f"articles published after {started.date()}, the day the last issue was sent")
    return Cutoff(
        issue.date,
        False,
        f"articles published after {issue.date}, the date of the last sent issue ({shown}, sent {started.date()})",
        frozenset(entry.source for entry in issue.articles),
    )


def issue_toml(
    site: Site, articles: list[Article], *, today: dt.date, slug: str, sources, since: dt.date | None, path: Path
) -> str:
    """The issue file's text, with comments that tell marketing what to check."""
    first = articles[0]
    others = articles[1:]
    if others:
        preheader = "Also: " + "; ".join(a.title for a in others)
    else:
        preheader = first.summary
    if len(preheader) > PREHEADER_LENGTH:
        preheader = preheader[: PREHEADER_LENGTH].rsplit(" ", 1)[0].rstrip(" ,;:") + "…"
    period = f"since {since.day} {since:%B %Y}" if since else "recently"
    intro = f"Hello {{first_name}},\n\nHere is what we have been writing about {period}.\n"
    lines = [
        f"# Drafted by `newsletter new` on {today.isoformat()} from: {', '.join(sources)}",
        "# Check the subject, preheader and intro, reorder or remove articles, then run",
        f"# `newsletter check {_site_relative(site, path)}`.",
        f"subject = {_toml_string(first.title)}",
        f"preheader = {_toml_string(preheader)}",
        f"date = {today.isoformat()}",
        f"slug = {_toml_string(slug)}",
        f'intro = """\n{_toml_multiline(intro)}"""',
        "",
    ]
    for number, article in enumerate(articles):
        lines += [
            "[[articles]]",
            f"# {article.published[:10] or 'undated'}: {' '.join(article.title.split())}",
            f"source = {_toml_string(article.source)}",
            f"mode = {_toml_string('full' if number == 0 else 'excerpt')}",
            "",
        ]
    lines += [
        "# A button under the articles (optional):",
        "# [cta]",
        '# text = "Book a consultation"',
        f"# url = {_toml_string(site.config.website + '/')}",
        "",
    ]
    return "\n".join(lines)


def _toml_string(value: str) -> str:
    # A JSON string is a valid TOML basic string (same escapes), and non-ASCII stays readable.
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")


def _toml_multiline(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
