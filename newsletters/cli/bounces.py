"""``newsletter bounces read|process|fetch|list``: what came back after a send, and applying it to the list.

``read`` changes nothing. ``process`` (files) and ``fetch`` (the bounce
mailbox) apply through ``newsletters.bounces.process``, the same code the
webhook routes of ``newsletter serve`` use; ``list`` shows what was applied.
The reading is ``newsletters.bounces``; matching to a run and subscriber is
``newsletters.bounces.match``. This module finds the database and prints.
"""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.markup import escape
from rich.table import Table

from foundation.database import create_engine
from recipients import open_store

from ..bounce_intake.mailbox import mailbox_settings, process_mailbox
from ..bounces.reader import read_message
from ..bounces.apply import OUTCOMES
from ..bounces.match import DeliveryIndex, match_reading
from ..bounces.process import BounceProcessor, verp_base
from ..bounces.sources import messages
from ..bounces.tally import recent_events
from ..errors import ConfigError
from . import Context, cli, pass_ctx
from .send import _console


@cli.group()
def bounces() -> None:
    """Bounces, complaints and automatic replies that come back after a send."""


def _delivery_index(site) -> tuple[DeliveryIndex | None, str]:
    """The ledger to match against, or None and why not. A missing SQLite file is not created."""
    if site is None:
        return None, "no site folder here, so no ledger to match against"
    url = site.database_url
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
        return None, "no subscriber database yet, so nothing to match against"
    index = DeliveryIndex(create_engine(url), site.setting("SECRET_KEY") or "")
    if not index.ready:
        return None, "nothing has been sent from this database yet"
    return index, ""


@bounces.command("read")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON array instead of a table.")
@pass_ctx
def read(ctx: Context, paths: tuple[str, ...], as_json: bool) -> None:
    """Read PATH… (.eml files, maildirs, mbox files) and show each message's kind, recipients, status, reason and
    the send run and subscriber it matches. Changes nothing: no message is moved and no subscriber is touched."""
    try:
        site = ctx.site
    except ConfigError:
        site = None
    index, why_not = _delivery_index(site)
    base = verp_base(site)
    rows = []
    for label, raw in messages(list(paths)):
        reading = read_message(raw, verp_base=base)
        matched = match_reading(reading, index) if index else None
        rows.append(
            {
                "file": label,
                "kind": reading.kind,
                "recipients": reading.recipients,
                "status": reading.status,
                "reason": reading.reason,
                "run_id": matched[0] if matched else None,
                "subscriber_id": matched[1] if matched else None,
                "message_ids": reading.ids.message_ids,
                "list_id": reading.ids.list_id,
                "verp_token": reading.ids.verp_token,
                "diagnostic": reading.diagnostic,
            }
        )
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
    else:
        _table(rows)
    if why_not:
        click.echo(f"not matched: {why_not}", err=True)


def _table(rows: list[dict]) -> None:
    console = _console()
    table = Table("file", "kind", "recipients", "status", "reason", "run", "subscriber")
    colours = {"hard": "red", "soft": "yellow", "complaint": "magenta", "auto-reply": "cyan", "not-a-bounce": "dim"}
    for row in rows:
        table.add_row(
            escape(row["file"]),
            f"[{colours[row['kind']]}]{row['kind']}[/]",
            escape(", ".join(row["recipients"]) or "-"),
            row["status"] or "-",
            escape(row["reason"] or "-"),
            str(row["run_id"] or "-"),
            str(row["subscriber_id"] or "-"),
        )
    console.print(table)
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["kind"]] = counts.get(row["kind"], 0) + 1
    matched = sum(1 for row in rows if row["run_id"])
    console.print(", ".join(f"{n} {kind}" for kind, n in counts.items()) + f"; {matched} matched a message we sent")


