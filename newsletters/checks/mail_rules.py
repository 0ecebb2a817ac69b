"""The checks a mail client or a mailbox provider would make: size, images, links, required content.

Each check is a function ``(doc, settings) -> Iterator[Finding]`` registered in
``CHECKS`` under the rule ids it may report, so a site that switches every one
of those rules off does not pay for the check. They read the rendered
``email.html`` (line numbers point there), its plain-text twin and the sample
message, never the templates, so whatever a site changed in its templates is
checked the same way.
"""

from __future__ import annotations

import email
import email.policy
import re
from pathlib import Path
from typing import Callable, Iterator
from urllib.parse import unquote, urlsplit

from ..articles.base import body_images
from ..link_settings import link_problems
from ..personalize import GMAIL_CLIP_BYTES
from ..tracking import untagged
from .contrast import check_brand_contrast
from .document import MailDocument, hidden_reason, squash
from .model import Finding, Rule
from .registry import BUILTIN_RULES

KB = 1024
HTML_WARN_BYTES = 90 * KB
HTML_CLIP_BYTES = GMAIL_CLIP_BYTES
SUBJECT_MAX = 78
SAFE_LINK_SCHEMES = {"http", "https", "mailto", "tel", "sms"}
PLACEHOLDER_URL_RE = re.compile(r"^__NL_[A-Z0-9_]+__$")
_SCHEME_RE = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*):")
_CONTROL_RE = re.compile(r"[\x00-\x20\x7f]+")
VAGUE_LINK_RE = re.compile(r"\b(?:click|tap)\s+here\b|^(?:here|this link|link|this)[.!]?$", re.I)
UNSUBSCRIBE_RE = re.compile(r"unsubscribe|__NL_UNSUBSCRIBE_URL__", re.I)


def finding(rule_id: str, where: str, text: str, *, html_line: int | None = None, severity: str | None = None) -> Finding:
    rule: Rule = BUILTIN_RULES[rule_id]
    return Finding(rule=rule_id, severity=severity or rule.severity, where=where, text=text, fix=rule.fix, html_line=html_line)


def short(text: str, limit: int = 90) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def alnum(text: str) -> str:
    """Only letters and digits, lower-case: an address split over lines or by commas still matches."""
    return re.sub(r"[^0-9a-z]", "", squash(text))


# -- size ---------------------------------------------------------------------


def check_size(doc: MailDocument, settings) -> Iterator[Finding]:
    size = doc.encoded_html_size()
    measured = "in sample.eml" if doc.sample_eml else "estimated; no sample.eml"
    text = f"encoded HTML part is {size / KB:.1f} KB ({measured})"
    if size > HTML_CLIP_BYTES:
        yield finding("html-size-clipped", "email.html", text + ", Gmail clips over 102 KB")
    elif size > HTML_WARN_BYTES:
        yield finding("html-size-warning", "email.html", text + ", Gmail clips over 102 KB")


def local_image_file(doc: MailDocument, src: str) -> Path | None:
    """The file behind an image source, when it is on this machine (only then is its size known)."""
    src = src.strip()
    if not src or src.startswith(("data:", "cid:")):
        return None
    parts = urlsplit(src)
    site = doc.site
    if parts.scheme == "file":
        candidates = [Path(unquote(parts.path))]
    elif parts.scheme in ("http", "https") or parts.netloc:
        # An image on the clinic's own website whose file the site folder holds at the same path
        # (images/… kept beside newsletter.toml and uploaded with the website).
        if site is None:
            return None
        candidates = []
        for base in (site.config.website, site.public_url):
            base = base.rstrip("/") + "/"
            if src.startswith(base):
                relative = unquote(urlsplit(src).path[len(urlsplit(base).path):])
                candidates.append(site.root / relative)
        candidates = [c for c in candidates if site.root.resolve() in c.resolve().parents]
    else:
        relative = unquote(parts.path)
        bases = [doc.site.root, doc.site.articles_dir] if doc.site is not None else []
        html_path = doc.paths.get("email.html")
        if html_path:
            bases.insert(0, Path(html_path).parent)
        candidates = [Path(relative)] if Path(relative).is_absolute() else [base / relative for base in bases]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    return None


# -- images -------------------------------------------------------------------


def is_content_image(img) -> bool:
    """Spacers, tracking pixels and images marked decorative need no alt text or width."""
    if img.get("role") == "presentation" or img.get("aria-hidden") == "true":
        return False
    for attribute in ("width", "height"):
        value = (img.get(attribute) or "").strip().removesuffix("px")
        if value.isdigit() and int(value) <= 2:
            return False
    return True


