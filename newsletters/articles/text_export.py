"""Plain-text exports of blog posts: what a CMS "export as text" or a page copied from a browser gives.

The format, as the clinic's own export shows it::

    The medical uses of Botox — Persona Medical Aesthetics, Skin & Laser Clinic
    <blank>
    The medical uses of Botox                      (title repeated)
    <blank>
    Posted by Cosmetic Digital on Friday 18th May 2018 at 3:57 pm
    <blank>
    Paragraph, one per line …
    <no-break space>                               (a spacer where the page had an empty paragraph)
    We treat                                       (a heading: short, no full stop, text follows)
      • Hyperhidrosis                              (a heading that the page set inside a list)
    …
    Jump to the top                                (page furniture)

There is no markup to go by, so structure is inferred line by line, and the text
is HTML-escaped before any tag is built around it.
"""

from __future__ import annotations

import html
import re

from ..errors import ArticleError
from .base import BaseReader, parse_byline
from .model import Article
from .sanitize import sanitize_html

TITLE_SEPARATORS = (" — ", " – ", " | ", " - ")
BULLET = re.compile(r"^\s*[•◦▪‣●∙·]\s*|^\s*[-*]\s+(?=\S)")
NUMBERED = re.compile(r"^\s*(\d{1,2})[.)]\s+")
PAGE_FURNITURE = re.compile(r"^(?:jump|back|return|go|scroll)\s+(?:back\s+)?to\s+(?:the\s+)?top\W*$", re.I)
TAGS_LINE = re.compile(r"^(?:tags|tagged|categories|category|filed under)\s*:\s*(?P<tags>.+)$", re.I)
HEADING_MAX_CHARS = 70
HEADING_MAX_WORDS = 9

# One pass over the escaped text, so a link is never linked twice.
LINKABLE = re.compile(
    r"(?P<url>\bhttps?://[^\s<>\"]+|\bwww\.[a-z0-9-]+(?:\.[a-z0-9-]+)+[^\s<>\"]*)"
    r"|(?P<email>\b[\w.+-]+@[a-z0-9-]+(?:\.[a-z0-9-]+)+)"
    r"|(?P<phone>(?<![\w+/.-])(?:\+44\s?(?:\(0\)\s?)?|\(?0)\d{2,4}\)?(?:[\s-]?\d{2,4}){1,3}(?![\w/-]))",
    re.I,
)


class PlainTextExportReader(BaseReader):
    """A plain-text export of one post: title line, optional byline, paragraphs one per line."""

    name = "text"
    extensions = (".txt", ".text")

    def read(self, text: str, *, source: str, base_url: str) -> list[Article]:
        blocks = _blocks(text)
        if not blocks:
            raise ArticleError("the file holds no text", where=source)
        header = blocks.pop(0)[1]
        title = _title(header, blocks)
        if not title:
            raise ArticleError(
                "the first line should be the post's title", where=source, hint='e.g. "My post — Clinic name"'
            )
        author, published = _byline(blocks)
        tags = _tags(blocks)
        body = _body(blocks)
        if not body:
            raise ArticleError("no article text after the title line", where=source)
        article = Article(
            title=title,
            author=author,
            published=published,
            body_html=sanitize_html(body, base_url=base_url),
            tags=tags,
            source=source,
        )
        return [self.finish(article)]


def _blocks(text: str) -> list[tuple[str, str]]:
    """("bullet" | "number" | "line", text) for every line with words, spacers and furniture dropped.

    Lines wrapped inside a paragraph (no blank line between) are joined back up.
    """
    blocks: list[tuple[str, str]] = []
    joinable = False
    for raw in text.lstrip("\ufeff").splitlines():
        if not raw.strip():  # str.strip() also removes the no-break spaces used as spacers
            joinable = False
            continue
        line = " ".join(raw.split())
        if PAGE_FURNITURE.match(line):
            joinable = False
            continue
        if BULLET.match(raw):
            blocks.append(("bullet", BULLET.sub("", raw, count=1).strip()))
        elif NUMBERED.match(raw):
            blocks.append(("number", NUMBERED.sub("", raw, count=1).strip()))
        elif joinable and blocks:
            kind, previous = blocks[-1]
            blocks[-1] = (kind, f"{previous} {line}")
        else:
            blocks.append(("line", line))
        joinable = True
    return blocks


