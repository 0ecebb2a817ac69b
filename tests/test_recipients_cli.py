"""``newsletter recipients …`` as a user types it, on the example site's real database file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from newsletters.cli import cli

KEY = "test-secret-key-for-recipients-0123456789"
MESSY = Path(__file__).resolve().parent / "fixtures" / "csv" / "messy_clinic_export_bom_crlf.csv"


@pytest.fixture
def run(site_dir, monkeypatch):
    monkeypatch.setenv("SECRET_KEY", KEY)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    runner = CliRunner()

    def invoke(*args, input=None):
        return runner.invoke(cli, ["--site", str(site_dir), "recipients", *args], input=input)

    return invoke


def test_demo_import_of_the_example_list_into_a_fresh_database(site_dir):
    """What `make demo` runs: the installed command, the file named relative to the site folder."""
    env = {**os.environ, "SECRET_KEY": KEY}
    env.pop("DATABASE_URL", None)
    command = [sys.executable, "-m", "newsletters", "--site", str(site_dir), "recipients", "import", "subscribers.csv"]

    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=site_dir.parent, timeout=60)

    assert done.returncode == 0, done.stderr
    assert "12 records read" in done.stdout and "12 added" in done.stdout
    assert (site_dir / "newsletter.db").is_file()


def test_import_with_bad_rows_lists_each_by_line_imports_nothing_and_exits_1(run):
    result = run("import", str(MESSY))

    assert result.exit_code == 1
    assert "line 9: first_name: holds a line break" in result.stderr
    assert "line 22: email:" in result.stderr
    assert "error:" in result.stderr and "13 invalid rows; nothing was imported" in result.stderr
    assert run("stats").output.splitlines()[-1].split() == ["eligible:", "0"]


def test_import_with_skip_invalid_imports_the_rest_and_still_lists_the_bad_rows(run):
    result = run("import", str(MESSY), "--skip-invalid")

    assert result.exit_code == 0, result.output
    assert "skipped  line 13: first_name: holds '=?'" in result.output
    assert "merged   line 19: same address as line 15" in result.output
    assert "4 added" in result.output
    assert "1 duplicates merged, 13 invalid rows skipped" in result.output


def test_add_show_unsubscribe_and_stats(run):
    assert run("add", "jane@example.com", "--first-name", "Jane", "--source", "reception desk").exit_code == 0

    shown = run("show", "JANE@example.com").output
    assert "status:     active" in shown and "Jane" in shown
    assert "subscribed" in shown and "method=admin" in shown and "source='reception desk'" in shown

    assert run("unsubscribe", "jane@example.com", "--channel", "reply").output.startswith("unsubscribed")
    again = run("unsubscribe", "jane@example.com")
    assert again.exit_code == 0 and "nothing changed" in again.output
    assert "channel=reply" in run("show", "jane@example.com").output

    refused = run("add", "jane@example.com")
    assert refused.exit_code == 1 and "already on the list (status unsubscribed)" in refused.stderr

    stats = dict(line.split(":") for line in run("stats").output.splitlines())
    assert int(stats["unsubscribed"]) == 1 and int(stats["eligible"]) == 0


def test_list_filters_by_status(run):
    run("add", "a@example.com")
    run("add", "b@example.com")
    run("unsubscribe", "b@example.com")

    listed = run("list", "--status", "active")

    assert "a@example.com" in listed.output and "b@example.com" not in listed.output


def test_export_json_holds_the_ledger(run):
    run("add", "jane@example.com", "--first-name", "Jane")
    run("unsubscribe", "jane@example.com")

    exported = run("export", "--format", "json", "--email", "jane@example.com")

    [person] = json.loads(exported.stdout)
    assert person["email"] == "jane@example.com"
    assert [e["event"] for e in person["ledger"]] == ["subscribed", "unsubscribed"]
    csv_lines = run("export", "--format", "csv").stdout.splitlines()
    assert csv_lines[0].startswith("id,public_id,email") and len(csv_lines) == 3


def test_forget_then_reimport_is_refused(run, site_dir):
    assert run("import", "subscribers.csv").exit_code == 0

    forgot = run("forget", "amelia.hart@example.com", "--yes")
    reimport = run("import", "subscribers.csv")

    assert forgot.exit_code == 0 and "personal data erased" in forgot.output
    assert "refused  line 2: amelia.hart@example.com is erased; not re-activated" in reimport.output
    assert run("show", "amelia.hart@example.com").output.startswith("email:      (erased)")
    assert "amelia" not in run("export").stdout.lower()


def test_forget_asks_before_erasing(run):
    run("add", "jane@example.com")
    answer_no = run("forget", "jane@example.com", input="n\n")
    assert answer_no.exit_code == 1
    assert "status:     active" in run("show", "jane@example.com").output


def test_errors_are_one_line_with_exit_1(run):
    for args, message in [
        (("show", "nobody@example.com"), "no subscriber with this address"),
        (("add", "not-an-address"), "not a valid e-mail address"),
        (("import", "no-such-file.csv"), "no such file"),
        (("add", "jane@example.com", "--first-name", "=?utf-8?q?x?="), "first_name holds '=?'"),
    ]:
        result = run(*args)
        assert result.exit_code == 1, args
        assert message in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
        assert "Traceback" not in result.stderr


def test_missing_secret_key_explains_how_to_make_one(site_dir, monkeypatch):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    result = CliRunner().invoke(cli, ["--site", str(site_dir), "recipients", "stats"])
    assert result.exit_code == 1
    assert "SECRET_KEY is not set" in result.stderr and "token_urlsafe" in result.stderr


def test_every_command_has_help(run):
    for command in ("import", "add", "list", "show", "unsubscribe", "export", "forget", "stats", "migrate"):
        result = run(command, "--help")
        assert result.exit_code == 0 and "Usage:" in result.output
    assert "serve" in CliRunner().invoke(cli, ["--help"]).output
