"""What goes into the templates: articles and the intro made ready for an e-mail.

Article bodies arrive sanitized, but written for a web page: images wider than
a phone, tables with fixed widths, images with no alt text, links relative to
the blog. Here they are made to fit a 600 px message that shrinks to a 375 px
screen. What is still wrong (an image without alt text gets the title for now,
a relative address) is left to the pre-send checks to say, once. The
intro is marketing's Markdown, where ``{first_name}`` becomes the placeholder
token that ``newsletters.personalize`` fills per recipient.
"""

from __future__ import annotations

import datetime as dt
import html as html_lib
import re

import lxml.html
import markdown
import nh3

from .articles.model import Article
from .config import Site
from .errors import RenderError
from .issues import Issue, IssueArticle
from .plaintext import first_paragraph, html_to_text

# Per-recipient placeholders. Documented in the README; personalize.py fills them.
FIRST_NAME = "__NL_FIRST_NAME__"
UNSUBSCRIBE_URL = "__NL_UNSUBSCRIBE_URL__"
VIEW_URL = "__NL_VIEW_URL__"
PLACEHOLDERS = (FIRST_NAME, UNSUBSCRIBE_URL, VIEW_URL)

# What marketing may write in the subject, preheader and intro.
INTRO_FIELDS = {"first_name": FIRST_NAME}
_FIELD_RE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")

CONTENT_WIDTH = 552  # 600 px body less the 24 px text padding either side
EXCERPT_CHARS = 260
LONG_WORD = 14  # characters after which a word in a table cell gets a break opportunity
PHONE_TEXT_WIDTH = 375 - 2 * 24  # a 375 px phone less the text padding
CHAR_PX, CELL_PADDING_PX = 8, 13  # 14 px Helvetica, 6 px padding either side and a border
ZWSP = "\u200b"


def fill_fields(text: str, where: str, fallback: str | None = None) -> str:
    """Turn marketing's ``{first_name}`` into the placeholder (or the fallback, for the web)."""

    def replace(m: re.Match) -> str:
        name = m.group(1)
        if name not in INTRO_FIELDS:
            raise RenderError(
                f"unknown placeholder {{{name}}}",
                where=where,
                hint="only {first_name} is filled in per recipient",
            )
        return INTRO_FIELDS[name] if fallback is None else fallback

    return _FIELD_RE.sub(replace, text)


def intro_to_html(intro: str, where: str) -> str:
    """Markdown intro -> sanitized HTML with ``{first_name}`` as the placeholder token."""
    if not intro.strip():
        return ""
    html = markdown.markdown(intro, extensions=["sane_lists"], output_format="html")
    # Braces are not Markdown, so they come through; the token itself would not
    # (its underscores are emphasis), hence substituting after conversion.
    html = nh3.clean(html, link_rel=None)
    return fill_fields(html, where)


def prepare_body(body_html: str, title: str) -> str:
    """Make sanitized article HTML safe for a 375 px phone and for MJML.

    Every image gets alt text and loses widths wider than the column; every
    table is wrapped so it can shrink or scroll instead of widening the
    message; lxml's serializer closes every tag, which mrml needs.
    """
    if not body_html.strip():
        return ""
    root = lxml.html.fragment_fromstring(body_html, create_parent="div")
    for img in root.iter("img"):
        if not (img.get("alt") or "").strip():
            img.set("alt", title)  # the check image-missing-alt still names it (see checks.mail_rules)
        width = img.get("width", "")
        if width.isdigit() and int(width) > CONTENT_WIDTH:
            # Outlook on Windows draws an image at its width attribute, or at full pixel size
            # without one: cap it at the column rather than dropping it.
            img.set("width", str(CONTENT_WIDTH))
        elif not width.isdigit():
            img.attrib.pop("width", None)
        img.attrib.pop("height", None)
    for table in list(root.iter("table")):
        for el in table.iter("table", "td", "th", "col", "colgroup"):
            el.attrib.pop("width", None)
            if el.tag in ("td", "th"):
                _soften_long_words(el)
        if _narrowest_width(table) > PHONE_TEXT_WIDTH:
            # Too many columns for a phone even with words kept whole: let words
            # break anywhere rather than push the message wider than the screen.
            table.set("class", ((table.get("class") or "") + " nl-table-tight").strip())
        parent = table.getparent()
        if parent is not None and "nl-table-wrap" not in (parent.get("class") or ""):
            wrapper = lxml.html.Element("div")
            wrapper.set("class", "nl-table-wrap")
            table.addprevious(wrapper)
            wrapper.append(table)  # moves the table, tail included
            wrapper.tail, table.tail = table.tail, None
    # Relative links and images are left to the checks link-relative and image-broken-src.
    parts = [html_lib.escape(root.text or "", quote=False)]
    parts += [lxml.html.tostring(child, encoding="unicode", method="html") for child in root]
    return "".join(parts)


_LONG_WORD_RE = re.compile(r"\S{%d,}" % LONG_WORD)


def _soften(text: str | None) -> str | None:
    if not text:
        return text
    return _LONG_WORD_RE.sub(lambda m: ZWSP.join(m.group(0)[i : i + LONG_WORD] for i in range(0, len(m.group(0)), LONG_WORD)), text)


