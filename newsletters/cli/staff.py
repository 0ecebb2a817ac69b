"""``newsletter staff …`` (accounts for the staff pages) and ``newsletter review status`` (for scripts).

A password is read from standard input (``--password-stdin``, one line) or
asked twice on a terminal; it is never echoed, printed or logged.
"""

from __future__ import annotations

import json
import sys

import click

from ..build import build_issue
from ..delivery.session import content_digest
from ..review import ReviewError, StaffAccounts, check_password, review_status
from . import Context, cli, pass_ctx


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif sys.stdin.isatty():
        password = click.prompt("Password", hide_input=True, confirmation_prompt="Repeat the password")
    else:
        raise ReviewError("no terminal to ask for the password on", hint="pipe it in and add --password-stdin")
    check_password(password)
    return password


@cli.group()
def staff() -> None:
    """Staff accounts for the review pages of `newsletter serve` (/staff/)."""


@staff.command("add")
@click.argument("email")
@click.option("--name", required=True, help="The person's name, shown with their approvals.")
@click.option("--role", type=click.Choice(["reviewer", "editor"]), required=True,
              help="reviewer: may approve; editor: may view, comment and test-send.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input instead of asking.")
@pass_ctx
def staff_add(ctx: Context, email: str, name: str, role: str, password_stdin: bool) -> None:
    """Give EMAIL a staff account."""
    password = _read_password(password_stdin)
    with StaffAccounts.open(ctx.site) as accounts:
        member = accounts.add(email, name, role, password)
    click.echo(f"added {member.email} ({member.name}, {member.role})")


@staff.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the accounts as JSON.")
@pass_ctx
def staff_list(ctx: Context, as_json: bool) -> None:
    """List the staff accounts."""
    with StaffAccounts.open(ctx.site) as accounts:
        members = accounts.members()
    if as_json:
        click.echo(json.dumps([{"email": m.email, "name": m.name, "role": m.role,
                                "created_at": m.created_at.isoformat()} for m in members], indent=2))
        return
    if not members:
        click.echo("No staff accounts. Add one with `newsletter staff add EMAIL --name NAME --role reviewer`.")
    for m in members:
        click.echo(f"{m.email}\t{m.name}\t{m.role}\tsince {m.created_at:%Y-%m-%d}")


@staff.command("remove")
@click.argument("email")
@pass_ctx
def staff_remove(ctx: Context, email: str) -> None:
    """Remove EMAIL's staff account; their sessions end and their approvals stop counting."""
    with StaffAccounts.open(ctx.site) as accounts:
        member = accounts.remove(email)
    click.echo(f"removed {member.email}")


@staff.command("reset-password")
@click.argument("email")
@click.option("--password-stdin", is_flag=True, help="Read the new password from standard input instead of asking.")
@pass_ctx
def staff_reset_password(ctx: Context, email: str, password_stdin: bool) -> None:
    """Set a new password for EMAIL; every session of that account ends."""
    with StaffAccounts.open(ctx.site) as accounts:
        accounts.get(email)  # an unknown address fails before the password is asked for
        password = _read_password(password_stdin)
        member = accounts.reset_password(email, password)
    click.echo(f"new password set for {member.email}; their sessions have ended")


@cli.group()
def review() -> None:
    """Where an issue stands in review (the rule is [review] in newsletter.toml)."""


@review.command("status")
@click.argument("issue", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
@pass_ctx
def review_status_command(ctx: Context, issue: str, as_json: bool) -> None:
    """Print who approved the current build of ISSUE and what is missing; exit 1 unless it may be sent."""
    site = ctx.site
    build = build_issue(site, issue)
    status = review_status(site, build, content_digest(build.rendered))
    if as_json:
        click.echo(json.dumps(status.to_json(), indent=2))
    else:
        rule = (f"{status.needed} approval{'s' * (status.needed != 1)} required" if status.required
                else "no approval required ([review] required is off)")
        click.echo(f"{build.issue.slug}: {'approved' if status.approved else 'not approved'} ({rule})")
        for event in status.approvals:
            click.echo(f"approved by {event.name} <{event.email}> on {event.at:%Y-%m-%d %H:%M} UTC")
        if not status.approved:
            click.echo(f"missing: {status.missing()}")
    if status.required and not status.approved:
        sys.exit(1)
