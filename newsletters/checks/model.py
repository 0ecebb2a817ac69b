"""What a check finds, and what a whole run of checks adds up to.

A finding says which rule objected, how badly, where the user has to look (an
article source, the subject, a template line of ``email.html``), the exact text
that triggered it and how to fix it. Severity is the rule's: an ``error`` blocks
sending until the issue file accepts it with a reason, a ``warning`` is advice a
reviewer should read, ``info`` only tells that something could not be checked.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import CheckFailed

SEVERITIES = ("error", "warning", "info")
_ORDER = {name: n for n, name in enumerate(SEVERITIES)}


@dataclass(frozen=True)
class Rule:
    """One named objection a check can raise.

    ``family`` groups rules in ``newsletter check --rules``; ``ruleset`` names
    the data file set a phrase rule came from (so a site can switch off a whole
    set); ``phrases`` is only used by phrase rules.
    """

    id: str
    severity: str
    description: str
    fix: str
    family: str
    ruleset: str = ""
    phrases: tuple[str, ...] = ()

    def to_json(self) -> dict:
        data = {
            "id": self.id,
            "severity": self.severity,
            "family": self.family,
            "description": self.description,
            "fix": self.fix,
        }
        if self.ruleset:
            data["ruleset"] = self.ruleset
        if self.phrases:
            data["phrases"] = list(self.phrases)
        return data


@dataclass
class Finding:
    rule: str
    severity: str
    where: str
    text: str
    fix: str
    accepted_reason: str | None = None
    html_line: int | None = None

    @property
    def accepted(self) -> bool:
        return self.accepted_reason is not None

    def to_json(self) -> dict:
        return {
            "rule": self.rule,
            "severity": self.severity,
            "where": self.where,
            "text": self.text,
            "fix": self.fix,
            "accepted": self.accepted,
            "accepted_reason": self.accepted_reason,
            "html_line": self.html_line,
        }


@dataclass(frozen=True)
class SpamRule:
    name: str
    score: float
    description: str


@dataclass(frozen=True)
class SpamResult:
    """SpamAssassin's verdict on the sample message, kept whole for the report."""

    score: float
    required: float
    rules: tuple[SpamRule, ...]
    version: str = ""

    def to_json(self) -> dict:
        return {
            "score": self.score,
            "required": self.required,
            "version": self.version,
            "rules": [{"name": r.name, "score": r.score, "description": r.description} for r in self.rules],
        }


@dataclass
class CheckReport:
    findings: list[Finding] = field(default_factory=list)
    spam: SpamResult | None = None
    rules_run: tuple[str, ...] = ()
    reused: bool = False  # read from the build's cache (checks.cache): same content, nothing ran again

    @property
    def errors(self) -> list[Finding]:
        """Errors nobody has accepted: these stop ``send``."""
        return [f for f in self.findings if f.severity == "error" and not f.accepted]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "warning" and not f.accepted]

    @property
    def accepted(self) -> list[Finding]:
        return [f for f in self.findings if f.accepted]

    @property
    def blocking(self) -> bool:
        return bool(self.errors)

    def summary(self) -> str:
        errors, warnings = len(self.errors), len(self.warnings)
        infos = sum(1 for f in self.findings if f.severity == "info" and not f.accepted)
        parts = [f"{errors} error{'s' * (errors != 1)}", f"{warnings} warning{'s' * (warnings != 1)}"]
        if infos:
            parts.append(f"{infos} note{'s' * (infos != 1)}")
        if self.accepted:
            parts.append(f"{len(self.accepted)} accepted")
        return ", ".join(parts)

    def to_json(self) -> dict:
        return {
            "blocking": self.blocking,
            "summary": self.summary(),
            "reused": self.reused,
            "findings": [f.to_json() for f in self.findings],
            "spamassassin": self.spam.to_json() if self.spam else None,
        }

    def raise_if_blocking(self, issue_path: str | None = None) -> None:
        """Stop a send (or a CI job) while unaccepted errors remain, naming them."""
        if not self.blocking:
            return
        rules = sorted({f.rule for f in self.errors})
        raise CheckFailed(
            f"{len(self.errors)} unaccepted error{'s' * (len(self.errors) != 1)} ({', '.join(rules)})",
            where=issue_path,
            hint="fix them, or accept a rule in the issue file: an [[accept]] table with "
            f'rule = "{rules[0]}" and reason = "why it is acceptable"',
        )


def sort_findings(findings: list[Finding]) -> list[Finding]:
    """Errors first; otherwise keep the order the checks found them in."""
    return sorted(findings, key=lambda f: _ORDER.get(f.severity, 9))
