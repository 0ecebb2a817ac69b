"""Pointing at a finding inside the email: a marker attribute on the element it is about.

Checks report the line of ``email.html`` a finding is on; the preview copy of the
HTML gets one ``data-nl-finding`` attribute on the element there, which the
page outlines. Nothing else in the copy changes, and the built files never do.
"""

from __future__ import annotations

import bisect
import html as html_lib
import re

_VOID_ELEMENTS = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
_TAG_OR_COMMENT = re.compile(r"<!--.*?-->|<([a-zA-Z][a-zA-Z0-9:-]*)", re.DOTALL)


def _start_tags(html: str) -> list[tuple[int, int]]:
    """(offset just after the tag name, offset of the tag's ``<``) of every start tag outside comments.

    Void elements (``<br>``, ``<img>``) hold no text, so they are never what a finding is about.
    """
    tags = []
    for match in _TAG_OR_COMMENT.finditer(html):
        if match.group(1) and match.group(1).lower() not in _VOID_ELEMENTS:
            tags.append((match.end(1), match.start()))
    return tags


def _in_text(html: str, pos: int) -> bool:
    """True when ``pos`` is in text content, not inside a tag or an attribute."""
    return html.rfind(">", 0, pos) >= html.rfind("<", 0, pos)


def mark_finding_lines(html: str, findings: list[tuple[int, int, str]]) -> tuple[str, set[int]]:
    """Tag the element each finding is about so the page can outline it.

    ``findings`` holds (number, line of ``email.html``, the text that triggered
    it). On that line the element is the start tag before the finding's text
    (a line of MJML output often holds several elements), else the first start
    tag on the line, else the nearest one above it. Tags inside comments (the
    Outlook-only tables) are skipped: they are not shown. Only an attribute is
    added, right after a tag name, so line numbers and everything else in the
    copy stay as built. Returns the new HTML and the numbers of the findings marked.
    """
    if not findings:
        return html, set()
    line_starts = [0] + [m.end() for m in re.finditer("\n", html)]
    tags = _start_tags(html)
    tag_ends = [end for end, _ in tags]
    lowered = html.lower()
    chosen: dict[int, list[int]] = {}  # insertion offset -> finding numbers
    for number, line, text in findings:
        index = min(max(line, 1), len(line_starts)) - 1
        begin = line_starts[index]
        stop = line_starts[index + 1] if index + 1 < len(line_starts) else len(html)
        at = None
        for needle in {text.strip().lower(), html_lib.escape(text.strip()).lower()} - {""}:
            pos = lowered.find(needle, begin, stop)
            while pos >= 0 and not _in_text(html, pos):
                pos = lowered.find(needle, pos + 1, stop)
            if pos >= 0:
                at = pos
                break
        if at is None:
            on_line = [end for end, tag_start in tags if begin <= tag_start < stop]
            at = on_line[0] if on_line else begin
        before = bisect.bisect_right(tag_ends, at) - 1
        if before >= 0:
            chosen.setdefault(tag_ends[before], []).append(number)
    marked: set[int] = set()
    pieces, last = [], 0
    for offset in sorted(chosen):
        numbers = sorted(set(chosen[offset]))
        pieces += [html[last:offset], f' data-nl-finding="{" ".join(map(str, numbers))}"']
        last = offset
        marked.update(numbers)
    pieces.append(html[last:])
    return "".join(pieces), marked
