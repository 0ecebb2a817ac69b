"""One issue, rendered once: Jinja2 -> MJML -> HTML -> inlined CSS, plus plain text.

Rendering is the expensive part of a newsletter (template, MJML compiler,
CSS inliner), so it happens once per issue. Whatever differs per recipient
(first name, unsubscribe link, view-online link) stays in the output as a
placeholder token that ``newsletters.personalize`` swaps in by plain string
substitution. The tokens are plain ASCII words with no character that MJML,
premailer, HTML escaping or URL handling would touch, so they come out of the
pipeline exactly as they went in.

Nothing here touches the network: MJML gets no web fonts, and premailer is told
neither to fetch linked stylesheets nor to load files.
"""

from __future__ import annotations

import datetime as dt
import html as html_lib
import importlib.resources
import logging
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import lxml.html
import markdown
import nh3
from jinja2 import (
    BaseLoader,
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    StrictUndefined,
    TemplateNotFound,
    TemplateSyntaxError,
)

from .articles.model import Article
from .config import Site
from .errors import RenderError
from .issues import Issue, IssueArticle
from .plaintext import first_paragraph, html_to_text, underline, wrap

# Per-recipient placeholders. Documented in the README; personalize.py fills them.
FIRST_NAME = "__NL_FIRST_NAME__"
UNSUBSCRIBE_URL = "__NL_UNSUBSCRIBE_URL__"
VIEW_URL = "__NL_VIEW_URL__"
PLACEHOLDERS = (FIRST_NAME, UNSUBSCRIBE_URL, VIEW_URL)

# What marketing may write in the subject, preheader and intro.
INTRO_FIELDS = {"first_name": FIRST_NAME}
_FIELD_RE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")

EMAIL_TEMPLATE = "email.mjml.j2"
TEXT_TEMPLATE = "email.txt.j2"
CONTENT_WIDTH = 552  # 600 px body less the 24 px text padding either side
GMAIL_CLIP_BYTES = 102 * 1024
EXCERPT_CHARS = 260
LONG_WORD = 14  # characters after which a word in a table cell gets a break opportunity
PHONE_TEXT_WIDTH = 375 - 2 * 24  # a 375 px phone less the text padding
CHAR_PX, CELL_PADDING_PX = 8, 13  # 14 px Helvetica, 6 px padding either side and a border
ZWSP = "\u200b"


@dataclass
class RenderedIssue:
    """An issue ready to send: HTML and text with placeholders, and the browser version."""

    slug: str
    subject: str
    preheader: str
    html: str
    text: str
    web_html: str
    mjml: str = ""
    view_url: str = ""
    first_name_fallback: str = "there"
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def html_bytes(self) -> int:
        return len(self.html.encode("utf-8"))


# ---------------------------------------------------------------- templates


class PackageTemplates(BaseLoader):
    """The built-in templates, read through importlib.resources so a zipped install works too."""

    def __init__(self, package: str = "templates"):
        self.root = importlib.resources.files(package)

    def get_source(self, environment, template):
        resource = self.root.joinpath(*template.split("/"))
        if not resource.is_file():
            raise TemplateNotFound(template)
        return resource.read_text(encoding="utf-8"), str(resource), lambda: True

    def list_templates(self):
        return sorted(entry.name for entry in self.root.iterdir() if entry.name.endswith(".j2"))


class MarkedTemplates(BaseLoader):
    """Wraps a loader so each MJML template's output is bracketed by comments naming its file.

    mjml-python's errors carry no position; with these marks an MJML problem can
    be traced back to the template (a site override or a built-in) that wrote
    it. The marks add no newline, so Jinja's own line numbers stay right, and
    the MJML compiler drops comments.
    """

    def __init__(self, inner: BaseLoader):
        self.inner = inner

    def get_source(self, environment, template):
        source, filename, uptodate = self.inner.get_source(environment, template)
        if template.endswith(".mjml.j2"):
            source = f"<!-- nl-template: {filename} -->{source}<!-- /nl-template: {filename} -->"
        return source, filename, uptodate

    def list_templates(self):
        return self.inner.list_templates()


def _autoescape(name: str | None) -> bool:
    # Everything is HTML/MJML except the plain-text template.
    return not (name or "").endswith(".txt.j2")


