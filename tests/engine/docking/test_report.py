"""engine.docking.report: the run summary (the paper's −Vina metric), histogram values and the
chemical-space map, on real docking events (tests/data/docking) and real molecules."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine.docking import paper_metric
from engine.docking.report import (
    TSNE_MIN_POINTS, chemical_space, distributions, molecular_weight, reference_values, run_summary,
)

# real drugs (RDKit canonical SMILES)
DRUGS = [
    "CC(=O)Oc1ccccc1C(=O)O",  # aspirin
    "Cn1c(=O)c2c(ncn2C)n(C)c1=O",  # caffeine
    "CC(=O)Nc1ccc(O)cc1",  # paracetamol
    "CC(C)Cc1ccc(C(C)C(=O)O)cc1",  # ibuprofen
    "CN1CCC[C@H]1c1cccnc1",  # nicotine
    "CN1C(=O)CN=C(c2ccccc2)c2cc(Cl)ccc21",  # diazepam
    "CC(C)NCC(O)COc1cccc2ccccc12",  # propranolol
    "O=C(O)c1ccccc1O",  # salicylic acid
    "CC12CCC3c4ccc(O)cc4CCC3C1CCC2O",  # estradiol
    "NC(=O)c1cccnc1",  # nicotinamide
    "CCN(CC)CCNC(=O)c1ccc(N)cc1",  # procainamide
    "COc1ccc2[nH]cc(CCNC(C)=O)c2c1",  # melatonin
]


@pytest.fixture(scope="module")
def events(test_data):
    return json.loads((test_data / "docking" / "1hvr_xk2_events.json").read_text())


def _rows(events):
    """The docked ligands as the store returns them after add_docked: scores with vina,
    vina_rmsd and posebusters_ok (1.0/0.0), plus the drug scores a ligand task computed."""
    from rdkit import Chem

    from engine.tasks.scoring import drug_scores

    rows = []
    for ev in events["events"]:
        if ev["type"] != "result" or ev["index"] == 0:  # index 0 is the reference redocked
            continue
        scores = dict(drug_scores(Chem.MolFromSmiles(ev["smiles"])))
        scores.update(vina=ev["score"], posebusters_ok=1.0 if ev["checks"]["passed"] else 0.0)
        if ev["rmsd"] is not None:
            scores["vina_rmsd"] = ev["rmsd"]
        rows.append({"id": 100 + ev["index"], "smiles": ev["smiles"], "valid": True, "scores": scores})
    return rows


def test_summary_is_the_paper_metric_beside_the_reference(events):
    rows = _rows(events)
    ref = next(e for e in events["events"] if e["type"] == "result" and e["index"] == 0)
    # a row that failed validation keeps its (stale) score out of the metric; an undocked row counts in n
    rows.append({"id": 200, "smiles": "C1CC", "valid": False, "scores": {"vina": -30.0}})
    rows.append({"id": 201, "smiles": "CCO", "valid": True, "scores": {"qed": 0.4}})
    # the clashing pose: docked, PoseBusters fails
    rows.append({"id": 202, "smiles": "CC(=O)Nc1ccc(O)cc1", "valid": True,
                 "scores": {"vina": -4.0, "posebusters_ok": 0.0}})
    s = run_summary(rows, {"name": "XK2", "score": ref["score"], "rmsd": ref["rmsd"]})
    docked = [r["scores"]["vina"] for r in rows if r["valid"] and "vina" in r["scores"]]
    assert s["n"] == len(rows) and s["n_valid"] == len(rows) - 1 and s["n_docked"] == len(docked) == 5
    assert s["mean_neg_vina"] == paper_metric(docked) == pytest.approx(-np.mean(docked), abs=1e-3)
    assert s["best_score"] == min(docked) == -9.386 and s["best_id"] == 102
    assert s["reference_name"] == "XK2" and s["reference_score"] == ref["score"] == -10.091
    assert s["reference_neg_vina"] == 10.091 and s["reference_rmsd"] == ref["rmsd"]
    assert s["n_checked"] == 5 and s["n_posebusters_ok"] == 4 and s["posebusters_share"] == 0.8
    assert s["better_than_reference"] == 0


def test_summary_without_docked_rows_or_reference():
    s = run_summary([{"id": 1, "smiles": "CCO", "scores": {"qed": 0.4}}])
    assert s["n"] == 1 and s["n_docked"] == 0
    assert s["mean_neg_vina"] is None and s["best_score"] is None and s["reference_score"] is None
    assert s["posebusters_share"] is None and s["better_than_reference"] is None
    assert run_summary([])["n"] == 0


def test_summary_reads_store_rows(tmp_path, events):
    """The same figures from rows stored with add_docked and read back from the project file."""
    from engine.store.project import Project

    with Project.open(tmp_path / "p.logos", create=True) as p:
        run = p.start_run("ligand", "<prompt>", {"options": {"ligand": "XK2"}}, 1)
        dock = p.start_docking(b"ATOM\n", "pdb", "1hvr", {"center": [0, 0, 0], "size": [20, 20, 20]}, {}, {}, {},
                               run_id=run)
        for ev in events["events"]:
            if ev["type"] == "result" and ev["index"] > 0:
                rid = p.add_result(run, f"<MoleculeS>{ev['smiles']}<MoleculeE>", smiles=ev["smiles"],
                                   scores={"qed": 0.5})
                p.add_docked(rid, dock, ev)
        from engine.store.queries import ResultQuery

        rows = p.query_results(ResultQuery(run_id=run, limit=None)).rows
    s = run_summary(rows)
    stored = [e["score"] for e in events["events"] if e["type"] == "result" and e["index"] > 0]
    assert sorted(stored) == [-9.386, -9.36, -7.621, -5.227]
    assert s["n_docked"] == 4 and s["mean_neg_vina"] == paper_metric(stored) == pytest.approx(7.8985, abs=1e-3)
    assert s["n_posebusters_ok"] == 4 and s["posebusters_share"] == 1.0


def test_distributions_read_scores_and_compute_missing_weights(events):
    rows = _rows(events)
    rows.append({"id": 300, "smiles": "CCO", "valid": True, "scores": {}})  # no scores: MW from RDKit
    rows.append({"id": 301, "smiles": "not a smiles", "valid": True, "scores": {}})
    rows.append({"id": 302, "smiles": "CCCCCC", "valid": False, "scores": {"qed": 0.9, "mw": 86.18}})
    d = distributions(rows)
    assert list(d["vina"]) == [r["scores"]["vina"] for r in rows[:4]]
    assert len(d["qed"]) == len(d["sa"]) == 4  # the invalid row is left out
    assert d["mw"][-1] == pytest.approx(46.07, abs=0.01) and len(d["mw"]) == 5
    assert d["ids"]["mw"][-1] == 300 and d["ids"]["vina"] == [r["id"] for r in rows[:4]]
    assert molecular_weight("CC(=O)Nc1ccc(O)cc1") == pytest.approx(151.16, abs=0.01)
    assert molecular_weight("C1CC") is None and molecular_weight(None) is None
    for key in ("vina", "qed", "sa", "mw"):
        assert d[key].dtype == float and np.isfinite(d[key]).all()
    ref = reference_values(events["events"][0]["reference"]["smiles"], -10.091)
    assert ref["vina"] == -10.091 and ref["mw"] == pytest.approx(606.77, abs=0.01)  # XK2, C41H38N2O3
    assert 0 < ref["qed"] < 1 and 1 <= ref["sa"] <= 10
    assert reference_values(None) == {"vina": None, "qed": None, "sa": None, "mw": None}
    assert reference_values("C1CC", "x")["mw"] is None


def _tanimoto(a: str, b: str) -> float:
    from rdkit import Chem, DataStructs
    from rdkit.Chem import rdFingerprintGenerator

    gen = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)
    return DataStructs.TanimotoSimilarity(gen.GetFingerprint(Chem.MolFromSmiles(a)),
                                          gen.GetFingerprint(Chem.MolFromSmiles(b)))


def test_chemical_space_tsne_is_deterministic_and_keeps_neighbours():
    smiles = DRUGS + ["not a smiles", None, "CC(=O)Oc1ccccc1C(=O)OC"]  # aspirin's methyl ester
    ref = "CC(=O)Nc1ccc(OC)cc1"  # methacetin: paracetamol's methyl ether
    xy = chemical_space(smiles, ref, seed=3)
    assert xy.shape == (len(smiles) + 1, 2)
    assert np.isnan(xy[len(DRUGS)]).all() and np.isnan(xy[len(DRUGS) + 1]).all()
    ok = ~np.isnan(xy).any(axis=1)
    assert ok.sum() == len(DRUGS) + 2 >= TSNE_MIN_POINTS
    assert np.array_equal(xy, chemical_space(smiles, ref, seed=3), equal_nan=True)
    assert not np.allclose(xy[ok], chemical_space(smiles, ref, seed=4)[ok])
    # the reference sits nearest to the most similar candidate (paracetamol), aspirin beside its ester
    pts = xy[ok]
    names = [s for s, k in zip(smiles + [ref], ok) if k]
    d = np.linalg.norm(pts[:, None] - pts[None], axis=2)
    np.fill_diagonal(d, np.inf)
    similar = max((s for s in names[:-1]), key=lambda s: _tanimoto(s, ref))
    assert similar == DRUGS[2]
    assert names[int(np.argmin(d[-1]))] == DRUGS[2]
    assert names[int(np.argmin(d[names.index(DRUGS[0])]))] == "CC(=O)Oc1ccccc1C(=O)OC"


def test_chemical_space_few_points_and_bad_input():
    xy = chemical_space(DRUGS[:3])  # too few for t-SNE: PCA
    assert xy.shape == (3, 2) and np.isfinite(xy).all()
    assert np.array_equal(xy, chemical_space(DRUGS[:3]))
    # the two most similar molecules (aspirin and salicylic acid) are the closest pair
    xy = chemical_space([DRUGS[0], DRUGS[7], DRUGS[4]])
    d = {(i, j): np.linalg.norm(xy[i] - xy[j]) for i in range(3) for j in range(i + 1, 3)}
    assert min(d, key=d.get) == (0, 1)
    two = chemical_space(["CCO", "c1ccccc1"])
    assert two.shape == (2, 2) and np.isfinite(two).all() and not np.allclose(two[0], two[1])
    assert chemical_space([]).shape == (0, 2)
    assert np.isnan(chemical_space(["", "xx(", 5])).all()
    assert np.array_equal(chemical_space(["CCO"], "CCO"), np.zeros((2, 2)))
    one = chemical_space(["bad(", "CCO"])
    assert np.isnan(one[0]).all() and np.array_equal(one[1], [0.0, 0.0])


def test_both_distance_paths_agree(monkeypatch):
    """RDKit's bulk Tanimoto (up to PRECOMPUTED_MAX points) and scikit-learn's Jaccard on the bits
    (above it) are the same distance, so the maps are the same."""
    from engine.docking import report

    fps, ok, vects = report._fingerprints(DRUGS)
    d = report.tanimoto_distances(vects)
    assert d.shape == (len(DRUGS), len(DRUGS)) and np.allclose(np.diag(d), 0) and np.allclose(d, d.T)
    assert d[0, 7] == pytest.approx(1 - _tanimoto(DRUGS[0], DRUGS[7]))
    from sklearn.metrics import pairwise_distances

    assert np.allclose(d, pairwise_distances(fps[ok], metric="jaccard"))
    a = chemical_space(DRUGS, seed=1)
    monkeypatch.setattr(report, "PRECOMPUTED_MAX", 5)
    b = chemical_space(DRUGS, seed=1)
    assert np.allclose(a, b, atol=1e-3)
