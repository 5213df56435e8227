"""Docking in the project store: dockings and poses (revision v0.1.0.e), the Vina score in the
results' scores, pose SDF export, failures that leave stored rows alone, and the upgrade of older
files. These tests insert docking rows shaped like the docking engine's result events; they do not
dock (tests/engine/docking/test_cli_dock.py does)."""

from __future__ import annotations

import csv
import io
import shutil
import sqlite3
from pathlib import Path

import pytest

from engine.store import DiskFullError, DockingRow, PoseRow, Project, ProjectError, ResultQuery, parse_where, schema
from engine.store.export import export_file, export_results
from tests.engine.store.conftest import MOLECULES, dump_sql

DATA = Path(__file__).resolve().parents[2] / "data"
RECEPTOR = DATA / "structures" / "1hvr.pdb"
KEPT_C = DATA / "store" / "project-v0.1.0.c.logos"
BOX = {"center": [-8.715, 15.544, 27.9], "size": [19.97, 18.0, 27.102], "source": "ligand XK2 A:263 + 5 Å"}
SETTINGS = {"exhaustiveness": 8, "n_poses": 3, "seed": 0, "cpus": 2, "scheduler": None}
VERSIONS = {"vina": "1.2.7", "meeko": "0.6.1", "rdkit": "2026.09.1"}
REPORT = {"removed": [{"residue": "A:CSO67", "reason": "non-standard amino acid; no residue template to type it"}],
          "summary": ["removed the reference ligand XK2 A:263"]}
REFERENCE = {"name": "XK2", "chain": "A", "resnum": 263, "smiles": "O=C1N(C)C(O)C1", "molblock": "x\n"}


def _molblocks(smiles: str, n: int) -> list[str]:
    """``n`` real 3D conformers of a molecule (with hydrogens), as docked poses would be."""
    from rdkit import Chem
    from rdkit.Chem import AllChem

    mol = Chem.AddHs(Chem.MolFromSmiles(smiles))
    AllChem.EmbedMultipleConfs(mol, n, randomSeed=11)
    return [Chem.MolToMolBlock(mol, confId=c.GetId()) for c in mol.GetConformers()][:n]


def docked(smiles: str, scores: list[float], rmsd: float | None = None, passed: bool = True) -> dict:
    """A result event of the docking engine, best pose first."""
    checks_ok = {"passed": True, "failures": [], "n_checks": 22}
    clash = {"passed": False, "n_checks": 22,
             "failures": [{"check": "minimum_distance_to_protein", "reason": "clash with the protein"}]}
    contacts = [{"type": "HBDonor", "label": "hydrogen bond (ligand donor)", "residue": "A:ASP25",
                 "distance": 2.91, "ligand_xyz": [1.0, 2.0, 3.0], "protein_xyz": [1.5, 2.5, 3.5]}]
    poses = []
    for k, (score, block) in enumerate(zip(scores, _molblocks(smiles, len(scores)))):
        checks = checks_ok if (passed or k > 0) else clash
        poses.append({"rank": k + 1, "score": score, "inter": score - 0.5, "intra": 0.5,
                      "rmsd": None if rmsd is None else round(rmsd + k, 3), "molblock": block,
                      "checks": checks, "interactions": contacts if k == 0 else []})
    best = poses[0]
    return {"type": "result", "index": 0, "smiles": smiles, "name": None, "docked_smiles": smiles,
            "score": best["score"], "rmsd": best["rmsd"], "checks": best["checks"],
            "interactions": best["interactions"], "poses": poses, "seconds": {"dock": 1.0}, "worker": 1}


def _start(p: Project, run_id: int | None = None, reference=REFERENCE) -> int:
    return p.start_docking(RECEPTOR.read_bytes(), "pdb", RECEPTOR.name, BOX, SETTINGS, VERSIONS, REPORT,
                           reference=reference, run_id=run_id)


def _by_smiles(p: Project) -> dict:
    return {r.smiles: r for r in p.query_results(ResultQuery(limit=None)).rows if r.smiles}


