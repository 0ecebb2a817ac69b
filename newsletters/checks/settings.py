"""A site's say over the checks: the ``[checks]`` table of ``newsletter.toml``.

::

    [checks]
    disable = ["link-same-url-different-text"]   # rule ids, or a rule set id ("uk-advertising")
    enable = ["uk-advertising"]                  # rule sets that are off for this site's country
    rules = "checks.toml"                        # the site's own phrase rules (this is the default)
    image_max_kb = 200                           # local images heavier than this warn

Unknown keys and unknown rule ids are errors naming the key, so a misspelt
``disable`` can never quietly leave a rule on, nor a misspelt rule quietly off.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from ..errors import ConfigError
from .model import Rule
from .phrase_rules import BUNDLED_RULESETS, SiteRules, load_site_rules
from .registry import BUILTIN_RULES

KEYS = {"disable", "enable", "rules", "image_max_kb"}
DEFAULT_SITE_RULES = "checks.toml"
DEFAULT_IMAGE_MAX_KB = 200


@dataclass(frozen=True)
class CheckSettings:
    """The rules in force for one site, after its switches and additions."""

    rules: dict[str, Rule]  # every rule the site knows, on or off
    enabled: frozenset[str]
    image_max_kb: int = DEFAULT_IMAGE_MAX_KB
    site_rules_path: Path | None = None

    def is_on(self, rule_id: str) -> bool:
        return rule_id in self.enabled

    def phrase_rules(self) -> list[Rule]:
        return [r for r in self.rules.values() if r.phrases and r.id in self.enabled]


def _id_list(table: dict, key: str, where: str) -> list[str]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"checks.{key} must be a list of rule ids", where=where, hint=f'e.g. {key} = ["rule-id"]')
    return value


def default_settings(country: str = "GB") -> CheckSettings:
    """The rules as they ship, for a site that says nothing (also what ``--rules`` lists without a site)."""
    rules = dict(BUILTIN_RULES)
    enabled = set(BUILTIN_RULES)
    for ruleset in BUNDLED_RULESETS:
        for rule in ruleset.rules:
            rules[rule.id] = rule
            if ruleset.on_by_default(country):
                enabled.add(rule.id)
    return CheckSettings(rules=rules, enabled=frozenset(enabled))


def load_settings(site) -> CheckSettings:
    config_path = site.root / "newsletter.toml"
    where = f"{config_path}: [checks]"
    table = site.config.raw.get("checks", {})
    if not isinstance(table, dict):
        raise ConfigError("[checks] must be a table", where=str(config_path))
    unknown = sorted(set(table) - KEYS)
    if unknown:
        raise ConfigError(f"unknown key `{unknown[0]}`", where=where, hint=f"expected one of: {', '.join(sorted(KEYS))}")

    base = default_settings(site.config.country)
    rules = dict(base.rules)
    enabled = set(base.enabled)
    ruleset_ids = {rs.id: rs for rs in BUNDLED_RULESETS}

    # The site's own phrase rules and extra phrases.
    rules_name = table.get("rules", DEFAULT_SITE_RULES)
    if not isinstance(rules_name, str) or not rules_name.strip():
        raise ConfigError("checks.rules must be the path of a TOML file", where=where, hint='e.g. rules = "checks.toml"')
    site_rules_path = (site.root / rules_name).resolve()
    if site_rules_path.is_file():
        site_rules: SiteRules = load_site_rules(site_rules_path)
        for rule in site_rules.rules:
            if rule.id in rules:
                raise ConfigError(
                    f"rule id {rule.id!r} already exists", where=str(site_rules_path),
                    hint="choose another id, or add phrases to it under [extend]",
                )
            rules[rule.id] = rule
            enabled.add(rule.id)
        for rule_id, phrases in site_rules.extend.items():
            rule = rules.get(rule_id)
            if rule is None or not rule.phrases:
                phrase_ids = sorted(r.id for r in rules.values() if r.phrases)
                raise ConfigError(
                    f"[extend] names {rule_id!r}, which is not a phrase rule", where=str(site_rules_path),
                    hint=f"phrase rules: {', '.join(phrase_ids)}",
                )
            extra = tuple(p for p in phrases if p.lower() not in {q.lower() for q in rule.phrases})
            rules[rule_id] = replace(rule, phrases=rule.phrases + extra)
    elif "rules" in table:
        raise ConfigError(f"checks.rules names {rules_name!r}, which does not exist", where=where)
    else:
        site_rules_path = None

    for set_id in _id_list(table, "enable", where):
        if set_id in ruleset_ids:
            enabled.update(r.id for r in ruleset_ids[set_id].rules)
        elif set_id in rules:
            enabled.add(set_id)
        else:
            raise ConfigError(
                f"checks.enable names {set_id!r}, which is neither a rule set nor a rule", where=where,
                hint=f"rule sets: {', '.join(ruleset_ids)}; `newsletter check --rules` lists the rules",
            )
    for rule_id in _id_list(table, "disable", where):
        if rule_id in ruleset_ids:
            enabled.difference_update(r.id for r in ruleset_ids[rule_id].rules)
        elif rule_id in rules:
            enabled.discard(rule_id)
        else:
            raise ConfigError(
                f"checks.disable names {rule_id!r}, which is neither a rule nor a rule set", where=where,
                hint="`newsletter check --rules` lists every rule id",
            )

    image_max_kb = table.get("image_max_kb", DEFAULT_IMAGE_MAX_KB)
    if isinstance(image_max_kb, bool) or not isinstance(image_max_kb, int) or image_max_kb <= 0:
        raise ConfigError("checks.image_max_kb must be a whole number of kilobytes above 0", where=where)

    return CheckSettings(
        rules=rules, enabled=frozenset(enabled), image_max_kb=image_max_kb, site_rules_path=site_rules_path
    )
