"""Article HTML made safe and sensible for an e-mail body.

Article bodies come from pages, feeds and files we do not control, so every
reader passes its HTML through :func:`sanitize_html` before it reaches a
template. nh3 (the Rust ``ammonia`` sanitizer) is the security boundary: only an
allow-list of plain structural tags survives, no script, style, frames, forms or
event handlers, and only http(s), mailto and tel links. Around it, two small
lxml passes do what mail clients need: lazy-loaded images get their real
``src`` back first; afterwards headings are brought into the h2-h4 range the
templates style, relative URLs have become absolute where a base is known (a relative link
in an e-mail points nowhere; readers warn about any that remain), and empty paragraphs, image-less ``<img>`` and
link-less ``<a>`` are dropped.
"""

from __future__ import annotations

import re
from urllib.parse import unquote, urljoin, urlsplit

import lxml.html
import nh3

from .page_repair import repair_fragment

ALLOWED_TAGS = {
    "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6",
    "ul", "ol", "li", "dl", "dt", "dd",
    "a", "img", "figure", "figcaption",
    "table", "caption", "thead", "tbody", "tfoot", "tr", "th", "td",
    "strong", "em", "b", "i", "u", "s", "small", "sub", "sup", "mark", "abbr", "cite", "q",
    "blockquote", "pre", "code",
}
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "width", "height", "title"},
    "th": {"colspan", "rowspan", "scope"},
    "td": {"colspan", "rowspan"},
    "ol": {"start"},
    "abbr": {"title"},
}
# Removed together with everything inside them: their text means nothing outside the element.
DROP_WITH_CONTENT = {
    "script", "style", "noscript", "template", "iframe", "object", "embed", "svg", "math",
    "form", "button", "select", "textarea", "input", "label", "title", "head",
}
URL_SCHEMES = {"http", "https", "mailto", "tel"}
URL_ATTRIBUTES = {"href", "src"}
NUMERIC_ATTRIBUTES = {"width", "height", "colspan", "rowspan", "start"}

_URL_IGNORED = re.compile(r"[\t\n\r]")
_URL_STRIPPED = "".join(chr(c) for c in range(0x21)) + "\u00a0"
_EMPTY_PARAGRAPH = re.compile(r"^[\s\u00a0\u200b]*$")


def sanitize_html(html: str, *, base_url: str) -> str:
    """The safe, self-contained version of an article body, ready for a mail template."""
    if not html or not html.strip():
        return ""
    prepared = _repair(html)
    cleaned = nh3.clean(
        prepared,
        tags=ALLOWED_TAGS,
        clean_content_tags=DROP_WITH_CONTENT,
        attributes=ALLOWED_ATTRIBUTES,
        attribute_filter=_attribute_filter(base_url),
        url_schemes=URL_SCHEMES,
        link_rel="noopener",
        strip_comments=True,
    )
    return _tidy(cleaned)


def _attribute_filter(base_url: str):
    def keep(tag: str, attribute: str, value: str) -> str | None:
        if attribute in NUMERIC_ATTRIBUTES:
            value = value.strip().removesuffix("px")
            return value if value.isdigit() else None
        if attribute not in URL_ATTRIBUTES:
            return value
        # Browsers ignore tabs and line breaks anywhere in an address ("java\tscript:" is javascript:).
        value = _URL_IGNORED.sub("", value).strip(_URL_STRIPPED)
        if not value or (attribute == "href" and value.startswith("#")):
            return None  # in-page anchors do not work in most mail clients
        if _disguised_scheme(value):
            return None
        if value.startswith("//"):
            value = "https:" + value  # an e-mail has no "current scheme"; https is the safe reading
        elif base_url and not urlsplit(value).scheme:
            value = urljoin(base_url, value)
        scheme = urlsplit(value).scheme.lower()
        if scheme and scheme not in URL_SCHEMES:
            return None
        if tag == "img" and scheme and scheme not in ("http", "https"):
            return None  # mail clients fetch only web images
        return value

    return keep


def _disguised_scheme(value: str) -> bool:
    """'java%09script:…': a scheme hidden by percent-encoding (lxml's serializer escapes a tab that way).
    Not a working javascript: link, but not a working link of any other kind either."""
    head, colon, _ = value.partition(":")
    if not colon or "%" not in head or "/" in head:
        return False
    decoded = _URL_IGNORED.sub("", unquote(head)).strip(_URL_STRIPPED)
    return bool(re.fullmatch(r"[a-z][a-z0-9+.-]*", decoded, re.I)) and decoded.lower() not in URL_SCHEMES


def _parse_fragment(html: str):
    return lxml.html.fragment_fromstring(html, create_parent="div")


def _serialize(root) -> str:
    text = lxml.html.tostring(root, encoding="unicode", method="html")
    return text[len("<div>") : -len("</div>")].strip()


def _repair(html: str) -> str:
    """Real image addresses (lazy loaders), video players as links, content an <embed> swallowed."""
    try:
        root = _parse_fragment(html)
    except Exception:  # lxml raises a few unrelated types on odd input; nh3 copes on its own
        return html
    repair_fragment(root)
    return _serialize(root)


def _tidy(html: str) -> str:
    if not html.strip():
        return ""
    root = _parse_fragment(html)
    for element in list(root.iter()):
        if element is root or not isinstance(element.tag, str):
            continue
        tag = element.tag
        if tag == "h1":
            element.tag = "h2"
        elif tag in ("h5", "h6"):
            element.tag = "h4"
        elif tag == "img" and not element.get("src"):
            element.drop_tree()
        elif tag == "a" and not element.get("href"):
            element.drop_tag()
        elif tag == "a" and element.get("href"):
            element.set("rel", "noopener")
    # Empty paragraphs (WordPress spacers: <p>&nbsp;</p>) last, after their images may have gone.
    for p in list(root.iter("p")):
        if len(p) == 0 and _EMPTY_PARAGRAPH.match(p.text or ""):
            p.drop_tree()
        elif all(child.tag == "br" for child in p) and _EMPTY_PARAGRAPH.match(p.text_content() or ""):
            p.drop_tree()
    text = _serialize(root)
    return text if "<pre" in text else re.sub(r"\n\s*\n\s*\n+", "\n\n", text)
