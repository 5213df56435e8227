"""The schema of a project file compared with the one this version writes, before any write.

A project file from someone else may hold anything SQLite can store: triggers that run on every
insert, views in place of tables, indexes on expressions. Before a file is opened for writing,
every object in its ``sqlite_master`` (tables, indexes, triggers, views) is compared with the
schema this version creates at the file's revision (``schema_sql.SCHEMA``, generated from the
migrations by ``python -m engine.store.schemacheck``; a test checks that it matches them). A file
that differs opens read-only with the differences named.

Compared: the set of objects by name and type, and each one's SQL text after collapsing
whitespace and identifier quotes (SQLAlchemy and SQLite may quote or lay out the same statement
differently). Not compared: the SQL of the FTS5 shadow tables (``*_data``, ``*_idx``,
``*_config``: SQLite's FTS5 writes them itself; only their names and that they are plain tables),
SQLite's own statistics tables (``sqlite_stat1``/``sqlite_stat4``, written by ``PRAGMA optimize``).
The substring index (FTS5 tables, shadow tables and triggers) may be absent as a whole: a SQLite
without the trigram tokenizer made the file (``textindex``).
"""

from __future__ import annotations

import re
import sys

from engine.store import textindex

_QUOTES = re.compile(r"[\"`\[\]]")
_SPACE = re.compile(r"\s+")
_AROUND = re.compile(r"\s*([(),])\s*")


_CONSTRAINT = ("PRIMARY KEY", "FOREIGN KEY", "UNIQUE", "CHECK", "CONSTRAINT")


def _split_top(body: str) -> list[str]:
    """``body`` split at the commas outside parentheses and string literals."""
    items, depth, quote, start = [], 0, None, 0
    for i, ch in enumerate(body):
        if quote:
            if ch == quote:
                quote = None
        elif ch == "'":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            items.append(body[start:i])
            start = i + 1
    items.append(body[start:])
    return items


def normalise(sql: str | None) -> str:
    """The SQL text with whitespace collapsed and identifier quotes dropped; for a CREATE TABLE,
    its table constraints sorted (Alembic's batch mode writes the foreign keys of a copied table
    in no fixed order), its columns kept in their order."""
    if sql is None:
        return ""
    sql = _QUOTES.sub("", sql)
    sql = _SPACE.sub(" ", sql).strip()
    sql = _AROUND.sub(r"\1", sql)
    if sql.upper().startswith("CREATE TABLE") and "(" in sql and sql.endswith(")"):
        head, body = sql[:sql.index("(")], sql[sql.index("(") + 1:-1]
        items = _split_top(body)
        columns = [x for x in items if not x.upper().startswith(_CONSTRAINT)]
        constraints = sorted(x for x in items if x.upper().startswith(_CONSTRAINT))
        sql = f"{head}({','.join(columns + constraints)})"
    return sql


def _text_index_names() -> set[str]:
    names = set(textindex.TABLES)
    for table, column, _ in textindex._INDEXES:
        names |= set(textindex.trigger_sql(table, column))
    return names


def _is_text_index(name: str) -> bool:
    return textindex.is_index_table(name) or name in _text_index_names()


def _is_shadow(name: str, kind: str) -> bool:
    """An FTS5 shadow table (``result_smiles_fts_data``...); the index's triggers share the prefix."""
    return (kind == "table" and textindex.is_index_table(name) and name not in textindex.TABLES
            and name not in _text_index_names())


def actual(conn) -> list[tuple]:
    """(type, name, tbl_name, sql) of every object in the file, from sqlite_master."""
    rows = conn.exec_driver_sql("SELECT type, name, tbl_name, sql FROM sqlite_master").fetchall()
    return [tuple(r) for r in rows]


def expected(revision: str) -> list[tuple] | None:
    from engine.store.schema_sql import SCHEMA

    rows = SCHEMA.get(revision)
    return list(rows) if rows is not None else None


def differences(objects: list[tuple], revision: str) -> list[str] | None:
    """What differs between a file's objects and this version's schema at ``revision``, as short
    phrases ([] when nothing does); None when this version has no schema for that revision."""
    want = expected(revision)
    if want is None:
        return None
    want_by = {name: (kind, tbl, sql) for kind, name, tbl, sql in want}
    have_by = {name: (kind, tbl, sql) for kind, name, tbl, sql in objects}
    no_index = not any(_is_text_index(n) for n in have_by)
    out: list[str] = []
    for name, (kind, tbl, sql) in sorted(have_by.items(), key=lambda kv: (kv[1][0] != "trigger", kv[0])):
        if name.startswith("sqlite_stat") and kind == "table":
            continue
        if name not in want_by:
            on = f" on {tbl}" if kind in ("trigger", "index") and tbl != name else ""
            out.append(f"an unexpected {kind} {name!r}{on}")
            continue
        wkind, wtbl, wsql = want_by[name]
        if kind != wkind:
            out.append(f"{name!r} is a {kind} where this version has a {wkind}")
        elif tbl != wtbl:
            out.append(f"the {kind} {name!r} belongs to {tbl!r}, not {wtbl!r}")
        elif _is_shadow(name, kind) or name.startswith("sqlite_autoindex_"):
            continue
        elif normalise(sql) != normalise(wsql):
            out.append(f"the {kind} {name!r} is not defined as this version defines it")
    for name, (kind, _tbl, _sql) in sorted(want_by.items()):
        if name in have_by or (no_index and _is_text_index(name)):
            continue
        out.append(f"the {kind} {name!r} is missing")
    return out


def reason(problems: list[str], revision: str) -> str:
    shown = "; ".join(problems[:3]) + (f"; and {len(problems) - 3} more" if len(problems) > 3 else "")
    return (f"its schema differs from the one this version writes at revision {revision} ({shown}); "
            "opened read-only, so that nothing stored in the file runs on a write")


def reference(revision: str) -> list[tuple]:
    """The objects a fresh file has at ``revision``, made by running the migrations (with the
    substring index where this SQLite has it)."""
    import sqlite3

    from sqlalchemy import create_engine
    from sqlalchemy.pool import StaticPool

    from engine.store import migrate

    engine = create_engine("sqlite://", poolclass=StaticPool,
                           creator=lambda: sqlite3.connect(":memory:", isolation_level=None,
                                                           check_same_thread=False))
    try:
        with engine.connect() as conn:
            with conn.begin():
                migrate.upgrade(conn, revision)
                if textindex.available() and textindex.present_any(conn) is False and \
                        migrate.known_revisions().index(revision) >= migrate.known_revisions().index("v0.1.0.c"):
                    textindex.create(conn)
            rows = actual(conn)
    finally:
        engine.dispose()
    return sorted(rows, key=lambda r: (r[0], r[1]))


def generate() -> str:
    from engine.store import migrate

    lines = ['"""Generated by ``python -m engine.store.schemacheck``: the objects of a fresh project file at',
             'each schema revision (type, name, table, SQL), as SQLite stores them. Do not edit."""', "",
             "SCHEMA = {"]
    for rev in migrate.known_revisions():
        lines.append(f"    {rev!r}: (")
        for row in reference(rev):
            lines.append(f"        {row!r},")
        lines.append("    ),")
    lines.append("}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # pragma: no cover
    from pathlib import Path

    target = Path(__file__).with_name("schema_sql.py")
    target.write_text(generate(), encoding="utf-8")
    print(f"wrote {target}", file=sys.stderr)
