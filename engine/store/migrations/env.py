"""Alembic env.py: run the revisions on the connection that engine.store.migrate hands over.

There is no alembic.ini at run time: engine.store.migrate builds the Config in code and passes an
open connection (already inside a transaction) through ``config.attributes["connection"]``.
SQLite cannot ALTER most things in place, so every revision runs in batch mode (copy and move).
"""

from alembic import context

from engine.store.schema import metadata
from engine.store.textindex import include_in_comparison

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only engine.store.migrate runs this environment
    raise RuntimeError("engine.store.migrations runs only through engine.store.migrate")


context.configure(connection=connection, target_metadata=metadata, render_as_batch=True,
                  compare_type=True, include_name=include_in_comparison)  # FTS5 tables: SQL written by hand
with context.begin_transaction():
    context.run_migrations()
