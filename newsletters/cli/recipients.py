"""``newsletter recipients …`` and ``newsletter serve``: the subscriber list from the command line.

Commands parse arguments, call ``recipients`` and print; the rules live there.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from foundation.migrate import current_revision
from recipients import open_store
from recipients.export import records, write_csv, write_json
from recipients.importer import ImportRejected, import_csv

from ..web.confirmation import send_due_confirmations
from ..web.serve import make_web_server
from . import cli, pass_ctx

STATUS_CHOICES = ("pending", "active", "unsubscribed", "bounced", "complained", "erased")


def _store(ctx):
    return open_store(ctx.site)


def _site_path(ctx, name: str) -> Path:
    """A relative path means the site folder first, then the current folder."""
    path = Path(name)
    if not path.is_absolute() and (ctx.site.root / path).exists():
        return ctx.site.root / path
    return path


def _name(first: str, last: str) -> str:
    return " ".join(part for part in (first, last) if part) or "-"


@cli.group()
def recipients() -> None:
    """The subscriber list: import, add, list, show, unsubscribe, export, forget, stats."""


@recipients.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--skip-invalid", is_flag=True, help="Import the valid rows even if some rows are invalid.")
@pass_ctx
def import_(ctx, file: str, skip_invalid: bool) -> None:
    """Import people who consented elsewhere from a CSV file (all rows are checked first).

    Columns: email, consent_at, consent_source (required); first_name, last_name,
    consent_text (optional); any other column becomes an attribute. UTF-8 or
    UTF-16, separated by commas, semicolons or tabs. Dates with slashes are day
    first (18/05/2024).

    Example: newsletter recipients import subscribers.csv
    """
    path = _site_path(ctx, file)
    with _store(ctx) as store:
        try:
            report = import_csv(store, path, skip_invalid=skip_invalid)
        except ImportRejected as exc:
            _describe_file(exc.parsed, err=True)
            for problem in exc.parsed.problems:
                click.echo(f"{path}: {problem}", err=True)
            raise
    parsed = report.parsed
    _describe_file(parsed)
    for problem in parsed.problems:
        click.echo(f"  skipped  {problem}")
    for merge in parsed.merges:
        click.echo(f"  merged   {merge}")
    for row, status in report.refused:
        click.echo(f"  refused  line {row.line}: {row.email} is {status}; not re-activated")
    click.echo(f"{len(report.added)} added")
    click.echo(f"{len(report.evidence_added)} already on the list, new consent evidence recorded")
    click.echo(f"{len(report.activated)} pending sign-ups activated by the file's consent evidence")
    click.echo(f"{len(report.unchanged)} already on the list, nothing new")
    click.echo(f"{len(report.refused)} refused (unsubscribed, bounced, complained or forgotten)")
    click.echo(f"{len(parsed.merges)} duplicates merged, {len(parsed.problems)} invalid rows skipped")


def _describe_file(parsed, err: bool = False) -> None:
    """How the file was read, so a wrong guess shows before anyone is mailed."""
    records = f"{parsed.records} record{'s' if parsed.records != 1 else ''}"
    click.echo(f"{parsed.path}: {records} read ({parsed.format})", err=err)
    click.echo(f"  columns: {parsed.columns}", err=err)
    if parsed.day_first:
        count = len(parsed.day_first)
        click.echo(f"  note: {count} date{'s' if count != 1 else ''} could be read day or month first; "
                   "read day first (UK):", err=err)
        for reading in parsed.day_first[:5]:
            click.echo(f"    {reading}", err=err)
        if count > 5:
            click.echo(f"    … and {count - 5} more", err=err)


@recipients.command()
@click.argument("email")
@click.option("--first-name", default="", help="First name, used to greet them.")
@click.option("--last-name", default="", help="Last name.")
@click.option("--source", default="admin", show_default=True, help='Where they gave consent, e.g. "phone call".')
@click.option("--consent-text", default=None, help="The wording they agreed to (default: the site's consent_text).")
@pass_ctx
def add(ctx, email: str, first_name: str, last_name: str, source: str, consent_text: str | None) -> None:
    """Add someone who gave consent in person or by phone; they are active at once.

    Example: newsletter recipients add jane@example.com --first-name Jane --source "reception desk"
    """
    text = ctx.site.config.consent_text if consent_text is None else consent_text
    with _store(ctx) as store:
        person = store.add(email, first_name=first_name, last_name=last_name, source=source, consent_text=text)
    click.echo(f"added {person.email} (active)")


@recipients.command("list")
@click.option("--status", type=click.Choice(STATUS_CHOICES), help="Only people with this status.")
@pass_ctx
def list_(ctx, status: str | None) -> None:
    """List subscribers: id, status, address, name, when added.

    Example: newsletter recipients list --status active
    """
    with _store(ctx) as store:
        count = 0
        for count, person in enumerate(store.subscribers(status), 1):
            email = person.email or "(erased)"
            click.echo(
                f"{person.id:>6}  {person.status:<12}  {email:<40}  {_name(person.first_name, person.last_name):<30}  "
                f"{person.created_at:%Y-%m-%d}"
            )
    click.echo(f"{count} subscriber{'s' if count != 1 else ''}", err=True)


@recipients.command()
@click.argument("email")
@pass_ctx
def show(ctx, email: str) -> None:
    """Show one subscriber and their consent ledger.

    Example: newsletter recipients show jane@example.com
    """
    with _store(ctx) as store:
        person = store.get(email)
        events = store.ledger(person.id)
    click.echo(f"email:      {person.email or '(erased)'}")
    click.echo(f"name:       {_name(person.first_name, person.last_name)}")
    click.echo(f"status:     {person.status}")
    click.echo(f"added:      {person.created_at:%Y-%m-%d %H:%M:%S} UTC")
    for key, value in sorted(person.attributes.items()):
        click.echo(f"{key + ':':<11} {value}")
    click.echo("ledger:")
    for event in events:
        parts = [f"  {event.at:%Y-%m-%d %H:%M:%S} UTC  {event.event:<12}"]
        for label in ("method", "channel", "source", "consent_text", "ip", "user_agent", "detail"):
            value = getattr(event, label)
            if value:
                parts.append(f"{label}={value!r}" if " " in str(value) else f"{label}={value}")
        click.echo("  ".join(parts))


@recipients.command()
@click.argument("email")
@click.option("--reason", required=True, help="Why the bounce or complaint was wrong; kept in the consent ledger.")
@pass_ctx
def reinstate(ctx, email: str, reason: str) -> None:
    """Undo a bounce or complaint that was wrong: the person is active again, by your word.

    Records a `subscribed` event (method admin, with your reason) in their consent ledger; the bounce stays
    there too. Only for bounced or complained subscribers. Example:
    newsletter recipients reinstate jane@example.com --reason "mailbox was full only during her move"
    """
    with _store(ctx) as store:
        subscriber = store.reinstate(email, reason)
    click.echo(f"reinstated {subscriber.email}: active again (see `newsletter recipients show {subscriber.email}`)")


@recipients.command()
@click.argument("email")
@click.option(
    "--channel", type=click.Choice(("admin", "reply")), default="admin", show_default=True,
    help="How they asked: 'reply' when they answered a newsletter asking to stop.",
)
@pass_ctx
def unsubscribe(ctx, email: str, channel: str) -> None:
    """Unsubscribe someone (e.g. who asked by phone or by reply).

    Example: newsletter recipients unsubscribe jane@example.com --channel reply
    """
    with _store(ctx) as store:
        changed = store.unsubscribe_email(email, channel)
        status = store.get(email).status
    click.echo(f"unsubscribed {email}" if changed else f"{email} was not subscribed (status {status}); nothing changed")


@recipients.command()
@click.option("--format", "fmt", type=click.Choice(("csv", "json")), default="json", show_default=True)
@click.option("--email", default=None, help="Only this person (a subject access request).")
@pass_ctx
def export(ctx, fmt: str, email: str | None) -> None:
    """Write everything held on each person, ledger included, to standard output.

    Example: newsletter recipients export --format json --email jane@example.com > jane.json
    """
    with _store(ctx) as store:
        write = write_json if fmt == "json" else write_csv
        count = write(records(store, email), sys.stdout)
    click.echo(f"{count} subscriber{'s' if count != 1 else ''} exported", err=True)


@recipients.command()
@click.argument("email")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_ctx
def forget(ctx, email: str, yes: bool) -> None:
    """Erase a person's data (right to erasure); keep only a keyed hash so they are never added again.

    Example: newsletter recipients forget jane@example.com --yes
    """
    if not yes:
        click.confirm(f"Erase everything about {email}? This cannot be undone", abort=True)
    with _store(ctx) as store:
        found = store.forget(email)
    if found:
        click.echo(f"forgot {email}: personal data erased; a keyed hash stops it being added again")
    else:
        click.echo(f"{email} was not on the list; its keyed hash now stops it being added")


@recipients.command()
@pass_ctx
def stats(ctx) -> None:
    """Count subscribers per status, and how many may receive the next issue.

    Example: newsletter recipients stats
    """
    with _store(ctx) as store:
        counts = store.stats()
    for key in STATUS_CHOICES + ("total", "suppressed", "eligible"):
        click.echo(f"{key + ':':<14}{counts[key]:>8}")


@recipients.command("resend-confirmations")
@pass_ctx
def resend_confirmations(ctx) -> None:
    """Send the confirmation e-mails still owed (the mail server was down when people signed up).

    Exits 1 if any could not be sent; when the mail server cannot be reached it stops at the first
    failure with one error line. Run it again later. Example: newsletter recipients resend-confirmations
    """
    with _store(ctx) as store:
        sent, failed = send_due_confirmations(ctx.site, store)
    for address, why in failed:
        click.echo(f"  not sent  {address}: {why}", err=True)
    click.echo(f"{sent} confirmation e-mail{'s' if sent != 1 else ''} sent, {len(failed)} still owed")
    if failed:
        raise click.exceptions.Exit(1)


@recipients.command()
@pass_ctx
def migrate(ctx) -> None:
    """Bring the subscriber database to the newest schema (opening it does this too)."""
    with _store(ctx) as store:
        click.echo(f"database at revision {current_revision(store.engine)}")


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=int, help="Port to listen on.")
@pass_ctx
def serve(ctx, host: str, port: int) -> None:
    """Serve the subscribe, confirm and unsubscribe pages, the issue archive and the staff review (/staff/).

    Put it behind a TLS reverse proxy at PUBLIC_URL. Example: newsletter serve --port 8080
    """
    server = make_web_server(ctx.site, host, port)
    click.echo(f"serving {ctx.site.config.name} on http://{host}:{port}/ (public links use {ctx.site.public_url})")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
