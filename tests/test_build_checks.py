"""`build` shows the same pre-send findings as `check`, without refusing to build."""

from __future__ import annotations

import shutil

from click.testing import CliRunner

from newsletters.cli import cli
from tests.conftest import POM_EXPORT


def test_build_prints_findings_but_still_writes_the_issue(site_dir):
    shutil.copy(POM_EXPORT, site_dir / "articles" / "medical-uses-of-botox.txt")
    (site_dir / "issues" / "botox.toml").write_text(
        'subject = "Botox news"\npreheader = "What else it treats"\ndate = 2026-12-01\nslug = "botox"\n'
        '[[articles]]\nsource = "articles/medical-uses-of-botox.txt"\nmode = "full"\n',
        encoding="utf-8",
    )
    result = CliRunner().invoke(cli, ["--site", str(site_dir), "build", "issues/botox.toml"])
    assert result.exit_code == 0, result.output
    assert (site_dir / "build" / "botox" / "email.html").is_file()
    assert "uk-pom-botulinum-toxin" in result.output
    assert "Checks: " in result.output and "error" in result.output


def test_build_without_checks_prints_no_findings(site_dir):
    result = CliRunner().invoke(cli, ["--site", str(site_dir), "build", "issues/2026-11.toml", "--no-checks"])
    assert result.exit_code == 0, result.output
    assert "Checks: " not in result.output
