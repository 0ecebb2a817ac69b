"""Getting the text of a source (a file or an http(s) URL) and telling which reader it needs.

A format is decided by content first where content is unmistakable (a feed's
``<rss>``/``<feed>`` root, an HTML document), then by the file extension or the
server's Content-Type, then by gentler sniffing (front matter means Markdown).
A ``.txt`` that is really an HTML page is read as HTML; a file called
``post`` with no extension still works.
"""

from __future__ import annotations

import re
import socket
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from .. import __version__
from ..errors import ArticleError
from .base import BaseReader
from .feed import FeedReader
from .html_page import HTMLPageReader
from .markdown_post import MarkdownReader
from .text_export import PlainTextExportReader

READERS: tuple[type[BaseReader], ...] = (PlainTextExportReader, MarkdownReader, HTMLPageReader, FeedReader)
SUPPORTED = ".txt plain-text export, .md Markdown with front matter, .html a post's web page, .xml/.rss/.atom feed"

USER_AGENT = f"newsletters/{__version__} (clinic newsletter builder; +https://pypi.org/project/newsletters/)"
TIMEOUT_SECONDS = 20
MAX_BYTES = 10 * 1024 * 1024

FEED_TYPES = ("application/rss+xml", "application/atom+xml", "application/rdf+xml", "application/feed+xml")
XML_TYPES = ("application/xml", "text/xml")
HTML_TYPES = ("text/html", "application/xhtml+xml")
MARKDOWN_TYPES = ("text/markdown", "text/x-markdown")

_DECLARED_CHARSET = re.compile(rb"""(?:encoding|charset)\s*=\s*["']?([A-Za-z0-9._-]+)""", re.I)


@dataclass
class Loaded:
    """The decoded text of a source and what it says about itself."""

    text: str
    name: str  # file name or URL path, for the extension
    content_type: str = ""
    final_url: str = ""


def load(location: str, *, root: Path | None, where: str) -> Loaded:
    if location.lower().startswith(("http://", "https://")):
        return fetch(location, where=where)
    return read_file(location, root=root, where=where)


def resolve_path(location: str, root: Path | None) -> Path:
    path = Path(location).expanduser()
    return path if path.is_absolute() else (root or Path.cwd()) / path


def read_file(location: str, *, root: Path | None, where: str) -> Loaded:
    path = resolve_path(location, root)
    if path.is_dir():
        raise ArticleError("this is a folder, not an article file", where=where, hint="name one file in it")
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise ArticleError(
            "no such file", where=where, hint=f"looked for {path}" + ("" if root is None else "; paths are relative to the site folder")
        ) from None
    except OSError as exc:
        raise ArticleError(f"cannot read the file: {exc.strerror or exc}", where=where) from None
    if len(data) > MAX_BYTES:
        raise ArticleError(f"the file is larger than {MAX_BYTES // (1024 * 1024)} MB; that is not one article", where=where)
    return Loaded(text=decode(data, where=where), name=path.name)


def fetch(url: str, *, where: str) -> Loaded:
    request = urllib.request.Request(
        url,
        headers={
            "User-Agent": USER_AGENT,
            "Accept": "text/html, application/xhtml+xml, application/rss+xml, application/atom+xml, "
            "application/xml;q=0.9, text/markdown;q=0.9, text/plain;q=0.8, */*;q=0.5",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
            data = response.read(MAX_BYTES + 1)
            content_type = response.headers.get("Content-Type", "")
            charset = response.headers.get_content_charset()
            final_url = response.geturl()
    except urllib.error.HTTPError as exc:
        hint = "check the address in a browser" if exc.code in (404, 410) else None
        raise ArticleError(f"HTTP {exc.code} {exc.reason}", where=where, hint=hint) from None
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, (socket.timeout, TimeoutError)):
            raise ArticleError(f"no answer within {TIMEOUT_SECONDS} seconds", where=where) from None
        raise ArticleError(f"cannot fetch: {reason}", where=where, hint="check the address and your connection") from None
    except (socket.timeout, TimeoutError):
        raise ArticleError(f"no answer within {TIMEOUT_SECONDS} seconds", where=where) from None
    except (OSError, ValueError) as exc:
        raise ArticleError(f"cannot fetch: {exc}", where=where) from None
    if len(data) > MAX_BYTES:
        raise ArticleError(f"the page is larger than {MAX_BYTES // (1024 * 1024)} MB; that is not one article", where=where)
    return Loaded(
        text=decode(data, where=where, charset=charset),
        name=urlsplit(final_url or url).path,
        content_type=content_type.split(";")[0].strip().lower(),
        final_url=final_url or url,
    )


def decode(data: bytes, *, where: str, charset: str | None = None) -> str:
    """UTF-8 unless the server or the document itself declares another encoding."""
    if not data.strip():
        raise ArticleError("the source is empty", where=where)
    if b"\x00" in data[:8192]:
        raise ArticleError("this is a binary file, not text", where=where, hint=f"supported: {SUPPORTED}")
    declared = charset
    if not declared:
        match = _DECLARED_CHARSET.search(data[:2048])
        declared = match.group(1).decode("ascii") if match else None
    for encoding in filter(None, (declared, "utf-8-sig")):
        try:
            return data.decode(encoding)
        except (UnicodeDecodeError, LookupError):
            continue
    raise ArticleError(
        "not UTF-8 text", where=where, hint="save the file as UTF-8: in most editors, Save As and choose the encoding UTF-8"
    )


def sniff(text: str) -> type[BaseReader] | None:
    """The format the content unmistakably has, or None."""
    head = text.lstrip("\ufeff \t\r\n")[:4096].lower()
    head_no_decl = re.sub(r"^<\?xml[^>]*\?>\s*", "", head)
    head_no_decl = re.sub(r"^(?:<!--.*?-->\s*|<\?xml-stylesheet[^>]*\?>\s*)*", "", head_no_decl, flags=re.S)
    if re.match(r"<(?:rss|feed|rdf:rdf)[\s>]", head_no_decl):
        return FeedReader
    if re.match(r"<!doctype\s+html|<html[\s>]", head_no_decl) or (
        head_no_decl.startswith("<") and re.search(r"<(?:head|body)[\s>]", head_no_decl[:2048])
    ):
        return HTMLPageReader
    for fence in ("---", r"\+\+\+"):
        if re.match(fence + r"[ \t]*\r?\n", head) and re.search(r"\n" + fence + r"[ \t]*(?:\r?\n|$)", head[3:]):
            return MarkdownReader
    return None


def choose_reader(loaded: Loaded, *, where: str) -> BaseReader:
    sniffed = sniff(loaded.text)
    if sniffed in (FeedReader, HTMLPageReader):
        return sniffed()
    content_type = loaded.content_type
    if content_type in FEED_TYPES:
        return FeedReader()
    if content_type in MARKDOWN_TYPES:
        return MarkdownReader()
    suffix = Path(loaded.name).suffix.lower()
    for reader in READERS:
        if suffix in reader.extensions:
            return reader()
    if sniffed is not None:
        return sniffed()
    if content_type == "text/plain":
        return PlainTextExportReader()
    raise ArticleError(
        "cannot tell what kind of article this is"
        + (f" (the server says {content_type})" if content_type else f" (extension {suffix or 'none'})"),
        where=where,
        hint=f"supported: {SUPPORTED}",
    )


def article_file_suffixes() -> set[str]:
    return {suffix for reader in READERS for suffix in reader.extensions}
