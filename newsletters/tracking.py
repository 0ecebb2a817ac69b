"""Campaign tags (UTM) on links to the clinic's own website, when the site asks for them.

With ``[tracking] utm = true`` in ``newsletter.toml`` every link in the e-mail
that points at the clinic's website (the host of ``[site] website``, with or
without ``www.``) gets ``utm_source``, ``utm_medium`` and ``utm_campaign``, so
the website's analytics can tell visits from the newsletter apart. Links to
anywhere else (a partner, YouTube, the unsubscribe and view-online pages) are
left exactly as written: tagging them would tell a third party about the
campaign and break signed links. A parameter the link already carries wins.
There is no open-tracking pixel: that is tracking of the reader, which needs
consent of its own under PECR.

The tags are added to the rendered HTML and text parts, once per issue; the
checks compare links without them (:func:`untagged`).
"""

from __future__ import annotations

import html as html_lib
import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

UTM_KEYS = ("utm_source", "utm_medium", "utm_campaign")
_HREF = re.compile(r'(\shref=")(https?://[^"]+)(")', re.I)
# A web address in the plain-text part; trailing punctuation and the ")" of "text (URL)" stay outside.
_TEXT_URL = re.compile(r"https?://[^\s<>\"]+?(?=[)\]>.,;:!?'\"]*(?:\s|$))")


def utm_tags(config, slug: str) -> dict[str, str]:
    """The tags for this issue, or {} when the site has not turned tracking on."""
    if not config.tracking_utm:
        return {}
    return {
        "utm_source": config.tracking_utm_source,
        "utm_medium": config.tracking_utm_medium,
        "utm_campaign": config.tracking_utm_campaign or slug,
    }


def _bare_host(host: str) -> str:
    host = (host or "").lower().rstrip(".")
    return host[4:] if host.startswith("www.") else host


def is_own_site(url: str, website: str) -> bool:
    """Does ``url`` point at the clinic's website (same host, www. or not)?"""
    try:
        host, own = urlsplit(url).hostname, urlsplit(website).hostname
    except ValueError:
        return False
    return bool(host and own) and _bare_host(host) == _bare_host(own)


def tag_url(url: str, website: str, tags: dict[str, str]) -> str:
    if not tags or not is_own_site(url, website):
        return url
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    present = {key for key, _ in query}
    query += [(key, value) for key, value in tags.items() if key not in present]
    return urlunsplit(parts._replace(path=parts.path or "/", query=urlencode(query)))


def tag_html(html: str, website: str, tags: dict[str, str]) -> str:
    """Every ``href`` to the clinic's website, tagged (attribute values are HTML-escaped both ways)."""
    if not tags:
        return html

    def replace(match: re.Match) -> str:
        url = html_lib.unescape(match.group(2))
        return match.group(1) + html_lib.escape(tag_url(url, website, tags)) + match.group(3)

    return _HREF.sub(replace, html)


def tag_text(text: str, website: str, tags: dict[str, str]) -> str:
    """Every web address to the clinic's website in the plain-text part, tagged."""
    if not tags:
        return text
    return _TEXT_URL.sub(lambda m: tag_url(m.group(0), website, tags), text)


def untagged(url: str) -> str:
    """``url`` without the campaign tags, for comparing a link in the e-mail with the one an article wrote."""
    if "utm_" not in url:
        return url
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in UTM_KEYS]
    return urlunsplit(parts._replace(query=urlencode(query)))
