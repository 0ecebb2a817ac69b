"""TOML files people edit by hand, read with errors in plain words.

``tomllib`` says "Illegal character '\\n' (at line 3, column 22)" when a quote
is not closed, and "Invalid value" when text lacks its quotes: true, but a
marketer editing an issue file cannot act on it. :func:`load_toml` names the
file and line, says what is wrong and how to fix it in everyday words, shows
the line as written, and keeps the parser's own words at the end for whoever
wants them.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from .errors import NewsletterError

_POSITION = re.compile(r"\(at line (\d+), column (\d+)\)|\(at end of document\)")

# (what the parser says, what that means for the person editing the file)
PLAIN_WORDS: tuple[tuple[re.Pattern, str], ...] = (
    (re.compile(r"^Illegal character '\\n'"),
     'a quoted value is not closed on this line: add the closing " at its end '
     '(text over several lines goes between """ and """)'),
    (re.compile(r"^(?:Unterminated string|Expected \"'\"|Expected '\"')"),
     "a quoted value is never closed: add the closing quote"),
    (re.compile(r"^Expected '\]\]' at the end of an array declaration"),
     "a [[…]] heading is missing its closing ]]: write it like [[articles]]"),
    (re.compile(r"^Expected '\]' at the end of a table declaration"),
     "a [section] heading is missing its closing ]: write it like [site]"),
    (re.compile(r"^Unclosed array"),
     "a list that opens with [ is missing its closing ], e.g. tags = [\"a\", \"b\"]"),
    (re.compile(r"^Invalid value"),
     'the value after = is not valid: text goes between double quotes, e.g. name = "Larkfield Clinic"'),
    (re.compile(r"^Expected '=' after a key"),
     "this line should read key = value, and its = is missing (or a note needs # in front)"),
    (re.compile(r"^Cannot declare .* twice"),
     "this [section] appears twice in the file: merge the two into one"),
    (re.compile(r"^Cannot overwrite a value"),
     "a key is set twice (in the same section): keep only one"),
    (re.compile(r"^Expected newline or end of document after a statement"),
     "something follows the value on the same line: one key = value per line, text in quotes, "
     "dates written like 2026-11-01"),
    (re.compile(r"^Illegal character"),
     "a character TOML does not allow here (a tab or control character inside quotes?)"),
)


def plain_words(parser_message: str) -> str:
    """What a tomllib message means, in words someone editing the file acts on."""
    reason = _POSITION.sub("", parser_message).strip()
    for pattern, plain in PLAIN_WORDS:
        if pattern.search(reason):
            return plain
    return "the file is not valid TOML"


def load_toml(text: str, path: Path | str, error: type[NewsletterError]) -> dict:
    """Parse ``text`` (the contents of ``path``); a mistake raises ``error`` naming the file and line."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise toml_error(exc, text, path, error) from None


def toml_error(exc: tomllib.TOMLDecodeError, text: str, path: Path | str, error: type[NewsletterError]) -> NewsletterError:
    message = str(exc)
    match = _POSITION.search(message)
    line = int(match.group(1)) if match and match.group(1) else None
    lines = text.splitlines()
    where = f"{path}:{line}" if line else str(path)
    plain = plain_words(message)
    shown = f"; line {line} reads: {lines[line - 1].strip()[:100]}" if line and 0 < line <= len(lines) else ""
    return error(f"not valid TOML: {plain}{shown}", where=where, hint=f"TOML parser: {message}")
