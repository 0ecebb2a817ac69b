"""A blog post's web page (a saved ``.html`` file or a URL): the article, without the website around it.

The body comes from trafilatura, which finds the main text of a page and leaves
out navigation, sidebars, comments, share buttons and footers, once
``page_repair`` has fixed the markup it would misread. We prune the
usual WordPress / Squarespace / Wix furniture by class name first (comment
forms, cookie banners, related posts, newsletter sign-up boxes) and convert
trafilatura's XML ourselves so numbered lists stay numbered. trafilatura is
only ever given text, never a URL to download, so it cannot touch the network.

The facts (title, author, date, canonical URL, lead image) come from the page's
own metadata (``page_metadata``), and only then from trafilatura's guesses. A
blog's home, archive or tag page lists posts rather than being one: it is
refused with the address of a post to use instead.
"""

from __future__ import annotations

import copy
import re
from urllib.parse import urlsplit

import lxml.html
from lxml import etree

from ..errors import ArticleError
from .base import BaseReader, absolute_url, is_url, iso_datetime, parse_byline
from .model import Article
from .page_metadata import PageMetadata
from .page_repair import repair_page
from .sanitize import sanitize_html

_WORD_CLASSES = ("sidebar", "widget-area", "comments", "comment-respond", "related", "share", "social", "subscribe")
_SUBSTRING_CLASSES = (
    "sharedaddy", "sharing", "share-buttons", "social-share", "jp-relatedposts", "related-posts", "relatedposts",
    "post-navigation", "pagination", "newsletter", "cookie", "gdpr", "consent-banner", "breadcrumb", "author-bio",
    "about-author", "comments-area", "comment-list", "announcement-bar", "mc4wp", "wpcf7", "ss-social",
)
_IDS = ("comments", "respond", "secondary", "sidebar", "cookie-notice", "cookie-law-info-bar", "breadcrumbs")
# Never the page itself or anything holding the post: some sites (ASP.NET) wrap the whole page in a
# <form>, and some themes put "sidebar" or "cookie" classes on the wrapper around everything.
_HOLDS_POST = ".//h1 or .//main or .//article[not(contains(@class, 'comment'))]"
_NEVER_PRUNE = f"not(self::html) and not(self::body) and not(self::main) and not(self::article) and not({_HOLDS_POST})"
JUNK_XPATHS = [
    f"//form[not({_HOLDS_POST})]",
    "//*[@role='dialog' or @role='complementary' or @aria-label='Cookie banner']",
    "//*[%s and (%s)]"
    % (
        _NEVER_PRUNE,
        " or ".join(
            [f"contains(concat(' ', normalize-space(@class), ' '), ' {name} ')" for name in _WORD_CLASSES]
            + [f"contains(@class, '{name}')" for name in _SUBSTRING_CLASSES]
            + [f"@id='{name}'" for name in _IDS]
        ),
    ),
]
_RENAMES = {"item": "li", "lb": "br", "graphic": "img", "quote": "blockquote", "code": "pre", "row": "tr", "del": "s"}
_HIGHLIGHTS = {"#b": "strong", "#i": "em", "#u": "u", "#t": "code", "#sub": "sub", "#sup": "sup", "#del": "s"}
_LINK_HEADINGS = etree.XPath(".//*[self::h1 or self::h2 or self::h3][count(.//a[@href]) = 1]")
COPYRIGHT = re.compile(r"^(?:©|\(c\)|copyright\b)", re.I)
_AMP_IMG = re.compile(r"<amp-img\b", re.I)
_AMP_IMG_CLOSE = re.compile(r"</amp-img\s*>", re.I)
_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>", re.I)


