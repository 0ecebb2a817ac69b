"""The command line as a user meets it: help everywhere, errors as one line."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys

import click
from click.testing import CliRunner

import newsletters.cli
from newsletters.cli import COMMAND_MODULES, cli


def _walk(group: click.Group, prefix: str = ""):
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        yield f"{prefix}{name}", command
        if isinstance(command, click.Group):
            yield from _walk(command, f"{prefix}{name} ")


def test_every_command_is_looked_up_in_the_module_that_defines_it():
    """Commands load with their own module only; one missing from COMMAND_MODULES would not be found."""
    for module in pkgutil.iter_modules(newsletters.cli.__path__):
        importlib.import_module(f"newsletters.cli.{module.name}")
    defined = {name: command.callback.__module__ for name, command in cli.commands.items() if name != "init"}
    assert defined == {name: f"newsletters.cli.{module}" for name, module in COMMAND_MODULES.items()}


def test_a_send_starts_without_the_web_server_or_alembic():
    """What every sender pays at start-up: Flask and alembic cost it 0.15 s and a send needs neither
    (nor, on SQLite, psycopg: 50 ms)."""
    probe = ("import sys; from newsletters.cli import cli; cli.get_command(None, 'send'); "
             "print(sorted(m for m in ('flask', 'alembic', 'newsletters.preview', 'psycopg') if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"


def test_every_command_has_help_text():
    missing = [name for name, command in _walk(cli) if not (command.help or "").strip()]
    assert missing == [], f"commands without help text: {missing}"


def test_init_creates_a_site_that_loads(tmp_path):
    from newsletters.config import Site

    result = CliRunner().invoke(cli, ["init", str(tmp_path / "new")])
    assert result.exit_code == 0, result.output
    site = Site.load(tmp_path / "new")
    assert site.config.name == "Your Clinic"
    assert (tmp_path / "new" / ".env.example").is_file()
    assert (tmp_path / "new" / "articles").is_dir() and (tmp_path / "new" / "issues").is_dir()


def test_init_refuses_an_existing_site(tmp_path):
    runner = CliRunner()
    runner.invoke(cli, ["init", str(tmp_path)])
    result = runner.invoke(cli, ["init", str(tmp_path)])
    assert result.exit_code == 1
    assert "a site already exists here" in result.output


def test_missing_site_is_one_line_error(tmp_path):
    result = CliRunner().invoke(cli, ["--site", str(tmp_path), "build", "issues/x.toml"])
    assert result.exit_code == 1
    assert "no newsletter.toml here" in result.output
    assert "Traceback" not in result.output
