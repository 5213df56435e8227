"""Schema revisions of a project file, run through Alembic from code (no alembic.ini needed).

To add a revision during development: change ``schema.py``, then write
``migrations/versions/v<release>_<letter>.py`` by hand or with
``alembic -c /dev/null -x ... revision --autogenerate`` against a scratch copy; set
``schema.HEAD_REVISION`` to it, and keep a project file written by the previous revision in
``tests/data/store/`` (the upgrade tests open every file there).
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import Connection

from engine.store import schema

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config():
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def script_directory():
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config())


def head() -> str:
    return script_directory().get_current_head()


def known_revisions() -> list[str]:
    """Every revision this program knows, oldest first."""
    return [s.revision for s in reversed(list(script_directory().walk_revisions()))]


def current_revision(conn: Connection) -> str | None:
    """The revision stamped in the file, or None when it has no alembic_version table."""
    found = conn.exec_driver_sql(
        "SELECT name FROM sqlite_master WHERE type='table' AND name='alembic_version'").first()
    if found is None:
        return None
    revs = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalars().all()
    if len(revs) > 1:
        raise ValueError(f"the file names several schema revisions: {', '.join(revs)}")
    return revs[0] if revs else None


def upgrade(conn: Connection, target: str = "heads") -> None:
    """Upgrade the file on ``conn`` (inside the caller's transaction) to ``target``."""
    from alembic import command

    cfg = alembic_config()
    cfg.attributes["connection"] = conn
    command.upgrade(cfg, target)


def check_head_matches_models() -> None:
    if head() != schema.HEAD_REVISION:  # pragma: no cover - a developer error, caught by tests
        raise RuntimeError(f"schema.HEAD_REVISION={schema.HEAD_REVISION} but the newest revision is {head()}")
