"""What every reader shares: the reader interface, dates, summaries and image checks.

Each input format has one reader class (the way Pelican's ``readers.py`` has one
per markup language). A reader turns the decoded text of one source into
finished ``Article`` objects; :meth:`BaseReader.finish` fills what a format may
leave out (summary, lead image, alt text) the same way for every format, so a
Markdown post and a feed entry come out alike.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import html
import re
from urllib.parse import urljoin, urlsplit

import lxml.html

from ..errors import ArticleError
from .model import Article, ReaderWarning

SUMMARY_LENGTH = 200
# The paragraph page_repair writes in place of an embedded player, as it reads after sanitizing.
VIDEO_LINK_RE = re.compile(r'<p>Watch the video(?: on [A-Za-z]+)?: <a href="([^"]+)"')

MONTHS = {
    name: number
    for number, names in enumerate(
        [("jan", "january"), ("feb", "february"), ("mar", "march"), ("apr", "april"), ("may",), ("jun", "june"),
         ("jul", "july"), ("aug", "august"), ("sep", "sept", "september"), ("oct", "october"),
         ("nov", "november"), ("dec", "december")],
        start=1,
    )
    for name in names
}

# "Friday 18th May 2018", "18 May 2018", "May 18th, 2018", each optionally "at 3:57 pm" / "15:57".
_DAY = r"(?P<day>\d{1,2})(?:st|nd|rd|th)?"
_MONTH = r"(?P<month>[A-Za-z]{3,9})\.?"
_YEAR = r"(?P<year>\d{4})"
_TIME = r"(?:,?\s*(?:at\s+)?(?P<hour>\d{1,2})[:.](?P<minute>\d{2})\s*(?P<ampm>[ap]\.?m\.?)?)?"
_HUMAN_DATES = [
    re.compile(rf"^(?:[A-Za-z]+,?\s+)?{_DAY}\s+(?:of\s+)?{_MONTH},?\s+{_YEAR}{_TIME}$", re.I),
    re.compile(rf"^(?:[A-Za-z]+,?\s+)?{_MONTH}\s+{_DAY},?\s+{_YEAR}{_TIME}$", re.I),
]


BYLINES = [
    re.compile(r"^posted\s+by\s+(?P<author>.+?)\s+on\s+(?P<date>.+)$", re.I),
    re.compile(r"^posted\s+on\s+(?P<date>.+?)(?:\s+by\s+(?P<author>.+))?$", re.I),
    re.compile(r"^(?:written\s+)?by\s+(?P<author>[^|·,]+?)(?:\s*(?:\bon\b|[|·,—–])\s*(?P<date>.+))?$", re.I),
]


class BaseReader:
    """One input format. Subclasses set ``name`` and ``extensions`` and implement ``read``."""

    name = "base"
    extensions: tuple[str, ...] = ()

    def read(self, text: str, *, source: str, base_url: str) -> list[Article]:  # pragma: no cover - interface
        raise NotImplementedError

    @staticmethod
    def finish(article: Article) -> Article:
        """Fill the optional fields every template relies on, and warn about missing alt text."""
        article.title = " ".join(article.title.split())
        if article.image and urlsplit(article.image).scheme.lower() not in ("http", "https", ""):
            article.warnings.append(
                f"the lead image {article.image[:60]!r} is not a web address (http or https), so it was left out"
            )
            article.image = article.image_alt = ""
        images = body_images(article.body_html)
        if not article.image and images:
            article.image, article.image_alt = images[0]
        if article.image and not article.image_alt:
            article.image_alt = alt_for(article.image, images)
        # The templates show the lead image above the body: the same picture opening the body would show twice.
        article.body_html = drop_repeated_lead_image(article.body_html, article.image)
        if not article.summary:
            article.summary = summarize(first_paragraph_text(article.body_html))
        else:
            article.summary = summarize(article.summary)
        if article.image and not article.image_alt.strip():
            article.warnings.append(ReaderWarning(
                f"the lead image {article.image} has no alt text: describe it in a few words "
                "(mail clients that block images show the alt text instead, and screen readers read it)",
                covered_by="image-missing-alt",
            ))
        for src in dict.fromkeys(src for src, alt in body_images(article.body_html) if not alt.strip()):
            article.warnings.append(ReaderWarning(
                f"the image {src} in the article body has no alt text: add a short description to it at the source",
                covered_by="image-missing-alt",
            ))
        for player in dict.fromkeys(VIDEO_LINK_RE.findall(article.body_html)):
            article.warnings.append(
                f"the embedded video or frame {html.unescape(player)} cannot play in an e-mail: "
                'it became a "Watch the video" link to it'
            )
        urls = [article.url] + body_urls(article.body_html) + [article.image]
        relative = list(dict.fromkeys(url for url in urls if url and not urlsplit(url).scheme))
        if relative:
            shown = ", ".join(relative[:3]) + (", …" if len(relative) > 3 else "")
            article.warnings.append(ReaderWarning(
                f"relative address(es) {shown} cannot be completed because no web address is known: "
                "give the article's url, or run the command in the site folder",
                covered_by="link-relative",
            ))
        return article


# --- text helpers --------------------------------------------------------------------------------


def summarize(text: str, limit: int = SUMMARY_LENGTH) -> str:
    """Shorten at a word boundary so an excerpt never ends mid-word."""
    text = " ".join(html.unescape(text).split())
    if len(text) <= limit:
        return text
    cut = text[: limit + 1].rsplit(" ", 1)[0] if " " in text[:limit] else text[:limit]
    return cut.rstrip(" ,;:–—-") + "…"


def html_to_text(fragment: str) -> str:
    """The visible text of an HTML fragment, whitespace collapsed."""
    if not fragment or not fragment.strip():
        return ""
    try:
        root = lxml.html.fragment_fromstring(fragment, create_parent="div")
    except Exception:  # lxml raises a few unrelated types on odd input
        return " ".join(re.sub(r"<[^>]+>", " ", fragment).split())
    return " ".join(root.text_content().split())


def first_paragraph_text(body_html: str) -> str:
    """The opening of the article, before its first heading: what a reader sees first, so the natural excerpt.

    A byline or a caption (a paragraph all in italics) is not the opening; short opening
    paragraphs are joined until there is a sentence or two to show."""
    if not body_html.strip():
        return ""
    root = lxml.html.fragment_fromstring(body_html, create_parent="div")
    opening: list[str] = []
    for block in root:
        if not isinstance(block.tag, str):
            continue
        if block.tag in ("h1", "h2", "h3", "h4", "h5", "h6"):
            break
        if block.tag != "p":
            continue
        text = " ".join(block.text_content().split())
        caption = len(block) == 1 and block[0].tag in ("em", "i") and not (block.text or "").strip() \
            and not (block[0].tail or "").strip()
        if not text or caption or parse_byline(text):
            continue
        opening.append(text)
        if sum(len(part) for part in opening) >= 60:
            return " ".join(opening)
    paragraphs = [" ".join(p.text_content().split()) for p in root.iter("p")]
    for text in paragraphs:
        if len(text) >= 60:
            return text
    return " ".join(opening) or next((text for text in paragraphs if text), " ".join(root.text_content().split()))


def body_images(body_html: str) -> list[tuple[str, str]]:
    """(src, alt) of every image in a sanitized body, in order."""
    if "<img" not in body_html:
        return []
    root = lxml.html.fragment_fromstring(body_html, create_parent="div")
    return [(img.get("src", ""), img.get("alt", "")) for img in root.iter("img") if img.get("src")]


def body_urls(body_html: str) -> list[str]:
    if "href" not in body_html and "src" not in body_html:
        return []
    root = lxml.html.fragment_fromstring(body_html, create_parent="div")
    return [element.get("href") or element.get("src") for element in root.xpath("//a[@href] | //img[@src]")]


_SIZE_SUFFIX = re.compile(r"-\d{2,5}x\d{2,5}(?=\.[a-z0-9]+$)", re.I)
# Ghost: /content/images/size/w600/2025/01/x.jpg; Blogger: /s320/x.jpg, /w400-h300/x.jpg, x.jpg=s1600.
_SIZE_SEGMENT = re.compile(r"/size/w\d+(?:h\d+)?(?=/)|/(?:s\d{2,4}|w\d{2,4}-h\d{2,4})(?:-[a-z0-9-]+)?(?=/[^/]+$)|=[swh]\d{2,4}[^/]*$", re.I)


def image_key(url: str) -> str:
    """Same picture, different rendition: WordPress adds -1024x683, CDNs add ?format=1500w,
    Ghost and Blogger put the size into the path."""
    parts = urlsplit(url)
    path = _SIZE_SUFFIX.sub("", _SIZE_SEGMENT.sub("", parts.path))
    return (parts.netloc.lower() + path).rstrip("/")


def drop_repeated_lead_image(body_html: str, image: str) -> str:
    """The body without the lead picture, wherever in the body it is and in whatever rendition.

    The templates show the lead image above the body, so any copy of it in the body would show
    twice (WordPress featured images, Ghost feature images, a feed entry whose first picture
    became its lead image). The link or paragraph that only held the picture goes with it; a
    figure's caption stays as a paragraph, since it may say something the text does not."""
    if not image or "<img" not in body_html:
        return body_html
    key = image_key(image)
    root = lxml.html.fragment_fromstring(body_html, create_parent="div")
    repeated = [img for img in root.iter("img") if image_key(img.get("src", "")) == key]
    if not repeated:
        return body_html
    for img in repeated:
        target = img
        while target.getparent() is not None and target.getparent() is not root and len(target.getparent()) == 1 \
                and not (target.getparent().text or "").strip() and not (target.tail or "").strip():
            target = target.getparent()  # the <a> or <p> or <figure> that only held it
        figure = target if target.tag == "figure" else next(target.iterancestors("figure"), None)
        if figure is not None and figure is not root and all(other is img for other in figure.iter("img")):
            _figure_to_caption(figure)
            continue
        if target.getparent() is not None:
            target.drop_tree()  # keeps the tail text
    text = lxml.html.tostring(root, encoding="unicode", method="html")
    return text[len("<div>") : -len("</div>")].strip()