def _title(header: str, blocks: list[tuple[str, str]]) -> str:
    # The export repeats the bare title under the "Title — Site" line: that copy is the best title.
    if blocks and blocks[0][0] == "line":
        repeated = blocks[0][1]
        if header == repeated or any(header.startswith(repeated + sep) for sep in TITLE_SEPARATORS):
            blocks.pop(0)
            return repeated
    for separator in TITLE_SEPARATORS:
        if separator in header:
            return header.rpartition(separator)[0].strip()
    return header


def _byline(blocks: list[tuple[str, str]]) -> tuple[str, str]:
    for index, (kind, line) in enumerate(blocks[:3]):
        found = parse_byline(line) if kind == "line" else None
        if found:
            blocks.pop(index)
            return found
    return "", ""


def _tags(blocks: list[tuple[str, str]]) -> list[str]:
    for index in range(len(blocks) - 1, max(len(blocks) - 4, -1), -1):
        kind, line = blocks[index]
        match = TAGS_LINE.match(line) if kind == "line" else None
        if match:
            blocks.pop(index)
            return [tag.strip() for tag in re.split(r"[,;]", match["tags"]) if tag.strip()]
    return []


def _looks_like_heading(line: str) -> bool:
    return (
        len(line) <= HEADING_MAX_CHARS
        and len(line.split()) <= HEADING_MAX_WORDS
        and not line.endswith((".", "!", ",", ";", ":", "…"))
        and not LINKABLE.search(line)
    )


def _body(blocks: list[tuple[str, str]]) -> str:
    parts: list[str] = []
    seen_section_heading = False
    i = 0
    while i < len(blocks):
        kind, line = blocks[i]
        if kind in ("bullet", "number"):
            run = [line]
            while i + len(run) < len(blocks) and blocks[i + len(run)][0] == kind:
                run.append(blocks[i + len(run)][1])
            followed_by_text = i + len(run) < len(blocks)
            if kind == "bullet" and len(run) == 1 and followed_by_text and _looks_like_heading(line):
                level = "h3" if seen_section_heading else "h2"
                parts.append(f"<{level}>{_inline(line)}</{level}>")
            else:
                tag = "ul" if kind == "bullet" else "ol"
                items = "".join(f"<li>{_inline(item)}</li>" for item in run)
                parts.append(f"<{tag}>{items}</{tag}>")
            i += len(run)
            continue
        if i + 1 < len(blocks) and _looks_like_heading(line):
            parts.append(f"<h2>{_inline(line)}</h2>")
            seen_section_heading = True
        else:
            parts.append(f"<p>{_inline(line)}</p>")
        i += 1
    return "\n".join(parts)


def plain_text_to_html(text: str) -> str:
    """Text with no markup (an RSS description, say) as paragraphs, addresses and numbers linked
    the way a text export's are. Blank lines separate paragraphs; line breaks inside one are kept."""
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text.replace("\r\n", "\n")) if p.strip()]
    return "".join(
        "<p>" + "<br>".join(_inline(" ".join(line.split())) for line in p.splitlines() if line.strip()) + "</p>"
        for p in paragraphs
    )


def _inline(text: str) -> str:
    return LINKABLE.sub(_link, html.escape(text, quote=True))


def _link(match: re.Match) -> str:
    text = match.group(0)
    if match["url"]:
        url = text.rstrip(".,;:!?)'\u2019")
        trailing = text[len(url):]
        href = url if url.lower().startswith("http") else f"https://{url}"
        return f'<a href="{href}">{url}</a>{trailing}'
    if match["email"]:
        return f'<a href="mailto:{text}">{text}</a>'
    number = _uk_phone(text)
    return f'<a href="tel:{number}">{text}</a>' if number else text


def _uk_phone(text: str) -> str:
    """'+44 20 8302 6937' or '0208 302 6937' -> '+442083026937'; '' when it is not a UK number."""
    digits = re.sub(r"\D", "", text)
    if text.lstrip("(").startswith("+44"):
        national = digits[2:].removeprefix("0")
    elif digits.startswith("0"):
        national = digits[1:]
    else:
        return ""
    if len(national) not in (9, 10) or national[0] not in "123578":
        return ""
    return f"+44{national}"
