"""A LOGOS project: one SQLite file (``*.logos``) holding inputs, models, runs and results.

    with Project.open(path, create=True) as p:
        run_id = p.start_run("molecule", prompt, params, seed, model_id=mid)
        rid = p.add_result(run_id, record, smiles="CCO", valid=True, ppl=3.2)
        p.finish_run(run_id)
        page = p.query_results(ResultQuery(task="molecule", sort="ppl"))

Opening checks the file before touching it: an SQLite header, ``PRAGMA quick_check``, a LOGOS
schema. A project from an older release is copied beside itself (``NAME.REV-backup-TIME.logos``)
and then migrated in one transaction; one from a newer release opens read-only with a message.
Every write is its own ``BEGIN IMMEDIATE`` transaction: the engine process adds each result as it
is produced while the GUI reads the same file. ``add_results`` stores many rows in one transaction
and indexes their SMILES / sequences for substring search in one statement (``textindex``).
"""

from __future__ import annotations

import gc
import hashlib
import json
import math
import os
import platform
import sqlite3
import sys
from collections.abc import Iterable, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, insert, select, text, update
from sqlalchemy.engine import Connection

from engine._version import __version__
from engine.store import db, migrate, schemacheck, textindex
from engine.store.errors import (
    CorruptProjectError,
    NewerSchemaError,
    NotAProjectError,
    ProjectError,
    ReadOnlyProjectError,
)
from engine.store.queries import (
    DockingRow,
    InputInfo,
    ModelInfo,
    PoseRow,
    ProjectSummary,
    ResultPage,
    ResultQuery,
    ResultRow,
    RunInfo,
    TrainingRunInfo,
    clean_number,
    count_select,
    fetch_rows,
    page_ids,
    page_key,
    text_candidates,
)
from engine.store.schema import (
    DOCKING_STATUSES,
    HEAD_REVISION,
    RUN_STATUSES,
    TRAINING_STATUSES,
    DockingRowORM,
    InputRow,
    ModelRow,
    PoseRowORM,
    ProjectInfoRow,
    ResultPayloadRow,
    ResultRowORM,
    ResultScoreRow,
    ResultTagRow,
    RunInputRow,
    RunRow,
    TrainingExampleRow,
    TrainingRunRow,
    utcnow,
)

P = ProjectInfoRow.__table__
INPUTS = InputRow.__table__
MODELS = ModelRow.__table__
RUNS = RunRow.__table__
RUN_INPUTS = RunInputRow.__table__
RESULTS = ResultRowORM.__table__
PAYLOADS = ResultPayloadRow.__table__
SCORES = ResultScoreRow.__table__
TAGS = ResultTagRow.__table__
TRAINING = TrainingRunRow.__table__
TRAINING_EX = TrainingExampleRow.__table__
DOCKINGS = DockingRowORM.__table__
POSES = PoseRowORM.__table__

APP = f"LOGOS Desktop {__version__}"
_RESULT_COLUMNS = ("id", "run_id", "idx", "task", "smiles", "sequence", "valid", "ppl", "notes", "rating",
                   "parent_id", "created_at")
_PAYLOAD_COLUMNS = ("result_id", "record", "objects", "cif", "reasons", "scores")
_INSERT_RESULT = (f"INSERT INTO results ({', '.join(_RESULT_COLUMNS)}) "
                  f"VALUES ({', '.join('?' * len(_RESULT_COLUMNS))})")
_INSERT_PAYLOAD = (f"INSERT INTO result_payloads ({', '.join(_PAYLOAD_COLUMNS)}) "
                   f"VALUES ({', '.join('?' * len(_PAYLOAD_COLUMNS))})")
# the numeric scores of the payloads from a result id on (json_each: 'integer' and 'real' only;
# NaN and infinity are null in the JSON, true/false are their own types)
_INSERT_SCORES = ("INSERT INTO result_scores (result_id, name, value) "
                  "SELECT p.result_id, j.key, j.value FROM result_payloads AS p, json_each(p.scores) AS j "
                  "WHERE p.result_id >= ? AND j.type IN ('integer', 'real')")
_INSERT_TAG = "INSERT OR IGNORE INTO result_tags (result_id, tag) VALUES (?, ?)"
_UNSET: Any = object()
# From this many rows add_results indexes the SMILES and sequences of the batch with one
# INSERT ... SELECT (the per-row trigger is dropped and re-created inside the same transaction):
# FTS5 writes its pending index data at every statement run by a trigger, 74 us a row.
BULK_ROWS = 64
# A bulk insert may use a larger page cache (KiB, per row, up to the maximum) while it runs.
BULK_CACHE_KIB_PER_ROW = 1
BULK_CACHE_KIB_MAX = 262_144
# scores that add_docked writes into a result's scores (and the score index)
DOCK_SCORES = ("vina", "vina_rmsd", "posebusters_ok")


