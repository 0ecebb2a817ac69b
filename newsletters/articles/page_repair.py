"""Markup repairs a blog page needs before the extractor can see its article.

trafilatura judges a page by its markup, and real blog pages give it markup it
misjudges: libxml2 reads HTML5 void elements (``<embed>``, ``<source>``,
``<wbr>``) as containers, so one embed swallows the rest of the article; lazy
loaders hide the real image in ``data-src`` or ``srcset`` behind a placeholder,
with a ``<noscript>`` copy beside it; captions and video embeds are dropped;
old sites lay the whole page out in one big table; editors (Ghost callouts,
Blogger) put sentences straight into ``<div>``s. :func:`repair_page` rewrites
those parts of the parsed page into the plain structure the extractor keeps.
Nothing here is a security measure: the body still goes through
``sanitize_html`` afterwards.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import lxml.html

from .base import image_key

# HTML5 void elements that libxml2 parses as containers of everything after them.
VOID_AS_CONTAINER = ("embed", "source", "track", "wbr", "keygen")
# Lazy loaders keep the real address here and a placeholder in src.
LAZY_SRC = ("data-src", "data-lazy-src", "data-original", "data-ll-src", "data-echo")
# These hold the full-size original beside an ordinary src: used only when src is missing.
ORIGINAL_SRC = ("data-orig-file", "data-image", "data-full-url", "data-large-file")
LAZY_SRCSET = ("data-srcset", "data-lazy-srcset", "srcset")
_PLACEHOLDER_NAME = re.compile(r"(?:blank|placeholder|spacer|transparent|lazy|loading|pixel|grey|gray)[^/]*\.(?:gif|png|svg)$", re.I)
# Email columns are 600 px wide; a 2x rendition of that is sharp on every phone.
WANTED_IMAGE_WIDTH = 1200

INLINE_TAGS = {
    "a", "abbr", "b", "bdi", "br", "cite", "code", "em", "font", "i", "img", "kbd", "mark", "q", "s", "small",
    "span", "strong", "sub", "sup", "time", "u", "var",
}
BLOCK_IN_CELL = {"p", "ul", "ol", "div", "blockquote", "dl", "pre", "figure"}
_LAYOUT_SIGNS = ".//table | .//h1 | .//h2 | .//h3 | .//h4 | .//h5 | .//h6 | .//form | .//article | .//main | .//nav"

_NOT_THE_POST = re.compile(r"comment|respond|reply|sidebar|widget|footer|related|nav|menu", re.I)
_URL_IGNORED = re.compile(r"[\t\n\r]")
_VIDEO_FILE = re.compile(r"\.(?:mp4|m4v|webm|ogv|mov)$", re.I)
_YOUTUBE_ID = re.compile(r"^/(?:embed|v|shorts)/([\w-]{6,})")
_VIMEO_ID = re.compile(r"^/(?:video/)?(\d{5,})")


def repair_fragment(root) -> None:
    """What every article body needs, whatever its format: swallowed content back in place, real image
    addresses, video players as links, addresses read the way a browser reads them."""
    _unwrap_void_containers(root)
    _videos_to_links(root)
    _restore_images(root)
    _text_divs_to_paragraphs(root)
    _normalize_addresses(root)


def repair_page(page) -> None:
    """Rewrite, in place, the parts of a parsed page the extractor would misread or drop."""
    repair_fragment(page)
    _captions_to_paragraphs(page)
    _unwrap_layout_tables(page)
    _text_divs_to_paragraphs(page)  # again: table cells are <div>s now
    _mark_main_content(page)


def _unwrap_void_containers(page) -> None:
    for element in list(page.iter(*VOID_AS_CONTAINER)):
        if len(element) or (element.text or "").strip():
            element.text = None if not (element.text or "").strip() else element.text
            element.drop_tag()  # keeps what it swallowed, in place


# --- videos --------------------------------------------------------------------------------------


def video_link(src: str) -> tuple[str, str]:
    """(watch page, service) for a YouTube or Vimeo player address, or ("", "")."""
    src = src.strip()
    parts = urlsplit("https:" + src if src.startswith("//") else src)
    host = parts.netloc.lower().removeprefix("www.").removeprefix("m.")
    if host in ("youtube.com", "youtube-nocookie.com"):
        match = _YOUTUBE_ID.match(parts.path)
        if match:
            return f"https://www.youtube.com/watch?v={match[1]}", "YouTube"
        if parts.path == "/watch" and parse_qs(parts.query).get("v"):
            return f"https://www.youtube.com/watch?v={parse_qs(parts.query)['v'][0]}", "YouTube"
    if host == "youtu.be" and parts.path.strip("/"):
        return f"https://www.youtube.com/watch?v={parts.path.strip('/')}", "YouTube"
    if host in ("vimeo.com", "player.vimeo.com"):
        match = _VIMEO_ID.match(parts.path)
        if match:
            return f"https://vimeo.com/{match[1]}", "Vimeo"
    return "", ""


def embedded_address(src: str) -> str:
    """The address of an embedded player from any host, when a link to it can work: http(s) or relative."""
    src = _URL_IGNORED.sub("", src or "").strip()
    if not src or src.startswith("#"):
        return ""
    scheme = urlsplit("https:" + src if src.startswith("//") else src).scheme.lower()
    return src if scheme in ("http", "https", "") else ""


def _videos_to_links(page) -> None:
    """A mail client plays no embedded video or frame; a link to it still takes the reader there.

    YouTube and Vimeo players link to the video's own watch page; a player
    from any other host (Wistia, Loom, the clinic's own site…) links to the
    player's address, which opens in a browser. Readers warn about each one
    (``base.VIDEO_LINK_RE`` finds these paragraphs again), since the reader sees
    a link where the page showed a player."""
    for element in list(page.xpath(".//iframe[@src or @data-src] | .//embed[@src] | .//object[@data] | .//video")):
        if element.getparent() is None:
            continue
        if element.tag == "video":
            src = element.get("src") or next((s.get("src") for s in element.iter("source") if s.get("src")), "")
            url, service = (embedded_address(src), "") if src else ("", "")
        else:
            src = element.get("src") or element.get("data-src") or element.get("data") or ""
            url, service = video_link(src)
            if not url and (element.tag == "iframe" or _VIDEO_FILE.search(urlsplit(src).path)):
                url = embedded_address(src)  # a plugin <object>/<embed> (Flash and the like) is no video
        if not url:
            continue
        title = " ".join((element.get("title") or "").split())
        if not title or title.lower() in ("youtube video player", "vimeo video player", "video", "embedded video"):
            # An address relative to the page means nothing as text before it is completed: name the file.
            title = url if urlsplit(url).netloc else (url.rstrip("/").rsplit("/", 1)[-1] or url)
        paragraph = lxml.html.Element("p")
        paragraph.text = f"Watch the video on {service}: " if service else "Watch the video: "
        link = lxml.html.Element("a", href=url)
        link.text = title
        paragraph.append(link)
        # Replace the player with its wrappers (wp-block-embed__wrapper and the like), which the
        # extractor drops by class name, up to the element that also holds a caption or text.
        target = element
        while (parent := target.getparent()) is not None and parent.tag in ("div", "span", "p") and len(parent) == 1 \
                and not (parent.text or "").strip() and not (target.tail or "").strip():
            target = parent
        paragraph.tail = target.tail
        target.getparent().replace(target, paragraph)


# --- images --------------------------------------------------------------------------------------


def real_image_src(img) -> str:
    """The address a browser would end up showing, whatever the lazy loader did with src."""
    src = (img.get("src") or "").strip()
    placeholder = not src or src.startswith("data:") or bool(_PLACEHOLDER_NAME.search(urlsplit(src).path))
    lazy = next((img.get(name).strip() for name in LAZY_SRC if (img.get(name) or "").strip()), "")
    if lazy and not lazy.startswith("data:"):
        return lazy
    if not placeholder:
        return src
    original = next((img.get(name).strip() for name in ORIGINAL_SRC if (img.get(name) or "").strip()), "")
    if original:
        return original
    for name in LAZY_SRCSET:
        chosen = best_from_srcset(img.get(name) or "")
        if chosen:
            return chosen
    parent = img.getparent()
    if parent is not None and parent.tag == "picture":
        for source in parent.iter("source"):
            chosen = best_from_srcset(source.get("srcset") or source.get("data-srcset") or "")
            if chosen:
                return chosen
    return "" if src.startswith("data:") else src


def best_from_srcset(srcset: str) -> str:
    """The rendition closest to what an e-mail column needs: the widest up to 1200w, else the narrowest."""
    candidates: list[tuple[int, str]] = []
    for item in srcset.split(","):
        bits = item.split()
        if not bits or bits[0].startswith("data:"):
            continue
        width = 0
        if len(bits) > 1 and bits[1].lower().endswith("w") and bits[1][:-1].isdigit():
            width = int(bits[1][:-1])
        elif len(bits) > 1 and bits[1].lower().endswith("x"):
            try:
                width = int(float(bits[1][:-1]) * 600)
            except ValueError:
                width = 0
        candidates.append((width, bits[0]))
    if not candidates:
        return ""
    fitting = [c for c in candidates if c[0] <= WANTED_IMAGE_WIDTH]
    return max(fitting)[1] if fitting else min(candidates)[1]


def _restore_images(page) -> None:
    for img in page.iter("img"):
        real = real_image_src(img)
        if real and real != img.get("src"):
            img.set("src", real)
        for name in LAZY_SRCSET:
            img.attrib.pop(name, None)  # the extractor would pick its own rendition from these
    for noscript in list(page.iter("noscript")):
        images = list(noscript.iter("img"))
        if not images:
            continue
        previous = noscript.getprevious()
        shown = [previous] if previous is not None and previous.tag == "img" else []
        if previous is not None and previous.tag != "img":
            shown = list(previous.iter("img"))
        if shown and any(image_key(real_image_src(a)) == image_key(real_image_src(b)) for a in shown for b in images):
            noscript.drop_tree()  # the fallback copy of an image already restored beside it
        else:
            noscript.drop_tag()


def _captions_to_paragraphs(page) -> None:
    """The extractor drops <figcaption>, and keeps a quote's <cite> as loose text run onto the quote;
    an italic paragraph under the picture, and a "— Name" line under the quote, survive it."""
    for cite in list(page.xpath("//blockquote/cite")):
        if cite.text_content().strip():
            cite.tag = "p"
            cite.text = "— " + (cite.text or "").lstrip(" —–-")
    for caption in list(page.iter("figcaption")):
        if not caption.text_content().strip():
            caption.drop_tree()
            continue
        emphasis = lxml.html.Element("em")
        emphasis.text, caption.text = caption.text, None
        for child in list(caption):
            emphasis.append(child)
        caption.append(emphasis)
        caption.tag = "p"
        caption.attrib.clear()


# --- structure -----------------------------------------------------------------------------------


def is_layout_table(table) -> bool:
    """A table used to place the page's parts (header, menu, article), not to show data."""
    if (table.get("role") or "").lower() in ("presentation", "none"):
        return True
    if table.xpath(_LAYOUT_SIGNS):
        return True
    for cell in table.xpath("./tr/td | ./*/tr/td"):
        if sum(1 for child in cell if isinstance(child.tag, str) and child.tag in BLOCK_IN_CELL) >= 3:
            return True
    return False


def _unwrap_layout_tables(page) -> None:
    for table in list(page.iter("table")):
        if table.getparent() is None or not is_layout_table(table):
            continue
        for element in list(table.iter("col", "colgroup")):
            element.drop_tree()
        for element in [table, *table.iter("thead", "tbody", "tfoot", "tr", "td", "th", "caption")]:
            element.tag = "div"
            for name in ("width", "height", "valign", "align", "bgcolor", "colspan", "rowspan"):
                element.attrib.pop(name, None)


def _text_divs_to_paragraphs(page) -> None:
    """<div>Some sentence with <em>words</em></div> is a paragraph: say so, or the extractor may drop its text."""
    for div in list(page.iter("div")):
        if div.getparent() is None:
            continue  # the wrapper a fragment is parsed into
        inline_only = all(not isinstance(child.tag, str) or child.tag in INLINE_TAGS for child in div.iterdescendants())
        if inline_only and any(ch.isalnum() for ch in div.text_content()):  # not a lone icon or emoji
            div.tag = "p"


def _mark_main_content(page) -> None:
    """A page with no <article> or <main> (hand-written sites, old table layouts) leaves the extractor
    guessing, and its fallback loses lists and headings. The element holding most of the page's
    paragraphs is the article: say so."""
    if page.xpath("//article | //main | //*[@role='main']"):
        return
    title = next(page.iter("h1"), None)
    best, best_count = None, 0
    for element in page.iter("div", "section", "td"):
        if _NOT_THE_POST.search(" ".join((element.get("class") or "", element.get("id") or ""))):
            continue  # a long comment thread is not the article
        parent = element.getparent()
        if title is not None and title not in element.iter("h1") and (parent is None or title not in parent.iter("h1")):
            continue  # the post's paragraphs sit with, or next to, its title
        count = sum(1 for child in element if child.tag == "p" and len(child.text_content().strip()) >= 40)
        if count > best_count:
            best, best_count = element, count
    if best is not None and best_count >= 3:
        best.tag = "article"


def _normalize_addresses(page) -> None:
    """Addresses as a browser reads them: tabs and line breaks inside ignored (so "java\tscript:" is seen,
    and dropped later, as javascript:), and "//host/path", which means "same scheme as this page",
    made https, the safe reading for an e-mail that has no scheme of its own."""
    for element in page.xpath(".//*[@href or @src]"):
        for name in ("href", "src"):
            value = element.get(name)
            if value is None:
                continue
            cleaned = _URL_IGNORED.sub("", value).strip()
            if cleaned.startswith("//"):
                cleaned = "https:" + cleaned
            if cleaned != value:
                element.set(name, cleaned)
