"""``newsletter check``: what mail clients, spam filters and advertising rules would object to."""

from __future__ import annotations

import click

from ..checks import check_issue, settings_for_folder
from ..checks.output import print_report, print_rules, report_json, rules_json
from . import cli, pass_ctx


@cli.command("check")
@click.argument("issue", required=False, type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON (for scripts and CI).")
@click.option("--rules", "list_rules", is_flag=True, help="List every rule, its severity and whether it is on.")
@pass_ctx
def check(ctx, issue: str | None, as_json: bool, list_rules: bool) -> None:
    """Build ISSUE and check it before sending; exit 1 while errors are not accepted.

    Checks size (Gmail clipping), images, links, required content (unsubscribe,
    postal address, preheader, plain-text part), the SpamAssassin score, and for
    UK sites the advertising rules on prescription-only medicines. Accept an error
    in the issue file with [[accept]] rule = "..." reason = "...".
    """
    if list_rules:
        settings = settings_for_folder(ctx.site_dir)
        if as_json:
            click.echo(rules_json(settings))
        else:
            print_rules(settings)
        return
    if issue is None:
        raise click.UsageError("give the issue file to check, e.g. `newsletter check issues/2026-11.toml`")
    result, report = check_issue(ctx.site, issue)
    if as_json:
        click.echo(report_json(report))
    else:
        print_report(report, title=f"Checks for {issue}")
    report.raise_if_blocking(str(result.issue.path))
