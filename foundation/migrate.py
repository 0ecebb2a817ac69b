"""Bring a subscriber database to the newest schema, run from code rather than the alembic command.

Every open of the store calls ``upgrade``; it costs one query when the database
is already current, so an old database upgrades by itself and opening twice
(or from two processes) is harmless.

That one query is plain SQL against alembic's own ``alembic_version`` table,
compared with ``HEAD``: alembic itself is imported, and its migration scripts
read, only when there is something to upgrade: importing it and reading the
scripts cost 0.1 s of every command's start-up, so of every sender's
(``python -X importtime``). The test suite checks that ``HEAD`` names the
newest script.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

# The newest revision in migrations/versions; a new migration moves it (tests/test_recipients_store.py).
HEAD = "0011_deliveries_hot_updates"


def alembic_config(connection: sa.Connection | None = None):
    """Alembic's configuration for our scripts (``alembic.config.Config``), on ``connection`` if given."""
    from alembic.config import Config  # deferred: see the module's docstring

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest revision, as alembic reads it from the scripts."""
    from alembic.script import ScriptDirectory  # deferred: see the module's docstring

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: sa.Engine) -> str | None:
    """The revision the database is at; None before the first upgrade."""
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table("alembic_version"):
            return None
        return conn.scalar(sa.text("SELECT version_num FROM alembic_version"))


def upgrade(engine: sa.Engine, revision: str = "head") -> str | None:
    """Apply every missing revision up to ``revision``; return the revision the database is at."""
    target = HEAD if revision == "head" else revision
    if current_revision(engine) == target:
        return target
    from alembic import command  # deferred: see the module's docstring

    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), revision)
    return current_revision(engine)
