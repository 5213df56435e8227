"""Alembic revisions, named by the release that introduced them (v0.1.0.a, v0.1.0.b, ...)."""
