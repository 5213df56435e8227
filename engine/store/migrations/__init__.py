"""Alembic environment of the project file (shipped in the package; run by engine.store.migrate)."""
