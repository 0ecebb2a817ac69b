"""Markdown posts with YAML (or Hugo's TOML, between +++ lines) front matter, as Jekyll, Hugo,
Eleventy and Pelican sites keep them.

::

    ---
    title: Laser hair removal in winter
    author: Dr Amelia Hart
    date: 2026-10-14 09:30
    summary: Why autumn is the best time to start.     (optional; else the first paragraph)
    image: /images/laser.jpg                           (optional; relative to url or the site)
    image_alt: A laser hair removal handpiece
    url: https://www.example.com/blog/laser-in-winter/
    tags: [laser, hair removal]
    ---
    Body in Markdown, tables and fenced code included.

A post without ``title`` may start with a ``# Heading`` instead: it becomes the
title and leaves the body.
"""

from __future__ import annotations

import re
import tomllib
import xml.etree.ElementTree as etree

import frontmatter
import frontmatter.default_handlers
import markdown
import yaml
from markdown.extensions import Extension
from markdown.inlinepatterns import InlineProcessor

from ..errors import ArticleError
from .base import BaseReader, absolute_url, iso_datetime
from .model import Article
from .sanitize import sanitize_html

EXTENSIONS = ["tables", "fenced_code", "sane_lists"]
TOML_BOUNDARY = "+++"
BARE_URL = r"\bhttps?://[^\s<>\"]+|\bwww\.[a-z0-9-]+(?:\.[a-z0-9-]+)+[^\s<>\"]*"
LEADING_HEADING = re.compile(r"\A\s*#\s+(?P<title>[^\n]+?)\s*#*\s*(?:\n|\Z)")


class MarkdownReader(BaseReader):
    """A ``.md`` file: YAML front matter for the facts, Markdown for the body."""

    name = "markdown"
    extensions = (".md", ".markdown", ".mdown")

    def read(self, text: str, *, source: str, base_url: str) -> list[Article]:
        text = text.lstrip("\ufeff")
        try:
            post = frontmatter.loads(text, handler=TomlFrontMatter() if text.startswith(TOML_BOUNDARY) else None)
        except tomllib.TOMLDecodeError as exc:
            raise ArticleError(
                f"the front matter is not valid TOML: {exc}",
                where=source,
                hint='write one key = "value" per line between the two +++ lines, text in double quotes',
            ) from None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            at = f" (line {mark.line + 2} of the file)" if mark is not None else ""
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise ArticleError(
                f"the front matter is not valid YAML: {problem}{at}",
                where=source,
                hint='write one "key: value" per line between the two --- lines; quote values holding a colon',
            ) from None
        meta = post.metadata
        if not isinstance(meta, dict):
            raise ArticleError("the front matter must be a list of `key: value` lines", where=source)
        content = post.content

        title = _text(meta.get("title"), "title", source)
        if not title:
            match = LEADING_HEADING.match(content)
            if match:
                title = match["title"].strip()
                content = content[match.end():]
        if not title:
            raise ArticleError(
                "no title found", where=source, hint="add `title: ...` to the front matter, or start with `# Title`"
            )

        url = _text(meta.get("url"), "url", source)
        base = url or base_url
        body = markdown.markdown(content, extensions=[*EXTENSIONS, BareLinks()], output_format="html")
        published = meta.get("date", meta.get("published"))
        published_iso = iso_datetime(published)
        if published not in (None, "") and not published_iso:
            raise ArticleError(
                f"`date` {published!r} is not a date", where=source, hint="write e.g. date: 2026-10-14 or 2026-10-14 09:30"
            )
        article = Article(
            title=title,
            url=url,
            author=_text(meta.get("author"), "author", source),
            published=published_iso,
            summary=_text(meta.get("summary") or meta.get("description"), "summary", source),
            image=absolute_url(_text(meta.get("image"), "image", source), base),
            image_alt=_text(meta.get("image_alt"), "image_alt", source),
            body_html=sanitize_html(body, base_url=base),
            tags=_tags(meta.get("tags"), source),
            source=source,
        )
        if not article.body_html:
            raise ArticleError("the post has no text below the front matter", where=source)
        return [self.finish(article)]


class TomlFrontMatter(frontmatter.default_handlers.BaseHandler):
    """Hugo's +++ front matter, read with the standard library (python-frontmatter wants the old toml package)."""

    FM_BOUNDARY = re.compile(r"^\+{3,}\s*$", re.MULTILINE)
    START_DELIMITER = END_DELIMITER = TOML_BOUNDARY

    def load(self, fm: str, **kwargs) -> dict:
        return tomllib.loads(fm)


class _BareLinkPattern(InlineProcessor):
    """A web address typed as text is a link on GitHub, and a reader expects to tap it in an e-mail too."""

    ANCESTOR_EXCLUDES = ("a",)

    def handleMatch(self, match, data):
        url = match.group(0).rstrip(".,;:!?)'\u2019")
        link = etree.Element("a")
        link.set("href", url if url.lower().startswith("http") else f"https://{url}")
        link.text = url
        return link, match.start(0), match.start(0) + len(url)


class BareLinks(Extension):
    def extendMarkdown(self, md):
        md.inlinePatterns.register(_BareLinkPattern(BARE_URL, md), "bare_links", 5)


def _text(value, key: str, source: str) -> str:
    if value is None:
        return ""
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return " ".join(str(value).split())
    raise ArticleError(f"`{key}` must be text, not {type(value).__name__}", where=source)


def _tags(value, source: str) -> list[str]:
    if value in (None, ""):
        return []
    if isinstance(value, str):
        return [tag.strip() for tag in value.split(",") if tag.strip()]
    if isinstance(value, list) and all(isinstance(tag, (str, int, float)) for tag in value):
        return [str(tag).strip() for tag in value if str(tag).strip()]
    raise ArticleError("`tags` must be a list like [laser, skin care] or a comma-separated line", where=source)
