"""Project files from others: the schema is compared with this version's before any write (a
crafted trigger, view or index makes the file read-only, with the reason), and every connection
runs with trusted_schema OFF unless the schema was verified as ours."""

from __future__ import annotations

import shutil
import sqlite3
import sys

import pytest

from engine.store import Project, db, schemacheck
from engine.store.errors import ReadOnlyProjectError
from engine.store.schema import HEAD_REVISION
from tests.engine.store.conftest import file_digest


def _craft(path, *statements):
    con = sqlite3.connect(path)
    try:
        for sql in statements:
            con.execute(sql)
        con.commit()
    finally:
        con.close()


EVIL_TRIGGER = ("CREATE TRIGGER evil AFTER INSERT ON results BEGIN "
                "UPDATE project SET name = 'pwned'; END")
# the substring index's trigger name, with another body: a check by names alone let it through
SAME_NAME_TRIGGER = ("CREATE TRIGGER result_smiles_fts_ai AFTER INSERT ON results WHEN new.smiles IS NOT NULL "
                     "BEGIN UPDATE project SET name = 'pwned'; END")


@pytest.mark.parametrize("statements,words", [
    ([EVIL_TRIGGER], "an unexpected trigger 'evil' on results"),
    (["DROP TRIGGER result_smiles_fts_ai", SAME_NAME_TRIGGER],
     "the trigger 'result_smiles_fts_ai' is not defined as this version defines it"),
    (["CREATE VIEW v AS SELECT * FROM results"], "an unexpected view 'v'"),
    (["CREATE INDEX ix_evil ON results (upper(smiles))"], "an unexpected index 'ix_evil' on results"),
    (["CREATE TABLE extra (x)"], "an unexpected table 'extra'"),
    (["DROP INDEX ix_results_ppl"], "the index 'ix_results_ppl' is missing"),
    (["ALTER TABLE results ADD COLUMN spy TEXT DEFAULT 'x'"], "the table 'results' is not defined"),
])
def test_a_crafted_file_opens_read_only_with_the_reason(filled_project, statements, words):
    path, ids = filled_project
    _craft(path, *statements)
    digest = file_digest(path)
    with Project.open(path) as p:
        assert p.read_only
        assert words in p.message and "opened read-only" in p.message
        assert f"revision {HEAD_REVISION}" in p.message
        assert p.count_results() > 0  # still readable
        with pytest.raises(ReadOnlyProjectError, match="schema differs"):
            p.add_result(ids["run"], "<MoleculeS>CCO<MoleculeE>", smiles="CCO")
        assert p.info().name != "pwned"
    assert file_digest(path) == digest  # nothing written, nothing ran


def test_an_older_crafted_file_is_not_upgraded(tmp_path, repo_root):
    path = tmp_path / "old.logos"
    shutil.copy(repo_root / "tests" / "data" / "store" / "project-v0.1.0.b.logos", path)
    _craft(path, EVIL_TRIGGER)
    digest = file_digest(path)
    with Project.open(path) as p:
        assert p.read_only and p.revision == "v0.1.0.b" and p.backup is None
        assert "an unexpected trigger 'evil'" in p.message
    assert file_digest(path) == digest
    assert not list(tmp_path.glob("*backup*"))


def test_our_own_files_stay_writable(filled_project, tmp_path, repo_root):
    path, ids = filled_project
    with Project.open(path) as p:  # after inserts, ANALYZE statistics (PRAGMA optimize), WAL
        assert not p.read_only and p.message is None
        p.add_result(ids["run"], "<MoleculeS>CCO<MoleculeE>", smiles="CCO")
    _craft(path, "ANALYZE")  # sqlite_stat1 (and sqlite_stat4 where SQLite has it) are SQLite's own
    with Project.open(path) as p:
        assert not p.read_only, p.message
    for old in sorted((repo_root / "tests" / "data" / "store").glob("*.logos")):
        copy = tmp_path / old.name
        shutil.copy(old, copy)
        with Project.open(copy) as p:  # upgraded
            assert not p.read_only, p.message
        with Project.open(copy) as p:
            assert not p.read_only and p.message is None, p.message


def test_a_file_without_the_substring_index_is_ours_too(filled_project):
    path, _ = filled_project
    _craft(path, *[f"DROP TRIGGER {t}" for t in ("result_smiles_fts_ai", "result_smiles_fts_ad",
                                                  "result_smiles_fts_au", "result_sequence_fts_ai",
                                                  "result_sequence_fts_ad", "result_sequence_fts_au")],
           "DROP TABLE result_smiles_fts", "DROP TABLE result_sequence_fts")
    with Project.open(path) as p:  # as a SQLite without the trigram tokenizer writes it: rebuilt
        assert not p.read_only, p.message


def test_trusted_schema_is_off_unless_the_schema_is_ours(filled_project):
    path, _ = filled_project

    def trusted(p):
        raw = p._engine.raw_connection()
        try:
            return raw.driver_connection.execute("PRAGMA trusted_schema").fetchone()[0]
        finally:
            raw.close()

    with Project.open(path, read_only=True) as p:
        assert trusted(p) == 0
    _craft(path, EVIL_TRIGGER)
    with Project.open(path) as p:
        assert p.read_only and trusted(p) == 0
    engine = db.make_engine(path)
    try:
        raw = engine.raw_connection()
        assert raw.driver_connection.execute("PRAGMA trusted_schema").fetchone()[0] == 0
        raw.close()
    finally:
        engine.dispose()


def test_defensive_mode_where_python_offers_it(tmp_path):
    if not db.defensive_available():
        pytest.skip(f"Python {sys.version.split()[0]} has no sqlite3.Connection.setconfig (new in 3.12): "
                    "defensive mode cannot be set")
    with Project.open(tmp_path / "d.logos", create=True) as p:
        raw = p._engine.raw_connection()
        try:
            assert raw.driver_connection.getconfig(sqlite3.SQLITE_DBCONFIG_DEFENSIVE)
        finally:
            raw.close()


@pytest.mark.parametrize("revision", ["v0.1.0.a", "v0.1.0.b", "v0.1.0.c", "v0.1.0.d", "v0.1.0.e"])
def test_the_expected_schema_matches_the_migrations(revision):
    """engine/store/schema_sql.py is generated; regenerate it (python -m engine.store.schemacheck)
    when a revision is added."""
    fresh = schemacheck.reference(revision)
    assert schemacheck.differences(fresh, revision) == []
    assert sorted(r[1] for r in fresh) == sorted(r[1] for r in schemacheck.expected(revision))
