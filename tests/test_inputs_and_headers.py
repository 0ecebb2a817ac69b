"""Issue 9: CSV limits said as such, headers on every page, stale confirm links, and what `init` writes."""

from __future__ import annotations

import stat

import pytest
from click.testing import CliRunner

from newsletters.cli import cli
from newsletters.config import Site
from newsletters.link_settings import link_problems
from recipients import Store
from recipients.csv_table import CELL_LIMIT
from recipients.importer import ImportRejected, import_csv
from foundation.errors import RecipientError
from tests.test_web_pages import live  # noqa: F401 - the fixture: the app over real HTTP

KEY = "inputs-and-headers-secret-0123456789"
HEADING = "email,first_name,consent_at,consent_source\n"


@pytest.fixture
def store(tmp_path):
    with Store(f"sqlite:///{tmp_path / 'list.db'}", secret_key=KEY) as store:
        yield store


def test_a_cell_over_the_size_limit_is_named_as_such_with_its_line(store, tmp_path):
    big = "x" * (10 * 1024 * 1024)  # 10 MB, quoted and closed: a huge cell, not a broken quote
    path = tmp_path / "big-cell.csv"
    path.write_text(HEADING + "ann@example.org,Ann,2024-05-01,form\n"
                    f'bob@example.org,"{big}",2024-05-01,form\n' + "cat@example.org,Cat,2024-05-01,form\n")
    with pytest.raises(ImportRejected) as refused:
        import_csv(store, path)
    (problem,) = refused.value.parsed.problems
    assert "line 3" in str(problem) and f"over the limit of {CELL_LIMIT:,}" in str(problem)
    assert "quote" not in str(problem)
    report = import_csv(store, path, skip_invalid=True)  # a big cell is one bad row: skippable
    assert sorted(row.email for row in report.added) == ["ann@example.org", "cat@example.org"]


@pytest.mark.parametrize("skip_invalid", [False, True])
def test_an_unclosed_quote_refuses_the_whole_file_even_with_skip_invalid(store, tmp_path, skip_invalid):
    tail = "".join(f"p{n}@example.org,P{n},2024-05-01,form\n" for n in range(2000))
    path = tmp_path / "unclosed.csv"
    path.write_text(HEADING + 'ann@example.org,"Ann' + "y" * (10 * 1024 * 1024) + ",2024-05-01,form\n" + tail)
    with pytest.raises(RecipientError, match=r"a quote opened on line 2 is never closed") as refused:
        import_csv(store, path, skip_invalid=skip_invalid)
    assert "line 2" in str(refused.value)
    assert store.stats()["total"] == 0  # nothing half-imported


def test_every_page_has_a_csp_and_the_server_header_names_no_versions(live):  # noqa: F811
    issue = live.site.build_dir / "2026-11"
    issue.mkdir(parents=True)
    (issue / "web.html").write_text("<!doctype html><title>Issue</title><p>Hello</p>")
    for path in ("/", "/subscribe", "/issues/2026-11/", "/no-such-page", "/unsubscribe/not-a-token"):
        reply = live.get(path)
        assert "default-src 'none'" in reply.headers["Content-Security-Policy"], path
        assert reply.headers["Server"] == "newsletter", (path, reply.headers["Server"])


def test_a_confirm_link_from_before_an_unsubscribe_and_a_new_sign_up_confirms_nothing(live):  # noqa: F811
    assert live.subscribe("jo@example.org").status == 200
    old_link = live.confirm_link("jo@example.org")
    assert live.get(old_link).status == 200 and live.store.get("jo@example.org").status == "active"
    person = live.store.get("jo@example.org")
    live.store.unsubscribe(person.public_id, "link")
    for path in live.site.outbox_dir.rglob("*"):  # start the outbox afresh, so the next link is the only one
        if path.is_file():
            path.unlink()
    assert live.subscribe("jo@example.org").status == 200
    new_link = live.confirm_link("jo@example.org")
    assert new_link != old_link

    stale = live.get(old_link)
    assert stale.status == 400 and "Nothing has been changed" in stale.body
    assert live.store.get("jo@example.org").status == "pending"
    assert live.get(new_link).status == 200
    assert live.store.get("jo@example.org").status == "active"


def test_init_writes_a_private_env_whose_links_cannot_be_sent_as_they_are(tmp_path, monkeypatch):
    for name in ("PUBLIC_URL", "SECRET_KEY", "SMTP_HOST"):
        monkeypatch.delenv(name, raising=False)
    result = CliRunner().invoke(cli, ["init", str(tmp_path / "new")])
    assert result.exit_code == 0, result.output
    env = tmp_path / "new" / ".env"
    assert stat.S_IMODE(env.stat().st_mode) == 0o600
    text = env.read_text()
    assert "SECRET_KEY=change-me" not in text and "PUBLIC_URL=" in text
    assert "PUBLIC_URL" in result.output and "fill in" in result.output
    monkeypatch.setenv("SMTP_HOST", "smtp.mail-provider.invalid")  # mail would leave this machine
    problems = {problem.setting for problem in link_problems(Site.load(tmp_path / "new"))}
    assert problems == {"PUBLIC_URL", "sender.address"}