class HTMLPageReader(BaseReader):
    """The web page of one blog post, saved to a file or fetched from its URL."""

    name = "html"
    extensions = (".html", ".htm", ".xhtml")

    def read(self, text: str, *, source: str, base_url: str) -> list[Article]:
        text = _XML_DECLARATION.sub("", text, count=1)
        text = _AMP_IMG_CLOSE.sub("", _AMP_IMG.sub("<img", text))  # AMP pages: trafilatura knows only <img>
        try:
            page = lxml.html.document_fromstring(text)
        except (etree.ParserError, ValueError) as exc:
            raise ArticleError(f"not a readable HTML page ({exc})", where=source) from None
        meta = PageMetadata(page)
        url = absolute_url(meta.canonical_url(), source if is_url(source) else base_url)
        base = _base_href(page, url) or url or (source if is_url(source) else "") or base_url
        repaired = lxml.html.document_fromstring(text)
        repair_page(repaired)
        listing = _listed_posts(repaired, meta)
        if listing:
            raise ArticleError(
                f"this page lists {len(listing)} posts rather than being one",
                where=source,
                hint=f"give one post's own page, e.g. {absolute_url(listing[0], base)}, or the blog's RSS feed",
            )
        prepared = lxml.html.tostring(repaired, encoding="unicode", method="html")

        document = _extract(prepared, prune=True) or _extract(prepared, prune=False)
        body = _to_html(document.body) if document is not None and document.body is not None else ""
        if not body.strip():
            raise ArticleError(
                "could not find the article text in this page",
                where=source,
                hint="save the post's own page (not a listing or home page), or use the blog's RSS feed",
            )
        title = meta.title() or (document.title or "")
        if not title.strip():
            raise ArticleError("the page has no title", where=source, hint="the page needs a <title> or an <h1>")
        body, byline = _tidy_body(body, title)
        image = absolute_url(meta.image(), base)
        article = Article(
            title=title,
            url=url,
            author=meta.author() or byline[0] or meta.byline()[0] or _first_author(document.author or ""),
            published=meta.published() or byline[1] or meta.byline()[1] or iso_datetime(document.date or ""),
            summary=meta.description(),
            image=image,
            image_alt=meta.image_alt(image, base),
            body_html=sanitize_html(body, base_url=base),
            tags=meta.tags() or list(dict.fromkeys((document.tags or []) + (document.categories or []))),
            source=source,
        )
        return [self.finish(article)]


def _base_href(page, url: str) -> str:
    """A page's <base href> decides where its relative links point, but only one on the post's own site
    is believed: a base elsewhere would send every relative link in the newsletter to another host."""
    href = next((b.get("href").strip() for b in page.iter("base") if (b.get("href") or "").strip()), "")
    if not href or not url:
        return ""
    resolved = absolute_url(href, url)
    return resolved if urlsplit(resolved).netloc.lower() == urlsplit(url).netloc.lower() else ""


def _listed_posts(page, meta: PageMetadata) -> list[str]:
    """The addresses of the posts a blog's home, archive or tag page lists; [] for a post's own page.

    A listing is a run of units, each a heading that links to a post with its excerpt;
    a post has paragraphs of its own outside any such unit (related-post boxes are units too)."""
    if meta.article or meta.first("og:type").lower() == "article":
        return []
    links: list[str] = []
    units = set()
    for heading in page.xpath("//h1 | //h2 | //h3"):
        anchors = heading.xpath(".//a[@href]")
        text = " ".join(heading.text_content().split())
        if len(anchors) != 1 or not text or not _same_text(anchors[0].text_content(), text):
            continue
        href = anchors[0].get("href").strip()
        if href.startswith("#"):
            continue
        if href not in links:
            links.append(href)
        unit = heading
        while (parent := unit.getparent()) is not None and parent.tag != "body" and len(_LINK_HEADINGS(parent)) == 1:
            unit = parent
        units.add(unit)
    if len(links) < 2:
        return []
    own_paragraphs = [
        p for p in page.iter("p")
        if len(p.text_content().strip()) >= 80 and not any(a in units for a in p.iterancestors())
    ]
    return links if len(own_paragraphs) < 2 else []


