"""The built issue as the checks read it: parsed once, with lines and sources.

Checks look at the rendered HTML (``email.template.html``, placeholders in; its
line N is line N of ``email.html``, the file a user opens), the plain-text part, and
the HTML part exactly as ``sample.eml`` encodes it (the bytes Gmail counts).
To say *where* a problem is in terms a marketer acts on, a piece of text or a
link is traced back to what it came from: an article source, the intro, the
call to action, ``newsletter.toml``; what traces back to nothing came from the
template, and is named by its line in ``email.html``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import lxml.html
import markdown as markdown_lib

from ..personalize import encoded_html_size, qp_encode
from ..tracking import untagged
from .phrase_rules import normalize_text

SKIP_TAGS = {"head", "script", "style", "title", "template", "noscript"}
BLOCK_TAGS = {
    "p", "li", "h1", "h2", "h3", "h4", "h5", "h6", "td", "th", "div", "blockquote", "figcaption",
    "dt", "dd", "pre", "address", "section", "article", "header", "footer", "body",
}
PLACEHOLDER_RE = re.compile(r"__NL_[A-Z0-9_]+__|\{[a-z_]+\}")
_DISPLAY_NONE = re.compile(r"display\s*:\s*none", re.I)
_VISIBILITY_HIDDEN = re.compile(r"visibility\s*:\s*hidden", re.I)
_OPACITY_ZERO = re.compile(r"(?<![-\w])opacity\s*:\s*0(?:\.0*)?\s*(?:;|$|!)", re.I)
_MAX_HEIGHT_ZERO = re.compile(r"max-height\s*:\s*0(?:px)?\s*(?:;|$|!)", re.I)
_MSO_HIDE = re.compile(r"mso-hide\s*:\s*all", re.I)
_FONT_SIZE = re.compile(r"font-size\s*:\s*([\d.]+)\s*(px|pt)?", re.I)
TINY_FONT_PX = 8.0


def squash(text: str) -> str:
    """Text reduced to what two renderings of it share: no placeholders, case or whitespace."""
    text = PLACEHOLDER_RE.sub("", normalize_text(text)).lower()
    text = re.sub(r"\s+", "", text)
    return text.strip(".…,;:!?\"'()[]-–—")


def html_to_text(html: str) -> str:
    if not html.strip():
        return ""
    root = lxml.html.fragment_fromstring(html, create_parent="div")
    return " ".join(root.itertext())


def hidden_reason(element) -> str | None:
    """Why this element (or one around it) is invisible to a reader, or None when it shows."""
    node = element
    while node is not None:
        if isinstance(node.tag, str):
            if node.get("hidden") is not None:
                return f"hidden attribute on <{node.tag}>"
            style = node.get("style") or ""
            if _DISPLAY_NONE.search(style):
                return f"display:none on <{node.tag}>"
            if _VISIBILITY_HIDDEN.search(style):
                return f"visibility:hidden on <{node.tag}>"
            if _OPACITY_ZERO.search(style):
                return f"opacity:0 on <{node.tag}>"
            if _MAX_HEIGHT_ZERO.search(style):
                return f"max-height:0 on <{node.tag}>"
            if _MSO_HIDE.search(style):
                return f"mso-hide:all on <{node.tag}> (hidden in Outlook)"
        node = node.getparent()
    size = font_size_px(element)
    if size is not None and size < TINY_FONT_PX:
        return f"font-size {size:g}px"
    return None


def font_size_px(element) -> float | None:
    """The font size in force at ``element``: the nearest inline font-size declaration."""
    node = element
    while node is not None:
        if isinstance(node.tag, str):
            sizes = _FONT_SIZE.findall(node.get("style") or "")
            if sizes:
                value, unit = sizes[-1]
                try:
                    number = float(value)
                except ValueError:
                    return None
                return number * 4 / 3 if unit.lower() == "pt" else number
        node = node.getparent()
    return None


@dataclass(frozen=True)
class Segment:
    """A piece of content the user wrote somewhere, and the name of that place."""

    where: str
    squashed: str


@dataclass(frozen=True)
class TextPiece:
    text: str
    line: int
    owner: object  # the element this text is inside (for a tail: the parent of the child it follows)
    block: object  # the nearest block-level ancestor


@dataclass
class MailDocument:
    site: object
    issue: object
    articles: list  # (IssueArticle, Article)
    html: str
    text: str
    subject: str
    preheader: str
    sample_eml: bytes | None = None
    paths: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.lines = self.html.split("\n")
        self.tree = lxml.html.document_fromstring(self.html or "<html><body></body></html>")
        self.body = self.tree.find("body") if self.tree.find("body") is not None else self.tree
        self.segments = self._segments()
        self._urls: dict[int, set[str]] = {}
        self._written: set[tuple[str, str]] | None = None

    @classmethod
    def from_build(cls, site, build_result) -> "MailDocument":
        rendered = build_result.rendered
        paths = dict(getattr(build_result, "paths", {}) or {})
        eml = paths.get("sample.eml")
        sample = Path(eml).read_bytes() if eml and Path(eml).is_file() else None
        return cls(
            site=site,
            issue=build_result.issue,
            articles=list(build_result.articles),
            html=rendered.html,
            text=rendered.text,
            subject=rendered.subject,
            preheader=rendered.preheader or "",
            sample_eml=sample,
            paths=paths,
        )

    # -- where things come from ------------------------------------------

    def _segments(self) -> list[Segment]:
        out: list[Segment] = []

        def add(where: str, text: str) -> None:
            squashed = squash(text)
            if squashed:
                out.append(Segment(where, squashed))

        add("preheader", self.preheader)
        intro = getattr(self.issue, "intro", "") or ""
        if intro.strip():
            add("intro", html_to_text(markdown_lib.markdown(intro)))
        for issue_article, article in self.articles:
            where = article_where(issue_article)
            add(where, article.title)
            add(where, article.summary)
            add(where, html_to_text(article.body_html))
            add(where, getattr(article, "image_alt", "") or "")
        cta = getattr(self.issue, "cta", None)
        if cta is not None:
            add("cta", cta.text)
        config = getattr(self.site, "config", None)
        if config is not None:
            add("newsletter.toml [footer] text", config.footer_text)
            add("newsletter.toml [footer] why", config.footer_why)
        return out

    def where_for_text(self, block_text: str, hit: str) -> str | None:
        """The place a block of rendered text was written, when it can be traced."""
        block = squash(block_text)
        hit_squashed = squash(hit)
        if not block:
            return None
        for segment in self.segments:  # the block is exactly something the user wrote
            if block == segment.squashed:
                return segment.where
        for segment in self.segments:  # or a slice of it (a paragraph of an article)
            if block in segment.squashed:
                return segment.where
        for segment in self.segments:  # or the block wraps it, e.g. a title inside a cell
            if segment.squashed in block and hit_squashed in segment.squashed:
                return segment.where
        return None

    def where_for_url(self, url: str, kind: str = "href") -> str | None:
        """The article, intro or call to action that put this link or image into the mail, if any did.

        A link may carry the campaign tags ``[tracking] utm`` added, which its source did not."""
        for candidate in dict.fromkeys((url, untagged(url))):
            where = self._where_for_exact_url(candidate, kind)
            if where is not None:
                return where
        return None

    def _where_for_exact_url(self, url: str, kind: str) -> str | None:
        if not url:
            return None
        cta = getattr(self.issue, "cta", None)
        if cta is not None and url == cta.url:
            return "cta"
        intro = getattr(self.issue, "intro", "") or ""
        if intro and (f"({url})" in intro or f'"{url}"' in intro or f"<{url}>" in intro):
            return "intro"  # a Markdown or HTML link written in the intro
        for issue_article, article in self.articles:
            if url in self._body_urls(article) or (kind == "src" and url == article.image):
                return article_where(issue_article)
        return None

    def written_links(self) -> set[tuple[str, str]]:
        """(href, squashed text) of every link someone wrote: in article bodies, the intro, the CTA."""
        if self._written is None:
            html_parts = [article.body_html or "" for _, article in self.articles]
            intro = getattr(self.issue, "intro", "") or ""
            if intro.strip():
                html_parts.append(markdown_lib.markdown(intro))
            links: set[tuple[str, str]] = set()
            for html in html_parts:
                if html.strip():
                    root = lxml.html.fragment_fromstring(html, create_parent="div")
                    for a in root.iter("a"):
                        if a.get("href"):
                            links.add((a.get("href").strip(), squash(a.text_content())))
            cta = getattr(self.issue, "cta", None)
            if cta is not None:
                links.add((cta.url.strip(), squash(cta.text)))
            self._written = links
        return self._written

    def _body_urls(self, article) -> set[str]:
        """Every href and src in an article body, as the template will have copied them."""
        key = id(article)
        if key not in self._urls:
            urls: set[str] = set()
            if (article.body_html or "").strip():
                root = lxml.html.fragment_fromstring(article.body_html, create_parent="div")
                for element in root.iter("a", "img"):
                    for attribute in ("href", "src"):
                        if element.get(attribute):
                            urls.add(element.get(attribute).strip())
            self._urls[key] = urls
        return self._urls[key]

    def place(self, element, url: str = "", kind: str = "href") -> tuple[str, int | None]:
        """Where to tell the user to look for this element, and its line in email.html."""
        line = getattr(element, "sourceline", None)
        where = self.where_for_url(url, kind)
        if where is None:
            text = element.text_content() if kind == "href" else ""
            where = self.where_for_text(text, text) if text.strip() else None
        if where is None:
            where = f"email.html line {line}" if line else "email.html"
        return where, line

    # -- walking the HTML -------------------------------------------------

    def text_pieces(self) -> Iterator[TextPiece]:
        """Every run of text in the body, with the line it starts on and its block."""

        def block_of(element):
            node = element
            while node is not None and not (isinstance(node.tag, str) and node.tag in BLOCK_TAGS):
                node = node.getparent()
            return node if node is not None else element

        def walk(element):
            if not isinstance(element.tag, str) or element.tag in SKIP_TAGS:
                return
            if element.text:
                yield TextPiece(element.text, element.sourceline or 1, element, block_of(element))
            for child in element:
                yield from walk(child)
                if child.tail:
                    following = child.getnext()
                    if following is not None and following.sourceline:
                        line = following.sourceline - child.tail.count("\n")
                    else:
                        line = child.sourceline or element.sourceline or 1
                    yield TextPiece(child.tail, max(line, 1), element, block_of(element))

        yield from walk(self.body)

    def line_of_text(self, approx: int, needle: str) -> int:
        """The line of ``email.html`` that holds ``needle``, searching from where lxml thinks it starts."""
        needle = needle.lower().split()[0] if needle.split() else needle.lower()
        start = max(approx - 1, 0)
        for index in range(start, min(start + 400, len(self.lines))):
            if needle in self.lines[index].lower():
                return index + 1
        return approx

    def visible_text(self) -> str:
        parts = []
        for piece in self.text_pieces():
            if hidden_reason(piece.owner) is None:
                parts.append(piece.text)
        return " ".join(" ".join(parts).split())

    def links(self) -> list:
        return [a for a in self.body.iter("a") if a.get("href") is not None]

    def images(self) -> list:
        return list(self.body.iter("img"))

    # -- the message as sent ----------------------------------------------

    def encoded_html_size(self) -> int:
        """Bytes of the HTML part as the message carries it (quoted-printable): the size ``build`` prints too."""
        if self.sample_eml:
            return encoded_html_size(self.sample_eml)
        return len(qp_encode(self.html))  # no sample message: encode the HTML the way the message builder does


def article_where(issue_article) -> str:
    return f"article {issue_article.source}"
