"""Shared fixtures: real folders, real files, the real example site."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
EXAMPLE_SITE = ROOT / "examples" / "clinic"
SHARED_EXAMPLE = ROOT.parent / "shared" / "examples" / "clinic-blog-article.txt"


@pytest.fixture
def site_dir(tmp_path: Path) -> Path:
    """A private copy of the example site, so a test may change or build it freely."""
    dest = tmp_path / "site"
    shutil.copytree(
        EXAMPLE_SITE,
        dest,
        ignore=shutil.ignore_patterns("build", "outbox", "reports", "newsletter.db*", ".env"),
    )
    return dest