def _figure_to_caption(figure) -> None:
    """Replace a figure whose only picture left by its caption's text, as a paragraph (or by nothing)."""
    caption = next(figure.iter("figcaption"), None)
    if caption is None or not caption.text_content().strip():
        figure.drop_tree()
        return
    caption.tag = "p"
    caption.tail = figure.tail
    figure.addprevious(caption)
    figure.getparent().remove(figure)


def alt_for(image: str, images: list[tuple[str, str]]) -> str:
    key = image_key(image)
    for src, alt in images:
        if alt.strip() and image_key(src) == key:
            return alt.strip()
    return ""


def absolute_url(url: str, base: str) -> str:
    url = (url or "").strip()
    if not url:
        return ""
    if url.startswith("//"):
        return f"https:{url}"  # "same scheme as the page" means nothing in an e-mail; https is the safe reading
    if base and not urlsplit(url).scheme:
        return urljoin(base, url)
    return url


def is_url(source: str) -> bool:
    return source.lower().startswith(("http://", "https://"))


# --- dates -------------------------------------------------------------------------------------


def iso_datetime(value) -> str:
    """An ISO 8601 string from whatever a source calls a date, or "" when it cannot be read.

    Keeps the precision the source had: a date stays a date, a clock time without
    seconds stays without seconds, an offset stays an offset.
    """
    if value is None or value == "":
        return ""
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    text = " ".join(str(value).split())
    if not text:
        return ""
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        try:
            return dt.date.fromisoformat(text).isoformat()
        except ValueError:
            return ""
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "T", 1))
    except ValueError:
        pass
    else:
        return parsed.isoformat(timespec="auto" if re.search(r"\d:\d{2}:\d{2}", text) else "minutes")
    try:
        return email.utils.parsedate_to_datetime(text).isoformat()
    except (TypeError, ValueError, IndexError):
        pass
    return human_date(text)


