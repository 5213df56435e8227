"""Only engine/store imports SQLAlchemy or Alembic (docs/ARCHITECTURE.md)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
IMPORT = re.compile(r"^\s*(from|import)\s+(sqlalchemy|alembic)\b", re.MULTILINE)


def test_only_the_store_imports_sqlalchemy():
    offenders = []
    for package in ("engine", "logos_desktop", "training"):
        for path in (ROOT / package).rglob("*.py"):
            rel = path.relative_to(ROOT)
            if rel.parts[:2] == ("engine", "store"):
                continue
            if IMPORT.search(path.read_text(encoding="utf-8", errors="replace")):
                offenders.append(str(rel))
    assert offenders == [], f"SQLAlchemy/Alembic imported outside engine/store: {offenders}"


def test_the_store_does_import_it():  # the check above would pass vacuously if the pattern broke
    assert IMPORT.search((ROOT / "engine" / "store" / "schema.py").read_text())