def test_add_docked_stores_every_pose_and_the_vina_score(filled_project):
    path, ids = filled_project
    with Project.open(path) as p:
        aspirin = _by_smiles(p)[MOLECULES["aspirin"]]
        did = _start(p, run_id=ids["run"])
        p.add_docked(aspirin.id, did, docked(MOLECULES["aspirin"], [-7.1, -6.8, -6.2], rmsd=1.25))
        poses = p.poses(aspirin.id)
        assert [type(x) for x in poses] == [PoseRow] * 3
        assert [(x.rank, x.score, x.rmsd) for x in poses] == [(1, -7.1, 1.25), (2, -6.8, 2.25), (3, -6.2, 3.25)]
        assert poses[0].checks["passed"] is True and poses[0].checks["n_checks"] == 22
        assert poses[0].interactions[0]["residue"] == "A:ASP25" and poses[1].interactions == []
        assert "M  END" in poses[0].molblock and poses[0].docking_id == did
        row = p.get_result(aspirin.id)
        # the earlier scores are kept, the docking's are added (numbers: the score index has them)
        assert row.scores == {**aspirin.scores, "vina": -7.1, "vina_rmsd": 1.25, "posebusters_ok": 1.0}
        assert {"vina", "vina_rmsd", "posebusters_ok"} <= set(p.score_names())

        d = p.get_docking(did)
        assert isinstance(d, DockingRow)
        assert (d.run_id, d.status, d.box, d.settings, d.versions) == (ids["run"], "running", BOX, SETTINGS, VERSIONS)
        assert d.report == REPORT and d.reference == REFERENCE and d.failures == [] and d.summary is None
        stored = p.get_input(d.receptor_input_id)
        assert stored.data == RECEPTOR.read_bytes() and stored.sha256 == d.receptor_sha256 and stored.fmt == "pdb"

        # a second docking against the same file: the receptor is stored once; its poses come first
        # and its score replaces the first one's (no RMSD here: the old RMSD is not kept beside it)
        did2 = _start(p, reference=None)
        assert p.get_docking(did2).receptor_input_id == d.receptor_input_id
        assert len(p.inputs()) == 2  # aspirin.sdf of fill() and the receptor
        p.add_docked(aspirin.id, did2, docked(MOLECULES["aspirin"], [-5.5, -5.0], passed=False))
        assert [(x.docking_id, x.rank) for x in p.poses(aspirin.id)] == [
            (did2, 1), (did2, 2), (did, 1), (did, 2), (did, 3)]
        assert [x.rank for x in p.poses(aspirin.id, docking_id=did)] == [1, 2, 3]
        row = p.get_result(aspirin.id)
        assert row.scores["vina"] == -5.5 and row.scores["posebusters_ok"] == 0.0 and "vina_rmsd" not in row.scores
        # adding the same docked result again replaces its poses instead of doubling them
        p.add_docked(aspirin.id, did2, docked(MOLECULES["aspirin"], [-5.6]))
        assert [(x.docking_id, x.score) for x in p.poses(aspirin.id, docking_id=did2)] == [(did2, -5.6)]
        assert [x.id for x in p.dockings()] == [did2, did] and [x.id for x in p.dockings(run_id=ids["run"])] == [did]
        assert p.info().counts["dockings"] == 2


def test_vina_sorts_and_filters_like_any_score(filled_project):
    path, ids = filled_project
    with Project.open(path) as p:
        mols = _by_smiles(p)
        did = _start(p)
        vina = {"aspirin": -6.0, "caffeine": -7.5, "ibuprofen": -5.25}
        for name, score in vina.items():
            p.add_docked(mols[MOLECULES[name]].id, did, docked(MOLECULES[name], [score]))
        best_first = p.query_results(ResultQuery(sort="score:vina", limit=None)).rows
        expected = [mols[MOLECULES[n]].id for n in sorted(vina, key=vina.get)]
        assert [r.id for r in best_first[:3]] == expected
        assert all("vina" not in r.scores for r in best_first[3:])  # rows without a score sort last
        q = parse_where(["score:vina<=-6"])
        q.limit = None
        assert sorted(r.id for r in p.query_results(q).rows) == sorted(
            mols[MOLECULES[n]].id for n in ("aspirin", "caffeine"))