def library_versions() -> dict[str, str]:
    """Versions recorded with every run: this program, Python, SQLite and the science libraries."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"logos": __version__, "python": sys.version.split()[0], "sqlite": sqlite3.sqlite_version,
           "platform": platform.platform()}
    for dist in ("llama-cpp-python", "rdkit", "gemmi", "pymatgen", "numpy"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            pass
    return out


def backup_path(path: Path, revision: str | None, when: datetime | None = None) -> Path:
    when = when or datetime.now(timezone.utc)
    stamp = when.strftime("%Y%m%dT%H%M%SZ")
    base = path.with_name(f"{path.stem}.{revision or 'unknown'}-backup-{stamp}{path.suffix}")
    n, candidate = 1, base
    while candidate.exists():
        n += 1
        candidate = base.with_name(f"{base.stem}-{n}{base.suffix}")
    return candidate


class Project:
    """An open project file. Use ``Project.open``; close it (or use ``with``)."""

    def __init__(self, path: Path, engine, *, read_only: bool, revision: str | None,
                 message: str | None, backup: Path | None):
        self.path = path
        self._engine = engine
        self.read_only = read_only
        self.revision = revision
        self.message = message  # for the user: why it is read-only, where the backup went
        self.backup = backup  # the copy made before migrating, if any
        self._closed = False

    # ---- opening --------------------------------------------------------------------------

    @classmethod
    def open(cls, path: str | os.PathLike, create: bool = False, *, busy_timeout_s: float = 5.0,
             check: bool = True, read_only: bool = False, _pragmas: dict | None = None) -> "Project":
        """Open (or with ``create=True`` create) a project file.

        Raises ProjectError subclasses whose message names the file and the reason: not an SQLite
        file, not a LOGOS project, damaged, locked by another process, disk full. A failed open
        leaves the file as it was.
        """
        path = Path(path).expanduser()
        if path.is_dir():
            raise ProjectError(path, "is a folder, not a project file")
        exists = path.exists()
        if exists and path.stat().st_size == 0 and not create:
            raise NotAProjectError(path, "not a LOGOS project: the file is empty")
        if not exists or path.stat().st_size == 0:
            if not create:
                raise ProjectError(path, "no such project file")
            return cls._create(path, busy_timeout_s, _pragmas)
        if not os.access(path, os.R_OK):
            raise ProjectError(path, "cannot read the file: Permission denied")
        if not db.is_sqlite(path):  # through SQLite: an open()/close() here would drop its locks
            raise NotAProjectError(path, "not a LOGOS project: the file is not an SQLite database")
        if not read_only and not os.access(path, os.W_OK):
            read_only = True
            why = "the file is write-protected; opened read-only"
        else:
            why = None
        return cls._open_existing(path, busy_timeout_s, check, read_only, why, _pragmas)

    @classmethod
    def _create(cls, path: Path, busy_timeout_s: float, pragmas) -> "Project":
        if not path.parent.is_dir():
            raise ProjectError(path, f"cannot create the project: the folder {path.parent} does not exist")
        if not path.exists():
            try:
                path.touch(exist_ok=False)
            except OSError as exc:
                raise ProjectError(path, f"cannot create the project: {exc.strerror or exc}") from exc
        engine = db.make_engine(path, busy_timeout_s=busy_timeout_s, pragmas=pragmas, trusted_schema=True)
        try:
            with db.translated(path, "creating the project"):
                db.pragma(engine, "journal_mode = WAL")
                with engine.connect().execution_options(logos_write=True) as conn:
                    with conn.begin():
                        migrate.upgrade(conn)
                        conn.execute(insert(P).values(id=1, name=path.stem, created_at=utcnow(),
                                                      created_by=APP, last_written_by=APP))
        except BaseException:
            engine.dispose()
            try:
                if path.stat().st_size == 0 or _has_no_tables(path):
                    path.unlink()
            except OSError:
                pass
            raise
        return cls(path, engine, read_only=False, revision=HEAD_REVISION, message=None, backup=None)

    @classmethod
    def _open_existing(cls, path: Path, busy_timeout_s: float, check: bool, read_only: bool,
                       why: str | None, pragmas) -> "Project":
        engine = db.make_engine(path, read_only=read_only, busy_timeout_s=busy_timeout_s, pragmas=pragmas)
        try:
            with db.translated(path, "opening the project"):
                with engine.connect() as conn:
                    if check:
                        rows = [r[0] for r in conn.exec_driver_sql("PRAGMA quick_check").fetchall()]
                        if rows != ["ok"]:
                            raise CorruptProjectError(
                                path, f"the project file is damaged (SQLite: {'; '.join(rows[:3])}); "
                                      "open a backup copy or recover it with 'sqlite3 FILE .recover'")
                    tables = set(conn.exec_driver_sql(
                        "SELECT name FROM sqlite_master WHERE type='table'").scalars().all())
                    if "project" not in tables or "alembic_version" not in tables:
                        raise NotAProjectError(
                            path, "not a LOGOS project: an SQLite database without LOGOS tables")
                    try:
                        revision = migrate.current_revision(conn)
                    except ValueError as exc:
                        raise NotAProjectError(path, f"not a LOGOS project: {exc}") from None
                    if revision is None:
                        raise NotAProjectError(path, "not a LOGOS project: no schema revision is stamped in it")
                    # before anything is written: the file's tables, indexes and triggers are ours
                    problems = schemacheck.differences(schemacheck.actual(conn), revision)
                    conn.rollback()
                    if not read_only and problems == []:
                        # the schema is the one this version writes: its triggers (the substring
                        # index's, on FTS5 tables SQLite does not mark innocuous) may run
                        db.trust(engine, conn)
            if problems:
                engine.dispose()
                engine = db.make_engine(path, read_only=True, busy_timeout_s=busy_timeout_s, pragmas=pragmas)
                return cls(path, engine, read_only=True, revision=revision,
                           message=schemacheck.reason(problems, revision), backup=None)
            head = HEAD_REVISION
            known = [head] if revision == head else migrate.known_revisions()  # alembic only when needed
            backup = None
            message = why
            if revision == head:
                pass
            elif revision in known:  # older: back up, then migrate
                if read_only:
                    message = (f"the project uses the older schema {revision} and is write-protected; "
                               "opened read-only without upgrading")
                    # fall through: reading an older schema may miss columns; allow it read-only
                else:
                    backup = cls._backup(path, revision, engine)
                    try:
                        with db.translated(path, f"upgrading the project from schema {revision}"):
                            cls._migrate(engine, path)
                    except ProjectError:
                        raise
                    except Exception as exc:
                        raise ProjectError(
                            path, f"upgrading from schema {revision} to {head} failed ({exc}); the file "
                                  f"is unchanged and a copy is kept as {backup.name}") from exc
                    message = (f"upgraded from schema {revision} to {head}; the original is kept "
                               f"as {backup.name}")
                    revision = head
            else:  # newer than this program: read-only
                engine.dispose()
                engine = db.make_engine(path, read_only=True, busy_timeout_s=busy_timeout_s,
                                        pragmas=pragmas)
                read_only = True
                message = (f"this project was written by a newer LOGOS Desktop (schema {revision}; "
                           f"this version knows up to {head}); it is opened read-only: update the "
                           "program to change it")
            if not read_only:
                with db.translated(path, "opening the project"):
                    if str(db.pragma(engine, "journal_mode")).lower() != "wal":
                        db.pragma(engine, "journal_mode = WAL")
                    problem = cls._ensure_text_index(engine)
                if problem:
                    engine.dispose()
                    engine = db.make_engine(path, read_only=True, busy_timeout_s=busy_timeout_s,
                                            pragmas=pragmas)
                    read_only, message = True, problem
        except BaseException:
            engine.dispose()
            raise
        return cls(path, engine, read_only=read_only, revision=revision, message=message, backup=backup)

    @staticmethod
    def _backup(path: Path, revision: str, engine) -> Path:
        """A consistent copy of the file (SQLite's online backup), verified, beside it."""
        target = backup_path(path, revision)
        tmp = target.with_name(target.name + ".part")
        try:
            with db.translated(path, "backing up the project before upgrading it"):
                raw = engine.raw_connection()
                try:
                    dst = sqlite3.connect(tmp)
                    try:
                        raw.driver_connection.backup(dst)
                        ok = dst.execute("PRAGMA quick_check").fetchone()[0]
                        # a self-contained single file (the copy inherits WAL mode from the original)
                        dst.execute("PRAGMA journal_mode = DELETE")
                    finally:
                        dst.close()
                finally:
                    raw.close()
            if ok != "ok":
                raise ProjectError(path, f"the backup copy failed its check ({ok}); nothing was upgraded")
            os.replace(tmp, target)
        except OSError as exc:
            raise ProjectError(path, f"cannot write the backup before upgrading ({exc.strerror or exc}); "
                                     "nothing was upgraded") from exc
        finally:
            if tmp.exists():
                tmp.unlink()
        return target

    @staticmethod
    def _ensure_text_index(engine) -> str | None:
        """The SMILES/sequence substring index: built here when the file lacks it (it was made
        by a SQLite without the trigram tokenizer) and this SQLite has it. A file that has the
        index cannot take new results through a SQLite without the tokenizer: the reason, then,
        to open it read-only."""
        with engine.connect() as conn:
            with conn.begin():
                has_index = textindex.present_any(conn)
        if has_index:
            if textindex.available():
                return None
            return ("the project has a substring index that needs SQLite 3.34 or newer with FTS5 "
                    f"(this Python has SQLite {sqlite3.sqlite_version}); opened read-only")
        if textindex.available():
            with engine.connect().execution_options(logos_write=True) as conn:
                with conn.begin():
                    if not textindex.present_any(conn):  # another process may have built it
                        textindex.create(conn)
        return None

    @staticmethod
    def _migrate(engine, path: Path) -> None:
        # Batch migrations copy tables: foreign keys must be off while they run (SQLite ignores the
        # pragma inside a transaction), then checked before the upgrade commits.
        with engine.connect().execution_options(logos_write=True) as conn:
            driver = conn.connection.driver_connection  # pragmas outside any transaction
            driver.execute("PRAGMA foreign_keys = OFF")
            try:
                with conn.begin():
                    migrate.upgrade(conn)
                    bad = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                    if bad:
                        raise ProjectError(path, f"upgrade stopped: {len(bad)} rows break foreign keys "
                                                 "after migrating; nothing was changed")
                    conn.execute(update(P).values(last_written_by=APP))
            finally:
                driver.execute("PRAGMA foreign_keys = ON")

    # ---- life cycle -----------------------------------------------------------------------

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            if not self.read_only:
                try:  # refresh the query planner's statistics where SQLite thinks they are stale
                    db.pragma(self._engine, "optimize")
                except Exception:  # never let housekeeping hide the caller's own error
                    pass
            self._engine.dispose()

    def __enter__(self) -> "Project":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Project({str(self.path)!r}{', read-only' if self.read_only else ''})"

    @contextmanager
    def session(self, write: bool = False, doing: str = "", foreign_keys: bool = True):
        """One transaction on one connection: commits at the end, rolls back on any error.

        Writes take the write lock at the start (BEGIN IMMEDIATE). SQLite errors come out as
        ProjectError subclasses naming the file. ``foreign_keys=False``: SQLite does not check
        foreign keys in this transaction (the caller checks what needs checking); the
        connection has them on again afterwards.
        """
        if self._closed:
            raise ProjectError(self.path, "the project is closed")
        if write and self.read_only:
            cls = NewerSchemaError if self.message and "newer" in self.message else ReadOnlyProjectError
            raise cls(self.path, f"opened read-only: {self.message or 'cannot change it'}")
        with db.translated(self.path, doing):
            conn = self._engine.connect()
            try:
                if write:
                    conn = conn.execution_options(logos_write=True)
                if not foreign_keys:  # only outside a transaction does SQLite take this pragma
                    conn.connection.driver_connection.execute("PRAGMA foreign_keys = OFF")
                try:
                    with conn.begin():
                        yield conn
                finally:
                    if not foreign_keys:
                        try:
                            conn.connection.driver_connection.execute("PRAGMA foreign_keys = ON")
                        except BaseException:
                            conn.invalidate()  # never back into the pool without foreign keys
                            raise
            finally:
                conn.close()

    # ---- inputs and models ----------------------------------------------------------------

    def add_input(self, data: bytes, fmt: str, name: str) -> int:
        """Store an input structure by content (SHA-256); the same bytes return the same id."""
        if isinstance(data, str):
            data = data.encode()
        with self.session(write=True, doing="storing an input") as conn:
            return _store_input(conn, data, fmt, name)

    def add_model(self, path, sha256: str, quant: str | None = None, adapter: str | None = None,
                  base: str | None = None) -> int:
        """Register a model file; the same hash, quantisation, adapter and base return the same id."""
        path = str(path)
        with self.session(write=True, doing="registering a model") as conn:
            stmt = select(MODELS.c.id).where(
                MODELS.c.sha256 == sha256, _is(MODELS.c.quant, quant), _is(MODELS.c.adapter, adapter),
                _is(MODELS.c.base, base))
            found = conn.execute(stmt).scalar()
            if found is not None:
                return int(found)
            res = conn.execute(insert(MODELS).values(sha256=sha256, path=path, quant=quant,
                                                     adapter=adapter, base=base, created_at=utcnow()))
            return int(res.inserted_primary_key[0])

    def get_input(self, input_id: int) -> InputInfo:
        with self.session() as conn:
            m = conn.execute(select(INPUTS).where(INPUTS.c.id == input_id)).mappings().first()
        if m is None:
            raise ProjectError(self.path, f"no input {input_id}")
        return InputInfo(**dict(m))

    def inputs(self) -> list[InputInfo]:
        cols = [c for c in INPUTS.c if c.name != "data"]
        with self.session() as conn:
            return [InputInfo(**dict(m)) for m in conn.execute(select(*cols).order_by(INPUTS.c.id)).mappings()]

    def models(self) -> list[ModelInfo]:
        with self.session() as conn:
            return [ModelInfo(**dict(m)) for m in conn.execute(select(MODELS).order_by(MODELS.c.id)).mappings()]

    # ---- runs -----------------------------------------------------------------------------

    def start_run(self, task: str, prompt: str, params: Mapping | None, seed: int | None,
                  model_id: int | None = None, input_ids: Sequence[int] = (),
                  versions: Mapping | None = None) -> int:
        """Record a generation run before its first result: the prompt exactly as sent."""
        all_versions = library_versions()
        all_versions.update(versions or {})
        with self.session(write=True, doing="starting a run") as conn:
            res = conn.execute(insert(RUNS).values(
                task=task, prompt=prompt, params=dict(params or {}), seed=seed, model_id=model_id,
                versions=all_versions, started_at=utcnow(), status="running"))
            run_id = int(res.inserted_primary_key[0])
            if input_ids:
                conn.execute(insert(RUN_INPUTS), [
                    {"run_id": run_id, "position": i, "input_id": int(iid)} for i, iid in enumerate(input_ids)])
            conn.execute(update(P).values(last_written_by=APP))
            return run_id

    def finish_run(self, run_id: int, status: str = "finished", error: str | None = None) -> None:
        if status not in RUN_STATUSES or status == "running":
            raise ValueError(f"status must be finished, failed or cancelled, not {status!r}")
        with self.session(write=True, doing="finishing a run") as conn:
            res = conn.execute(update(RUNS).where(RUNS.c.id == run_id).values(
                status=status, error=error, finished_at=utcnow()))
            if res.rowcount == 0:
                raise ProjectError(self.path, f"no run {run_id}")

    def get_run(self, run_id: int) -> RunInfo:
        runs = self.runs(ids=[run_id])
        if not runs:
            raise ProjectError(self.path, f"no run {run_id}")
        return runs[0]

    def runs(self, ids: Sequence[int] | None = None, task: str | None = None) -> list[RunInfo]:
        """Runs, newest first, with their inputs, model and result counts."""
        stmt = select(RUNS).order_by(RUNS.c.id.desc())
        if ids is not None:
            stmt = stmt.where(RUNS.c.id.in_(list(ids)))
        if task is not None:
            stmt = stmt.where(RUNS.c.task == task)
        with self.session() as conn:
            out = [RunInfo(**dict(m)) for m in conn.execute(stmt).mappings()]
            if not out:
                return out
            run_ids = [r.id for r in out]
            counts = dict(conn.execute(select(RESULTS.c.run_id, func.count()).where(
                RESULTS.c.run_id.in_(run_ids)).group_by(RESULTS.c.run_id)).all())
            links: dict[int, list[int]] = {}
            for rid, iid in conn.execute(select(RUN_INPUTS.c.run_id, RUN_INPUTS.c.input_id).where(
                    RUN_INPUTS.c.run_id.in_(run_ids)).order_by(RUN_INPUTS.c.run_id, RUN_INPUTS.c.position)):
                links.setdefault(rid, []).append(iid)
            model_ids = {r.model_id for r in out if r.model_id is not None}
            models = {m["id"]: ModelInfo(**dict(m)) for m in conn.execute(
                select(MODELS).where(MODELS.c.id.in_(model_ids))).mappings()} if model_ids else {}
        for r in out:
            r.n_results = counts.get(r.id, 0)
            r.input_ids = links.get(r.id, [])
            r.model = models.get(r.model_id)
        return out

    # ---- results --------------------------------------------------------------------------

    def add_result(self, run_id: int, record: str, objects: dict | list | None = None,
                   smiles: str | None = None, sequence: str | None = None, cif: str | None = None,
                   valid: bool = True, reasons: Iterable[str] = (), scores: Mapping | None = None,
                   ppl: float | None = None, parent_id: int | None = None) -> int:
        """Store one result in its own transaction (committed when this returns); its id."""
        return self.add_results(run_id, [dict(record=record, objects=objects, smiles=smiles,
                                              sequence=sequence, cif=cif, valid=valid, reasons=reasons,
                                              scores=scores, ppl=ppl, parent_id=parent_id)])[0]

    def add_results(self, run_id: int, rows: Iterable[Mapping]) -> list[int]:
        """Store many results (dicts with add_result's keyword names) in one transaction.

        All or nothing: an error (a bad rating, a parent_id that does not exist, a full disk, the
        process killed) leaves the file as it was. From ``BULK_ROWS`` rows the SMILES/sequence
        index is filled by one statement at the end of the same transaction."""
        rows = rows if isinstance(rows, list) else list(rows)
        if not rows:
            return []
        bulk = len(rows) >= BULK_ROWS
        # A bulk insert checks its foreign keys itself: the payload, score and tag rows point at
        # results it has just written, the run is looked up below, and the parents (integer ids)
        # are checked by one query (_check_parents); SQLite would look up every row, 500k
        # look-ups for 100k results.
        own_fk_check = bulk and all(type(p) is int for r in rows if (p := r.get("parent_id")) is not None)
        with self.session(write=True, doing="storing results", foreign_keys=not own_fk_check) as conn:
            task = conn.execute(select(RUNS.c.task).where(RUNS.c.id == run_id)).scalar()
            if task is None:
                raise ProjectError(self.path, f"no run {run_id}")
            next_idx = conn.execute(select(func.coalesce(func.max(RESULTS.c.idx) + 1, 0)).where(
                RESULTS.c.run_id == run_id)).scalar_one()
            next_id = conn.execute(select(func.coalesce(func.max(RESULTS.c.id) + 1, 1))).scalar_one()
            now = utcnow().strftime("%Y-%m-%d %H:%M:%S.%f")  # SQLAlchemy's SQLite DATETIME format
            # Python's cycle collector runs again and again while the row tuples are built and
            # walks every object alive each time (10-15 % of a 100k insert); nothing here makes
            # cycles, so it waits until the rows are stored.
            gc_was_enabled = bulk and gc.isenabled()
            driver = conn.connection.driver_connection
            if gc_was_enabled:
                gc.disable()
            try:
                if own_fk_check:
                    _check_parents(conn, rows, next_id)
                triggers = textindex.insert_triggers() if bulk and textindex.present(conn) else {}
                if bulk:
                    driver.execute(f"PRAGMA cache_size = -{_bulk_cache_kib(len(rows))}")
                for name in triggers:  # inside this transaction: a crash or an error restores them
                    conn.exec_driver_sql(f"DROP TRIGGER {name}")
                # Plain DB-API executemany over generators: SQLAlchemy's per-row type processing
                # costs more than SQLite, and a list of 100k tuples costs memory and time.
                tag_values: list = []
                driver.executemany(_INSERT_RESULT, _result_values(rows, run_id, task, next_id, next_idx, now))
                driver.executemany(_INSERT_PAYLOAD, _payload_values(rows, next_id, tag_values))
                # one statement: SQLite reads the numbers back from the scores JSON just written,
                # cheaper than 3 bound INSERTs per result
                driver.execute(_INSERT_SCORES, (next_id,))
                if tag_values:
                    driver.executemany(_INSERT_TAG, tag_values)
                if triggers:
                    for sql in textindex.fill_from_id_sql():
                        conn.exec_driver_sql(sql, (next_id,))
                    for sql in triggers.values():
                        conn.exec_driver_sql(sql)
            finally:
                if gc_was_enabled:
                    gc.enable()
                if bulk:
                    driver.execute(f"PRAGMA cache_size = -{db.CACHE_KIB}")
        return list(range(next_id, next_id + len(rows)))

    def get_result(self, result_id: int) -> ResultRow:
        page = self.query_results(ResultQuery(ids=[result_id], limit=1, count_total=False))
        if not page.rows:
            raise ProjectError(self.path, f"no result {result_id}")
        return page.rows[0]

    def query_results(self, query: ResultQuery | None = None) -> ResultPage:
        """One page of results as dataclass rows (see ResultQuery for filters and sorting)."""
        query = query or ResultQuery()
        with self.session(doing="reading results") as conn:
            cand = text_candidates(conn, query)  # the substring index's candidates, asked once
            ids = page_ids(conn, query, cand)
            rows = fetch_rows(conn, ids)
            total = int(conn.execute(count_select(query, cand)).scalar_one()) if query.count_total else None
            full = query.limit is not None and ids and len(ids) == query.limit
            next_after = page_key(conn, query, ids[-1]) if full else None
        return ResultPage(rows=rows, total=total, offset=query.offset, limit=query.limit, next_after=next_after)

    def count_results(self, query: ResultQuery | None = None) -> int:
        """How many results match the query's filters."""
        query = query or ResultQuery()
        with self.session(doing="counting results") as conn:
            return int(conn.execute(count_select(query, text_candidates(conn, query))).scalar_one())

    def update_result(self, result_id: int, *, notes: str | None = _UNSET, rating: int | None = _UNSET,
                      tags: Iterable[str] | None = None) -> None:
        """Change the user's notes, rating (0-5 or None) or tags (replaces all tags) of a result."""
        values = {}
        if notes is not _UNSET:
            values["notes"] = notes
        if rating is not _UNSET:
            if rating is not None and not (isinstance(rating, int) and 0 <= rating <= 5):
                raise ValueError(f"rating must be 0 to 5 or None, not {rating!r}")
            values["rating"] = rating
        with self.session(write=True, doing="updating a result") as conn:
            if not conn.execute(select(RESULTS.c.id).where(RESULTS.c.id == result_id)).scalar():
                raise ProjectError(self.path, f"no result {result_id}")
            if values:
                conn.execute(update(RESULTS).where(RESULTS.c.id == result_id).values(**values))
            if tags is not None:
                conn.execute(delete(TAGS).where(TAGS.c.result_id == result_id))
                unique = sorted({str(t) for t in tags if str(t)})
                if unique:
                    conn.execute(insert(TAGS), [{"result_id": result_id, "tag": t} for t in unique])

    def tag_results(self, result_ids: Iterable[int], tag: str, remove: bool = False) -> None:
        ids = [int(i) for i in result_ids]
        with self.session(write=True, doing="tagging results") as conn:
            if remove:
                for start in range(0, len(ids), 500):  # SQLite caps the parameters of one statement
                    conn.execute(delete(TAGS).where(TAGS.c.result_id.in_(ids[start:start + 500]),
                                                    TAGS.c.tag == tag))
            elif ids:
                conn.execute(insert(TAGS).prefix_with("OR IGNORE"), [{"result_id": i, "tag": tag} for i in ids])

    def score_names(self) -> list[str]:
        with self.session() as conn:
            return list(conn.execute(select(SCORES.c.name).distinct().order_by(SCORES.c.name)).scalars())

    def tasks(self) -> dict[str, int]:
        with self.session() as conn:
            return dict(conn.execute(select(RESULTS.c.task, func.count()).group_by(RESULTS.c.task)).all())

    # ---- docking --------------------------------------------------------------------------

    def start_docking(self, receptor_data: bytes, receptor_fmt: str, receptor_name: str, box: Mapping,
                      settings: Mapping, versions: Mapping, report: Mapping, reference: Mapping | None = None,
                      run_id: int | None = None) -> int:
        """Record a docking run before its first pose: the receptor file is stored whole (as an
        input, addressed by its SHA-256), with the box, settings, library versions, what receptor
        preparation removed (``report``) and the reference ligand. One transaction; its id."""
        if isinstance(receptor_data, str):
            receptor_data = receptor_data.encode()
        if not receptor_data:
            raise ValueError(f"{receptor_name}: the receptor file is empty")
        for what, value in (("box", box), ("settings", settings), ("versions", versions), ("report", report)):
            if not isinstance(value, Mapping):
                raise ValueError(f"the docking's {what} must be a dict, not {type(value).__name__}")
        if reference is not None and not isinstance(reference, Mapping):
            raise ValueError(f"the docking's reference must be a dict or None, not {type(reference).__name__}")
        values = {k: _plain_json(dict(v), f"the docking's {k}") for k, v in
                  (("box", box), ("settings", settings), ("versions", versions), ("report", report))}
        values["reference"] = _plain_json(dict(reference), "the docking's reference") if reference is not None else None
        with self.session(write=True, doing="starting a docking") as conn:
            if run_id is not None and conn.execute(select(RUNS.c.id).where(RUNS.c.id == run_id)).scalar() is None:
                raise ProjectError(self.path, f"no run {run_id}")
            input_id = _store_input(conn, receptor_data, receptor_fmt, receptor_name)
            res = conn.execute(insert(DOCKINGS).values(
                run_id=run_id, receptor_input_id=input_id,
                receptor_sha256=hashlib.sha256(receptor_data).hexdigest(), receptor_name=receptor_name,
                failures=[], summary=None, status="running", started_at=utcnow(), **values))
            conn.execute(update(P).values(last_written_by=APP))
            return int(res.inserted_primary_key[0])

    def add_docked(self, result_id: int, docking_id: int, row: Mapping) -> None:
        """Store a docked result (the docking engine's ``result`` event): every pose, and the best
        Vina score in the result's scores as ``vina`` (with ``vina_rmsd`` when there is an RMSD and
        ``posebusters_ok`` 1.0/0.0 when the checks ran), so the score filters and sorts apply.

        One transaction: an error leaves the file as it was. Adding the same result to the same
        docking again replaces its poses; the scores are those of the docking added last."""
        poses = _pose_rows(row, result_id, docking_id)
        best = poses[0]
        score = _finite(row.get("score"))
        if score is None:
            score = best["score"]
        rmsd = _finite(row["rmsd"]) if "rmsd" in row else best["rmsd"]
        checks = row.get("checks") if "checks" in row else best["checks"]
        passed = checks.get("passed") if isinstance(checks, Mapping) else None
        new = {"vina": score, "vina_rmsd": rmsd,
               "posebusters_ok": None if passed is None else (1.0 if passed else 0.0)}
        with self.session(write=True, doing=f"storing the poses of result {result_id}") as conn:
            if conn.execute(select(RESULTS.c.id).where(RESULTS.c.id == result_id)).scalar() is None:
                raise ProjectError(self.path, f"no result {result_id}")
            if conn.execute(select(DOCKINGS.c.id).where(DOCKINGS.c.id == docking_id)).scalar() is None:
                raise ProjectError(self.path, f"no docking {docking_id}")
            conn.execute(delete(POSES).where(POSES.c.result_id == result_id, POSES.c.docking_id == docking_id))
            conn.execute(insert(POSES), poses)
            scores = conn.execute(select(PAYLOADS.c.scores).where(PAYLOADS.c.result_id == result_id)).scalar()
            scores = dict(scores or {})
            for name, value in new.items():
                if value is None:
                    scores.pop(name, None)  # a value of an earlier docking would be taken for this one's
                else:
                    scores[name] = value
            conn.execute(update(PAYLOADS).where(PAYLOADS.c.result_id == result_id).values(scores=scores))
            conn.execute(delete(SCORES).where(SCORES.c.result_id == result_id, SCORES.c.name.in_(DOCK_SCORES)))
            numbers = [{"result_id": result_id, "name": k, "value": v} for k, v in new.items() if v is not None]
            conn.execute(insert(SCORES), numbers)

    def add_docking_failure(self, docking_id: int, smiles: str, message: str, result_id: int | None = None) -> None:
        """A ligand of the docking that could not be docked, with the reason (kept in the docking's
        ``failures``; ``result_id`` when it is a stored result)."""
        with self.session(write=True, doing="storing a docking failure") as conn:
            found = conn.execute(select(DOCKINGS.c.failures).where(DOCKINGS.c.id == docking_id)).first()
            if found is None:
                raise ProjectError(self.path, f"no docking {docking_id}")
            if result_id is not None and conn.execute(
                    select(RESULTS.c.id).where(RESULTS.c.id == result_id)).scalar() is None:
                raise ProjectError(self.path, f"no result {result_id}")
            failures = list(found[0] or [])
            failures.append({"result_id": result_id, "smiles": smiles, "message": str(message)})
            conn.execute(update(DOCKINGS).where(DOCKINGS.c.id == docking_id).values(failures=failures))

    def set_docking_reference(self, docking_id: int, row: Mapping) -> None:
        """The reference ligand's own docked result (redocking): its best score, RMSD to the crystal
        pose, checks and best pose, kept in the docking's ``reference`` beside the crystal ligand."""
        poses = _pose_rows(row, 0, docking_id)
        best = poses[0]
        score = _finite(row.get("score"))
        docked = {"score": score if score is not None else best["score"],
                  "rmsd": _finite(row["rmsd"]) if "rmsd" in row else best["rmsd"],
                  "checks": best["checks"] if "checks" not in row else
                  _plain_json(row["checks"], "the reference's checks"), "pose_molblock": best["molblock"],
                  "docked_smiles": row.get("docked_smiles"), "n_poses": len(poses)}
        with self.session(write=True, doing="storing the redocked reference ligand") as conn:
            found = conn.execute(select(DOCKINGS.c.reference).where(DOCKINGS.c.id == docking_id)).first()
            if found is None:
                raise ProjectError(self.path, f"no docking {docking_id}")
            reference = dict(found[0] or {"name": row.get("name"), "smiles": row.get("smiles")})
            reference.update(docked)
            conn.execute(update(DOCKINGS).where(DOCKINGS.c.id == docking_id).values(reference=reference))

    def finish_docking(self, docking_id: int, status: str = "finished", error: str | None = None,
                       summary: Mapping | None = None) -> None:
        if status not in DOCKING_STATUSES or status == "running":
            raise ValueError(f"status must be finished, failed or cancelled, not {status!r}")
        values = {"status": status, "error": error, "finished_at": utcnow()}
        if summary is not None:
            values["summary"] = _plain_json(dict(summary), "the docking's summary")
        with self.session(write=True, doing="finishing a docking") as conn:
            res = conn.execute(update(DOCKINGS).where(DOCKINGS.c.id == docking_id).values(**values))
            if res.rowcount == 0:
                raise ProjectError(self.path, f"no docking {docking_id}")

    def poses(self, result_id: int, docking_id: int | None = None) -> list[PoseRow]:
        """The docked poses of a result: the newest docking first, then by rank."""
        stmt = select(POSES).where(POSES.c.result_id == result_id)
        if docking_id is not None:
            stmt = stmt.where(POSES.c.docking_id == docking_id)
        with self.session(doing="reading poses") as conn:
            return [PoseRow(**dict(m)) for m in
                    conn.execute(stmt.order_by(POSES.c.docking_id.desc(), POSES.c.rank, POSES.c.id)).mappings()]

    def get_docking(self, docking_id: int) -> DockingRow:
        found = self.dockings(ids=[docking_id])
        if not found:
            raise ProjectError(self.path, f"no docking {docking_id}")
        return found[0]

    def dockings(self, run_id: int | None = None, ids: Sequence[int] | None = None) -> list[DockingRow]:
        """Docking runs, newest first (those of one run with ``run_id``)."""
        stmt = select(DOCKINGS).order_by(DOCKINGS.c.id.desc())
        if run_id is not None:
            stmt = stmt.where(DOCKINGS.c.run_id == run_id)
        if ids is not None:
            stmt = stmt.where(DOCKINGS.c.id.in_([int(i) for i in ids]))
        with self.session(doing="reading dockings") as conn:
            out = []
            for m in conn.execute(stmt).mappings():
                d = dict(m)
                d["failures"] = list(d["failures"] or [])
                out.append(DockingRow(**d))
            return out

    # ---- training runs --------------------------------------------------------------------

    def start_training(self, base_model_id: int | None, config: Mapping, result_ids: Iterable[int] = (),
                       versions: Mapping | None = None) -> int:
        """Record a fine-tuning run and the results it learns from."""
        ids = sorted({int(i) for i in result_ids})
        all_versions = library_versions()
        all_versions.update(versions or {})
        with self.session(write=True, doing="starting a training run") as conn:
            res = conn.execute(insert(TRAINING).values(
                base_model_id=base_model_id, config=dict(config), versions=all_versions,
                n_examples=len(ids), started_at=utcnow(), status="running"))
            tid = int(res.inserted_primary_key[0])
            if ids:
                conn.execute(insert(TRAINING_EX), [{"training_run_id": tid, "result_id": i} for i in ids])
            return tid

    def finish_training(self, training_id: int, status: str = "finished", output_model_id: int | None = None,
                        metrics: Mapping | None = None, error: str | None = None) -> None:
        if status not in TRAINING_STATUSES or status == "running":
            raise ValueError(f"status must be finished, failed or cancelled, not {status!r}")
        with self.session(write=True, doing="finishing a training run") as conn:
            res = conn.execute(update(TRAINING).where(TRAINING.c.id == training_id).values(
                status=status, output_model_id=output_model_id,
                metrics=dict(metrics) if metrics is not None else None, error=error, finished_at=utcnow()))
            if res.rowcount == 0:
                raise ProjectError(self.path, f"no training run {training_id}")

    def training_runs(self) -> list[TrainingRunInfo]:
        with self.session() as conn:
            return [TrainingRunInfo(**dict(m)) for m in
                    conn.execute(select(TRAINING).order_by(TRAINING.c.id.desc())).mappings()]

    def training_examples(self, training_id: int) -> list[int]:
        with self.session() as conn:
            return list(conn.execute(select(TRAINING_EX.c.result_id).where(
                TRAINING_EX.c.training_run_id == training_id).order_by(TRAINING_EX.c.result_id)).scalars())

    # ---- the whole file -------------------------------------------------------------------

    def info(self) -> ProjectSummary:
        with self.session(doing="reading the project summary") as conn:
            head = conn.execute(select(P)).mappings().first() or {}
            counts = {}
            for name, table in (("inputs", INPUTS), ("models", MODELS), ("runs", RUNS), ("results", RESULTS),
                                ("training_runs", TRAINING), ("dockings", DOCKINGS)):
                counts[name] = int(conn.execute(select(func.count()).select_from(table)).scalar_one())
            tasks = dict(conn.execute(select(RESULTS.c.task, func.count()).group_by(RESULTS.c.task)
                                      .order_by(RESULTS.c.task)).all())
            valid = int(conn.execute(select(func.count()).where(RESULTS.c.valid.is_(True))).scalar_one())
            names = list(conn.execute(select(SCORES.c.name).distinct().order_by(SCORES.c.name)).scalars())
            mode = str(conn.exec_driver_sql("PRAGMA journal_mode").scalar())
        return ProjectSummary(
            path=str(self.path), name=head.get("name") or self.path.stem, schema_revision=self.revision,
            head_revision=HEAD_REVISION, read_only=self.read_only, message=self.message,
            created_at=head.get("created_at"), created_by=head.get("created_by"),
            last_written_by=head.get("last_written_by"), size_bytes=_file_size(self.path),
            counts=counts, tasks=tasks, valid=valid, invalid=counts["results"] - valid,
            score_names=names, journal_mode=mode)

    def integrity_check(self) -> list[str]:
        """SQLite's full integrity check: ["ok"] when the file is sound."""
        with self.session(doing="checking the project") as conn:
            return [r[0] for r in conn.exec_driver_sql("PRAGMA integrity_check").fetchall()]

    def checkpoint(self) -> None:
        """Copy the write-ahead log into the main file (done on close by SQLite as well)."""
        if self.read_only:
            return
        with db.translated(self.path, "checkpointing"):
            db.pragma(self._engine, "wal_checkpoint(TRUNCATE)")


def _store_input(conn: Connection, data: bytes, fmt: str, name: str) -> int:
    """The id of the input with these bytes, stored now if it is not there yet."""
    digest = hashlib.sha256(data).hexdigest()
    found = conn.execute(select(INPUTS.c.id).where(INPUTS.c.sha256 == digest)).scalar()
    if found is not None:
        return int(found)
    res = conn.execute(insert(INPUTS).values(sha256=digest, fmt=fmt, name=name, size=len(data),
                                             data=data, created_at=utcnow()))
    return int(res.inserted_primary_key[0])


def _finite(value) -> float | None:
    """A finite float, or None (None, NaN, infinity, or not a number)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _plain_json(value, what: str):
    """``value`` as JSON holds it (numpy numbers as numbers, NaN as null), checked before any
    transaction starts: a value JSON cannot hold is a ValueError naming it."""
    try:
        return json.loads(db.dumps(value))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} cannot be stored as JSON ({exc})") from None


def _pose_rows(row: Mapping, result_id: int, docking_id: int) -> list[dict]:
    """The ``poses`` rows of a docked result (the docking engine's result event), best first."""
    if not isinstance(row, Mapping):
        raise ValueError(f"a docked result must be a dict, not {type(row).__name__}")
    poses = row.get("poses")
    if not isinstance(poses, (list, tuple)) or not poses:
        raise ValueError(f"the docked result of {row.get('smiles') or 'the ligand'} has no poses")
    out = []
    for k, pose in enumerate(poses):
        score = _finite(pose.get("score")) if isinstance(pose, Mapping) else None
        if score is None:
            raise ValueError(f"pose {k + 1} of {row.get('smiles') or 'the ligand'} has no finite score")
        molblock = pose.get("molblock")
        if not isinstance(molblock, str) or not molblock.strip():
            raise ValueError(f"pose {k + 1} of {row.get('smiles') or 'the ligand'} has no molblock")
        rank = pose.get("rank", k + 1)
        checks, found = pose.get("checks"), pose.get("interactions")
        what = f"pose {k + 1} of {row.get('smiles') or 'the ligand'}"
        out.append({"result_id": result_id, "docking_id": docking_id,
                    "rank": int(rank) if isinstance(rank, int) and not isinstance(rank, bool) else k + 1,
                    "score": score, "rmsd": _finite(pose.get("rmsd")), "molblock": molblock,
                    "checks": _plain_json(checks, f"the checks of {what}") if isinstance(checks, Mapping) else None,
                    "interactions": _plain_json(list(found), f"the interactions of {what}")
                    if isinstance(found, (list, tuple)) else None})
    out.sort(key=lambda p: p["rank"])
    return out


def _bulk_cache_kib(n_rows: int) -> int:
    return max(db.CACHE_KIB, min(BULK_CACHE_KIB_MAX, n_rows * BULK_CACHE_KIB_PER_ROW))


def _check_parents(conn: Connection, rows: list, first_id: int) -> None:
    """What SQLite's foreign key on results.parent_id checks when rows are inserted one by one:
    each parent is a result already stored, or a row of this batch up to the row itself."""
    stored = set()
    for rid, row in enumerate(rows, first_id):
        parent = row.get("parent_id")
        if parent is not None:
            if parent >= first_id:
                if parent > rid:
                    raise sqlite3.IntegrityError("FOREIGN KEY constraint failed")
            else:
                stored.add(parent)
    if stored:
        found = conn.exec_driver_sql("SELECT count(*) FROM results WHERE id IN (SELECT value FROM json_each(?))",
                                    (json.dumps(sorted(stored)),)).scalar()
        if found != len(stored):
            raise sqlite3.IntegrityError("FOREIGN KEY constraint failed")


def _result_values(rows: list, run_id: int, task: str, first_id: int, first_idx: int, now: str):
    """The rows of ``results`` for a batch, one tuple at a time (executemany takes them as they
    come: 100k tuples never sit in memory together)."""
    rid, idx = first_id, first_idx
    for row in rows:
        get = row.get
        rating = get("rating")
        if rating is not None and not (isinstance(rating, int) and 0 <= rating <= 5):
            raise ValueError(f"rating must be 0 to 5 or None, not {rating!r}")
        ppl = get("ppl")
        if type(ppl) is float:
            ppl = ppl if ppl - ppl == 0.0 else None
        elif ppl is not None:
            ppl = clean_number(ppl)
        yield (rid, run_id, idx, task, get("smiles") or None, get("sequence") or None,
               1 if get("valid", True) else 0, ppl, get("notes"), rating, get("parent_id"), now)
        rid += 1
        idx += 1


def _payload_values(rows: list, first_id: int, tag_values: list):
    """The rows of ``result_payloads``, one tuple at a time; the ``result_tags`` rows of each
    result are appended to ``tag_values`` on the way.

    Scores: finite numbers are stored as they are, NaN and infinity as null, other objects as
    themselves when JSON has them (text, true/false) or as text. The common row (a dict of
    str -> finite float/int) is written as given, without a copy. The numbers among them are the
    result's ``result_scores`` rows (``_INSERT_SCORES`` copies them from this JSON)."""
    dumps = db.dumps
    rid = first_id
    for row in rows:
        get = row.get
        scores = get("scores")
        if not scores:
            scores_json = "{}"
        else:
            simple = type(scores) is dict
            if simple:
                for name, value in scores.items():
                    kind = type(value)
                    if not (type(name) is str and ((kind is float and value - value == 0.0) or kind is int)):
                        simple = False
                        break
            scores_json = dumps(scores if simple else _clean_scores(scores))
        objects = get("objects")
        reasons = get("reasons")
        tags = get("tags")
        if tags:
            for tag in tags:
                tag_values.append((rid, str(tag)))
        yield (rid, str(get("record") or ""), None if objects is None else dumps(objects),
               get("cif") or None, dumps([str(r) for r in reasons]) if reasons else "[]", scores_json)
        rid += 1


def _clean_scores(scores: Mapping) -> dict:
    """Scores as stored: text names; finite numbers as they are (numpy numbers as Python numbers),
    NaN and infinity as None, other objects as JSON has them (text, true/false) or as text."""
    out = {}
    for name, value in scores.items():
        if type(name) is not str:
            name = str(name)
        kind = type(value)
        if kind is float:  # NaN and infinity become None
            if value - value != 0.0:
                value = None
        elif kind is not int:
            value = _json_value(value)
        out[name] = value
    return out


def _is(col, value):
    return col.is_(None) if value is None else col == value


def _json_value(value):
    """A score as stored: finite numbers as they are, NaN/infinity as None, other objects as text."""
    kind = type(value)
    if kind is int or kind is str or value is None or kind is bool:
        return value
    if kind is float:
        return value if math.isfinite(value) else None
    import numbers

    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return clean_number(value)
    return str(value)


def _file_size(path: Path) -> int:
    total = 0
    for suffix in ("", "-wal"):
        p = Path(str(path) + suffix)
        if p.exists():
            total += p.stat().st_size
    return total


def _has_no_tables(path: Path) -> bool:
    try:
        con = sqlite3.connect(Path(path).resolve().as_uri() + "?mode=ro", uri=True)
        try:
            return con.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0
        finally:
            con.close()
    except sqlite3.Error:
        return False
