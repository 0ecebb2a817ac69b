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
from pathlib import Path

from .articles import Article, article_file_suffixes, is_url, published_date, read_source
from .config import Site
from .errors import ArticleError, IssueFileError
from .issues import SLUG_RE, load_issue, parse_issue

PREHEADER_LENGTH = 110


def draft_issue(
    site: Site,
    sources: list[str] | tuple[str, ...],
    *,
    since: dt.date | None = None,
    today: dt.date | None = None,
    out: Path | None = None,
) -> Path:
    """Write a new issue file from the articles in SOURCES and return its path.

    Without ``since``, articles published after the date of the latest issue in
    issues/ are taken (all of them when there is no issue yet); ``since`` itself
    is inclusive. Undated articles cannot be placed in time, so a cut-off leaves them out.
    """
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
    articles = collect_articles(site, sources)
    last_issue = None if since is not None else latest_issue_date(site)

    def is_new(article: Article) -> bool:
        day = published_date(article)
        if since is not None:
            return day is not None and day >= since
        if last_issue is not None:
            return day is not None and day > last_issue
        return True

    chosen = [article for article in articles if is_new(article)]
    if not chosen:
        cutoff = f"on or after {since}" if since else f"after the last issue ({last_issue})"
        raise ArticleError(
            f"no articles published {cutoff}",
            where=", ".join(sources),
            hint="pass --since DATE to go further back",
        )
    chosen.sort(key=lambda a: (published_date(a) or dt.date.min, a.published), reverse=True)

    text = issue_toml(site, chosen, today=today, slug=slug, sources=sources, since=since or last_issue, path=path)
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


def collect_articles(site: Site, sources) -> list[Article]:
    """Every article in the sources; a folder means each article file in it, a feed each entry."""
    found: list[Article] = []
    seen: set[str] = set()
    for source in sources:
        for article in _read(site, source):
            key = article.url or article.source
            if key in seen:
                continue
            seen.add(key)
            found.append(article)
    return found


def _read(site: Site, source: str) -> list[Article]:
    if is_url(source):
        return read_source(source, base_url=site.config.website)
    path = _locate(site, source)
    if path.is_dir():
        suffixes = article_file_suffixes()
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in suffixes and not p.name.startswith("."))
        if not files:
            raise ArticleError("no article files in this folder", where=source, hint=f"expected {', '.join(sorted(suffixes))}")
        articles: list[Article] = []
        for file in files:
            articles += read_source(_site_relative(site, file), root=site.root, base_url=site.config.website)
        return articles
    return read_source(_site_relative(site, path), root=site.root, base_url=site.config.website)


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


def latest_issue_date(site: Site) -> dt.date | None:
    dates = [load_issue(path).date for path in sorted(site.issues_dir.glob("*.toml"))]
    return max(dates) if dates else None


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
