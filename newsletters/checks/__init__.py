"""Pre-send checks: what Gmail, Outlook, SpamAssassin and UK advertising rules would object to.

``run_checks(site, build_result)`` reads one built issue and returns a
``CheckReport`` of ``Finding``s. ``newsletter check`` prints it, ``build`` and
the preview show it, and ``send`` refuses to start while ``report.blocking``:
an error finding blocks until the issue file accepts its rule with a reason::

    [[accept]]
    rule = "uk-pom-botulinum-toxin"
    reason = "Medical-uses article approved by our prescriber; no offer attached"

``RULES`` is the registry of every rule that ships; a site's ``[checks]`` table
and ``checks.toml`` switch rules off and add phrase rules (see ``settings``).
"""

from __future__ import annotations

from pathlib import Path

from ..build import build_issue
from ..config import CONFIG_NAME, Site
from ..errors import IssueFileError
from . import cache
from .document import MailDocument
from .mail_rules import CHECKS
from .model import SEVERITIES, CheckReport, Finding, Rule, SpamResult, sort_findings
from .phrase_check import check_phrases
from .registry import BUILTIN_RULES, RULES
from .settings import CheckSettings, default_settings, load_settings
from .spamassassin import SpamAssassinError, score_message, spamassassin_path

__all__ = [
    "RULES", "SEVERITIES", "CheckReport", "CheckSettings", "Finding", "Rule", "SpamResult",
    "check_document", "default_settings", "load_settings", "run_checks",
]

SPAM_WARNING_SCORE = 2.0
SPAM_ERROR_SCORE = 5.0


def spam_rules_text(result: SpamResult) -> str:
    """The rules that moved the score, each with SpamAssassin's own one-line explanation."""
    fired = [f"{r.name} {r.score:g} ({r.description})" for r in result.rules if r.score != 0]
    return "; ".join(fired) or "no rule added points"


def _spam_findings(doc: MailDocument, settings: CheckSettings) -> tuple[list[Finding], SpamResult | None]:
    def make(rule_id: str, text: str) -> Finding:
        rule = BUILTIN_RULES[rule_id]
        return Finding(rule=rule_id, severity=rule.severity, where="sample.eml", text=text, fix=rule.fix)

    if spamassassin_path() is None:
        if settings.is_on("spamassassin-missing"):
            return [make("spamassassin-missing", "spam score not checked: spamassassin is not on PATH")], None
        return [], None
    if not doc.sample_eml:
        return [make("spamassassin-failed", "the build has no sample.eml to score")], None
    try:
        result = score_message(doc.sample_eml)
    except SpamAssassinError as exc:
        return [make("spamassassin-failed", str(exc))], None
    text = f"score {result.score:g}: " + spam_rules_text(result)
    if result.score >= SPAM_ERROR_SCORE and settings.is_on("spam-score-error"):
        return [make("spam-score-error", text)], result
    if result.score >= SPAM_WARNING_SCORE and settings.is_on("spam-score-warning"):
        return [make("spam-score-warning", text)], result
    return [], result


def check_document(doc: MailDocument, settings: CheckSettings, *, spamassassin: bool = True) -> CheckReport:
    """Every enabled check over one parsed issue, with the issue file's acceptances applied."""
    findings: list[Finding] = []
    for rule_ids, check in CHECKS:
        if any(settings.is_on(r) for r in rule_ids):
            findings.extend(f for f in check(doc, settings) if settings.is_on(f.rule))
    findings.extend(check_phrases(doc, settings.phrase_rules()))
    spam = None
    if spamassassin:
        spam_findings, spam = _spam_findings(doc, settings)
        findings.extend(spam_findings)
    findings = [f for f in findings if settings.is_on(f.rule)]
    _apply_acceptances(findings, doc.issue, settings)
    return CheckReport(findings=sort_findings(findings), spam=spam, rules_run=tuple(sorted(settings.enabled)))


def _apply_acceptances(findings: list[Finding], issue, settings: CheckSettings) -> None:
    reasons: dict[str, str] = {}
    for n, acceptance in enumerate(getattr(issue, "accept", []) or [], 1):
        if acceptance.rule not in settings.rules:
            raise IssueFileError(
                f"[[accept]] names rule {acceptance.rule!r}, which does not exist",
                where=f"{issue.path}: accept[{n}]",
                hint="`newsletter check --rules` lists every rule id",
            )
        reasons.setdefault(acceptance.rule, acceptance.reason)
    for f in findings:
        if f.rule in reasons:
            f.accepted_reason = reasons[f.rule]


def run_checks(site, build_result, *, spamassassin: bool = True) -> CheckReport:
    """Check a built issue (``newsletters.build.build_issue``'s result) the way receivers would.

    A full run (with SpamAssassin) is kept beside the build and reused for a
    build whose content digest is the same (``checks.cache``): ``send`` right
    after ``build`` or ``check`` does not score the same message twice.
    """
    settings = load_settings(site)
    doc = MailDocument.from_build(site, build_result)
    if not spamassassin:
        return check_document(doc, settings, spamassassin=False)
    digest = cache.content_digest(doc, settings)
    folder = getattr(build_result, "out_dir", None)
    cached = cache.load(folder, digest) if folder is not None else None
    if cached is not None:
        return cached
    report = check_document(doc, settings, spamassassin=True)
    if folder is not None:
        cache.store(folder, digest, report)
    return report


def check_issue(site, issue_path, *, spamassassin: bool = True):
    """Build the issue (as ``newsletter build`` does) and check it: ``(build_result, report)``."""
    result = build_issue(site, issue_path)
    return result, run_checks(site, result, spamassassin=spamassassin)


def settings_for_folder(site_dir) -> CheckSettings:
    """The rules in force in a site folder; the shipped defaults where there is no site."""
    if (Path(site_dir) / CONFIG_NAME).is_file():
        return load_settings(Site.load(site_dir))
    return default_settings()
