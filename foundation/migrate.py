"""Bring a subscriber database to the newest schema, run from code rather than the alembic command.

Every open of the store calls ``upgrade``; it costs one query when the database
is already current, so an old database upgrades by itself and opening twice
(or from two processes) is harmless.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config(connection: sa.Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: sa.Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: sa.Engine, revision: str = "head") -> str | None:
    """Apply every missing revision up to ``revision``; return the revision the database is at."""
    target = head_revision() if revision == "head" else revision
    if current_revision(engine) == target:
        return target
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), revision)
    return current_revision(engine)
