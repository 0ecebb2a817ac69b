"""The command line as a user meets it: help everywhere, errors as one line."""

from __future__ import annotations

import click
from click.testing import CliRunner

from newsletters.cli import cli


def _walk(group: click.Group, prefix: str = ""):
    for name, command in group.commands.items():
        yield f"{prefix}{name}", command
        if isinstance(command, click.Group):
            yield from _walk(command, f"{prefix}{name} ")


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
