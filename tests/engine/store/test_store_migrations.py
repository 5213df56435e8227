"""Schema revisions: the models match the newest revision; every kept project file upgrades to it
(backup first); a file from a newer program opens read-only and stays unchanged."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from engine.store import NewerSchemaError, Project, ProjectError, ResultQuery, migrate, schema, textindex
from tests.engine.store.conftest import MOLECULES, UBIQUITIN, dump_sql, file_digest

KEPT = sorted((Path(__file__).resolve().parents[2] / "data" / "store").glob("project-*.logos"))


def test_head_revision_is_the_models_revision():
    assert migrate.head() == schema.HEAD_REVISION
    assert migrate.known_revisions()[0] == "v0.1.0.a"
    assert migrate.known_revisions()[-1] == schema.HEAD_REVISION


def _schema_diff(p: Project) -> list:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    with p.session() as conn:
        opts = {"compare_type": True, "include_name": textindex.include_in_comparison}  # no FTS5 tables
        return compare_metadata(MigrationContext.configure(conn, opts=opts), schema.metadata)


def _indexes(p: Project) -> set[tuple[str, str]]:
    """Indexes, triggers and the FTS5 tables (with their shadow tables), as SQL."""
    with p.session() as conn:
        rows = conn.exec_driver_sql(
            "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE sql IS NOT NULL").all()
    return {(t, name, tbl, sql) for t, name, tbl, sql in rows
            if t in ("index", "trigger") or textindex.is_index_table(name)}


def test_revisions_build_exactly_the_models(tmp_path):
    """Alembic's autogenerate comparison finds no difference between a new file and schema.py."""
    with Project.open(tmp_path / "fresh.logos", create=True) as p:
        assert _schema_diff(p) == []
        with p.session() as conn:
            ddl = conn.exec_driver_sql("SELECT sql FROM sqlite_master WHERE name = 'result_scores'").scalar()
        assert "WITHOUT ROWID" in ddl


@pytest.mark.parametrize("kept", KEPT, ids=lambda p: p.name)
def test_upgraded_file_has_the_same_schema_as_a_new_one(kept, tmp_path):
    shutil.copyfile(kept, tmp_path / "old.logos")
    with Project.open(tmp_path / "old.logos") as old, Project.open(tmp_path / "new.logos", create=True) as new:
        assert _schema_diff(old) == []
        assert _indexes(old) == _indexes(new)
        assert sum(1 for t, *_ in _indexes(new) if t == "trigger") == 6
        with old.session() as conn:
            assert conn.exec_driver_sql("PRAGMA foreign_key_check").all() == []


def test_kept_files_exist_for_the_first_revision():
    assert any(p.name == "project-v0.1.0.a.logos" for p in KEPT)


@pytest.mark.parametrize("kept", KEPT, ids=lambda p: p.name)
def test_every_kept_project_upgrades_with_a_backup(kept, tmp_path):
    work = tmp_path / "old.logos"
    shutil.copyfile(kept, work)
    before = dump_sql(work)
    with Project.open(work) as p:
        assert p.revision == schema.HEAD_REVISION and not p.read_only
        old_revision = kept.stem.split("project-")[1]
        if old_revision != schema.HEAD_REVISION:
            assert p.backup is not None and p.backup.parent == work.parent
            assert old_revision in p.backup.name and "backup" in p.backup.name
            assert "upgraded from schema" in p.message and p.backup.name in p.message
        assert p.integrity_check() == ["ok"]
        page = p.query_results(ResultQuery(limit=None))
        by_smiles = {r.smiles: r for r in page.rows if r.smiles}
        for smi in MOLECULES.values():
            assert smi in by_smiles
        aspirin = by_smiles[MOLECULES["aspirin"]]
        assert aspirin.tags == ["hit", "reference"] and aspirin.rating == 5
        assert aspirin.notes == "reference compound" and aspirin.scores["qed"] == 0.3
        assert aspirin.record == f"<MoleculeS>{MOLECULES['aspirin']}<MoleculeE>"
        assert aspirin.objects == [{"kind": "molecule", "smiles": MOLECULES["aspirin"]}]
        bad = [r for r in page.rows if not r.valid]
        assert len(bad) == 1 and bad[0].reasons == ["RDKit: SMILES parse error: unclosed ring"]
        assert any(r.sequence == UBIQUITIN for r in page.rows)
        run = p.get_run(aspirin.run_id)
        assert run.prompt == "<MoleculeS>" and run.seed == 1234 and run.params["temperature"] == 1.2
        assert run.model.quant == "Q4_K_M"
        assert p.training_runs()[0].metrics == {"loss": 0.42}
        # sorting and score filters work on the upgraded file
        top = p.query_results(ResultQuery(sort="score:qed", descending=True, limit=1)).rows[0]
        assert top.scores["qed"] == max(r.scores.get("qed", -1) for r in page.rows)
        # the substring index was filled from the rows already there
        assert textindex.available()
        with p.session() as conn:
            assert textindex.present(conn)
        for q, expected in ((ResultQuery(smiles_contains="c1ccccc1C(=O)", limit=None), [aspirin.id]),
                            (ResultQuery(sequence_contains="tlevepsd", limit=None),
                             [r.id for r in page.rows if r.sequence == UBIQUITIN])):
            assert [r.id for r in p.query_results(q).rows] == expected
        # and it takes new rows
        p.add_result(run.id, "<MoleculeS>CCO<MoleculeE>", smiles="CCO", scores={"qed": 0.41})
        assert len(p.query_results(ResultQuery(smiles_contains="CCO", limit=None)).rows) == 1
    if p.backup is not None:
        assert dump_sql(p.backup) == before  # the backup holds exactly the old file's contents
    # opening again: already at head, no second backup
    with Project.open(work) as again:
        assert again.backup is None and again.message is None
    assert len(list(tmp_path.glob("*backup*"))) == (1 if p.backup else 0)


