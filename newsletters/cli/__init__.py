"""The ``newsletter`` command: parses arguments, calls the library, reports errors.

No logic lives here. Library code raises ``NewsletterError`` subclasses; the
group below turns them into one ``error: …`` line on stderr and exit status 1,
the way rss2email's ``main`` does. Each command family lives in its own module
and registers itself on ``cli`` when imported; ``COMMAND_MODULES`` says which
module that is, so a command imports its own family only.
"""

from __future__ import annotations

import atexit
import errno
import gc
import importlib
import logging
import sqlite3
import sys
from pathlib import Path

import click
import sqlalchemy as sa

from foundation.database import database_error

from .. import __version__
from ..config import Site
from ..errors import NewsletterError
from ..scaffold import TO_FILL_IN, create_site


class Context:
    """What every command gets: the site folder, loaded on first use (``init`` needs none)."""

    def __init__(self, site_dir: str):
        self.site_dir = Path(site_dir)
        self._site: Site | None = None

    @property
    def site(self) -> Site:
        if self._site is None:
            self._site = Site.load(self.site_dir)
        return self._site


# Which module registers each command. Importing all of them (Flask, the preview server …) cost every
# ``newsletter send`` 0.1 s of start-up, once per sender: 0.68 against 0.57 s to import what it needs.
COMMAND_MODULES = {
    "article": "content", "new": "content", "build": "build", "check": "check", "preview": "preview",
    "recipients": "recipients", "serve": "recipients", "send": "send", "sends": "send",
    "bounces": "bounces", "staff": "staff", "review": "staff",
}


class NewsletterGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMAND_MODULES})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in COMMAND_MODULES and name not in self.commands:
            importlib.import_module(f"{__name__}.{COMMAND_MODULES[name]}")
        return super().get_command(ctx, name)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except NewsletterError as exc:
            _fail(ctx, exc)
        except (sa.exc.SQLAlchemyError, sqlite3.Error) as exc:
            # A disk that filled up, a read-only file, a database that went away: said in plain words.
            site = ctx.obj.site if isinstance(ctx.obj, Context) and ctx.obj._site is not None else None
            explained = database_error(exc, site.database_url) if site else None
            if explained is None:
                raise
            _fail(ctx, explained)
        except OSError as exc:
            if exc.errno not in _FILE_SYSTEM_ERRORS:
                raise
            _fail(ctx, NewsletterError(_FILE_SYSTEM_ERRORS[exc.errno], where=exc.filename or None,
                                       hint="fix that, then run the same command again"))


# A file that cannot be written for a reason outside this program: one line, no traceback.
_FILE_SYSTEM_ERRORS = {
    errno.ENOSPC: "the disk is full",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EDQUOT: "the disk quota is used up",
}


def _fail(ctx: click.Context, exc: NewsletterError) -> None:
    click.secho(f"error: {exc}", err=True, fg="red")
    ctx.exit(1)


pass_ctx = click.make_pass_decorator(Context)

# SQLAlchemy's pool logs a traceback when it cannot reset a connection the server dropped; the
# error that follows is ours to tell, in one line. (Without a handler, Python prints it to stderr.)
logging.getLogger("sqlalchemy").addHandler(logging.NullHandler())


@click.group(cls=NewsletterGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--site",
    "site_dir",
    default=".",
    show_default=True,
    envvar="NEWSLETTER_SITE",
    type=click.Path(file_okay=False),
    help="Site folder holding newsletter.toml (default: the current folder).",
)
@click.version_option(__version__, prog_name="newsletter")
@click.pass_context
def cli(ctx: click.Context, site_dir: str) -> None:
    """Build, preview, check and send a clinic's monthly newsletter."""
    ctx.obj = Context(site_dir)


@cli.command()
@click.argument("directory", type=click.Path(file_okay=False))
def init(directory: str) -> None:
    """Create a new site folder with newsletter.toml, .env.example, articles/ and issues/."""
    created = create_site(Path(directory))
    for path in created:
        click.echo(f"created {path}")
    click.echo("Before sending to real people, fill in:")
    for item in TO_FILL_IN:
        click.echo(f"  - {item}")


_OWN_PROCESS = False  # set by ``main``: the process is this command's, not a test's or a host program's


def freeze_what_lives_on() -> None:
    """Keep the garbage collector off everything made so far, in a process of our own.

    What start-up built (modules, the rendered issue, compiled statements) lives until
    the process ends; a long send's full collection walked all of it (about 110,000
    objects, 48 ms) while every connection waited on the interpreter lock. In a
    program that merely calls the CLI (the tests' ``CliRunner``) objects frozen would
    never be collected, so there it does nothing.
    """
    if _OWN_PROCESS:
        gc.freeze()


def main(argv: list[str] | None = None) -> None:
    """The process's entry point (``newsletter``, ``python -m newsletters``, ``send.py``)."""
    global _OWN_PROCESS
    _OWN_PROCESS = True
    # On the way out Python searches every object for reference cycles once more, then frees the
    # modules: 0.1 s after a send (measured: 0.09-0.13 s from the last atexit call to the parent
    # reaping it, 0.02 s frozen), a tenth of start-up. Nothing waits on that search here: files
    # and connections are closed by then, and whatever is not in a cycle is still freed.
    atexit.register(gc.freeze)
    try:
        cli.main(args=argv, prog_name="newsletter", standalone_mode=True)
    except KeyboardInterrupt:  # Ctrl-C outside a send (which handles it itself): the shell's convention
        sys.exit(130)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
