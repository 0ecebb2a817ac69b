"""Blog articles in, ``Article`` objects out, whatever the format.

Call :func:`read_source` for everything a source holds (a feed holds many
articles) and :func:`read_one` where exactly one article is wanted, as in an
issue's ``[[articles]] source``. A source is a file path (relative to ``root``)
or an http(s) URL; a feed entry is picked with ``FEED#ENTRY`` where ENTRY is the
entry's link or id. Anything wrong raises ``ArticleError`` naming the source.
"""

from __future__ import annotations

import sys
from pathlib import Path

from lxml import etree

from ..errors import ArticleError
from ..stamps import distributions_stamp, files_stamp
from .base import BaseReader, is_url, published_date
from .feed import FeedReader
from .html_page import HTMLPageReader
from .markdown_post import MarkdownReader
from .model import ARTICLE_KEYS, Article
from .sanitize import sanitize_html
from .sources import READERS, SUPPORTED, article_file_suffixes, choose_reader, load, resolve_path
from .text_export import PlainTextExportReader

__all__ = [
    "ARTICLE_KEYS", "READERS", "SUPPORTED", "Article", "ArticleError", "BaseReader", "FeedReader", "HTMLPageReader",
    "MarkdownReader", "PlainTextExportReader", "article_file_suffixes", "is_url", "published_date", "read_one", "read_source",
    "read_sources", "readers_fingerprint", "sanitize_html", "split_selector",
]

# Raise when a reader's output changes in a way its files' stamps would not show (they almost always do).
READERS_REVISION = 1
# What the readers run on; ``readers_fingerprint`` names every distribution installed beside them.
_READER_LIBRARIES = ("lxml", "nh3", "markdown", "frontmatter", "yaml", "feedparser", "trafilatura")


def readers_fingerprint() -> str:
    """Everything besides a source's own bytes that decides what reading it returns: our readers
    (this package's files), the libraries under them and theirs, Python and libxml2."""
    return "\n".join([
        f"revision {READERS_REVISION}", sys.version, f"libxml2 {etree.LIBXML_VERSION}",
        files_stamp(Path(__file__).parent), distributions_stamp(_READER_LIBRARIES),
    ])


def split_selector(source: str, root: Path | None = None) -> tuple[str, str]:
    """'news.xml#https://…/post-1/' -> ('news.xml', 'https://…/post-1/'); a file whose name holds '#' stays whole."""
    source = source.strip()
    if "#" not in source:
        return source, ""
    if not is_url(source) and resolve_path(source, root).exists():
        return source, ""
    location, _, entry = source.partition("#")
    return location.strip(), entry.strip()


def read_source(source: str, *, root: Path | None = None, base_url: str = "") -> list[Article]:
    """Every article in a source: one for a post, one per entry for a feed (or the entry selected)."""
    location, entry = split_selector(source, root)
    if not location:
        raise ArticleError("empty article source", where=repr(source), hint="give a file path or an http(s) URL")
    loaded = load(location, root=root, where=location)
    reader = choose_reader(loaded, where=location)
    base = loaded.final_url or base_url
    if isinstance(reader, FeedReader):
        articles = reader.read(loaded.text, source=location, base_url=base, entry=entry)
    else:
        if entry and not is_url(location):
            raise ArticleError(
                f"'#{entry}' picks an entry of a feed, but this is not a feed", where=location,
                hint="remove the part from # on",
            )
        articles = reader.read(loaded.text, source=location, base_url=base)
    if not articles:
        raise ArticleError("no articles found", where=location)
    return articles


def read_one(source: str, *, root: Path | None = None, base_url: str = "") -> Article:
    """Exactly one article; a feed source must say which entry it means."""
    articles = read_source(source, root=root, base_url=base_url)
    if len(articles) > 1:
        location, _ = split_selector(source, root)
        example = articles[0].source
        raise ArticleError(
            f"this feed holds {len(articles)} entries, and an issue article must be one of them",
            where=location,
            hint=f'add "#<entry link>" to the source, e.g. source = "{example}"',
        )
    return articles[0]


def read_sources(sources, *, site=None) -> list[Article]:
    """What ``newsletter article show`` reads: paths as typed (from the current folder, else the
    site folder), the site's website completing relative links when there is a site."""
    base_url = site.config.website if site is not None else ""
    articles: list[Article] = []
    for source in sources:
        location, _ = split_selector(source)
        root = None
        if site is not None and not is_url(location) and not resolve_path(location, None).exists():
            root = site.root
        articles += read_source(source, root=root, base_url=base_url)
    return articles
