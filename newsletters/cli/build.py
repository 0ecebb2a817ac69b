"""``newsletter build ISSUE``: render an issue into build/<slug>/."""

from __future__ import annotations

from pathlib import Path

import click

from ..build import build_issue
from ..checks import run_checks
from ..checks.output import print_report
from . import Context, cli, pass_ctx


@cli.command()
@click.argument("issue", type=click.Path(dir_okay=False))
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Folder to build into (default: the site's build/). The files go in OUT/<slug>/.",
)
@click.option(
    "--checks/--no-checks",
    default=True,
    show_default=True,
    help="Run the pre-send checks on the result and print their findings (as `newsletter check` does).",
)
@pass_ctx
def build(ctx: Context, issue: str, out_dir: str | None, checks: bool) -> None:
    """Render ISSUE (an issues/*.toml file) to email.html, email.txt, web.html and sample.eml."""
    result = build_issue(ctx.site, issue, Path(out_dir) if out_dir else None)
    for path in result.paths.values():
        click.echo(f"wrote {path}")
    for warning in result.warnings:
        click.secho(f"warning: {warning}", fg="yellow", err=True)
    note = "over" if result.clipped_by_gmail else "under"
    click.echo(
        f"email.html is {result.encoded_html_bytes / 1024:.1f} KB as sent, encoded as in sample.eml "
        f"({note} Gmail's 102 KB clipping limit)"
    )
    if checks:
        # Findings are shown, not enforced: `send` is where errors stop the issue.
        print_report(run_checks(ctx.site, result))
