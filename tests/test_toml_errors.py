"""Hand-edited TOML files: a typo is named by file and line, in words the person who made it can act on."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from newsletters.cli import cli
from newsletters.config import Site
from newsletters.errors import ConfigError, IssueFileError
from newsletters.issues import load_issue
from newsletters.toml_errors import plain_words


def _issue(tmp_path, text: str):
    path = tmp_path / "2026-12.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_an_unclosed_quote_says_so_names_the_line_and_shows_it(tmp_path):
    path = _issue(tmp_path, 'date = 2026-12-01\nsubject = "Winter skin\n\n[[articles]]\nsource = "a.md"\n')
    with pytest.raises(IssueFileError) as caught:
        load_issue(path)
    error = caught.value
    assert error.where == f"{path}:2"
    assert error.message.startswith("not valid TOML: a quoted value is not closed on this line: add the closing \"")
    assert 'line 2 reads: subject = "Winter skin' in error.message
    assert "Illegal character" in error.hint  # the parser's own words are still there, last


def test_a_section_heading_without_its_closing_bracket_says_so(site_dir):
    config = site_dir / "newsletter.toml"
    config.write_text(config.read_text(encoding="utf-8").replace("[sender]", "[sender"), encoding="utf-8")
    result = CliRunner().invoke(cli, ["--site", str(site_dir), "build", "issues/2026-11.toml"])
    assert result.exit_code == 1
    [line] = result.stderr.splitlines()
    assert line.startswith(f"error: {site_dir.resolve() / 'newsletter.toml'}:")
    assert "a [section] heading is missing its closing ]: write it like [site]; line" in line
    assert "reads: [sender" in line


@pytest.mark.parametrize(
    "text, plain",
    [
        ('[[articles]\nsource = "a"\n', "a [[…]] heading is missing its closing ]]"),
        ('tags = ["a", "b"\nmode = "full"\n', "a list that opens with [ is missing its closing ]"),
        ("subject = Winter news\n", "text goes between double quotes"),
        ('subject "Winter"\n', "its = is missing"),
        ('intro = """Hello\n', "a quoted value is never closed"),
        ('[cta]\ntext = "a"\n[cta]\nurl = "b"\n', "this [section] appears twice"),
        ('subject = "a"\nsubject = "b"\n', "a key is set twice"),
    ],
)
def test_the_usual_typos_in_plain_words(tmp_path, text, plain):
    with pytest.raises(IssueFileError) as caught:
        load_issue(_issue(tmp_path, text))
    assert plain in caught.value.message


def test_a_parser_message_we_do_not_know_still_reads_as_a_sentence():
    assert plain_words("Something new went wrong (at line 3, column 1)") == "the file is not valid TOML"


def test_a_broken_newsletter_toml_is_a_config_error(site_dir):
    (site_dir / "newsletter.toml").write_text('[site]\nname = "Clinic\n', encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        Site.load(site_dir)
    assert caught.value.where.endswith("newsletter.toml:2")
