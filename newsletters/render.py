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

import importlib.resources
import logging
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from jinja2 import (
    BaseLoader,
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    StrictUndefined,
    TemplateNotFound,
    TemplateSyntaxError,
)
from lxml import etree

from .articles.model import Article
from .config import Site
from .errors import RenderError
from .issues import Issue, IssueArticle
from .plaintext import underline, wrap
from .tracking import tag_html, tag_text, utm_tags
from .render_content import (  # noqa: F401  (the placeholders are part of this module's interface)
    FIRST_NAME,
    PLACEHOLDERS,
    UNSUBSCRIBE_URL,
    VIEW_URL,
    build_context,
    web_context,
)
from .stamps import packages_stamp

EMAIL_TEMPLATE = "email.mjml.j2"
TEXT_TEMPLATE = "email.txt.j2"

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
        """UTF-8 bytes of the HTML; not what Gmail counts (see ``personalize.encoded_html_size``)."""
        return len(self.html.encode("utf-8"))


# ---------------------------------------------------------------- templates


class PackageTemplates(BaseLoader):
    """The built-in templates, read through importlib.resources so a zipped install works too.

    A cached built-in template goes stale the moment the site adds an override
    of the same name, so that is what its ``uptodate`` checks.
    """

    def __init__(self, package: str = "templates", *, shadowed_by: Path | None = None):
        self.root = importlib.resources.files(package)
        self.shadowed_by = shadowed_by

    def get_source(self, environment, template):
        resource = self.root.joinpath(*template.split("/"))
        if not resource.is_file():
            raise TemplateNotFound(template)
        override = self.shadowed_by / template if self.shadowed_by is not None else None
        return resource.read_text(encoding="utf-8"), str(resource), lambda: override is None or not override.is_file()

    def list_templates(self):
        return sorted(entry.name for entry in self.root.iterdir() if entry.name.endswith(".j2"))