_NUMERIC_DATE = re.compile(
    r"^(?P<first>\d{1,2})[/.](?P<second>\d{1,2})[/.](?P<year>\d{4})"
    r"(?:[ T,]+(?:at\s+)?(?P<hour>\d{1,2})[:.](?P<minute>\d{2})\s*(?P<ampm>[ap]\.?m\.?)?)?$",
    re.I,
)


def numeric_date(text: str) -> str:
    """'14/02/2025' or '05.06.2025 14:30' -> ISO. Day first, as UK sites write it; month first only
    when the day cannot be first (02/14/2025)."""
    match = _NUMERIC_DATE.match(" ".join(text.split()))
    if not match:
        return ""
    first, second = int(match["first"]), int(match["second"])
    day, month = (second, first) if second > 12 >= first else (first, second)
    try:
        date = dt.date(int(match["year"]), month, day)
    except ValueError:
        return ""
    return _with_clock(date, match)


def _with_clock(day: dt.date, match: re.Match) -> str:
    if match["hour"] is None:
        return day.isoformat()
    hour, minute = int(match["hour"]), int(match["minute"])
    ampm = (match["ampm"] or "").replace(".", "").lower()
    if ampm and not 1 <= hour <= 12:
        return day.isoformat()  # "15:00 pm" is a typo we cannot resolve: keep the day
    if ampm == "pm" and hour < 12:
        hour += 12
    elif ampm == "am" and hour == 12:
        hour = 0  # 12:30 am is half past midnight
    try:
        return dt.datetime.combine(day, dt.time(hour, minute)).isoformat(timespec="minutes")
    except ValueError:
        return day.isoformat()


