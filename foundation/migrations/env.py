"""Alembic environment: run programmatically by ``foundation.migrate`` on an open connection.

The store hands its connection in ``config.attributes["connection"]`` so the
upgrade runs on the same engine (and the same SQLite pragmas) as everything else.
"""

from __future__ import annotations

from alembic import context

from foundation.tables import metadata

config = context.config
connection = config.attributes.get("connection")
if connection is None:  # pragma: no cover - only `alembic` run by hand gets here
    raise RuntimeError("run migrations through foundation.migrate.upgrade(engine)")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite cannot ALTER most things
)
with context.begin_transaction():
    context.run_migrations()