def make_environment(site: Site) -> Environment:
    """Site templates first, then the built-in ones: a site overrides a file by name."""
    env = Environment(
        loader=ChoiceLoader([MarkedTemplates(FileSystemLoader(str(site.templates_dir))), MarkedTemplates(PackageTemplates())]),
        autoescape=_autoescape,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["wrap"] = wrap
    env.filters["underline"] = underline
    return env


def _template_location(tb) -> str | None:
    """The innermost template frame of a traceback as ``file:line`` (Jinja rewrites frames so they point at templates)."""
    where = None
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename.endswith(".j2") or tb.tb_frame.f_globals.get("__jinja_template__") is not None:
            where = f"{filename}:{tb.tb_lineno}"
        tb = tb.tb_next
    return where


def render_template(env: Environment, name: str, context: dict) -> str:
    try:
        return env.get_template(name).render(context)
    except TemplateSyntaxError as exc:
        raise RenderError(
            f"template syntax error: {exc.message}",
            where=f"{exc.filename or exc.name}:{exc.lineno}",
            hint="fix the template; Jinja2 syntax is {{ value }} and {% tag %}",
        ) from None
    except TemplateNotFound as exc:
        raise RenderError(
            f"template {exc.name!r} not found",
            where=name,
            hint=f"a site template may only include templates that exist in its templates/ folder or the built-in set",
        ) from None
    except Exception as exc:
        where = _template_location(exc.__traceback__)
        if where is None:
            raise
        raise RenderError(f"template failed: {exc}", where=where, hint="check the names the template uses") from None


# ---------------------------------------------------------------- MJML


_TAG_RE = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9:-]*)([^<>]*?)(/?)>|<!--.*?-->|<!\[CDATA\[.*?\]\]>|<", re.S)
_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source", "track", "wbr"}
_RAW_TEXT = {"mj-style", "style", "script"}
_TEMPLATE_MARK_RE = re.compile(r"<!-- (/?)nl-template: (.*?) -->")
_MRML_POSITION_RE = re.compile(r"at position (\d+):(\d+)")


@dataclass
class MjmlSource:
    """MJML text as compiled, and which template wrote which stretch of it."""

    text: str
    marks: list[tuple[int, bool, str]]  # (offset in text, is_end, template file)

    @classmethod
    def from_rendered(cls, rendered: str) -> "MjmlSource":
        # The marks are taken out before compiling: mrml rejects a comment that
        # follows whitespace after </mj-style> or </mj-raw> in the head.
        parts, marks, pos, length = [], [], 0, 0
        for m in _TEMPLATE_MARK_RE.finditer(rendered):
            chunk = rendered[pos : m.start()]
            parts.append(chunk)
            length += len(chunk)
            marks.append((length, bool(m.group(1)), m.group(2)))
            pos = m.end()
        parts.append(rendered[pos:])
        return cls("".join(parts), marks)

    def template_at(self, offset: int) -> tuple[str | None, int]:
        """The template whose output holds ``offset``, and the line within that output."""
        stack: list[tuple[str, int]] = []
        for at, is_end, name in self.marks:
            if at > offset:
                break
            if is_end:
                if stack:
                    stack.pop()
            else:
                stack.append((name, at))
        if not stack:
            return None, 0
        name, start = stack[-1]
        return name, self.text.count("\n", start, offset) + 1


def find_mjml_problem(source: str) -> tuple[int, str] | None:
    """Offset and reason of the first tag that does not nest, which is what mrml chokes on.

    mjml-python often reports "unexpected end of stream" with no position, so we
    look for the usual culprits ourselves: an unclosed or stray tag, or a bare "<".
    """
    stack: list[tuple[str, int]] = []
    pos = 0
    while True:
        m = _TAG_RE.search(source, pos)
        if m is None:
            break
        pos = m.end()
        text = m.group(0)
        if text.startswith("<!--") or text.startswith("<![CDATA["):
            continue
        if m.group(2) is None:
            return m.start(), "a bare '<' that does not start a tag (write &lt;)"
        closing, name, selfclose = m.group(1), m.group(2).lower(), m.group(4)
        if closing:
            if name in _VOID:
                continue
            if not stack or stack[-1][0] != name:
                expected = f"</{stack[-1][0]}>" if stack else "no closing tag"
                return m.start(), f"</{name}> does not close an open tag (expected {expected})"
            stack.pop()
        elif not selfclose and name not in _VOID:
            if name in _RAW_TEXT:
                end = source.lower().find(f"</{name}>", pos)
                if end < 0:
                    return m.start(), f"<{name}> is never closed"
                pos = end + len(name) + 3
                continue
            stack.append((name, m.start()))
    if stack:
        name, offset = stack[-1]
        return offset, f"<{name}> is never closed"
    return None


