"""PostgreSQL for the tests: one throwaway server per session, a fresh database per test.

``database_url`` is parametrized ``sqlite`` / ``postgresql``: a test (or a fixture
such as a store or a site) that asks for it runs once on each. The server is
``bench.postgres_server.TemporaryPostgres`` (initdb as a non-root user into a
temporary folder, loopback only, a free port), started on first use and stopped
at the end of the session. Each test gets its own empty database, so tests stay
independent and may run migrations from scratch.

Where PostgreSQL is not installed the PostgreSQL half is skipped, saying how to
install it; ``make test`` installs it first and sets NEWSLETTER_REQUIRE_SERVERS=1,
so there a missing server is a failure, never a silent skip.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest

from bench.postgres_server import PostgresUnavailable, TemporaryPostgres

DATABASES = ["sqlite", "postgresql"]
_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def postgres_server():
    """The session's PostgreSQL server (started on first use)."""
    try:
        server = TemporaryPostgres().__enter__()
    except PostgresUnavailable as exc:
        if os.environ.get("NEWSLETTER_REQUIRE_SERVERS") == "1":
            pytest.fail(str(exc))
        pytest.skip(f"{exc}; the SQLite half of these tests still runs")
    try:
        yield server
    finally:
        server.stop()


def fresh_database_url(kind: str, folder: Path, request: pytest.FixtureRequest) -> str:
    """An empty database of ``kind``: a SQLite file in ``folder``, or a new database on the session's server."""
    if kind == "sqlite":
        return f"sqlite:///{folder / 'newsletter.db'}"
    server: TemporaryPostgres = request.getfixturevalue("postgres_server")
    name = f"test_{os.getpid()}_{next(_numbers)}"
    url = server.create_database(name, template="template0")
    request.addfinalizer(lambda: server.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    return url


@pytest.fixture(params=DATABASES)
def database_url(request, tmp_path) -> str:
    """A fresh, empty database on SQLite and, as a second run of the test, on PostgreSQL."""
    return fresh_database_url(request.param, tmp_path, request)



@pytest.fixture
def site_database(database_url, monkeypatch) -> str:
    """Every site a test opens in this process uses a fresh database, on SQLite and on PostgreSQL.

    Through the environment (which wins over ``.env``), so tests that rewrite
    ``.env`` with their SMTP settings keep the database.
    """
    monkeypatch.setenv("DATABASE_URL", database_url)
    return database_url