def test_a_failing_add_docked_changes_nothing(filled_project):
    path, ids = filled_project
    with Project.open(path) as p:
        mols = _by_smiles(p)
        did = _start(p)
        aspirin, caffeine = mols[MOLECULES["aspirin"]].id, mols[MOLECULES["caffeine"]].id
        p.add_docked(aspirin, did, docked(MOLECULES["aspirin"], [-7.0, -6.0]))
    before = dump_sql(path)
    with Project.open(path) as p:
        no_molblock = docked(MOLECULES["caffeine"], [-6.5])
        del no_molblock["poses"][0]["molblock"]
        with pytest.raises(ValueError, match="pose 1 of .* has no molblock"):
            p.add_docked(caffeine, did, no_molblock)
        with pytest.raises(ValueError, match="has no poses"):
            p.add_docked(caffeine, did, {**docked(MOLECULES["caffeine"], [-6.5]), "poses": []})
        with pytest.raises(ProjectError, match="no result 9999"):
            p.add_docked(9999, did, docked("CCO", [-3.0]))
        with pytest.raises(ProjectError, match="no docking 77"):
            p.add_docked(caffeine, 77, docked(MOLECULES["caffeine"], [-6.5]))
        broken = docked(MOLECULES["aspirin"], [-9.0, -8.0])
        broken["poses"][1]["interactions"] = [{"type": "HBDonor", "residue": {"A", "B"}}]
        with pytest.raises(ValueError, match="the interactions of pose 2 of .* cannot be stored as JSON"):
            p.add_docked(aspirin, did, broken)
        with pytest.raises(ProjectError, match="no docking 77"):
            p.add_docking_failure(77, "CCO", "why")
        with pytest.raises(ValueError, match="status must be"):
            p.finish_docking(did, "done")
        with pytest.raises(ProjectError, match="no run 4242"):
            _start(p, run_id=4242)
    assert dump_sql(path) == before
    # a failure inside the transaction, after the result's old poses were deleted and the new ones
    # written: the disk fills up (SQLite's max_page_count at the file's size gives the same error)
    con = sqlite3.connect(path)
    pages = con.execute("PRAGMA page_count").fetchone()[0]
    con.close()
    with Project.open(path, _pragmas={"max_page_count": pages}) as p:
        huge = docked(MOLECULES["aspirin"], [-9.0, -8.0])
        huge["poses"][1]["molblock"] += "\n".join(["> <padding>", "x" * 300_000, ""])
        with pytest.raises(DiskFullError, match="the disk is full while storing the poses of result"):
            p.add_docked(aspirin, did, huge)
        assert [x.score for x in p.poses(aspirin)] == [-7.0, -6.0]
        assert p.get_result(aspirin).scores["vina"] == -7.0
    assert dump_sql(path) == before


def test_failures_reference_and_finish(filled_project):
    path, ids = filled_project
    with Project.open(path) as p:
        bad = ids["bad"]
        did = _start(p, run_id=ids["run"])
        p.add_docking_failure(did, "C1CC(", "C1CC(: RDKit cannot read this SMILES", result_id=bad)
        p.add_docking_failure(did, "C[Hg]C", "C[Hg]C: atoms Vina cannot type: Hg")
        redocked = docked("CC(=O)Oc1ccccc1C(=O)O", [-8.2, -7.9], rmsd=0.84)
        p.set_docking_reference(did, redocked)
        p.finish_docking(did, "finished", summary={"docked": 3, "failed": 2, "mean_neg_vina": 6.2})
        d = p.get_docking(did)
        assert d.failures == [
            {"result_id": bad, "smiles": "C1CC(", "message": "C1CC(: RDKit cannot read this SMILES"},
            {"result_id": None, "smiles": "C[Hg]C", "message": "C[Hg]C: atoms Vina cannot type: Hg"}]
        # the crystal ligand stays as it was, its own docking is added beside it
        assert {k: d.reference[k] for k in REFERENCE} == REFERENCE
        assert d.reference["score"] == -8.2 and d.reference["rmsd"] == 0.84
        assert d.reference["pose_molblock"] == redocked["poses"][0]["molblock"]
        assert d.status == "finished" and d.finished_at is not None and d.summary["mean_neg_vina"] == 6.2
        # a docking without a known reference gets one from the redocked row
        did2 = _start(p, reference=None)
        p.set_docking_reference(did2, redocked)
        assert p.get_docking(did2).reference["smiles"] == "CC(=O)Oc1ccccc1C(=O)O"
        p.finish_docking(did2, "cancelled", error="interrupted")
        assert (p.get_docking(did2).status, p.get_docking(did2).error) == ("cancelled", "interrupted")


