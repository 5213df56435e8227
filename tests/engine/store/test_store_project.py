"""The Project API of docs/ARCHITECTURE.md: inputs, models, runs, results, training runs."""

from __future__ import annotations

import hashlib
import sqlite3

import pytest

from engine.store import Project, ProjectError, ResultQuery, ResultRow
from tests.engine.store.conftest import MOLECULES, SAMPLING, UBIQUITIN, aspirin_sdf


def test_create_opens_in_wal_with_foreign_keys(tmp_path):
    path = tmp_path / "new.logos"
    with Project.open(path, create=True) as p:
        assert not p.read_only and p.message is None
        info = p.info()
        assert info.journal_mode == "wal"
        assert info.schema_revision == info.head_revision
        assert info.counts["results"] == 0
        with p.session() as conn:
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5000
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    con.close()


def test_open_missing_file_without_create_says_so(tmp_path):
    with pytest.raises(ProjectError, match="no such project file"):
        Project.open(tmp_path / "absent.logos")
    assert not (tmp_path / "absent.logos").exists()


def test_create_in_missing_folder_names_the_folder(tmp_path):
    with pytest.raises(ProjectError, match="does not exist"):
        Project.open(tmp_path / "nope" / "x.logos", create=True)


def test_full_provenance_round_trip(filled_project):
    path, ids = filled_project
    with Project.open(path) as p:
        run = p.get_run(ids["run"])
        assert run.task == "molecule" and run.prompt == "<MoleculeS>" and run.seed == 1234
        assert run.params == SAMPLING
        assert run.status == "finished" and run.finished_at is not None and run.error is None
        assert run.versions["llama-cpp-python"] == "0.3.36"
        assert run.versions["logos"] and run.versions["sqlite"] == sqlite3.sqlite_version
        assert run.input_ids == [ids["input"]]
        assert run.model.quant == "Q4_K_M" and run.model.base == "LOGOS-Hub/LOGOS-pretrain-1B"
        assert run.n_results == len(ids["results"]) + 1  # + the child
        failed = p.get_run(ids["run2"])
        assert failed.status == "failed" and "cancelled by the test" in failed.error
        inp = p.get_input(ids["input"])
        assert inp.data == aspirin_sdf() and inp.sha256 == hashlib.sha256(inp.data).hexdigest()
        assert inp.fmt == "sdf" and inp.name == "aspirin.sdf"

        first = p.get_result(ids["results"][0])
        assert isinstance(first, ResultRow)
        assert first.smiles == MOLECULES["aspirin"] and first.valid and first.reasons == []
        assert first.objects == [{"kind": "molecule", "smiles": MOLECULES["aspirin"]}]
        assert first.scores == {"qed": 0.3, "name": "aspirin"} and first.ppl == 1.5
        assert first.tags == ["hit", "reference"] and first.notes == "reference compound" and first.rating == 5
        bad = p.get_result(ids["bad"])
        assert not bad.valid and bad.reasons == ["RDKit: SMILES parse error: unclosed ring"]
        assert bad.record == "<MoleculeS>C1CC(<MoleculeE>"
        assert p.get_result(ids["sequence"]).sequence == UBIQUITIN
        assert p.get_result(ids["child"]).parent_id == ids["results"][0]
        tr = p.training_runs()[0]
        assert tr.status == "finished" and tr.metrics == {"loss": 0.42} and tr.n_examples == 2
        assert p.training_examples(tr.id) == sorted(ids["results"][:2])


def test_inputs_and_models_are_deduplicated(tmp_path):
    with Project.open(tmp_path / "d.logos", create=True) as p:
        a = p.add_input(b"CCO\n", "smi", "a.smi")
        assert p.add_input(b"CCO\n", "smi", "renamed.smi") == a
        assert p.add_input(b"CCN\n", "smi", "b.smi") != a
        sha = "0" * 64
        m = p.add_model("/x/a.gguf", sha, quant="Q8_0")
        assert p.add_model("/y/a.gguf", sha, quant="Q8_0") == m
        assert p.add_model("/x/a.gguf", sha, quant="Q8_0", adapter="lora.gguf") != m
        assert len(p.inputs()) == 2 and len(p.models()) == 2


def test_add_result_is_committed_when_it_returns(tmp_path):
    """The engine process writes; a second connection (the GUI) sees every row at once."""
    path = tmp_path / "live.logos"
    with Project.open(path, create=True) as writer, Project.open(path) as reader:
        run = writer.start_run("molecule", "<MoleculeS>", {}, 1)
        for i, smi in enumerate(MOLECULES.values()):
            writer.add_result(run, f"<MoleculeS>{smi}<MoleculeE>", smiles=smi, ppl=float(i))
            page = reader.query_results(ResultQuery(run_id=run))
            assert page.total == i + 1 and page.rows[-1].smiles == smi
        # a third, plain sqlite3 connection sees the same committed rows
        con = sqlite3.connect(path)
        assert con.execute("SELECT count(*) FROM results").fetchone()[0] == len(MOLECULES)
        con.close()


def test_unknown_run_and_bad_status_are_refused(tmp_path):
    with Project.open(tmp_path / "e.logos", create=True) as p:
        with pytest.raises(ProjectError, match="no run 42"):
            p.add_result(42, "x")
        run = p.start_run("molecule", "<MoleculeS>", {}, None)
        with pytest.raises(ValueError, match="status"):
            p.finish_run(run, "done")
        with pytest.raises(ValueError, match="rating"):
            rid = p.add_result(run, "<MoleculeS>C<MoleculeE>", smiles="C")
            p.update_result(rid, rating=9)
        with pytest.raises(ProjectError, match="no result"):
            p.update_result(10_000, notes="x")
        assert p.query_results().total == 1


def test_non_finite_numbers_are_stored_as_empty(tmp_path):
    with Project.open(tmp_path / "n.logos", create=True) as p:
        run = p.start_run("molecule", "<MoleculeS>", {}, None)
        rid = p.add_result(run, "r", scores={"a": float("nan"), "b": float("inf"), "c": 1}, ppl=float("nan"))
        row = p.get_result(rid)
        assert row.ppl is None and row.scores == {"a": None, "b": None, "c": 1}
        assert p.score_names() == ["c"]


def test_closed_project_refuses_use(tmp_path):
    p = Project.open(tmp_path / "c.logos", create=True)
    p.close()
    with pytest.raises(ProjectError, match="closed"):
        p.query_results()


def test_empty_strings_are_stored_as_missing(tmp_path):
    with Project.open(tmp_path / "s.logos", create=True) as p:
        run = p.start_run("molecule", "<MoleculeS>", {}, None)
        row = p.get_result(p.add_result(run, "<MoleculeS><MoleculeE>", smiles="", sequence="", cif="", valid=False,
                                        reasons=["empty record"]))
        assert row.smiles is None and row.sequence is None and row.cif is None
        assert p.query_results(ResultQuery(has=["smiles"])).total == 0


def test_paths_with_spaces_and_uri_characters(tmp_path):
    folder = tmp_path / "my results #1 ?% ü"
    folder.mkdir()
    path = folder / "screen 50%.logos"
    with Project.open(path, create=True) as p:
        run = p.start_run("molecule", "<MoleculeS>", {}, None)
        p.add_result(run, "<MoleculeS>CCO<MoleculeE>", smiles="CCO")
    assert sorted(x.name for x in folder.iterdir()) == ["screen 50%.logos"]
    with Project.open(path) as p:
        assert p.query_results().rows[0].smiles == "CCO"