def _extract(text: str, *, prune: bool):
    # No url= on purpose: trafilatura would resolve relative links against the host only
    # (contact.html on /news/ -> /contact.html). sanitize_html resolves them properly.
    # Imported here, at the first web page read: trafilatura and what it brings take 75 ms to import,
    # which every command would pay (send rebuilds the issue) though most issues read no web page.
    import trafilatura

    return trafilatura.bare_extraction(
        text,
        include_comments=False,
        include_tables=True,
        include_images=True,
        include_links=True,
        include_formatting=True,
        with_metadata=True,
        deduplicate=False,
        prune_xpath=JUNK_XPATHS if prune else None,
        # The publication date as the page states it; the extensive search would turn a
        # "© 2025" footer into 1 January 2025, a date the post never had.
        date_extraction_params={"extensive_search": False, "original_date": True},
    )


def _to_html(body) -> str:
    """trafilatura's XML (head, list, item, hi, ref, graphic, …) as plain HTML."""
    body = copy.deepcopy(body)
    for element in body.iter():
        if not isinstance(element.tag, str):
            continue
        tag, rend = element.tag, element.get("rend") or ""
        if tag in _RENAMES:
            element.tag = _RENAMES[tag]
        elif tag == "list":
            element.tag = "ol" if rend == "ol" else "ul"
        elif tag == "head":
            element.tag = rend if re.fullmatch(r"h[1-6]", rend) else "h3"
        elif tag == "hi":
            element.tag = _HIGHLIGHTS.get(rend, "em")
        elif tag == "cell":
            element.tag = "th" if element.get("role") == "head" else "td"
        elif tag == "ref":
            element.tag = "a"
            element.set("href", element.get("target") or "")
    for table in body.iter("table"):
        _restore_table_head(table)
    body.tag = "div"
    return etree.tostring(body, encoding="unicode", method="html")


def _restore_table_head(table) -> None:
    """trafilatura drops <thead>; a first row of header cells is the head again, for the plain-text
    version and for screen readers."""
    rows = [row for row in table if row.tag == "tr"]
    if len(rows) < 2 or rows[0].getparent() is not table or not all(cell.tag == "th" for cell in rows[0]):
        return
    head, body = etree.SubElement(table, "thead"), etree.SubElement(table, "tbody")
    head.append(rows[0])
    for row in rows[1:]:
        body.append(row)


def _tidy_body(body: str, title: str) -> tuple[str, tuple[str, str]]:
    """What trafilatura keeps on plain, class-less pages: the title again, a byline, a row of
    navigation links, a copyright line. Returns the body without them, and (author, date) from the byline."""
    root = lxml.html.fragment_fromstring(body, create_parent="div")
    if len(root) == 1 and root[0].tag == "div" and not (root.text or "").strip():
        root = root[0]
    byline = ("", "")
    blocks = list(root)
    for element in blocks[:4]:
        text = " ".join(element.text_content().split())
        if re.fullmatch(r"h[1-6]", element.tag) and _same_text(text, title):
            element.drop_tree()
        elif element.tag == "p" and not byline[0] and (found := parse_byline(text)):
            byline = found
            element.drop_tree()
    for element in blocks[-3:]:
        if element.getparent() is not None and COPYRIGHT.match(" ".join(element.text_content().split())):
            element.drop_tree()
    for element in list(root.iter("table", "ul", "ol", "p", "div")):
        if element.getparent() is not None and _is_link_row(element):
            element.drop_tree()
    return lxml.html.tostring(root, encoding="unicode", method="html"), byline


def _is_link_row(element) -> bool:
    """A block that is nothing but three or more links ("Home | Treatments | News") is navigation."""
    links = element.xpath(".//a[@href]")
    if len(links) < 3:
        return False
    text = re.sub(r"[\s|·•/,–—-]+", "", element.text_content())
    linked = re.sub(r"[\s|·•/,–—-]+", "", "".join(a.text_content() for a in links))
    return bool(text) and len(linked) / len(text) >= 0.8


def _same_text(a: str, b: str) -> bool:
    return " ".join(a.split()).casefold() == " ".join(b.split()).casefold()


def _first_author(value: str) -> str:
    return value.split(";")[-1].strip() if value else ""
