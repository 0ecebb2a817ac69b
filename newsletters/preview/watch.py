"""Noticing edits: modification times of every file that can change the issue, polled.

Polling needs no extra dependency, works on every file system (network shares,
editors that save by renaming) and a site folder holds a few dozen files at most.
"""

from __future__ import annotations

from pathlib import Path

import templates  # the top-level package of default templates

from ..articles import is_url, split_selector
from ..articles.sources import resolve_path
from ..config import CONFIG_NAME
from ..errors import IssueFileError
from ..issues import load_issue


def package_templates_dir() -> Path | None:
    """The default templates shipped with the package (a site may override them)."""
    try:
        return Path(templates.__file__).resolve().parent
    except TypeError:  # a namespace package without __file__
        return None


def watched_paths(site_root: Path, issue_path: Path) -> list[Path]:
    """Every file whose change can change the issue: config, issue, articles, templates.

    Articles the issue names outside ``articles/`` are watched too. Folders are
    listed afresh on each poll, so a new template or article counts as a change.
    """
    files = [site_root / CONFIG_NAME, site_root / ".env", issue_path]
    folders = [site_root / "articles", site_root / "templates"]
    package = package_templates_dir()
    if package is not None:
        folders.append(package)
    try:
        issue = load_issue(issue_path)
    except (IssueFileError, OSError):
        issue = None
    if issue is not None:
        for entry in issue.articles:
            location, _entry = split_selector(entry.source, site_root)  # "news.xml#<entry URL>" is news.xml
            if not location or is_url(location):
                continue  # a URL cannot be watched; saving any watched file fetches it again
            files.append(resolve_path(location, site_root))
    for folder in folders:
        if folder.is_dir():
            files.extend(
                p for p in folder.rglob("*") if "__pycache__" not in p.parts and p.suffix != ".pyc" and p.is_file()
            )
    return files


def fingerprint(paths: list[Path]) -> tuple:
    """Modification time and size of each path (None when missing): any edit changes it."""
    marks = []
    for path in sorted(set(paths)):
        try:
            stat = path.stat()
            marks.append((str(path), stat.st_mtime_ns, stat.st_size))
        except OSError:
            marks.append((str(path), None, None))
    return tuple(marks)
