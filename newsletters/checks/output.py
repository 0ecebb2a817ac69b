"""The findings as people read them: a table on a terminal, plain lines in a pipe, JSON for machines.

``build`` and ``check`` print the same table, so this lives with the checks and
not in the command line. Rich decides from the console whether to draw a table
with colours or fall back to plain text (a CI log, ``| less``).
"""

from __future__ import annotations

import json

from rich.console import Console
from rich.table import Table
from rich.text import Text

from .model import CheckReport
from .settings import CheckSettings

STYLES = {"error": "bold red", "warning": "yellow", "info": "cyan"}


def print_report(report: CheckReport, console: Console | None = None, *, title: str = "") -> None:
    """One row per finding, then each rule's fix once (the same fix on every row would drown the rows)."""
    console = console or Console()
    if report.findings:
        table = Table(title=title or None, expand=True)
        table.add_column("severity", no_wrap=True)
        table.add_column("rule", overflow="fold", ratio=2)
        table.add_column("where", overflow="fold", ratio=3)
        table.add_column("text", overflow="fold", ratio=4)
        for f in report.findings:
            severity = Text(f.severity, style="dim" if f.accepted else STYLES.get(f.severity, ""))
            where = f.where
            if f.html_line is not None and not where.startswith("email.html line"):
                where += f" (email.html line {f.html_line})"
            text = Text(f.text)
            if f.accepted:
                text.append(f"\naccepted: {f.accepted_reason}", style="green")
            table.add_row(severity, f.rule, where, text)
        console.print(table)
        fixes = {f.rule: f.fix for f in report.findings if not f.accepted}
        if fixes:
            console.print("How to fix:")
            for rule_id, fix in fixes.items():
                line = Text("  ")
                line.append(rule_id, style="bold")
                line.append(f": {fix}")
                console.print(line)
    if report.spam is not None:
        console.print(
            f"SpamAssassin {report.spam.version}: score {report.spam.score:g} "
            f"(this tool warns from 2 and stops the send from 5)"
        )
    style = "bold red" if report.blocking else "green"
    console.print(Text(f"Checks: {report.summary()}", style=style))
    if report.reused:
        console.print(REUSED_NOTE)


REUSED_NOTE = "(results of the last full check of this same content, SpamAssassin included: nothing changed since)"


def report_json(report: CheckReport) -> str:
    return json.dumps(report.to_json(), indent=2, ensure_ascii=False)


def print_rules(settings: CheckSettings, console: Console | None = None) -> None:
    console = console or Console()
    table = Table(show_lines=True, expand=True)
    table.add_column("rule", overflow="fold")
    table.add_column("severity", no_wrap=True)
    table.add_column("on", no_wrap=True)
    table.add_column("what it finds", overflow="fold", ratio=3)
    table.add_column("fix", overflow="fold", ratio=2)
    for rule in settings.rules.values():
        on = settings.is_on(rule.id)
        description = rule.description
        if rule.phrases:
            description += "\nPhrases: " + ", ".join(rule.phrases)
        table.add_row(
            rule.id,
            Text(rule.severity, style=STYLES.get(rule.severity, "")),
            Text("yes" if on else "off", style="" if on else "dim"),
            description,
            rule.fix,
        )
    console.print(table)


def rules_json(settings: CheckSettings) -> str:
    rules = [{**rule.to_json(), "enabled": settings.is_on(rule.id)} for rule in settings.rules.values()]
    return json.dumps(rules, indent=2, ensure_ascii=False)
