"""Phrase rules: words that must not appear in promotional mail, kept as data.

A rules file is TOML. The bundled ``uk_pom_rules.toml`` holds one rule set (an
``id``, the ``countries`` it is on for by default, and ``[[rules]]`` each with
``id``, ``severity``, ``description``, ``fix`` and ``phrases``). A site's own
``checks.toml`` may add ``[[rules]]`` of its own and, under ``[extend]``, more
phrases for any phrase rule (``uk-pom-weight-loss = ["Zepbound"]``). Every
mistake names the file and the key, so a typo never silently turns a rule off.

Matching is on whole words, case-insensitive, after Unicode normalisation; the
words of a phrase may be joined by spaces or hyphens, and a trailing plural "s"
matches too. Web and e-mail addresses are blanked out first, so a brand inside
a URL is not a mention.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError
from ..toml_errors import load_toml
from .model import SEVERITIES, Rule

RULE_ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")
RULE_KEYS = {"id", "severity", "description", "fix", "phrases"}
PACKAGE_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class RuleSet:
    id: str
    title: str
    reference: str
    countries: tuple[str, ...]
    rules: tuple[Rule, ...]
    path: Path

    def on_by_default(self, country: str) -> bool:
        return not self.countries or country.upper() in self.countries


def _str(table: dict, key: str, where: str, *, required: bool = True) -> str:
    if key not in table:
        if required:
            raise ConfigError(f"missing key `{key}`", where=where, hint=f'add {key} = "..."')
        return ""
    value = table[key]
    if not isinstance(value, str) or (required and not value.strip()):
        raise ConfigError(f"`{key}` must be a non-empty string", where=where)
    return value.strip()


def parse_phrases(value, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise ConfigError("`phrases` must be a non-empty list of strings", where=where, hint='e.g. phrases = ["Botox"]')
    phrases = []
    for n, phrase in enumerate(value, 1):
        if not isinstance(phrase, str) or not _words(phrase):
            raise ConfigError(
                f"phrase {n} must be a string with at least one letter or digit, not {phrase!r}", where=where
            )
        phrases.append(phrase.strip())
    return tuple(phrases)


def parse_rule(entry, where: str, *, family: str, ruleset: str) -> Rule:
    if not isinstance(entry, dict):
        raise ConfigError("each entry must be a [[rules]] table", where=where)
    unknown = sorted(set(entry) - RULE_KEYS)
    if unknown:
        raise ConfigError(f"unknown key `{unknown[0]}`", where=where, hint=f"expected: {', '.join(sorted(RULE_KEYS))}")
    rule_id = _str(entry, "id", where)
    if not RULE_ID_RE.match(rule_id):
        raise ConfigError(
            f"rule id {rule_id!r} may hold only lower-case letters, digits and hyphens", where=where,
            hint='e.g. id = "clinic-no-miracle-claims"',
        )
    severity = _str(entry, "severity", where)
    if severity not in SEVERITIES:
        raise ConfigError(
            f"`severity` must be one of {', '.join(SEVERITIES)}, not {severity!r}", where=f"{where} ({rule_id})"
        )
    return Rule(
        id=rule_id,
        severity=severity,
        description=_str(entry, "description", f"{where} ({rule_id})"),
        fix=_str(entry, "fix", f"{where} ({rule_id})"),
        family=family,
        ruleset=ruleset,
        phrases=parse_phrases(entry.get("phrases"), f"{where} ({rule_id}): phrases"),
    )


def _read_toml(path: Path) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("no such rules file", where=str(path)) from None
    except UnicodeDecodeError:
        raise ConfigError("not UTF-8 text", where=str(path)) from None
    return load_toml(text, path, ConfigError)


def _parse_rules_list(data: dict, path: Path, *, family: str, ruleset: str) -> tuple[Rule, ...]:
    entries = data.get("rules", [])
    if not isinstance(entries, list):
        raise ConfigError("`rules` must be a list of [[rules]] tables", where=str(path))
    rules = [parse_rule(e, f"{path}: rules[{n}]", family=family, ruleset=ruleset) for n, e in enumerate(entries, 1)]
    seen: set[str] = set()
    for rule in rules:
        if rule.id in seen:
            raise ConfigError(f"rule id {rule.id!r} is defined twice", where=str(path))
        seen.add(rule.id)
    return tuple(rules)


def load_ruleset(path: Path) -> RuleSet:
    """A bundled rule set: a ``[ruleset]`` table and its ``[[rules]]``."""
    data = _read_toml(path)
    unknown = sorted(set(data) - {"ruleset", "rules"})
    if unknown:
        raise ConfigError(f"unknown key `{unknown[0]}`", where=str(path), hint="expected [ruleset] and [[rules]]")
    head = data.get("ruleset")
    if not isinstance(head, dict):
        raise ConfigError("missing the [ruleset] table", where=str(path))
    where = f"{path}: ruleset"
    set_id = _str(head, "id", where)
    countries = head.get("countries", [])
    if not isinstance(countries, list) or not all(isinstance(c, str) for c in countries):
        raise ConfigError("`countries` must be a list of country codes", where=where, hint='e.g. countries = ["GB"]')
    return RuleSet(
        id=set_id,
        title=_str(head, "title", where),
        reference=_str(head, "reference", where, required=False),
        countries=tuple(c.upper() for c in countries),
        rules=_parse_rules_list(data, path, family=set_id, ruleset=set_id),
        path=path,
    )


@dataclass(frozen=True)
class SiteRules:
    """What a site's ``checks.toml`` adds: its own rules, and phrases for existing ones."""

    rules: tuple[Rule, ...]
    extend: dict[str, tuple[str, ...]]
    path: Path