def human_date(text: str) -> str:
    """'Friday 18th May 2018 at 3:57 pm' -> '2018-05-18T15:57'; '' when it is not a date."""
    text = " ".join(text.split()).strip(" .,")
    for pattern in _HUMAN_DATES:
        match = pattern.match(text)
        if not match:
            continue
        month = MONTHS.get(match["month"].lower())
        if month is None:
            continue
        try:
            day = dt.date(int(match["year"]), month, int(match["day"]))
        except ValueError:
            return ""
        return _with_clock(day, match)
    return numeric_date(text)


def parse_byline(line: str) -> tuple[str, str] | None:
    """'Posted by Jo Bloggs on Friday 18th May 2018 at 3:57 pm' -> ('Jo Bloggs', '2018-05-18T15:57')."""
    line = " ".join(line.split()).strip(" ,")
    if not line or len(line) > 160:
        return None
    for pattern in BYLINES:
        match = pattern.match(line)
        if not match:
            continue
        author = (match["author"] or "").strip(" ,.")
        published = human_date(match["date"] or "")
        if pattern is BYLINES[-1] and not published and (match["date"] or len(author.split()) > 5):
            continue  # "By the way, …" opens a paragraph; it is not a byline
        if author or published:
            return author, published
    return None


def published_date(article: Article) -> dt.date | None:
    """The calendar day an article came out, for choosing what goes into the next issue."""
    try:
        return dt.date.fromisoformat(article.published[:10]) if article.published else None
    except ValueError:
        return None


def require_title(title: str, *, source: str, hint: str) -> str:
    title = " ".join((title or "").split())
    if not title:
        raise ArticleError("no title found", where=source, hint=hint)
    return title
