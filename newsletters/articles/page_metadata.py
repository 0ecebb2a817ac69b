"""What a blog post's page says about itself: title, author, dates, address, lead image, tags.

Most specific first: JSON-LD ``Article``/``BlogPosting`` (Yoast's ``@graph`` included),
Open Graph and ``article:*`` tags, ``<meta name=author>``, ``<time datetime>``, a
"Posted by … on …" line, and only then whatever the page's text suggests. Site
names are recognised (og:site_name, the JSON-LD publisher) so they can be taken
off the end of a title.
"""

from __future__ import annotations

import html
import json
import re

from .base import absolute_url, alt_for, is_url, iso_datetime, parse_byline

ARTICLE_TYPES = {"article", "blogposting", "newsarticle", "report", "medicalwebpage", "medicalscholarlyarticle"}
SEPARATORS = (" | ", " - ", " – ", " — ", " · ", " :: ", " » ")
_BYLINE_XPATH = (
    "//*[self::p or self::div or self::span or self::li]"
    "[starts-with(normalize-space(.), 'Posted ') or starts-with(normalize-space(.), 'By ')"
    " or starts-with(normalize-space(.), 'by ') or starts-with(normalize-space(.), 'Written by ')]"
)


class PageMetadata:
    """What a page says about itself in <head> and JSON-LD."""

    def __init__(self, page):
        self.page = page
        self.meta: dict[str, list[str]] = {}
        for element in page.iter("meta"):
            key = (element.get("property") or element.get("name") or "").strip().lower()
            if not key and element.get("itemprop"):
                key = "itemprop:" + element.get("itemprop").strip().lower()
            content = (element.get("content") or "").strip()
            if key and content:
                self.meta.setdefault(key, []).append(content)
        self.objects = _json_ld_objects(page)
        self.article = next((obj for obj in self.objects if _types(obj) & ARTICLE_TYPES), {})
        self.site_names = {name for name in self.meta.get("og:site_name", []) + self.meta.get("application-name", [])}
        publisher = self.article.get("publisher")
        if isinstance(publisher, dict) and isinstance(publisher.get("name"), str):
            self.site_names.add(publisher["name"])

    def first(self, *keys: str) -> str:
        for key in keys:
            values = self.meta.get(key)
            if values:
                return values[0]
        return ""

    def title(self) -> str:
        h1 = next((" ".join(h.text_content().split()) for h in self.page.iter("h1") if h.text_content().strip()), "")
        candidates = [
            _ld_text(self.article.get("headline")),
            self.first("og:title"),
            self.first("twitter:title"),
            h1,
            " ".join(self.page.findtext(".//title", default="").split()),
        ]
        title = self._strip_site_name(next(filter(None, candidates), ""))
        # "Post title | Some site" with no og:site_name to recognise: the <h1> is the cleaner copy.
        if h1 and title != h1 and title.startswith(h1) and title[len(h1):].startswith(SEPARATORS):
            return h1
        return title

    def _strip_site_name(self, title: str) -> str:
        for name in self.site_names:
            for separator in SEPARATORS:
                if title.endswith(separator + name):
                    return title[: -len(separator + name)].strip()
                if title.startswith(name + separator):
                    return title[len(name + separator):].strip()
        return title.strip()

    def author(self) -> str:
        ld_author = _ld_name(self.article.get("author"), self.objects)
        if ld_author:
            return ld_author
        for key in ("author", "article:author", "dc.creator", "parsely-author", "sailthru.author"):
            for value in self.meta.get(key, []):
                if not is_url(value):
                    return value
        for xpath in (
            "//*[@rel='author']", "//*[contains(@class,'byline')]//*[contains(@class,'fn')]",
            "//*[contains(@class,'blog-author')]", "//*[@itemprop='author']//*[@itemprop='name']",
            "//*[contains(concat(' ', normalize-space(@class), ' '), ' author ')]",
        ):
            for element in self.page.xpath(xpath):
                text = " ".join(element.text_content().split())
                if text and len(text) < 80:
                    return text.removeprefix("By ").removeprefix("by ")
        return ""

    def published(self) -> str:
        for value in (
            self.first("article:published_time"),
            _ld_text(self.article.get("datePublished")),
            self.first("itemprop:datepublished", "date", "dc.date", "dc.date.issued", "pubdate", "og:published_time"),
        ):
            iso = iso_datetime(value) if value else ""
            if iso:
                return iso
        times = self.page.xpath(
            "//time[@datetime][contains(@class,'publish') or contains(@class,'entry-date') or @itemprop='datePublished']"
            " | //*[@itemprop='datePublished'][@content or @datetime or @title]"
            " | //abbr[contains(concat(' ', @class, ' '), ' published ')][@title]"  # Blogger, hAtom
        ) or self.page.xpath("//article//time[@datetime]") or self.page.xpath("//time[@datetime]")
        for element in times:
            iso = iso_datetime(element.get("datetime") or element.get("content") or element.get("title"))
            if iso:
                return iso
        return ""

    def byline(self) -> tuple[str, str]:
        """(author, date) from a "Posted by … on …" line above the post, where themes without
        metadata say it, often with a category after a separator."""
        if not hasattr(self, "_byline"):
            self._byline = ("", "")
            for element in self.page.xpath(_BYLINE_XPATH):
                text = " ".join(element.text_content().split())
                if len(text) > 200:
                    continue
                parts = re.split(r"\s+[·•|]\s+", text)
                readings = [found for n in range(len(parts), 0, -1) if (found := parse_byline(" · ".join(parts[:n])))]
                found = next((r for r in readings if r[1]), readings[0] if readings else None)
                if found:
                    self._byline = found
                    break
        return self._byline

    def canonical_url(self) -> str:
        for link in self.page.iter("link"):
            if "canonical" in (link.get("rel") or "").lower().split() and (link.get("href") or "").strip():
                return link.get("href").strip()
        return self.first("og:url") or _ld_text(self.article.get("url")) or ""

    def image(self) -> str:
        return (
            self.first("og:image", "og:image:url", "og:image:secure_url")
            or _ld_image(self.article.get("image"))
            or self.first("twitter:image", "twitter:image:src")
        )

    def image_alt(self, image: str, base: str) -> str:
        alt = self.first("og:image:alt", "twitter:image:alt")
        if alt or not image:
            return alt
        page_images = [
            (absolute_url(img.get("src") or img.get("data-src") or "", base), img.get("alt") or "")
            for img in self.page.iter("img")
        ]
        return alt_for(image, page_images)

    def description(self) -> str:
        candidates = [
            " ".join(value.split())
            for value in (self.first("og:description"), self.first("description"), self.first("twitter:description"),
                          _ld_text(self.article.get("description")))
            if value and value.strip()
        ]
        if not candidates:
            return ""
        # Themes (Ghost, Yoast's social tab) often give og:description cut short: prefer the full sentence.
        chosen = candidates[0]
        stem = chosen.rstrip(".… ").removesuffix("...")
        longer = [c for c in candidates[1:] if len(c) > len(chosen) and c.startswith(stem)]
        return max(longer, key=len) if longer else chosen

    def tags(self) -> list[str]:
        tags = list(self.meta.get("article:tag", []))
        keywords = self.article.get("keywords")
        if isinstance(keywords, str):
            tags += [k.strip() for k in keywords.split(",")]
        elif isinstance(keywords, list):
            tags += [k.strip() for k in keywords if isinstance(k, str)]
        if not tags:
            tags = [" ".join(a.text_content().split()) for a in self.page.xpath("//a[@rel='tag' or contains(@rel,' tag')]")]
        return list(dict.fromkeys(tag for tag in tags if tag))


