"""Opening the subscriber database: the engine, and for SQLite the settings concurrent senders rely on.

Kept apart from the store's rules because it is about the connection, not about
subscribers: WAL so the web app's readers never block a send's writer, enforced
foreign keys, and BEGIN issued by us so a writer can take the lock up front.
"""

from __future__ import annotations

import sqlite3

import sqlalchemy as sa

from foundation.errors import ConfigError, DatabaseError

# What SQLite and PostgreSQL say, and what it means for the person at the keyboard.
_CAUSES = (
    (("database or disk is full", "no space left on device", "could not extend file", "disk full"),
     "the disk holding {where} is full", "free some space, then run the same command again to resume"),
    (("readonly database", "read-only", "read only"),
     "{where} cannot be written (read-only file, folder or file system)",
     "give this user write access to the file and its folder, then run the command again"),
    (("database is locked", "could not obtain lock", "lock timeout"),
     "{where} is locked by another program", "wait for it to finish, then run the command again"),
    (("unable to open database file", "disk i/o error", "no such table", "connection refused", "could not connect",
      "server closed the connection", "terminating connection", "connection is closed", "the connection is lost"),
     "{where} cannot be reached or has gone away",
     "check DATABASE_URL, that the file or server is there, then run the command again"),
)


def where_is(database_url: str | sa.URL) -> str:
    """The database as a person would name it: the file's path, or the server without the password."""
    url = sa.make_url(database_url) if isinstance(database_url, str) else database_url
    if url.get_backend_name() == "sqlite":
        return url.database or "the in-memory database"
    return url.render_as_string(hide_password=True)


def database_error(exc: BaseException, database_url: str | sa.URL) -> DatabaseError | None:
    """A one-line explanation of a database failure, or None when it is not one we recognise."""
    original = getattr(exc, "orig", None) or exc
    if not isinstance(original, (sqlite3.Error, sa.exc.DBAPIError)) and not _is_driver_error(original):
        return None
    text = str(original).lower()
    where = where_is(database_url)
    for needles, message, hint in _CAUSES:
        if any(needle in text for needle in needles):
            return DatabaseError(message.format(where=where), hint=hint)
    return DatabaseError(f"the database {where} failed: {str(original).strip().splitlines()[0]}",
                         hint="run the same command again to resume; if it keeps failing, check the database")


def _is_driver_error(exc: BaseException) -> bool:
    """A PEP 249 error from any driver (psycopg's classes are not importable without the extra)."""
    return any(cls.__name__ in ("OperationalError", "DatabaseError", "InterfaceError") for cls in type(exc).__mro__)


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
    """An engine for ``DATABASE_URL``; a database server's pool grows with the threads that use it.

    A send holds one connection per SMTP connection for its whole length, plus a
    few of its own; SQLAlchemy's default cap (5 + 10 overflow) made a send with
    ``SMTP_CONNECTIONS=16`` wait 30 s for a connection and abort. Our threads
    bound how many are open at once; the server's ``max_connections`` is the
    real limit, and the README says how to size it.
    """
    # pool_pre_ping: a pooled connection the server dropped (a restart, an administrator) is replaced
    # when it is next taken, instead of failing whatever took it.
    options = {} if database_url.startswith("sqlite") else {"max_overflow": -1, "pool_pre_ping": True}
    try:
        if sa.engine.make_url(database_url).get_driver_name() == "psycopg":
            # psycopg prepares a statement on the server once it has run five times, and the server then
            # keeps one plan for it: made while a first send's run was a few rows long, that plan read the
            # whole table for every share a sender reserved (1.35 ms each, against 0.1). Each statement is
            # planned for what it finds instead; the claims prepare their own (``postgres_claims``).
            options["connect_args"] = {"prepare_threshold": None}
        engine = sa.create_engine(database_url, **options)
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError) as exc:
        raise ConfigError(
            f"cannot use DATABASE_URL {database_url!r}: {exc}",
            where="environment/.env",
            hint="e.g. sqlite:///newsletter.db or postgresql+psycopg://user:password@host/db",
        ) from None
    if engine.dialect.name == "sqlite":
        _sqlite_setup(engine)
    return engine
