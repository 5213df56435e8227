"""Bad project files: a clear message naming the file, and the file left exactly as it was."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from engine.store import (
    CorruptProjectError,
    DiskFullError,
    NotAProjectError,
    Project,
    ProjectError,
    ProjectLockedError,
    ResultQuery,
)
from tests.engine.store.conftest import file_digest
from tests.fixtures.required import missing


def _side_files(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir() if p.name != path.name)


def test_text_file_is_not_a_project(tmp_path):
    path = tmp_path / "notes.logos"
    path.write_text("These are my notes, not a database.\n" * 50)
    digest = file_digest(path)
    with pytest.raises(NotAProjectError) as err:
        Project.open(path)
    assert str(err.value) == f"{path}: not a LOGOS project: the file is not an SQLite database"
    assert file_digest(path) == digest and _side_files(path) == []


def test_create_never_overwrites_a_file_that_is_not_a_project(tmp_path):
    path = tmp_path / "thesis.logos"
    path.write_text("chapter 1\n")
    with pytest.raises(NotAProjectError):
        Project.open(path, create=True)
    assert path.read_text() == "chapter 1\n"


def test_real_sdf_renamed_is_not_a_project(tmp_path, test_data):
    sdf = test_data / "structures" / "1ia1_ligand.sdf"
    if not sdf.exists():
        missing("structures fixture not present")
    path = tmp_path / "ligand.logos"
    path.write_bytes(sdf.read_bytes())
    with pytest.raises(NotAProjectError, match="not an SQLite database"):
        Project.open(path)
    assert path.read_bytes() == sdf.read_bytes()


def test_empty_file_is_not_a_project(tmp_path):
    path = tmp_path / "empty.logos"
    path.touch()
    with pytest.raises(NotAProjectError, match="the file is empty"):
        Project.open(path)
    assert path.stat().st_size == 0


def test_other_sqlite_database_is_not_a_project(tmp_path):
    path = tmp_path / "other.logos"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE people (name TEXT)")
    con.execute("INSERT INTO people VALUES ('Rosalind Franklin')")
    con.commit()
    con.close()
    digest = file_digest(path)
    with pytest.raises(NotAProjectError, match="an SQLite database without LOGOS tables"):
        Project.open(path)
    assert file_digest(path) == digest


def test_folder_is_refused(tmp_path):
    with pytest.raises(ProjectError, match="is a folder"):
        Project.open(tmp_path)


def _overwrite(path: Path, offset: int, data: bytes) -> None:
    with open(path, "r+b") as fh:
        fh.seek(offset)
        fh.write(data)


def test_damaged_pages_are_reported(filled_project):
    path, _ = filled_project
    size = path.stat().st_size
    page = 4096
    # garbage over pages in the middle of the file (b-tree pages of the tables and indexes)
    _overwrite(path, 3 * page, bytes((i * 37 + 11) % 256 for i in range(min(6 * page, size - 4 * page))))
    digest = file_digest(path)
    with pytest.raises(CorruptProjectError) as err:
        Project.open(path)
    assert str(err.value).startswith(f"{path}: the project file is damaged")
    assert "backup" in str(err.value)
    assert file_digest(path) == digest


def test_truncated_file_is_reported(filled_project):
    path, _ = filled_project
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    digest = file_digest(path)
    with pytest.raises((CorruptProjectError, NotAProjectError)) as err:
        Project.open(path)
    assert str(path) in str(err.value)
    assert file_digest(path) == digest


def test_damaged_header_is_reported(filled_project):
    path, _ = filled_project
    _overwrite(path, 16, b"\x00\x03")  # page size 3: impossible
    digest = file_digest(path)
    with pytest.raises(ProjectError) as err:
        Project.open(path)
    assert str(path) in str(err.value)
    assert file_digest(path) == digest


_HOLDER = textwrap.dedent("""
    import sqlite3, sys, time
    con = sqlite3.connect(sys.argv[1], isolation_level=None)
    if sys.argv[2] == "exclusive":
        con.execute("PRAGMA locking_mode = EXCLUSIVE")
        con.execute("BEGIN EXCLUSIVE")
        con.execute("SELECT count(*) FROM results").fetchone()
    else:
        con.execute("BEGIN IMMEDIATE")
    print("locked", flush=True)
    time.sleep(60)
