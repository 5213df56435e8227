"""Schema revisions: the models match the newest revision; every kept project file upgrades to it
(backup first); a file from a newer program opens read-only and stays unchanged."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from engine.store import NewerSchemaError, Project, ProjectError, ResultQuery, migrate, schema
from tests.engine.store.conftest import MOLECULES, UBIQUITIN, file_digest

KEPT = sorted((Path(__file__).resolve().parents[2] / "data" / "store").glob("project-*.logos"))


def _dump(path: Path) -> list[str]:
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return list(con.iterdump())
    finally:
        con.close()


def test_head_revision_is_the_models_revision():
    assert migrate.head() == schema.HEAD_REVISION
    assert migrate.known_revisions()[0] == "v0.1.0.a"
    assert migrate.known_revisions()[-1] == schema.HEAD_REVISION


def _schema_diff(p: Project) -> list:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    with p.session() as conn:
        return compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), schema.metadata)


def _indexes(p: Project) -> set[tuple[str, str]]:
    with p.session() as conn:
        return set(conn.exec_driver_sql(
            "SELECT tbl_name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL").all())


def test_revisions_build_exactly_the_models(tmp_path):
    """Alembic's autogenerate comparison finds no difference between a new file and schema.py."""
    with Project.open(tmp_path / "fresh.logos", create=True) as p:
        assert _schema_diff(p) == []
        with p.session() as conn:
            ddl = conn.exec_driver_sql("SELECT sql FROM sqlite_master WHERE name = 'result_scores'").scalar()
        assert "WITHOUT ROWID" in ddl


def test_upgraded_file_has_the_same_schema_as_a_new_one(tmp_path):
    kept = next(k for k in KEPT if "v0.1.0.a" in k.name)
    shutil.copyfile(kept, tmp_path / "old.logos")
    with Project.open(tmp_path / "old.logos") as old, Project.open(tmp_path / "new.logos", create=True) as new:
        assert _schema_diff(old) == []
        assert _indexes(old) == _indexes(new)
        with old.session() as conn:
            assert conn.exec_driver_sql("PRAGMA foreign_key_check").all() == []


def test_kept_files_exist_for_the_first_revision():
    assert any(p.name == "project-v0.1.0.a.logos" for p in KEPT)


@pytest.mark.parametrize("kept", KEPT, ids=lambda p: p.name)
def test_every_kept_project_upgrades_with_a_backup(kept, tmp_path):
    work = tmp_path / "old.logos"
    shutil.copyfile(kept, work)
    before = _dump(work)
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
        # and it takes new rows
        p.add_result(run.id, "<MoleculeS>CCO<MoleculeE>", smiles="CCO", scores={"qed": 0.41})
    if p.backup is not None:
        assert _dump(p.backup) == before  # the backup holds exactly the old file's contents
    # opening again: already at head, no second backup
    with Project.open(work) as again:
        assert again.backup is None and again.message is None
    assert len(list(tmp_path.glob("*backup*"))) == (1 if p.backup else 0)


def test_failed_upgrade_leaves_the_file_unchanged(tmp_path, monkeypatch):
    kept = next(k for k in KEPT if "v0.1.0.a" in k.name)
    work = tmp_path / "old.logos"
    shutil.copyfile(kept, work)
    before = _dump(work)
    real_upgrade = migrate.upgrade

    def failing_upgrade(conn, target="heads"):
        real_upgrade(conn, target)  # every step runs inside the one transaction...
        raise RuntimeError("power cut simulated after the last migration step")  # ...then fails

    monkeypatch.setattr(migrate, "upgrade", failing_upgrade)
    with pytest.raises(ProjectError, match="power cut simulated.*the file is unchanged"):
        Project.open(work)
    assert _dump(work) == before
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
