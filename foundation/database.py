"""Opening the subscriber database: the engine, and for SQLite the settings concurrent senders rely on.

Kept apart from the store's rules because it is about the connection, not about
subscribers: WAL so the web app's readers never block a send's writer, enforced
foreign keys, and BEGIN issued by us so a writer can take the lock up front.
"""

from __future__ import annotations

import sqlalchemy as sa

from foundation.errors import ConfigError


def _sqlite_setup(engine: sa.Engine) -> None:
    """WAL (readers never block the writer), enforced foreign keys, and BEGIN under our control."""

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None  # let the "begin" hook below issue BEGIN
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn):
        # Writers take the lock up front, so a read-then-write cannot race another writer.
        mode = conn.get_execution_options().get("sqlite_begin", "")
        conn.exec_driver_sql(f"BEGIN {mode}".strip())


def create_engine(database_url: str) -> sa.Engine:
    try:
        engine = sa.create_engine(database_url)
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError) as exc:
        raise ConfigError(
            f"cannot use DATABASE_URL {database_url!r}: {exc}",
            where="environment/.env",
            hint="e.g. sqlite:///newsletter.db or postgresql+psycopg://user:password@host/db",
        ) from None
    if engine.dialect.name == "sqlite":
        _sqlite_setup(engine)
    return engine