def compile_mjml(source: MjmlSource) -> str:
    from mjml import mjml2html

    try:
        # fonts={} keeps mrml from adding Google Fonts <link>s for its default font list.
        return mjml2html(source.text, disable_comments=True, fonts={})
    except Exception as exc:  # mjml-python raises a bare ValueError
        raise _mjml_error(source, str(exc)) from None


def _mjml_error(source: MjmlSource, message: str) -> RenderError:
    """Point at the template (and the line of its output) that wrote the bad MJML."""
    text = source.text
    reason = ""
    problem = find_mjml_problem(text)
    if problem:
        offset, reason = problem
    else:
        m = _MRML_POSITION_RE.search(message)
        if not m:
            return RenderError(f"MJML compiler failed: {message}", where=EMAIL_TEMPLATE, hint="check the MJML the templates write")
        offset = len(text.encode("utf-8")[: int(m.group(1))].decode("utf-8", errors="ignore"))
    line = text.count("\n", 0, offset) + 1
    snippet = text.splitlines()[line - 1].strip()[:120] if text.strip() else ""
    origin, line_in_output = source.template_at(offset)
    where = f"{origin}, line {line_in_output} of its output" if origin else f"MJML line {line}"
    detail = f": {reason}" if reason else ""
    return RenderError(
        f"MJML compiler failed ({message}){detail} at MJML line {line}: {snippet!r}",
        where=where,
        hint="the template, or an article body it inserts, writes tags that do not nest",
    )


# ---------------------------------------------------------------- CSS inlining


def inline_css(html: str) -> str:
    """Move the stylesheet into style attributes; keep @media and :root rules in <head>.

    Premailer would fetch <link rel=stylesheet> and external files if allowed;
    here it may not. ``strip_important=False`` because the mobile and dark-mode
    @media rules only win over inline styles with !important. Width/height
    attributes stay as MJML wrote them (Outlook sizes images by them).
    """
    from premailer import Premailer

    inliner = Premailer(
        html,
        base_url=None,
        disable_link_rewrites=True,
        allow_network=False,
        allow_loading_external_files=False,
        external_styles=None,
        keep_style_tags=False,
        strip_important=False,
        exclude_pseudoclasses=True,
        disable_validation=True,
        disable_basic_attributes=["width", "height"],
        cssutils_logging_level=logging.CRITICAL,
    )
    out = inliner.transform()
    if not out.lstrip().lower().startswith("<!doctype"):
        out = "<!doctype html>\n" + out
    return out


# ---------------------------------------------------------------- content


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


def _is_absolute(url: str) -> bool:
    return urlsplit(url).scheme in ("http", "https", "mailto", "tel", "data", "cid") or url.startswith("#") or url in PLACEHOLDERS


