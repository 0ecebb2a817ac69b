"""``newsletter preview``: the staff preview in a browser (see newsletters/preview.py)."""

from __future__ import annotations

import click

from ..preview import serve_preview
from . import Context, cli, pass_ctx


@cli.command()
@click.argument("issue", type=click.Path(dir_okay=False))
@click.option(
    "--port",
    default=8000,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port on 127.0.0.1 to serve on (0 picks a free one).",
)
@pass_ctx
def preview(ctx: Context, issue: str, port: int) -> None:
    """Show ISSUE in a browser at desktop and phone widths, with its plain text and headers.

    Serves on 127.0.0.1 only. Saving the issue file, an article, newsletter.toml
    or a template rebuilds the issue and reloads the page; a mistake shows in the
    page until it is fixed. Stop with Ctrl-C.
    """
    server = serve_preview(ctx.site_dir, issue, port=port)
    click.echo(f"Previewing {server.issue_path} at {server.url}")
    click.echo("Saving the issue, an article, newsletter.toml or a template reloads the page. Ctrl-C stops.")
    try:
        server.wait()
    except KeyboardInterrupt:
        click.echo("Stopped.")
    finally:
        server.shutdown()
