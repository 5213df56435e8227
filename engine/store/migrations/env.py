"""Alembic env.py: run the revisions on the connection that engine.store.migrate hands over.

There is no alembic.ini at run time: engine.store.migrate builds the Config in code and passes an
open connection (already inside a transaction) through ``config.attributes["connection"]``.
SQLite cannot ALTER most things in place, so every revision runs in batch mode (copy and move).
"""

from alembic import context

from engine.store.schema import metadata
from engine.store.textindex import is_index_table

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only engine.store.migrate runs this environment
    raise RuntimeError("engine.store.migrations runs only through engine.store.migrate")


def _include_name(name, type_, parent_names) -> bool:
    """Autogenerate leaves out the FTS5 index tables (SQL written by hand in the revisions)."""
    return not (type_ == "table" and name is not None and is_index_table(name))


context.configure(connection=connection, target_metadata=metadata, render_as_batch=True,
                  compare_type=True, include_name=_include_name)
with context.begin_transaction():
    context.run_migrations()
