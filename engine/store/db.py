"""The SQLite connection layer: pragmas, transactions, and SQLite errors turned into user messages.

Every connection gets a busy timeout and foreign keys on; the file itself is in WAL mode (set once
when the project is created or opened writable), so one process can write results while another
reads. Python's sqlite3 module is put into autocommit mode and every transaction is begun
explicitly (the SQLAlchemy "pysqlite" recipe): reads begin a deferred transaction, writes begin
``BEGIN IMMEDIATE`` so a writer takes the write lock first and waits (busy timeout) instead of
failing halfway through.
"""

from __future__ import annotations

import json
import os
import sqlite3
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import QueuePool

from engine.store.errors import (
    CorruptProjectError,
    DiskFullError,
    NotAProjectError,
    ProjectError,
    ProjectLockedError,
    ReadOnlyProjectError,
)

SQLITE_HEADER = b"SQLite format 3\x00"
# 32 MB page cache (default 2 MB): score and sort indexes of ~100k results stay in memory.
CACHE_KIB = 32768


def _make_dumps():
    """The JSON text of every JSON column, from SQLAlchemy and from the bulk insert alike.

    orjson writes it about 5 times faster than ``json.dumps`` (compact, UTF-8, NaN and infinity as
    null, numpy numbers as numbers); what orjson refuses (integers over 64 bits, other objects)
    goes to ``json.dumps``, which raises TypeError for what JSON cannot hold."""
    try:
        import orjson
    except ImportError:  # pragma: no cover - orjson is a dependency
        return json.dumps
    plain, extra = orjson.dumps, orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY

    def dumps(obj) -> str:
        try:
            return plain(obj).decode()
        except TypeError:
            try:
                return plain(obj, option=extra).decode()
            except TypeError:
                return json.dumps(obj)

    return dumps


dumps = _make_dumps()


def harden(connection: sqlite3.Connection) -> None:
    """SQLite's defensive mode (SQLITE_DBCONFIG_DEFENSIVE: no writable_schema, no direct writes to
    shadow tables or sqlite_dbpage, no journal_mode=OFF), where Python exposes it:
    ``Connection.setconfig`` is new in Python 3.12. Python 3.11 has no way to set it (the
    sqlite3 module does not expose sqlite3_db_config), so there only ``trusted_schema`` applies."""
    flag = getattr(sqlite3, "SQLITE_DBCONFIG_DEFENSIVE", None)
    setconfig = getattr(connection, "setconfig", None)
    if flag is not None and setconfig is not None:
        setconfig(flag, True)


def defensive_available() -> bool:
    return hasattr(sqlite3, "SQLITE_DBCONFIG_DEFENSIVE") and hasattr(sqlite3.Connection, "setconfig")