class MarkedTemplates(BaseLoader):
    """Wraps a loader so each MJML template's output is bracketed by comments naming its file.

    mjml-python's errors carry no position; with these marks an MJML problem can
    be traced back to the template (a site override or a built-in) that wrote
    it. The marks add no newline, so Jinja's own line numbers stay right;
    ``MjmlSource`` takes them out again before compiling.
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


_ENVIRONMENTS: dict[Path, Environment] = {}


def make_environment(site: Site) -> Environment:
    """Site templates first, then the built-in ones: a site overrides a file by name.

    One environment per templates folder is kept, because compiling the
    templates costs more than rendering them; ``auto_reload`` re-reads a
    template whose file changed, and a built-in one once the site overrides it.
    """
    env = _ENVIRONMENTS.get(site.templates_dir)
    if env is not None:
        return env
    env = Environment(
        loader=ChoiceLoader(
            [
                MarkedTemplates(FileSystemLoader(str(site.templates_dir))),
                MarkedTemplates(PackageTemplates(shadowed_by=site.templates_dir)),
            ]
        ),
        auto_reload=True,
        autoescape=_autoescape,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["wrap"] = wrap
    env.filters["underline"] = underline
    if len(_ENVIRONMENTS) >= 8:  # a long-lived process (tests, a preview of many sites) keeps only a few
        _ENVIRONMENTS.pop(next(iter(_ENVIRONMENTS)))
    _ENVIRONMENTS[site.templates_dir] = env
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
            hint="a site template may only include templates that exist in its templates/ folder or the built-in set",
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


_FRACTION_ATTRIBUTE = re.compile(r'(<img\b[^>]*?\s(?:width|height)=")(\d+)\.\d+(")')
_FRACTION_STYLE = re.compile(r"((?<![-\w])(?:max-)?width\s*:\s*)(\d+)\.\d+px")


def whole_pixels(html: str) -> str:
    """Image widths in whole pixels: MJML divides column widths (38% of 576 px is 218.88) and writes
    ``width="194.88"``, which Outlook and HTML validators do not accept. Rounded down, so the image
    never grows past its column."""
    while True:
        fixed = _FRACTION_STYLE.sub(r"\g<1>\g<2>px", _FRACTION_ATTRIBUTE.sub(r"\g<1>\g<2>\g<3>", html))
        if fixed == html:
            return fixed
        html = fixed


# ---------------------------------------------------------------- CSS inlining


# What inline_css asks of premailer. Part of ``inliner_fingerprint``: change it and stored inlinings go stale.
_PREMAILER_OPTIONS = {
    "base_url": None,
    "disable_link_rewrites": True,
    "allow_network": False,
    "allow_loading_external_files": False,
    "external_styles": None,
    "keep_style_tags": False,
    "strip_important": False,
    "exclude_pseudoclasses": True,
    "disable_validation": True,
    "disable_basic_attributes": ("width", "height"),
    "cssutils_logging_level": logging.CRITICAL,
}
_INLINER_REVISION = 1  # raise it when inline_css changes what it makes of the same HTML in any other way


def inline_css(html: str) -> str:
    """Move the stylesheet into style attributes; keep @media and :root rules in <head>.

    Premailer would fetch <link rel=stylesheet> and external files if allowed;
    here it may not. ``strip_important=False`` because the mobile and dark-mode
    @media rules only win over inline styles with !important. Width/height
    attributes stay as MJML wrote them (Outlook sizes images by them).
    """
    from premailer import Premailer

    out = Premailer(html, **_PREMAILER_OPTIONS).transform()
    if not out.lstrip().lower().startswith("<!doctype"):
        out = "<!doctype html>\n" + out
    return out


_INLINER_PACKAGES = ("premailer", "cssutils", "cssselect", "lxml")  # what inline_css runs on


def inliner_fingerprint() -> str:
    """Everything besides its input that decides what ``inline_css`` returns.

    Our options and revision, the Python and libxml2 versions, and the files of
    the packages the inliner runs on (``stamps.packages_stamp``).
    """
    parts = [f"revision {_INLINER_REVISION}", repr(sorted(_PREMAILER_OPTIONS.items())), sys.version,
             f"libxml2 {etree.LIBXML_VERSION}", packages_stamp(_INLINER_PACKAGES)]
    return "\n".join(parts)


def render_issue(
    site: Site, issue: Issue, articles: list[tuple[IssueArticle, Article]], inline: Callable[[str], str] = inline_css,
) -> RenderedIssue:
    """Render the e-mail HTML, its text alternative and the browser version, once.

    ``inline`` is ``inline_css`` or one that remembers its results (``newsletters.build``
    keeps them beside the build, so each ``send`` process need not inline again).
    """
    warnings: list[str] = []
    timings = {"render": 0.0, "mjml": 0.0, "inline": 0.0}
    fallback = site.config.personalization_first_name_fallback

    t0 = time.perf_counter()
    env = make_environment(site)
    context = build_context(site, issue, articles, warnings)
    web_ctx = web_context(context, fallback)
    email_mjml = MjmlSource.from_rendered(render_template(env, EMAIL_TEMPLATE, context))
    web_mjml = MjmlSource.from_rendered(render_template(env, EMAIL_TEMPLATE, web_ctx))
    text = render_template(env, TEXT_TEMPLATE, context)
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(line.rstrip() if line != "-- " else line for line in text.splitlines())).strip() + "\n"
    t1 = time.perf_counter()
    email_html = whole_pixels(compile_mjml(email_mjml))
    web_html = whole_pixels(compile_mjml(web_mjml))
    t2 = time.perf_counter()
    email_html = inline(email_html)
    tags = utm_tags(site.config, issue.slug)
    email_html = tag_html(email_html, site.config.website, tags)
    text = tag_text(text, site.config.website, tags)
    t3 = time.perf_counter()
    timings.update(render=t1 - t0, mjml=t2 - t1, inline=t3 - t2)

    # A footer without the unsubscribe link is the check unsubscribe-missing's to say (an error there).
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