def test_deleting_results_or_runs_follows_the_foreign_keys(filled_project):
    path, ids = filled_project
    with Project.open(path) as p:
        aspirin = _by_smiles(p)[MOLECULES["aspirin"]].id
        did = _start(p, run_id=ids["run"])
        p.add_docked(aspirin, did, docked(MOLECULES["aspirin"], [-7.0, -6.0]))
    con = sqlite3.connect(path)
    con.execute("PRAGMA foreign_keys = ON")
    con.execute("DELETE FROM results WHERE id = ?", (aspirin,))
    assert con.execute("SELECT count(*) FROM poses").fetchone()[0] == 0
    con.execute("DELETE FROM runs WHERE id = ?", (ids["run"],))
    assert con.execute("SELECT run_id FROM dockings WHERE id = ?", (did,)).fetchone() == (None,)
    con.commit()
    con.close()


def _sdf_records(text: str) -> list:
    from rdkit import Chem

    supplier = Chem.SDMolSupplier()
    supplier.SetData(text, removeHs=False)
    return [m for m in supplier]


def test_pose_sdf_carries_score_rmsd_checks_and_provenance(filled_project, tmp_path):
    from rdkit import Chem

    path, ids = filled_project
    with Project.open(path) as p:
        mols = _by_smiles(p)
        aspirin, caffeine = mols[MOLECULES["aspirin"]].id, mols[MOLECULES["caffeine"]].id
        did = _start(p, run_id=ids["run"])
        a = docked(MOLECULES["aspirin"], [-7.1, -6.8], rmsd=1.5, passed=False)
        p.add_docked(aspirin, did, a)
        p.add_docked(caffeine, did, docked(MOLECULES["caffeine"], [-6.0, -5.9, -5.0]))
        q = ResultQuery(task="molecule", valid=True, sort="score:vina", limit=None)
        buf = io.StringIO()
        report = export_results(p, buf, "sdf", q, poses="best")
        # the rows without poses are listed, not dropped silently
        assert report.written == 2 and {i for i, _ in report.skipped} == {
            r.id for r in p.query_results(q).rows if "vina" not in r.scores}
        assert all(why == "no docked pose" for _, why in report.skipped)
        recs = _sdf_records(buf.getvalue())
        assert [m.GetProp("result_id") for m in recs] == [str(aspirin), str(caffeine)]  # best score first
        first = recs[0].GetPropsAsDict()
        assert first["vina_score"] == -7.1 and first["vina_rmsd"] == 1.5 and first["pose_rank"] == 1
        assert first["posebusters_passed"] == 0
        assert first["posebusters_failures"] == "minimum_distance_to_protein: clash with the protein"
        assert first["score_vina"] == -7.1 and first["score_posebusters_ok"] == 0.0
        assert first["receptor_sha256"] == p.get_docking(did).receptor_sha256
        assert first["seed"] == 1234 and first["prompt"] == "<MoleculeS>" and len(first["model_sha256"]) == 64
        assert '"exhaustiveness": 8' in first["docking_settings"] and '"vina": "1.2.7"' in first["docking_versions"]
        assert first["reference_ligand"] == "XK2 A:263" and "A:ASP25" in first["interactions"]
        assert recs[1].GetProp("posebusters_passed") == "1" and not recs[1].HasProp("posebusters_failures")
        # the pose's coordinates, hydrogens included, not a 2D drawing
        pose = Chem.MolFromMolBlock(a["poses"][0]["molblock"], removeHs=False)
        assert recs[0].GetNumAtoms() == pose.GetNumAtoms()
        assert recs[0].GetConformer().GetPositions() == pytest.approx(pose.GetConformer().GetPositions(), abs=1e-3)
        assert recs[0].GetConformer().Is3D()

        out = tmp_path / "all.sdf"
        report = export_file(p, out, query=ResultQuery(ids=[aspirin, caffeine], limit=None), poses="all")
        recs = _sdf_records(out.read_text())
        assert report.written == 5 and [(m.GetProp("result_id"), m.GetProp("pose_rank")) for m in recs] == [
            (str(aspirin), "1"), (str(aspirin), "2"), (str(caffeine), "1"), (str(caffeine), "2"), (str(caffeine), "3")]
        assert recs[1].GetProp("vina_score") == "-6.8" and recs[1].GetProp("vina_rmsd") == "2.5"
        with pytest.raises(ValueError, match="poses are exported as SDF"):
            export_results(p, io.StringIO(), "csv", q, poses="best")


