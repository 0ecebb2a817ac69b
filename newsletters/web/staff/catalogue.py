"""The site's issue files as the staff pages list them, each built through the preview's own builder.

A build takes a moment, so each issue's latest snapshot is kept and reused while
none of the files it depends on changed (the preview's ``watched_paths``
fingerprint); an edit to any of them rebuilds it on the next request, so a page
always shows what would be sent now.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from pathlib import Path

from ...delivery.ledger import Ledger, open_ledger
from ...delivery.report import summarize
from ...preview import PreviewBuilder, Snapshot, fingerprint, watched_paths
from ...review import ReviewLog, ReviewStatus

ISSUE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


@dataclass(frozen=True)
class IssueRow:
    """One line of the issues list."""

    name: str  # the file name without .toml: the page's address
    snapshot: Snapshot
    review: ReviewStatus | None
    sent: dict | None  # the latest run's summary, when the issue was sent

    @property
    def state(self) -> str:
        if self.sent is not None:
            return "sent"
        if not self.snapshot.ok:
            return "does not build"
        if self.review and self.review.approved:
            return "approved"
        if self.review and self.review.changes_requested:
            return "changes requested"
        return "draft"


class IssueCatalogue:
    """Finds issue files by name and keeps one current snapshot of each."""

    def __init__(self, site, log: ReviewLog):
        self.site = site
        self.log = log
        self._cache: dict[Path, tuple[tuple, Snapshot]] = {}
        self._lock = threading.Lock()

    def names(self) -> list[str]:
        folder = self.site.issues_dir
        if not folder.is_dir():
            return []
        return sorted((p.stem for p in folder.glob("*.toml") if ISSUE_NAME.match(p.stem)), reverse=True)

    def path(self, name: str) -> Path | None:
        """The issue file for a name from a URL; None unless it is a plain file name in issues/."""
        if not ISSUE_NAME.match(name) or ".." in name:
            return None
        path = self.site.issues_dir / f"{name}.toml"
        return path if path.is_file() else None

    def snapshot(self, path: Path) -> Snapshot:
        mark = fingerprint(watched_paths(self.site.root, path))
        with self._lock:
            cached = self._cache.get(path)
            if cached and cached[0] == mark:
                return cached[1]
        snapshot = PreviewBuilder(self.site.root, path, checks=True).build()
        with self._lock:
            self._cache[path] = (mark, snapshot)
        return snapshot

    def review(self, snapshot: Snapshot) -> ReviewStatus | None:
        if not snapshot.ok:
            return None
        config = self.site.config
        return self.log.status(snapshot.issue_slug, snapshot.digest, required=config.review_required,
                               needed=config.review_approvals)

    @staticmethod
    def sent(ledger: Ledger, issue_slug: str) -> dict | None:
        """The latest send run of the issue with its counts (the delivery's own ledger), or None."""
        run = ledger.latest_run(issue_slug) if issue_slug else None
        return {"run": run.id, "status": run.status, **summarize(ledger.counts(run.id))} if run else None

    def rows(self) -> list[IssueRow]:
        rows = []
        with open_ledger(self.site) as ledger:
            for name in self.names():
                snapshot = self.snapshot(self.site.issues_dir / f"{name}.toml")
                rows.append(IssueRow(name, snapshot, self.review(snapshot), self.sent(ledger, snapshot.issue_slug)))
        return rows