# -- applying ---------------------------------------------------------------------------
OUTCOME_WORDS = {
    "bounced": "now bounced (off the list)",
    "complained": "now complained (off the list)",
    "counted": "soft, counted (below the soft-bounce limit)",
    "already": "matched someone already off the list",
    "ignored": "auto-replies and other mail (nothing to do)",
    "unmatched": "matched no message we sent (shown, never acted on)",
    "duplicate": "processed before (nothing changed)",
}


@bounces.command("process")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON array instead of a table.")
@pass_ctx
def process(ctx: Context, paths: tuple[str, ...], as_json: bool) -> None:
    """Apply PATH… (.eml files, maildirs, mbox files) to the list by the [bounces] policy.

    Only a report that matches a message we sent changes anyone; each message is applied once, however often
    it is processed. Example: newsletter bounces process ~/Maildir/.Bounces"""
    site = ctx.site
    with open_store(site) as store:
        processor = BounceProcessor(site, store)
        for label, raw in messages(list(paths)):
            processor.message(raw, "file", label)
    _applied(processor, as_json)


@bounces.command("fetch")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON array instead of a table.")
@pass_ctx
def fetch(ctx: Context, as_json: bool) -> None:
    """Fetch the bounce mailbox (BOUNCE_IMAP_* or BOUNCE_POP3_* in .env), apply each message, mark it processed.

    A message is marked (moved to BOUNCE_PROCESSED_FOLDER, flagged, or deleted over POP3) only after it was
    applied, so a second fetch does nothing and an interrupted one loses nothing. Run it from cron."""
    site = ctx.site
    settings = mailbox_settings(site)
    if settings is None:
        raise ConfigError(
            "no bounce mailbox is set", where="environment/.env",
            hint="set BOUNCE_IMAP_HOST (or BOUNCE_POP3_HOST) with its _USER and _PASSWORD; see the README",
        )
    with open_store(site) as store:
        processor = BounceProcessor(site, store)
        where = f"{settings.protocol}://{settings.host}/{settings.folder if settings.protocol == 'imap' else ''}"
        process_mailbox(settings, lambda uid, raw: processor.message(raw, "mailbox", f"{where} #{uid}"))
    _applied(processor, as_json)


def _applied(processor: BounceProcessor, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(processor.rows, indent=2, ensure_ascii=False))
        return
    console = _console()
    if not processor.rows:
        console.print("Nothing to process.")
        return
    table = Table("evidence", "kind", "recipients", "status", "reason", "run", "subscriber", "outcome")
    for row in processor.rows:
        table.add_row(
            escape(row["evidence"]), row["kind"], escape(", ".join(row["recipients"]) or "-"), row["status"] or "-",
            escape(row["reason"] or "-"), str(row["run_id"] or "-"), str(row["subscriber_id"] or "-"), row["outcome"],
        )
    console.print(table)
    for outcome in OUTCOMES:
        if processor.outcomes.get(outcome):
            console.print(f"{processor.outcomes[outcome]:5} {OUTCOME_WORDS[outcome]}")


@bounces.command("list")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True, help="How many to show.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON array instead of a table.")
@pass_ctx
def list_(ctx: Context, limit: int, as_json: bool) -> None:
    """The latest bounces and complaints processed (files, mailbox, relays), newest first, and what each did."""
    with open_store(ctx.site) as store, store.engine.connect() as conn:
        rows = recent_events(conn, limit)
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    console = _console()
    if not rows:
        console.print("No bounces processed yet.")
        return
    table = Table("received", "source", "kind", "status", "reason", "run", "subscriber", "action", "evidence")
    for row in rows:
        table.add_row(
            row["received_at"][:16].replace("T", " "), row["source"], row["kind"], row["status"] or "-",
            escape(row["reason"] or "-"), str(row["run_id"] or "-"),
            escape(row["email"] or (str(row["subscriber_id"]) if row["subscriber_id"] else "-")), row["action"],
            escape(row["evidence"]),
        )
    console.print(table)