def test_failed_upgrade_leaves_the_file_unchanged(tmp_path, monkeypatch):
    kept = next(k for k in KEPT if "v0.1.0.a" in k.name)
    work = tmp_path / "old.logos"
    shutil.copyfile(kept, work)
    before = dump_sql(work)
    real_upgrade = migrate.upgrade

    def failing_upgrade(conn, target="heads"):
        real_upgrade(conn, target)  # every step runs inside the one transaction...
        raise RuntimeError("power cut simulated after the last migration step")  # ...then fails

    monkeypatch.setattr(migrate, "upgrade", failing_upgrade)
    with pytest.raises(ProjectError, match="power cut simulated.*the file is unchanged"):
        Project.open(work)
    assert dump_sql(work) == before
    monkeypatch.setattr(migrate, "upgrade", real_upgrade)
    with Project.open(work) as p:  # a later open upgrades normally
        assert p.revision == schema.HEAD_REVISION


def test_newer_schema_opens_read_only_and_stays_unchanged(filled_project):
    path, ids = filled_project
    con = sqlite3.connect(path)
    con.execute("UPDATE alembic_version SET version_num = 'v9.0.0.a'")
    con.commit()
    con.close()
    digest = file_digest(path)
    with Project.open(path) as p:
        assert p.read_only
        assert "newer LOGOS Desktop" in p.message and "v9.0.0.a" in p.message and "read-only" in p.message
        assert p.query_results().total == len(ids["results"]) + 2
        assert p.get_run(ids["run"]).prompt == "<MoleculeS>"
        with pytest.raises(NewerSchemaError, match="read-only"):
            p.add_result(ids["run"], "<MoleculeS>C<MoleculeE>")
        with pytest.raises(NewerSchemaError):
            p.update_result(ids["results"][0], notes="changed")
    assert file_digest(path) == digest
    assert not list(path.parent.glob("*backup*"))


def _drop_text_index(path: Path) -> None:
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("BEGIN")
    for (name,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
        con.execute(f"DROP TRIGGER {name}")
    for table in textindex.TABLES:
        con.execute(f"DROP TABLE {table}")
    con.execute("COMMIT")
    con.close()


def test_text_index_module_builds_what_the_revision_built(filled_project, tmp_path):
    """textindex.create (used when a file lacks the index) makes exactly the revision's objects."""
    path, _ = filled_project
    with Project.open(tmp_path / "fresh.logos", create=True) as fresh:
        expected = _indexes(fresh)
    _drop_text_index(path)
    with Project.open(path) as p:  # opening finds no index and builds it
        assert _indexes(p) == expected
        every = p.query_results(ResultQuery(limit=None)).rows
        expected_ids = [r.id for r in every if "C(=O)O" in (r.smiles or "")]
        assert len(expected_ids) == 2
        found = p.query_results(ResultQuery(smiles_contains="C(=O)O", limit=None)).rows
        assert [r.id for r in found] == expected_ids


def test_without_the_trigram_tokenizer_projects_work_and_scan(tmp_path, monkeypatch):
    """A SQLite without FTS5 trigram (before 3.34): no index is made, substring filters scan; the
    same file opened later by a SQLite that has it gets its index then."""
    monkeypatch.setattr(textindex, "available", lambda: False)
    path = tmp_path / "old-sqlite.logos"
    with Project.open(path, create=True) as p:
        with p.session() as conn:
            assert not textindex.present_any(conn)
        run = p.start_run("molecule", "<MoleculeS>", {}, 1)
        p.add_results(run, [{"record": s, "smiles": s} for s in list(MOLECULES.values()) * 30])
        p.add_result(run, "<ProteinS>x<ProteinE>", sequence=UBIQUITIN)
        scanned = [r.id for r in p.query_results(ResultQuery(smiles_contains="ccccc", limit=None)).rows]
        assert len(scanned) == 30 * sum("ccccc" in smi for smi in MOLECULES.values()) > 0
    monkeypatch.undo()
    with Project.open(path) as p:
        with p.session() as conn:
            assert textindex.present(conn)
        assert [r.id for r in p.query_results(ResultQuery(smiles_contains="ccccc", limit=None)).rows] == scanned
        assert len(p.query_results(ResultQuery(sequence_contains="MQIFV", limit=None)).rows) == 1


def test_index_needing_a_newer_sqlite_opens_read_only(filled_project, monkeypatch):
    path, ids = filled_project
    digest = file_digest(path)
    monkeypatch.setattr(textindex, "available", lambda: False)
    with Project.open(path) as p:
        assert p.read_only and "SQLite 3.34" in p.message and "read-only" in p.message
        # reading still works: the substring filters scan
        assert [r.id for r in p.query_results(ResultQuery(smiles_contains="c1ccccc1C(=O)O", limit=None)).rows] \
            == [ids["results"][0]]
        with pytest.raises(ProjectError, match="read-only"):
            p.add_result(ids["run"], "<MoleculeS>C<MoleculeE>", smiles="C")
    assert file_digest(path) == digest