def load_site_rules(path: Path) -> SiteRules:
    data = _read_toml(path)
    unknown = sorted(set(data) - {"rules", "extend"})
    if unknown:
        raise ConfigError(
            f"unknown key `{unknown[0]}`", where=str(path),
            hint="a site checks.toml holds [[rules]] (new phrase rules) and [extend] (more phrases for a rule)",
        )
    extend_table = data.get("extend", {})
    if not isinstance(extend_table, dict):
        raise ConfigError("[extend] must be a table of rule-id = [phrases]", where=str(path))
    extend = {
        rule_id: parse_phrases(phrases, f"{path}: extend.{rule_id}") for rule_id, phrases in extend_table.items()
    }
    return SiteRules(rules=_parse_rules_list(data, path, family="site", ruleset="site"), extend=extend, path=path)


# -- matching ---------------------------------------------------------------

_SEPARATOR = r"[\s\-\u2010-\u2014]*"
_WORD_RE = re.compile(r"[^\s\-\u2010-\u2014]+")
_ADDRESS_RE = re.compile(r"(?:https?://|www\.)\S+|[\w.+-]+@[\w-]+(?:\.[\w-]+)+|__NL_[A-Z_]+__", re.IGNORECASE)


def _words(phrase: str) -> list[str]:
    return _WORD_RE.findall(normalize_text(phrase))


def normalize_text(text: str) -> str:
    """NFKC, so full-width letters, ligatures and no-break spaces match plainly."""
    return unicodedata.normalize("NFKC", text)


def blank_addresses(text: str) -> str:
    """Replace web and e-mail addresses by spaces of the same length: mentions inside them don't count."""
    return _ADDRESS_RE.sub(lambda m: " " * len(m.group(0)), text)


def phrase_pattern(phrase: str) -> str:
    words = [re.escape(w) for w in _words(phrase)]
    body = _SEPARATOR.join(words)
    if phrase[-1].isalpha():
        body += "(?:e?s)?"
    return body


def compile_phrases(phrases: tuple[str, ...]) -> re.Pattern:
    # Longest first, so "botulinum toxin" wins over "botulinum" at the same place.
    ordered = sorted(set(phrases), key=lambda p: (-len(p), p))
    alternatives = "|".join(phrase_pattern(p) for p in ordered)
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)


def find_phrases(pattern: re.Pattern, text: str) -> list[tuple[int, str]]:
    """(offset, text as written) of every mention in ``text``, addresses blanked out."""
    clean = blank_addresses(normalize_text(text))
    return [(m.start(), m.group(0)) for m in pattern.finditer(clean)]


# The rule sets that ship with the package, read once at import.
BUNDLED_RULESETS: tuple[RuleSet, ...] = tuple(
    load_ruleset(path) for path in sorted(PACKAGE_DIR.glob("*_rules.toml"))
)