def prepare_body(body_html: str, title: str, warnings: list[str], label: str) -> str:
    """Make sanitized article HTML safe for a 375 px phone and for MJML.

    Every image gets alt text and loses widths wider than the column; every
    table is wrapped so it can shrink or scroll instead of widening the
    message; lxml's serializer closes every tag, which mrml needs.
    """
    if not body_html.strip():
        return ""
    root = lxml.html.fragment_fromstring(body_html, create_parent="div")
    missing_alt = 0
    for img in root.iter("img"):
        if not (img.get("alt") or "").strip():
            img.set("alt", title)
            missing_alt += 1
        for attr in ("width", "height"):
            value = img.get(attr, "")
            if attr == "width" and value.isdigit() and int(value) <= CONTENT_WIDTH:
                continue
            img.attrib.pop(attr, None)
        src = img.get("src", "")
        if src and not _is_absolute(src):
            warnings.append(f"{label}: image {src!r} has a relative address and will not show in an e-mail")
    if missing_alt:
        warnings.append(f"{label}: {missing_alt} image(s) in the body had no alt text; used the title")
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
    for a in root.iter("a"):
        href = a.get("href", "")
        if href and not _is_absolute(href):
            warnings.append(f"{label}: link {href!r} has a relative address and will not work in an e-mail")
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
    body = prepare_body(article.body_html or "", title, warnings, label)
    image_alt = (article.image_alt or "").strip()
    if article.image and not image_alt:
        image_alt = title
        warnings.append(f"{label}: image has no alt text; used the title {title!r}")
    if article.image and not _is_absolute(article.image):
        warnings.append(f"{label}: image {article.image!r} has a relative address and will not show in an e-mail")
    if not article.url:
        warnings.append(
            f"{label}: has no web address, so readers get no link to it"
            + (" and its card has no Read more link" if entry.mode == "excerpt" else "")
        )
    excerpt = _shorten(" ".join((article.summary or "").split()) or first_paragraph(body))
    if entry.mode == "excerpt" and not excerpt:
        warnings.append(f"{label}: has neither a summary nor a paragraph to show as its excerpt")
    for message in article.warnings:
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
    if not issue.preheader:
        warnings.append("issue has no preheader: inboxes will show the first words of the message instead")
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


def _web_context(context: dict, fallback: str) -> dict:
    """The browser version: nobody in particular is reading, so no per-recipient values."""
    escaped = html_lib.escape(fallback)
    issue = dict(context["issue"])
    issue["subject"] = issue["subject"].replace(FIRST_NAME, fallback)
    issue["preheader"] = issue["preheader"].replace(FIRST_NAME, fallback)
    issue["intro_html"] = issue["intro_html"].replace(FIRST_NAME, escaped)
    issue["intro_text"] = issue["intro_text"].replace(FIRST_NAME, fallback)
    return {**context, "issue": issue, "web": True, "links": {**context["links"], "view_url": "", "unsubscribe_url": ""}}


def render_issue(site: Site, issue: Issue, articles: list[tuple[IssueArticle, Article]]) -> RenderedIssue:
    """Render the e-mail HTML, its text alternative and the browser version, once."""
    warnings: list[str] = []
    timings = {"render": 0.0, "mjml": 0.0, "inline": 0.0}
    fallback = site.config.personalization_first_name_fallback

    t0 = time.perf_counter()
    env = make_environment(site)
    context = build_context(site, issue, articles, warnings)
    web_context = _web_context(context, fallback)
    email_mjml = MjmlSource.from_rendered(render_template(env, EMAIL_TEMPLATE, context))
    web_mjml = MjmlSource.from_rendered(render_template(env, EMAIL_TEMPLATE, web_context))
    text = render_template(env, TEXT_TEMPLATE, context)
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(line.rstrip() if line != "-- " else line for line in text.splitlines())).strip() + "\n"
    t1 = time.perf_counter()
    email_html = compile_mjml(email_mjml)
    web_html = compile_mjml(web_mjml)
    t2 = time.perf_counter()
    email_html = inline_css(email_html)
    t3 = time.perf_counter()
    timings.update(render=t1 - t0, mjml=t2 - t1, inline=t3 - t2)

    for token in (UNSUBSCRIBE_URL,):
        if token not in email_html or token not in text:
            warnings.append(
                f"the e-mail has no unsubscribe link ({token} missing): a site template must keep it in the footer"
            )
    size = len(email_html.encode("utf-8"))
    if size > GMAIL_CLIP_BYTES:
        warnings.append(
            f"email.html is {size / 1024:.0f} KB: Gmail clips messages over 102 KB, hiding the footer and unsubscribe link"
        )
    return RenderedIssue(
        slug=issue.slug,
        subject=context["issue"]["subject"],
        preheader=context["issue"]["preheader"],
        html=email_html,
        text=text,
        web_html=web_html,
        mjml=email_mjml.text,
        view_url=f"{site.public_url}/issues/{issue.slug}/",
        first_name_fallback=fallback,
        warnings=warnings,
        timings=timings,
    )
