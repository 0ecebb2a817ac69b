"""``newsletter article show`` and ``newsletter new``: articles in, a draft issue out."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..config import CONFIG_NAME
from ..articles import read_sources
from ..drafting import DraftNotes, draft_issue
from . import Context, cli, pass_ctx


@cli.group()
def article() -> None:
    """Read blog articles the way an issue will, to check a source before using it."""


@article.command("show")
@click.argument("sources", nargs=-1, required=True, metavar="SOURCE...")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of the articles (for scripts).")
@pass_ctx
def show(ctx: Context, sources: tuple[str, ...], as_json: bool) -> None:
    """Show what each SOURCE gives: title, author, date, summary, image, body.

    A SOURCE is a .txt export, a .md post, a saved .html page, an RSS/Atom feed
    file, or an http(s) URL of any of these; FEED#ENTRY-LINK picks one feed entry.
    Inside a site folder, relative links are completed with the site's website.
    """
    site = ctx.site if (ctx.site_dir / CONFIG_NAME).is_file() else None
    articles = read_sources(sources, site=site)
    for item in articles:
        for warning in item.warnings:
            click.secho(f"warning: {item.source}: {warning}", err=True, fg="yellow")
    if as_json:
        click.echo(json.dumps([item.to_json() for item in articles], ensure_ascii=False, indent=2))
        return
    for number, item in enumerate(articles):
        if number:
            click.echo()
        click.secho(item.title, bold=True)
        for label, value in (
            ("source", item.source),
            ("url", item.url),
            ("author", item.author),
            ("published", item.published),
            ("tags", ", ".join(item.tags)),
            ("image", f"{item.image}  [alt: {item.image_alt or 'none'}]" if item.image else ""),
            ("summary", item.summary),
            ("body", _body_outline(item.body_html)),
        ):
            click.echo(f"  {label:<10} {value or '-'}")


def _body_outline(body_html: str) -> str:
    count = body_html.count
    return (
        f"{len(body_html):,} characters of HTML; {count('<h2') + count('<h3') + count('<h4')} headings, "
        f"{count('<p>') + count('<p ')} paragraphs, {count('<a ')} links, {count('<img ')} images, {count('<table')} tables"
    )


@cli.command("new")
@click.argument("sources", nargs=-1, metavar="[SOURCE...]")
@click.option(
    "--since",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    metavar="YYYY-MM-DD",
    help="Take articles published on or after this day instead of those after the last sent issue.",
)
@click.option("--out", type=click.Path(dir_okay=False), help="Write the draft here instead of issues/YYYY-MM.toml.")
@pass_ctx
def new(ctx: Context, sources: tuple[str, ...], since, out: str | None) -> None:
    """Draft the next issue file from the articles published since the last sent issue.

    SOURCE is an article file, a folder of them (default: the site's articles/)
    or a feed file or URL. The newest article goes in full, the others as
    excerpts. The cut-off is the date of the last issue `newsletter send`
    delivered (see reports/); every article left out is listed with the reason,
    and an article that cannot be read is a warning. Never overwrites an
    existing file; prints the path it wrote.
    """
    site = ctx.site
    chosen = list(sources) or ["articles"]
    notes = DraftNotes()
    try:
        path = draft_issue(
            site, chosen, since=since.date() if since else None, out=Path(out) if out else None, notes=notes
        )
    finally:  # what was left out matters most when nothing was drafted
        for warning in notes.warnings:
            click.secho(f"warning: {warning}", fg="yellow", err=True)
        if notes.cutoff:
            click.echo(f"cut-off: {notes.cutoff}", err=True)
        for article, reason in notes.left_out:
            click.echo(f"left out: {article.title} ({article.source}): {reason}", err=True)
    click.echo(str(path))