""")


def _hold_lock(path: Path, mode: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", _HOLDER, str(path), mode], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_file_locked_by_another_process_is_reported(filled_project):
    path, _ = filled_project
    digest = file_digest(path)
    holder = _hold_lock(path, "exclusive")
    try:
        t0 = time.monotonic()
        with pytest.raises(ProjectLockedError) as err:
            Project.open(path, busy_timeout_s=0.3)
        assert time.monotonic() - t0 < 10
        assert str(err.value).startswith(f"{path}: the project is locked by another process")
    finally:
        holder.kill()
        holder.wait()
    assert file_digest(path) == digest
    with Project.open(path) as p:  # usable once the other process is gone
        assert p.query_results().total > 0


def test_write_waits_then_reports_a_writer_in_another_process(filled_project):
    path, ids = filled_project
    with Project.open(path, busy_timeout_s=0.3) as p:
        before = p.count_results()
        holder = _hold_lock(path, "immediate")
        try:
            assert p.query_results().total == before  # readers are not blocked (WAL)
            with pytest.raises(ProjectLockedError, match="locked by another process while storing results"):
                p.add_result(ids["run"], "<MoleculeS>CCO<MoleculeE>", smiles="CCO")
        finally:
            holder.kill()
            holder.wait()
        assert p.count_results() == before
        p.add_result(ids["run"], "<MoleculeS>CCO<MoleculeE>", smiles="CCO")
        assert p.count_results() == before + 1


def test_disk_full_during_a_write_keeps_the_file(filled_project):
    """SQLite's max_page_count makes the database 'full' at its current size: the same SQLITE_FULL
    error a full disk gives."""
    path, ids = filled_project
    con = sqlite3.connect(path)
    pages = con.execute("PRAGMA page_count").fetchone()[0]
    con.close()
    digest = file_digest(path)
    with Project.open(path, _pragmas={"max_page_count": pages}) as p:
        before = p.query_results(ResultQuery(limit=None))
        big = "<MoleculeS>" + "C" * 200_000 + "<MoleculeE>"
        with pytest.raises(DiskFullError) as err:
            p.add_results(ids["run"], [{"record": big, "smiles": "C"}] * 5)
        assert str(err.value).startswith(f"{path}: the disk is full while storing results; nothing was written")
        after = p.query_results(ResultQuery(limit=None))
        assert [r.id for r in after.rows] == [r.id for r in before.rows]
        assert after.rows == before.rows
        assert p.integrity_check() == ["ok"]
    assert file_digest(path) == digest
    with Project.open(path) as p:  # with room again, the same write succeeds
        p.add_results(ids["run"], [{"record": big, "smiles": "C"}])
        assert p.integrity_check() == ["ok"]


def test_project_on_a_read_only_medium_opens_read_only(filled_project, monkeypatch):
    """Neither the file nor its folder can be written (a DVD, a write-protected stick): the project
    opens read-only, as immutable (no -shm file could be made there), and nothing is written."""
    import os

    path, ids = filled_project
    digest = file_digest(path)
    real_access = os.access
    folder = path.parent

    def no_write(p, mode, *a, **kw):  # the tests run as root, for whom permissions never refuse
        if mode & os.W_OK and Path(p).resolve() in (path.resolve(), folder.resolve()):
            return False
        return real_access(p, mode, *a, **kw)

    monkeypatch.setattr(os, "access", no_write)
    with Project.open(path) as p:
        assert p.read_only and "write-protected" in p.message
        assert p.query_results().total == len(ids["results"]) + 2
        with pytest.raises(ProjectError, match="read-only"):
            p.add_result(ids["run"], "<MoleculeS>C<MoleculeE>")
    assert file_digest(path) == digest
    assert _side_files(path) == []
