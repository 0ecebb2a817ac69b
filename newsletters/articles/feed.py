"""RSS 2.0, RSS 1.0 and Atom feeds: every entry is an article.

feedparser does the parsing (and copes with the many slightly broken feeds in
the wild). It is always handed the bytes we already have, never a URL, so it
does not fetch anything itself. Each entry's ``source`` is ``FEED#ENTRY-LINK``:
that string, put into an issue's ``[[articles]] source``, selects the entry again.
"""

from __future__ import annotations

import datetime as dt
import html
import io
import re

from ..errors import ArticleError
from .base import BaseReader, absolute_url, html_to_text, iso_datetime
from .model import Article
from .sanitize import sanitize_html
from .text_export import plain_text_to_html

_MARKUP = re.compile(r"<[a-z!/][^>]*>", re.I)
HTML_TYPES = ("text/html", "application/xhtml+xml", "html", "xhtml")
APPEARED_FIRST = re.compile(r"\s*The post .{1,300}? appeared first on .{1,200}?\.?\s*$")
# Yoast and other plugins end every feed item with this paragraph; it is not part of the article.
APPEARED_FIRST_HTML = re.compile(r"<p>\s*The post\s(?:(?!</p>).)*?\sappeared first on\s(?:(?!</p>).)*?</p>", re.S)


class FeedReader(BaseReader):
    """An RSS or Atom feed, file or URL; yields one article per entry, in feed order."""

    name = "feed"
    extensions = (".xml", ".rss", ".atom", ".rdf")

    def read(self, text: str, *, source: str, base_url: str, entry: str = "") -> list[Article]:
        """Every entry, or with ``entry`` (a link or id) only the entry it names."""
        import feedparser  # here, at the first feed read: 30 ms to import, which an issue of posts need not pay

        headers = {"content-location": source} if source.startswith(("http://", "https://")) else {}
        parsed = feedparser.parse(
            # Our own sanitizer (nh3) runs on every body; feedparser's would strip video players and srcset first.
            io.BytesIO(text.encode("utf-8")), response_headers=headers, sanitize_html=False,
        )
        if not parsed.entries:
            if parsed.get("bozo") and not parsed.get("version"):
                reason = parsed.get("bozo_exception")
                raise ArticleError(
                    f"not a valid RSS or Atom feed ({reason})" if reason else "not a valid RSS or Atom feed",
                    where=source,
                )
            raise ArticleError("the feed has no entries", where=source, hint="is this the right feed address?")
        feed_link = parsed.feed.get("link", "") or base_url
        entries = list(enumerate(parsed.entries, 1))
        if entry:
            entries = [(n, item) for n, item in entries if _names(item, entry, feed_link)]
            if not entries:
                links = [absolute_url(item.get("link", ""), feed_link) or item.get("id", "") for item in parsed.entries]
                raise ArticleError(
                    f"the feed has no entry with the link or id {entry}",
                    where=source,
                    hint="its entries are: " + ", ".join(links[:5]) + (" …" if len(links) > 5 else ""),
                )
            entries = entries[:1]
        return [self.finish(self._entry(item, n, source=source, feed_link=feed_link)) for n, item in entries]

    def _entry(self, entry, number: int, *, source: str, feed_link: str) -> Article:
        link = absolute_url(entry.get("link", ""), feed_link)
        key = link or entry.get("id", "")
        title = html_to_text(entry.get("title", ""))
        if not title:
            raise ArticleError(f"entry {number} ({key or 'no link'}) has no title", where=source)
        base = link or feed_link
        content = _best_content(entry)
        summary_html = entry.get("summary", "") if content else ""
        body = APPEARED_FIRST_HTML.sub("", content or entry.get("summary", ""))
        if body.strip() and not _MARKUP.search(body):
            body = plain_text_to_html(html.unescape(body))  # RSS 0.91 and many plugins send bare text
        image, image_alt = _media_image(entry)
        return Article(
            title=title,
            url=link,
            author=_author(entry),
            published=_published(entry),
            summary=_clean_summary(html_to_text(summary_html)) if summary_html != content else "",
            image=absolute_url(image, base),
            image_alt=image_alt,
            body_html=sanitize_html(body, base_url=base),
            tags=list(dict.fromkeys(t.get("label") or t.get("term") for t in entry.get("tags", []) if t.get("label") or t.get("term"))),
            source=f"{source}#{key}" if key else source,
        )


def _names(entry, wanted: str, feed_link: str) -> bool:
    wanted = wanted.strip().rstrip("/")
    keys = (absolute_url(entry.get("link", ""), feed_link), entry.get("link", ""), entry.get("id", ""))
    return any(key and key.strip().rstrip("/") == wanted for key in keys)


def _best_content(entry) -> str:
    """Full text wins over the summary: content:encoded in RSS, <content> in Atom."""
    contents = entry.get("content") or []
    html_parts = [c for c in contents if (c.get("type") or "").lower() in HTML_TYPES and (c.get("value") or "").strip()]
    parts = html_parts or [c for c in contents if (c.get("value") or "").strip()]
    if not parts:
        return ""
    best = max(parts, key=lambda c: len(c.get("value", "")))
    value = best.get("value", "")
    if (best.get("type") or "").lower() == "text/plain":
        return "".join(f"<p>{p}</p>" for p in re.split(r"\n\s*\n", _escape(value)) if p.strip())
    return value


def _clean_summary(text: str) -> str:
    """WordPress feeds end excerpts with "[…]" and "The post X appeared first on Y."."""
    text = APPEARED_FIRST.sub("", text)
    text = re.sub(r"\s*\[(?:…|\.\.\.)\]\s*$", "", text)
    return re.sub(r"\s*(?:…|\.\.\.)\s*$", " …", text).strip()


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _author(entry) -> str:
    detail = entry.get("author_detail") or {}
    name = detail.get("name") or entry.get("author") or ""
    # RSS <author> is "email (Name)"; feedparser gives the name when it can, the address when not.
    if "@" in name and "(" in name:
        name = name[name.index("(") + 1 : name.rindex(")")] if ")" in name else name
    if "@" in name and " " not in name.strip():
        return ""
    return " ".join(name.split())


def _published(entry) -> str:
    for key in ("published", "updated", "created"):
        raw = entry.get(key)
        if not raw:
            continue
        iso = iso_datetime(raw)
        if iso:
            return iso
        parsed = entry.get(f"{key}_parsed")
        if parsed:
            return dt.datetime(*parsed[:6], tzinfo=dt.timezone.utc).isoformat()
    return ""


def _media_image(entry) -> tuple[str, str]:
    """media:content, media:thumbnail or an image enclosure. feedparser files media:description
    under the entry's own description, so the alt text is found later, from the same image in the body."""
    for media in entry.get("media_content", []):
        url = media.get("url", "")
        if url and (media.get("medium") == "image" or (media.get("type") or "").startswith("image/") or _looks_like_image(url)):
            return url, ""
    for thumb in entry.get("media_thumbnail", []):
        if thumb.get("url"):
            return thumb["url"], ""
    for enclosure in entry.get("enclosures", []):
        if (enclosure.get("type") or "").startswith("image/") and enclosure.get("href"):
            return enclosure["href"], ""
    return "", ""


def _looks_like_image(url: str) -> bool:
    return bool(re.search(r"\.(?:jpe?g|png|gif|webp|avif)(?:\?|$)", url, re.I))