def classify_src(src: str) -> str:
    src = _CONTROL_RE.sub("", src or "")
    if not src:
        return "broken"
    if PLACEHOLDER_URL_RE.match(src) or src.lower().startswith("cid:"):
        return "ok"
    match = _SCHEME_RE.match(src)
    scheme = match.group(1).lower() if match else ""
    if scheme == "https" and urlsplit(src).netloc:
        return "ok"
    if scheme == "http" and urlsplit(src).netloc:
        return "insecure"
    return "broken"


def alt_less_sources(doc: MailDocument) -> set[str]:
    """Image addresses the articles gave no alt text: the rendering puts the title there, which is a stopgap."""
    missing: set[str] = set()
    for _, article in doc.articles:
        missing.update(src for src, alt in body_images(article.body_html or "") if not alt.strip())
        if article.image and not (article.image_alt or "").strip():
            missing.add(article.image)
    return missing


def check_images(doc: MailDocument, settings) -> Iterator[Finding]:
    limit = settings.image_max_kb * KB
    stopgap = alt_less_sources(doc)
    for img in doc.images():
        src = (img.get("src") or "").strip()
        where, line = doc.place(img, src, "src")
        label = short(src) or "<img> without src"
        kind = classify_src(src)
        if kind == "broken":
            yield finding("image-broken-src", where, label, html_line=line)
        elif kind == "insecure":
            yield finding("image-insecure-src", where, label, html_line=line)
        if is_content_image(img):
            if not (img.get("alt") or "").strip():
                yield finding("image-missing-alt", where, label, html_line=line)
            elif src in stopgap:
                yield finding("image-missing-alt", where, f"{label} (the article's title stands in for now)", html_line=line)
            if not (img.get("width") or "").strip():
                yield finding("image-missing-width", where, label, html_line=line)
        path = local_image_file(doc, src)
        if path is not None and path.stat().st_size > limit:
            size = path.stat().st_size / KB
            yield finding(
                "image-too-heavy", where, f"{label} is {size:.0f} KB (limit {settings.image_max_kb} KB)", html_line=line
            )


# -- links --------------------------------------------------------------------


def classify_href(href: str) -> str:
    href = _CONTROL_RE.sub("", href or "")
    if PLACEHOLDER_URL_RE.match(href):
        return "ok"
    if href.startswith("#"):
        return "anchor"
    match = _SCHEME_RE.match(href)
    if not match:
        return "relative"  # includes "" and protocol-relative "//host/path"
    scheme = match.group(1).lower()
    if scheme not in SAFE_LINK_SCHEMES:
        return "unsafe"
    if scheme in ("http", "https") and not urlsplit(href).netloc:
        return "relative"
    return "ok"


def link_text(a) -> str:
    """What a reader (or a screen reader) takes the link to say: its text, else its images' alt."""
    text = " ".join(a.text_content().split())
    if text:
        return text
    return " ".join(" ".join((img.get("alt") or "").split()) for img in a.iter("img")).strip()


def check_links(doc: MailDocument, settings) -> Iterator[Finding]:
    texts_by_url: dict[str, list[tuple[str, object]]] = {}
    for a in doc.links():
        href = a.get("href").strip()
        where, line = doc.place(a, href)
        kind = classify_href(href)
        shown = short(href) or '""'
        if kind == "relative":
            yield finding("link-relative", where, shown, html_line=line)
        elif kind == "anchor":
            yield finding("link-anchor", where, shown, html_line=line)
        elif kind == "unsafe":
            yield finding("link-unsafe-scheme", where, shown, html_line=line)
        text = link_text(a)
        if not text:
            yield finding("link-empty-text", where, f"link to {shown} has no text", html_line=line)
            continue
        if VAGUE_LINK_RE.search(text):
            yield finding("link-click-here", where, short(text), html_line=line)
        # Only links someone wrote (article bodies, intro, call to action) are compared: the
        # template's own pairs (title and "Read more", logo and web address) are deliberate.
        said = squash(a.text_content())
        written = (href, said) in doc.written_links() or (untagged(href), said) in doc.written_links()
        if written and kind == "ok" and not href.lower().startswith(("mailto:", "tel:", "sms:")):
            texts_by_url.setdefault(href, []).append((text, a))
    for href, entries in texts_by_url.items():
        distinct: dict[str, str] = {}
        for text, _ in entries:
            distinct.setdefault(" ".join(text.lower().split()).strip(" .!→›»"), text)
        if len(distinct) > 1:
            where, line = doc.place(entries[0][1], href)
            shown = ", ".join(f'"{short(t, 50)}"' for t in distinct.values())
            yield finding("link-same-url-different-text", where, f"{short(href, 70)}: {shown}", html_line=line)


