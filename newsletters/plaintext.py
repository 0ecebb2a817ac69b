"""HTML fragments as readable plain text, for the text/plain alternative.

Spam filters score a message whose plain-text part is missing or is a tag dump,
and some readers (watches, screen readers, text-only clients) show only that
part, so it has to read like a letter: wrapped paragraphs, underlined headings,
``- `` bullets, links as ``text (URL)`` and images as ``[alt]``. The input is
already sanitized article or intro HTML, so this only has to be faithful, not
defensive; lxml parses whatever is left leniently.
"""

from __future__ import annotations

import re
import textwrap

import lxml.html

WIDTH = 76

BLOCK_TAGS = {
    "p", "div", "section", "article", "header", "footer", "main", "aside", "nav", "figure",
    "figcaption", "address", "center", "dl", "dt", "dd", "form", "fieldset",
}
HEADING_TAGS = {"h1", "h2", "h3", "h4", "h5", "h6"}
SKIP_TAGS = {"script", "style", "head", "title", "template", "noscript", "iframe", "object", "svg"}
_SPACE_RE = re.compile(r"\s+")


def underline(text: str, char: str = "-") -> str:
    """A heading the way plain-text mail has always done it."""
    text = text.strip()
    return f"{text}\n{char * min(len(text), WIDTH)}"


def wrap(text: str, width: int = WIDTH, indent: str = "", first_indent: str | None = None) -> str:
    """Wrap one paragraph without ever breaking a URL or a placeholder token."""
    text = _SPACE_RE.sub(" ", text).strip()
    if not text:
        return ""
    return textwrap.fill(
        text,
        width=width,
        initial_indent=indent if first_indent is None else first_indent,
        subsequent_indent=indent,
        break_long_words=False,
        break_on_hyphens=False,
    )


class _Writer:
    """Collects blocks (separated by blank lines) built from inline runs of text."""

    def __init__(self, width: int):
        self.width = width
        self.blocks: list[str] = []
        self.inline: list[str] = []

    def text(self, s: str | None) -> None:
        if s:
            self.inline.append(s)

    def flush(self, prefix: str = "", first_prefix: str | None = None) -> None:
        raw = "".join(self.inline)
        self.inline = []
        # <br> leaves "\n" markers: each line is wrapped on its own.
        lines = [wrap(part, self.width, prefix, first_prefix if i == 0 else None) for i, part in enumerate(raw.split("\x00"))]
        lines = [line for line in lines if line]
        if lines:
            self.blocks.append("\n".join(lines))

    def block(self, text: str) -> None:
        if text.strip():
            self.blocks.append(text)


def _link_text(el, text: str) -> str:
    href = (el.get("href") or "").strip()
    text = _SPACE_RE.sub(" ", text).strip()
    if not href or href.startswith("#"):
        return text
    shown = href[7:] if href.startswith("mailto:") else href
    if not text or text == href or text == shown:
        return shown
    return f"{text} ({shown})"


def _inline_text(el) -> str:
    """Text inside an inline subtree, links and images rendered as text ("\x00" marks a <br>)."""
    parts = [el.text or ""]
    for child in el:
        if isinstance(child.tag, str):
            tag = child.tag.lower()
            if tag == "br":
                parts.append("\x00")
            elif tag == "img":
                alt = (child.get("alt") or "").strip()
                parts.append(f"[{alt}]" if alt else "")
            elif tag == "a":
                parts.append(_link_text(child, _inline_text(child).replace("\x00", " ")))
            elif tag not in SKIP_TAGS:
                parts.append(_inline_text(child))
        parts.append(child.tail or "")
    return "".join(parts)


def _table_text(table) -> str:
    rows = []
    for tr in table.iter("tr"):
        cells = [_SPACE_RE.sub(" ", _inline_text(td)).strip() for td in tr if isinstance(td.tag, str) and td.tag in ("td", "th")]
        if any(cells):
            rows.append(" | ".join(cells))
    return "\n".join(rows)


def _convert(el, out: _Writer, prefix: str = "") -> None:
    """Walk block structure; inline content is gathered and wrapped per block."""
    if el.text:
        out.text(el.text)
    for child in el:
        if not isinstance(child.tag, str):
            out.text(child.tail)
            continue
        tag = child.tag.lower()
        if tag in SKIP_TAGS:
            pass
        elif tag in HEADING_TAGS:
            out.flush(prefix)
            title = _SPACE_RE.sub(" ", _inline_text(child).replace("\x00", " ")).strip()
            if title:
                out.block(underline(title, "=" if tag == "h1" else "-") if tag in ("h1", "h2") else title.upper())
        elif tag in ("ul", "ol"):
            out.flush(prefix)
            number = 0
            items = []
            for li in child:
                if not isinstance(li.tag, str) or li.tag.lower() != "li":
                    continue
                number += 1
                bullet = f"{number}. " if tag == "ol" else "- "
                sub = _Writer(out.width)
                _convert(li, sub, "")
                sub.flush()
                body = "\n".join(sub.blocks)
                lines = body.splitlines() or [""]
                rewrapped = wrap(lines[0], out.width, prefix + " " * len(bullet), prefix + bullet)
                rest = [prefix + " " * len(bullet) + line if line else "" for line in lines[1:]]
                items.append("\n".join([rewrapped, *rest]))
            out.block("\n".join(items))
        elif tag == "blockquote":
            out.flush(prefix)
            sub = _Writer(out.width - 2)
            _convert(child, sub)
            sub.flush()
            out.block("\n".join("> " + line if line else ">" for line in "\n\n".join(sub.blocks).splitlines()))
        elif tag == "pre":
            out.flush(prefix)
            out.block("\n".join(prefix + line for line in child.text_content().rstrip().splitlines()))
        elif tag == "table":
            out.flush(prefix)
            out.block(_table_text(child))
        elif tag == "hr":
            out.flush(prefix)
            out.block("-" * 20)
        elif tag in BLOCK_TAGS or tag == "li":
            out.flush(prefix)
            _convert(child, out, prefix)
            out.flush(prefix)
        elif tag == "br":
            out.text("\x00")
        elif tag == "img":
            alt = (child.get("alt") or "").strip()
            if alt:
                out.text(f"[{alt}]")
        elif tag == "a":
            out.text(_link_text(child, _inline_text(child).replace("\x00", " ")))
        else:
            out.text(_inline_text(child))
        out.text(child.tail)


def html_to_text(html: str, width: int = WIDTH) -> str:
    """Readable plain text of an HTML fragment: blocks separated by one blank line."""
    if not html or not html.strip():
        return ""
    root = lxml.html.fragment_fromstring(html.replace("\u200b", ""), create_parent="div")
    out = _Writer(width)
    _convert(root, out)
    out.flush()
    return "\n\n".join(block.rstrip() for block in out.blocks if block.strip())


def first_paragraph(html: str) -> str:
    """Plain text of the first non-empty paragraph, for an excerpt when there is no summary."""
    if not html or not html.strip():
        return ""
    root = lxml.html.fragment_fromstring(html, create_parent="div")
    for el in root.iter("p"):
        text = _SPACE_RE.sub(" ", el.text_content()).strip()
        if text:
            return text
    return _SPACE_RE.sub(" ", root.text_content()).strip()


__all__ = ["WIDTH", "first_paragraph", "html_to_text", "underline", "wrap"]