def _json_ld_objects(page) -> list[dict]:
    found: list[dict] = []

    def walk(value):
        if isinstance(value, list):
            for item in value:
                walk(item)
        elif isinstance(value, dict):
            found.append(value)
            walk(value.get("@graph", []))

    for script in page.xpath("//script[@type='application/ld+json']"):
        try:
            walk(json.loads(script.text or ""))
        except ValueError:
            continue  # broken JSON-LD is common; the other metadata still counts
    return found


def _types(obj: dict) -> set[str]:
    value = obj.get("@type", [])
    values = value if isinstance(value, list) else [value]
    return {str(v).lower() for v in values}


def _ld_text(value) -> str:
    # SEO plugins copy WordPress's texturized title into JSON-LD: "Don&#8217;t panic" is "Don’t panic".
    return " ".join(html.unescape(value).split()) if isinstance(value, str) else ""


def _ld_name(value, objects: list[dict]) -> str:
    if isinstance(value, list):
        names = [_ld_name(item, objects) for item in value]
        return ", ".join(name for name in names if name)
    if isinstance(value, str):
        return "" if is_url(value) else _ld_text(value)
    if isinstance(value, dict):
        if isinstance(value.get("name"), str):
            return _ld_text(value["name"])
        ref = value.get("@id")
        target = next((obj for obj in objects if obj.get("@id") == ref and obj is not value), None)
        return _ld_name(target, []) if target else ""
    return ""


def _ld_image(value) -> str:
    if isinstance(value, list):
        value = value[0] if value else ""
    if isinstance(value, dict):
        value = value.get("url") or value.get("contentUrl") or ""
    return value if isinstance(value, str) else ""