# -- required content -----------------------------------------------------------


def check_unsubscribe(doc: MailDocument, settings) -> Iterator[Finding]:
    candidates = [
        a for a in doc.links() if UNSUBSCRIBE_RE.search(a.get("href") or "") or UNSUBSCRIBE_RE.search(a.text_content())
    ]
    problems = []
    for a in candidates:
        reason = hidden_reason(a)
        text = link_text(a)
        if reason is None and text:
            problems = []
            break
        problems.append((a, f'unsubscribe link "{short(text)}" is hidden ({reason})' if reason else "unsubscribe link has no text"))
    if not candidates:
        yield finding("unsubscribe-missing", "email.html", "no unsubscribe link")
    elif problems:
        a, text = problems[0]
        where, line = doc.place(a)
        yield finding("unsubscribe-missing", where, text, html_line=line)
    if not UNSUBSCRIBE_RE.search(doc.text):
        yield finding("unsubscribe-missing", "email.txt", "no unsubscribe address in the plain-text part")


def check_identity(doc: MailDocument, settings) -> Iterator[Finding]:
    config = doc.site.config
    visible_html = alnum(doc.visible_text())
    text = alnum(doc.text)
    address = alnum(config.postal_address)
    names = [n for n in (config.sender_name, config.name) if n.strip()]
    for part, content in (("email.html", visible_html), ("email.txt", text)):
        if address and address not in content:
            yield finding("postal-address-missing", part, config.postal_address)
        if names and not any(alnum(name) in content for name in names):
            yield finding("sender-name-missing", part, " / ".join(dict.fromkeys(names)))


def check_subject_and_preheader(doc: MailDocument, settings) -> Iterator[Finding]:
    if len(doc.subject) > SUBJECT_MAX:
        yield finding("subject-too-long", "subject", f"{doc.subject} ({len(doc.subject)} characters)")
    if not doc.preheader.strip():
        yield finding("preheader-missing", "preheader", "the issue file has no preheader")
    elif squash(doc.preheader) not in squash(doc.body.text_content()):
        yield finding("preheader-missing", "email.html", f"preheader not in the HTML: {short(doc.preheader)}")


def check_text_part(doc: MailDocument, settings) -> Iterator[Finding]:
    if not doc.text.strip():
        yield finding("text-part-incomplete", "email.txt", "the plain-text part is empty")
        return
    text = squash(doc.text)
    for issue_article, article in doc.articles:
        where = f"article {issue_article.source}"
        if article.title.strip() and squash(article.title) not in text:
            yield finding("text-part-incomplete", where, f"title missing from email.txt: {short(article.title)}")
        if article.url and article.url not in doc.text:
            yield finding("text-part-incomplete", where, f"link missing from email.txt: {article.url}")


def check_list_unsubscribe_header(doc: MailDocument, settings) -> Iterator[Finding]:
    if not doc.sample_eml:
        return
    message = email.message_from_bytes(doc.sample_eml, policy=email.policy.default)
    if not message.get("List-Unsubscribe"):
        yield finding("list-unsubscribe-header-missing", "sample.eml", "no List-Unsubscribe header")
    elif not message.get("List-Unsubscribe-Post"):
        yield finding(
            "list-unsubscribe-header-missing", "sample.eml", "no List-Unsubscribe-Post: List-Unsubscribe=One-Click header"
        )


def check_link_settings(doc: MailDocument, settings) -> Iterator[Finding]:
    for problem in link_problems(doc.site):
        found = finding("settings-dead-links", problem.setting, problem.message)
        found.fix = problem.hint
        yield found


CHECKS: list[tuple[tuple[str, ...], Callable[[MailDocument, object], Iterator[Finding]]]] = [
    (("settings-dead-links",), check_link_settings),
    (("html-size-warning", "html-size-clipped"), check_size),
    (("image-broken-src", "image-insecure-src", "image-missing-alt", "image-missing-width", "image-too-heavy"), check_images),
    (
        ("link-relative", "link-anchor", "link-unsafe-scheme", "link-empty-text", "link-click-here",
         "link-same-url-different-text"),
        check_links,
    ),
    (("unsubscribe-missing",), check_unsubscribe),
    (("list-unsubscribe-header-missing",), check_list_unsubscribe_header),
    (("postal-address-missing", "sender-name-missing"), check_identity),
    (("subject-too-long", "preheader-missing"), check_subject_and_preheader),
    (("text-part-incomplete",), check_text_part),
    (("brand-contrast",), check_brand_contrast),
]