def _narrowest_width(table) -> float:
    """Rough pixel width of a table whose cells wrap at every space (14 px text, 6 px padding)."""
    widest: dict[int, int] = {}
    for row in table.iter("tr"):
        column = 0
        for cell in row:
            if not isinstance(cell.tag, str) or cell.tag not in ("td", "th"):
                continue
            words = re.split(r"[\s\u200b]+", cell.text_content())
            widest[column] = max(widest.get(column, 0), max((len(w) for w in words), default=0))
            span = cell.get("colspan", "1")
            column += int(span) if span.isdigit() else 1
    return sum(chars * CHAR_PX + CELL_PADDING_PX for chars in widest.values())


def _soften_long_words(cell) -> None:
    """Let a long token (a URL, a product code) wrap inside a table cell on a phone.

    Cells wrap only at spaces, so one 60-character word would make the table
    wider than a 375 px screen; a zero-width space every few characters gives
    the browser somewhere to break without changing what the reader sees.
    """
    for el in cell.iter():
        el.text = _soften(el.text)
        if el is not cell:
            el.tail = _soften(el.tail)


def _shorten(text: str, limit: int = EXCERPT_CHARS) -> str:
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0].rstrip(" ,.;:-")
    return cut + "…"


def _display_date(value: str) -> str:
    if not value:
        return ""
    try:
        date = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        try:
            date = dt.datetime.combine(dt.date.fromisoformat(value[:10]), dt.time())
        except ValueError:
            return ""
    return f"{date.day} {date:%B %Y}"


def article_view(entry: IssueArticle, article: Article, n: int, warnings: list[str]) -> dict:
    label = f"article {n} ({entry.source})"
    title = article.title.strip() or "Untitled"
    body = prepare_body(article.body_html or "", title)
    # A missing alt text or a relative image address is said by the checks (image-missing-alt, image-broken-src).
    image_alt = (article.image_alt or "").strip() or title
    if not article.url:
        warnings.append(
            f"{label}: has no web address, so readers get no link to it"
            + (" and its card has no Read more link" if entry.mode == "excerpt" else "")
        )
    excerpt = _shorten(" ".join((article.summary or "").split()) or first_paragraph(body))
    if entry.mode == "excerpt" and not excerpt:
        warnings.append(f"{label}: has neither a summary nor a paragraph to show as its excerpt")
    for message in article.warnings:
        if not getattr(message, "covered_by", ""):  # the rest a pre-send check finding says
            warnings.append(f"{label}: {message}")
    published = _display_date(article.published)
    meta = " · ".join(part for part in (published, article.author.strip()) if part)
    return {
        "position": n,
        "mode": entry.mode,
        "source": entry.source,
        "title": title,
        "url": article.url,
        "author": article.author,
        "published": published,
        "meta": meta,
        "image": article.image,
        "image_alt": image_alt,
        "body_html": body,
        "excerpt": excerpt,
        "text": html_to_text(body),
        "tags": list(article.tags),
    }


def _site_view(site: Site) -> dict:
    c = site.config
    return {
        "name": c.name,
        "website": c.website,
        "website_label": re.sub(r"^https?://", "", c.website),
        "postal_address": c.postal_address,
        "phone": c.phone,
        "phone_link": re.sub(r"[^0-9+]", "", c.phone),
        "logo_url": c.logo_url,
        "language": c.language,
    }


def build_context(site: Site, issue: Issue, articles: list[tuple[IssueArticle, Article]], warnings: list[str]) -> dict:
    c = site.config
    where = str(issue.path)
    intro_html = intro_to_html(issue.intro, f"{where}: intro")
    subject = fill_fields(issue.subject, f"{where}: subject")
    preheader = fill_fields(issue.preheader, f"{where}: preheader")
    # A missing preheader is the check preheader-missing's to say.
    views = [article_view(entry, article, n, warnings) for n, (entry, article) in enumerate(articles, 1)]
    return {
        "site": _site_view(site),
        "brand": {
            "primary_color": c.primary_color,
            "accent_color": c.accent_color,
            "background_color": c.background_color,
            "text_color": c.text_color,
        },
        "footer": {"text": c.footer_text, "why": c.footer_why},
        "issue": {
            "slug": issue.slug,
            "subject": subject,
            "preheader": preheader,
            "date": issue.date,
            "month": f"{issue.date:%B %Y}",
            "intro_html": intro_html,
            "intro_text": html_to_text(intro_html),
        },
        "articles": views,
        "cta": {"text": issue.cta.text, "url": issue.cta.url} if issue.cta else None,
        "links": {
            "view_url": VIEW_URL,
            "unsubscribe_url": UNSUBSCRIBE_URL,
            "subscribe_url": f"{site.public_url}/subscribe",
        },
        "web": False,
    }


def web_context(context: dict, fallback: str) -> dict:
    """The browser version: nobody in particular is reading, so no per-recipient values."""
    escaped = html_lib.escape(fallback)
    issue = dict(context["issue"])
    issue["subject"] = issue["subject"].replace(FIRST_NAME, fallback)
    issue["preheader"] = issue["preheader"].replace(FIRST_NAME, fallback)
    issue["intro_html"] = issue["intro_html"].replace(FIRST_NAME, escaped)
    issue["intro_text"] = issue["intro_text"].replace(FIRST_NAME, fallback)
    return {**context, "issue": issue, "web": True, "links": {**context["links"], "view_url": "", "unsubscribe_url": ""}}
