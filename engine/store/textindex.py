"""Substring indexes on SMILES and sequences: SQLite FTS5 tables with the trigram tokenizer.

``results.smiles`` and ``results.sequence`` each have an FTS5 table with ``results`` as its
external content (the text is not stored twice, only its trigrams and their positions), kept in
step with ``results`` by triggers: a row inserted, deleted or whose SMILES / sequence changes
updates the index in the same transaction, whoever writes it (this program, the ``sqlite3``
shell). A migration that copies ``results`` (Alembic batch mode) drops these triggers with the
old table and must create them again (``trigger_sql``).

The index only proposes candidates. A query keeps the exact condition it always had
(``instr(smiles, pattern) > 0``, case-sensitive; ``instr(upper(sequence), upper(pattern)) > 0``,
case-insensitive) and adds "and the row is among the index's candidates":

* SMILES: a case-sensitive trigram index, so a phrase query for the pattern finds exactly the rows
  whose SMILES contains it (positions make it a substring match, not three separate trigrams).
* sequences: a case-folding trigram index over the sequence as stored. SQLite's ``upper()`` folds
  ASCII letters only and FTS5 folds every letter one character to one character, so every row the
  exact condition accepts is among the candidates (the index can only propose more).

Patterns shorter than three characters have no trigram: those (and any pattern with a NUL) are
answered by the plain scan, as before. SQLite builds without FTS5 or the trigram tokenizer
(before 3.34) get no index: the migration skips it and queries scan; opening the file later with
a SQLite that has the tokenizer builds it (``Project._ensure_text_index``).
"""

from __future__ import annotations

import sqlite3
from functools import lru_cache

from sqlalchemy.engine import Connection

SMILES_TABLE = "result_smiles_fts"
SEQUENCE_TABLE = "result_sequence_fts"
TABLES = (SMILES_TABLE, SEQUENCE_TABLE)
MIN_PATTERN = 3  # the trigram tokenizer matches nothing for shorter patterns

# (table, column, tokenizer options)
_INDEXES = ((SMILES_TABLE, "smiles", "trigram case_sensitive 1"),
            (SEQUENCE_TABLE, "sequence", "trigram case_sensitive 0"))


def create_table_sql(table: str, column: str, tokenize: str) -> str:
    # external content: the text stays in results only (rowid = results.id), yet the table can be
    # read whole (sqlite3's iterdump, database browsers) and checked against results;
    # columnsize=0: no per-row size table (nothing is ranked)
    return (f"CREATE VIRTUAL TABLE {table} USING fts5({column}, content='results', content_rowid='id', "
            f"columnsize=0, tokenize='{tokenize}')")


def trigger_sql(table: str, column: str) -> dict[str, str]:
    """The three triggers that keep ``table`` in step with ``results.column``, by name."""
    ins = f"INSERT INTO {table}(rowid, {column})"
    dele = f"INSERT INTO {table}({table}, rowid, {column})"
    return {
        f"{table}_ai": (f"CREATE TRIGGER {table}_ai AFTER INSERT ON results "
                        f"WHEN new.{column} IS NOT NULL BEGIN "
                        f"{ins} VALUES (new.id, new.{column}); END"),
        f"{table}_ad": (f"CREATE TRIGGER {table}_ad AFTER DELETE ON results "
                        f"WHEN old.{column} IS NOT NULL BEGIN "
                        f"{dele} VALUES ('delete', old.id, old.{column}); END"),
        f"{table}_au": (f"CREATE TRIGGER {table}_au AFTER UPDATE OF id, {column} ON results BEGIN "
                        f"{dele} SELECT 'delete', old.id, old.{column} WHERE old.{column} IS NOT NULL; "
                        f"{ins} SELECT new.id, new.{column} WHERE new.{column} IS NOT NULL; END"),
    }


