"""Run the phrase rules over everything a reader sees, and say which article each mention is in.

The subject and the preheader are matched as they are. The rest is matched on
the rendered ``email.html`` block by block (a paragraph, a heading, a table
cell), so a phrase split by inline markup (``anti-<b>wrinkle</b> injections``)
is still found and each mention gets the line it is on; the block is then traced
back to the article, intro, call to action or footer it was written in. Text in
``<head>``, scripts, styles and attributes (link addresses included) is never
matched: it is not something a reader reads as an advert.
"""

from __future__ import annotations

from typing import Iterator

from .document import MailDocument
from .model import Finding, Rule
from .phrase_rules import compile_phrases, find_phrases, normalize_text


def _blocks(doc: MailDocument) -> list[list]:
    """Text pieces grouped by their block element, in document order."""
    groups: dict[int, list] = {}
    order: list[int] = []
    for piece in doc.text_pieces():
        key = id(piece.block)
        if key not in groups:
            groups[key] = []
            order.append(key)
        groups[key].append(piece)
    return [groups[key] for key in order]


def check_phrases(doc: MailDocument, rules: list[Rule]) -> Iterator[Finding]:
    if not rules:
        return
    compiled = [(rule, compile_phrases(rule.phrases)) for rule in rules]
    seen: set[tuple] = set()

    def emit(rule: Rule, where: str, hit: str, line: int | None):
        hit = " ".join(hit.split())
        key = (rule.id, where, hit.lower(), line)
        if key in seen:
            return None
        seen.add(key)
        return Finding(rule=rule.id, severity=rule.severity, where=where, text=hit, fix=rule.fix, html_line=line)

    for label, value in (("subject", doc.subject), ("preheader", doc.preheader)):
        for rule, pattern in compiled:
            for _, hit in find_phrases(pattern, value or ""):
                found = emit(rule, label, hit, None)
                if found:
                    yield found

    for pieces in _blocks(doc):
        texts = [normalize_text(p.text) for p in pieces]
        joined = "".join(texts)
        if not joined.strip():
            continue
        for rule, pattern in compiled:
            for offset, hit in find_phrases(pattern, joined):
                where = doc.where_for_text(joined, hit)
                if where == "preheader":
                    continue  # already reported from the preheader itself
                start = 0
                for piece, text in zip(pieces, texts):
                    if offset < start + len(text):
                        break
                    start += len(text)
                approx = piece.line + text[: max(offset - start, 0)].count("\n")
                line = doc.line_of_text(approx, hit)
                found = emit(rule, where or f"email.html line {line}", hit, line)
                if found:
                    yield found