def test_csv_has_the_vina_column(filled_project):
    path, ids = filled_project
    with Project.open(path) as p:
        aspirin = _by_smiles(p)[MOLECULES["aspirin"]].id
        p.add_docked(aspirin, _start(p), docked(MOLECULES["aspirin"], [-7.25]))
        buf = io.StringIO()
        export_results(p, buf, "csv", ResultQuery(sort="score:vina", limit=None))
    rows = list(csv.DictReader(io.StringIO(buf.getvalue())))
    assert "score_vina" in rows[0] and "score_posebusters_ok" in rows[0]
    assert rows[0]["result_id"] == str(aspirin) and float(rows[0]["score_vina"]) == -7.25
    assert all(r["score_vina"] == "" for r in rows[1:])


def test_cli_exports_poses_and_refuses_them_as_csv(filled_project, tmp_path, capsys):
    from engine.cli import main

    path, ids = filled_project
    with Project.open(path) as p:
        aspirin = _by_smiles(p)[MOLECULES["aspirin"]].id
        p.add_docked(aspirin, _start(p), docked(MOLECULES["aspirin"], [-7.25, -7.0]))
    out = tmp_path / "hits.sdf"
    assert main(["project", "export", str(path), "--format", "sdf", "--poses", "all", "-w", "score:vina<0",
                 "-o", str(out)]) == 0
    assert "wrote 2 row(s) as SDF" in capsys.readouterr().err
    assert [m.GetProp("vina_score") for m in _sdf_records(out.read_text())] == ["-7.25", "-7.0"]
    assert main(["project", "export", str(path), "--format", "csv", "--poses", "best"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "logos project: error: docked poses are exported as SDF, not CSV"
    assert main(["project", "info", str(path)]) == 0
    assert "1 dockings" in capsys.readouterr().out


def test_older_project_upgrades_with_a_backup_and_takes_poses(tmp_path):
    work = tmp_path / "old.logos"
    shutil.copyfile(KEPT_C, work)
    before = dump_sql(work)
    with Project.open(work) as p:
        assert p.revision == schema.HEAD_REVISION == "v0.1.0.e"
        assert p.backup is not None and "v0.1.0.c-backup" in p.backup.name and p.backup.name in p.message
        aspirin = _by_smiles(p)[MOLECULES["aspirin"]]
        did = _start(p, run_id=aspirin.run_id)
        p.add_docked(aspirin.id, did, docked(MOLECULES["aspirin"], [-6.9]))
        assert p.get_result(aspirin.id).scores == {"qed": 0.3, "name": "aspirin", "vina": -6.9, "posebusters_ok": 1.0}
        assert p.integrity_check() == ["ok"]
    assert dump_sql(p.backup) == before


def test_previous_revision_upgrades_and_keeps_its_rows(tmp_path, store_fill):
    """A file at v0.1.0.d (made here: a new project taken down one revision) opens with a backup,
    gains the docking tables and keeps every row."""
    from engine.store import db, migrate

    work = tmp_path / "d.logos"
    with Project.open(work, create=True) as p:
        store_fill(p)
        n = p.count_results()
    engine = db.make_engine(work)
    with engine.connect().execution_options(logos_write=True) as conn:
        with conn.begin():
            from alembic import command

            cfg = migrate.alembic_config()
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "v0.1.0.d")
    engine.dispose()
    con = sqlite3.connect(work)
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert con.execute("SELECT version_num FROM alembic_version").fetchone() == ("v0.1.0.d",)
    con.close()
    assert not {"dockings", "poses"} & tables
    with Project.open(work) as p:
        assert p.backup is not None and "v0.1.0.d-backup" in p.backup.name
        assert p.revision == "v0.1.0.e" and p.count_results() == n and p.dockings() == []
        assert p.integrity_check() == ["ok"]