def make_engine(path: Path, *, read_only: bool = False, busy_timeout_s: float = 5.0,
                pragmas: dict | None = None, trusted_schema: bool = False) -> Engine:
    """An Engine on one project file. ``pragmas``: extra per-connection pragmas (tests).

    Every connection runs with ``PRAGMA trusted_schema = OFF`` (functions with side effects and
    virtual tables that are not marked innocuous may not be used from the file's triggers and
    views) and, where Python offers it, defensive mode. ``trusted_schema=True`` is for a file
    whose schema was compared equal to the one this version writes (``schemacheck``), or that we
    just created: its only triggers are our own, which keep the FTS5 substring index, and SQLite
    does not mark FTS5 innocuous, so with the pragma OFF those triggers fail
    ("unsafe use of virtual table")."""
    path = Path(path).resolve()
    # file:///C:/... on Windows, file:///home/... elsewhere; '?', '#', '%' and spaces escaped
    uri = path.as_uri() + ("?mode=ro" if read_only else "?mode=rw")
    if read_only and needs_immutable(path):
        uri += "&immutable=1"

    def creator():
        # isolation_level=None: the driver never begins transactions on its own; we do.
        con = sqlite3.connect(uri, uri=True, timeout=busy_timeout_s, isolation_level=None,
                              check_same_thread=False)
        harden(con)
        return con

    engine = create_engine(f"sqlite:///{path}", creator=creator, poolclass=QueuePool,
                           pool_size=2, max_overflow=8, json_serializer=dumps)
    engine.logos_trusted = {"on": bool(trusted_schema)}  # read by every new connection; see trust()
    extra = dict(pragmas or {})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        cur = dbapi_connection.cursor()
        cur.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
        cur.execute("PRAGMA foreign_keys = ON")
        cur.execute(f"PRAGMA trusted_schema = {'ON' if engine.logos_trusted['on'] else 'OFF'}")
        # FULL: a committed result survives a power cut, not just a crash of the process.
        cur.execute("PRAGMA synchronous = FULL")
        cur.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
        for name, value in extra.items():
            cur.execute(f"PRAGMA {name} = {int(value)}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection):
        if conn.get_execution_options().get("logos_write"):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")

    return engine


def trust(engine: Engine, conn: Connection) -> None:
    """The file's schema was verified as ours: ``trusted_schema`` ON for ``conn`` (open, in the
    pool) and every connection opened from now on. The pool is not disposed for this: closing
    the last connection of this process at that moment would let SQLite checkpoint and remove
    the WAL under another process whose locks a plain open()/close() of the file dropped."""
    engine.logos_trusted["on"] = True
    conn.connection.driver_connection.execute("PRAGMA trusted_schema = ON")


def needs_immutable(path: Path) -> bool:
    """A WAL file read from a folder we cannot write (a read-only medium, an archive) can only be
    opened as immutable: SQLite could not create its shared-memory file there otherwise."""
    shm = Path(str(path) + "-shm")
    return not os.access(path.parent, os.W_OK) and not shm.exists()


def read_header(path: Path) -> bytes:
    """The first 16 bytes of a file. NOT for a project this process may have open: closing any
    descriptor of a file drops every POSIX lock this process holds on it, SQLite's included
    (see ``is_sqlite``)."""
    with open(path, "rb") as fh:
        return fh.read(len(SQLITE_HEADER))


def is_sqlite(path: Path) -> bool:
    """Whether the file is an SQLite database, asked through SQLite itself.

    Not with open()/close(): POSIX drops all of a process's locks on a file when any descriptor
    of it is closed. A process holding a project open (the GUI) that read the header that way
    lost its locks, so another process (the engine) closing its last connection took the
    exclusive lock, checkpointed and deleted the WAL under the first one's open connections,
    and rows it committed afterwards were lost. SQLite's own file layer keeps a closed
    descriptor open while locks on that file are held in the process."""
    path = Path(path).resolve()
    uri = path.as_uri() + "?mode=ro" + ("&immutable=1" if needs_immutable(path) else "")
    try:
        con = sqlite3.connect(uri, uri=True, timeout=0.5)
    except sqlite3.Error:
        return True  # cannot open it at all: the real open says why
    try:
        con.execute("PRAGMA schema_version").fetchone()
        return True
    except sqlite3.DatabaseError as exc:
        text = str(exc).lower()
        return not ("not a database" in text or "encrypted" in text)
    finally:
        con.close()


def translate(exc: BaseException, path: Path, doing: str = "") -> ProjectError:
    """An SQLite / SQLAlchemy error as a ProjectError whose message says which file and why."""
    orig = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    msg = str(orig).lower()
    where = f" while {doing}" if doing else ""
    if "not a database" in msg or "file is encrypted" in msg:
        return NotAProjectError(path, "not a LOGOS project: the file is not an SQLite database")
    if "malformed" in msg or "corrupt" in msg:
        return CorruptProjectError(
            path, f"the project file is damaged ({orig}){where}; open a backup copy "
                  "(*-backup-*.logos beside it) or recover it with 'sqlite3 FILE .recover'")
    if "locked" in msg or "busy" in msg:
        return ProjectLockedError(
            path, f"the project is locked by another process{where}; close the other program "
                  "using it (or wait for it to finish) and try again")
    if "disk is full" in msg or "database or disk is full" in msg:
        return DiskFullError(
            path, f"the disk is full{where}; nothing was written; free some space and try again")
    if "readonly" in msg or "read-only" in msg:
        return ReadOnlyProjectError(path, f"the project is read-only{where}")
    if "unable to open" in msg:
        return ProjectError(path, f"cannot open the file{where} ({orig}): check that it exists "
                                  "and that you may read and write it")
    return ProjectError(path, f"{orig}{where}")


@contextmanager
def translated(path: Path, doing: str = ""):
    """Run a block, turning SQLite errors into ProjectError subclasses."""
    try:
        yield
    except ProjectError:
        raise
    except (DBAPIError, sqlite3.Error) as exc:
        raise translate(exc, path, doing) from exc


def pragma(engine: Engine, statement: str):
    """Run ``PRAGMA statement`` outside any transaction (journal mode, checkpoints); first value."""
    raw = engine.raw_connection()
    try:
        row = raw.driver_connection.execute(f"PRAGMA {statement}").fetchone()
        return row[0] if row else None
    finally:
        raw.close()