def insert_triggers() -> dict[str, str]:
    """The AFTER INSERT triggers (a bulk insert replaces them by one INSERT ... SELECT)."""
    return {f"{t}_ai": trigger_sql(t, c)[f"{t}_ai"] for t, c, _ in _INDEXES}


def fill_sql(table: str, column: str, where: str = "") -> str:
    cond = f"{column} IS NOT NULL" + (f" AND {where}" if where else "")
    return f"INSERT INTO {table}(rowid, {column}) SELECT id, {column} FROM results WHERE {cond}"


def fill_from_id_sql() -> list[str]:
    """One INSERT ... SELECT per index for the results from an id on (one parameter: that id);
    a bulk insert runs them instead of the AFTER INSERT triggers."""
    return [fill_sql(table, column, "id >= ?") for table, column, _ in _INDEXES]


@lru_cache(maxsize=1)
def available() -> bool:
    """Whether this SQLite library has FTS5 with the trigram tokenizer and its options (3.34+)."""
    con = sqlite3.connect(":memory:")
    try:
        for table, column, tokenize in _INDEXES:
            con.execute(create_table_sql(table, column, tokenize))
        return True
    except sqlite3.Error:
        return False
    finally:
        con.close()


def present(conn: Connection) -> bool:
    """Whether the file has both indexes and all their triggers."""
    wanted = list(TABLES)
    for table, column, _ in _INDEXES:
        wanted += list(trigger_sql(table, column))
    found = conn.exec_driver_sql(
        f"SELECT count(*) FROM sqlite_master WHERE name IN ({', '.join('?' * len(wanted))})",
        tuple(wanted)).scalar()
    return found == len(wanted)


def present_any(conn: Connection) -> bool:
    return conn.exec_driver_sql(
        f"SELECT count(*) FROM sqlite_master WHERE name IN ({', '.join('?' * len(TABLES))})",
        tuple(TABLES)).scalar() > 0


def create(conn: Connection) -> None:
    """Create both indexes with their triggers and index every existing row (inside the caller's
    transaction). The caller checks ``available()`` first."""
    for table, column, tokenize in _INDEXES:
        conn.exec_driver_sql(create_table_sql(table, column, tokenize))
        conn.exec_driver_sql(fill_sql(table, column))
        for sql in trigger_sql(table, column).values():
            conn.exec_driver_sql(sql)


def drop(conn: Connection) -> None:
    for table, column, _ in _INDEXES:
        for name in trigger_sql(table, column):
            conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {name}")
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table}")


def is_index_table(name: str) -> bool:
    """The FTS5 tables and the shadow tables SQLite makes for them (``*_data``, ``*_idx``, ...):
    not in the SQLAlchemy models, so schema comparisons leave them out."""
    return any(name == t or name.startswith(t + "_") for t in TABLES)


def include_in_comparison(name, type_, parent_names) -> bool:  # noqa: ARG001 - Alembic's signature
    """Alembic's ``include_name`` hook for schema comparisons (autogenerate, and the test that
    the models match the revisions): every object except the FTS5 index tables."""
    return not (type_ == "table" and name is not None and is_index_table(name))


def phrase(pattern: str) -> str:
    """An FTS5 query matching ``pattern`` as one phrase (a substring, for the trigram tokenizer)."""
    return '"' + pattern.replace('"', '""') + '"'


def usable_pattern(pattern: str) -> bool:
    return len(pattern) >= MIN_PATTERN and "\x00" not in pattern


def candidates(conn: Connection, table: str, pattern: str, cap: int) -> list[int] | None:
    """Ids of the rows the index proposes for ``pattern`` (ascending), or None when there are
    more than ``cap`` of them: a common pattern is answered faster by the scan, which stops
    after one page."""
    rows = conn.connection.driver_connection.execute(  # plain sqlite3: thousands of rowids, fast
        f"SELECT rowid FROM {table} WHERE {table} MATCH ? LIMIT ?", (phrase(pattern), cap + 1)).fetchall()
    return None if len(rows) > cap else [r[0] for r in rows]
