"""``newsletter bounces read PATH…``: what returned messages say, and which send they belong to. Changes nothing.

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

from ..bounces import read_message
from ..bounces.match import DeliveryIndex, match_reading
from ..bounces.sources import messages
from ..errors import ConfigError
from . import Context, cli, pass_ctx
from .send import _console


@cli.group()
def bounces() -> None:
    """Bounces, complaints and automatic replies that come back after a send."""


def _verp_base(site) -> str:
    """The local part of BOUNCE_ADDRESS (bounces@domain gives bounces+TOKEN@domain), 'bounces' by default."""
    address = (site.setting("BOUNCE_ADDRESS") or "") if site else ""
    return address.partition("@")[0] or "bounces"


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
    base = _verp_base(site)
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
