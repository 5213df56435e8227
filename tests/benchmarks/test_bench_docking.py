"""Benchmark: docking through the app, against AutoDock Vina alone, and redocking of co-crystal ligands.

Run by its own command, never in CI:  .venv/bin/python -m pytest tests/benchmarks/test_bench_docking.py -s

Part 1, redocking (the field's sanity check): the co-crystal ligand of each complex is docked back
into its own receptor (box: the ligand's extent + 5 Å a side, exhaustiveness 8, seed 0) and the
top-ranked pose's symmetry-aware RMSD to the crystal pose is printed; success is < 2 Å. Complexes:
the four PoseBusters example complexes (posebusters 0.6.5's data, protein with the ligand removed
+ the crystal ligand SDF) and PDB 1HVR (HIV-1 protease + XK2, tests/data).

Part 2, throughput, one run, sides alternating: the same ligands, receptor PDBQT, box,
exhaustiveness and seed
* Vina alone: one ``vina.Vina(cpu=N)``, maps computed once, the ligands' PDBQTs prepared
  beforehand, docked one after the other (Vina spreads each ligand's search over the N cores);
* the app without analysis: ``dock_ligands`` with N worker processes of one core each (ligand
  preparation, maps once per worker, pose rebuilding, RMSD), checks and interactions off;
* the app as users run it: plus PoseBusters and ProLIF on every pose.
Printed: ligands per minute of each and the ratio to Vina alone (goal ≥ 95 % without analysis),
and the app's scaling from 1 worker to all cores.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from rdkit import Chem

from engine import datasets
from engine.docking import LigandJob, Settings, dock_ligands, make_target, prepare_receptor
from engine.docking.ligand import prepare_ligand
from engine.docking.pool import usable_cpus

DATA = Path(__file__).resolve().parents[1] / "data" / "structures"
PB = "posebusters/datasets/pdb"
SEED = 0
EX = int(os.environ.get("LOGOS_BENCH_EXHAUSTIVENESS", "8"))

# drug-like ligands of 14–30 heavy atoms with 1–7 rotatable bonds (aspirin, paracetamol, ibuprofen,
# caffeine, a sulfonamide, diclofenac, a benzimidazole, naproxen)
LIGANDS = [
    "CC(=O)Oc1ccccc1C(=O)O", "CC(=O)Nc1ccc(O)cc1", "CC(C)Cc1ccc(C(C)C(=O)O)cc1", "Cn1cnc2c1c(=O)n(C)c(=O)n2C",
    "Cc1ccc(S(N)(=O)=O)cc1", "OC(=O)Cc1ccccc1Nc1c(Cl)cccc1Cl", "c1ccc2[nH]c(-c3ccncc3)nc2c1",
    "COc1ccc2cc(C(C)C(=O)O)ccc2c1",
]


def _complexes(tmp: Path):
    out = []
    for name in ("1ia1", "1of6", "1s3v", "1uou"):
        try:
            prot = datasets.extract("posebusters", f"{PB}/{name}/{name}_protein_one_lig_removed.pdb",
                                    tmp / f"{name}.pdb")
            sdf = datasets.read_text("posebusters", f"{PB}/{name}/{name}_ligand.sdf")
        except datasets.DatasetMissing as exc:
            pytest.skip(str(exc))
        ref = Chem.MolFromMolBlock(sdf)
        out.append((name, prepare_receptor(prot, reference_mol=ref), Chem.MolToSmiles(ref)))
    hvr = prepare_receptor(DATA / "1hvr.pdb", ligand="XK2")
    out.append(("1hvr", hvr, hvr.reference.smiles))
    return out


def test_redocking(tmp_path):
    settings = Settings(exhaustiveness=EX, n_poses=9, seed=SEED, checks=False, interactions=False)
    rows = []
    for name, rec, smiles in _complexes(tmp_path):
        target = make_target(rec, rec.box_from_reference(), analyse=False)
        t0 = time.perf_counter()
        res = [e for e in dock_ligands(target, settings, [LigandJob(0, smiles, name)], cpus=1)
               if e["type"] in ("result", "error")][0]
        took = time.perf_counter() - t0
        if res["type"] == "error":
            rows.append((name, rec.reference.label(), None, None, None, took, res["message"]))
            continue
        best_any = min((p["rmsd"] for p in res["poses"] if p["rmsd"] is not None), default=None)
        rows.append((name, rec.reference.label(), res["score"], res["rmsd"], best_any, took, ""))
    print(f"\nredocking, exhaustiveness {EX}, seed {SEED}, box = ligand extent + 5 Å a side (≥ 18 Å)")
    print(f"{'complex':8} {'ligand':12} {'Vina':>7} {'top RMSD':>9} {'best of 9':>10} {'s':>6}")
    for name, lig, score, rmsd, best, took, err in rows:
        if err:
            print(f"{name:8} {lig:12} failed: {err}")
        else:
            print(f"{name:8} {lig:12} {score:7.2f} {rmsd:9.2f} {best:10.2f} {took:6.1f}")
    ok = [r for r in rows if r[3] is not None and r[3] < 2.0]
    print(f"success (top pose < 2 Å): {len(ok)}/{len(rows)}")
    assert rows


def _vina_alone(rec, box, pdbqts, cpus):
    from vina import Vina

    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".pdbqt", delete=False) as f:
        f.write(rec.pdbqt)
    t0 = time.perf_counter()
    v = Vina(sf_name="vina", cpu=cpus, seed=SEED, verbosity=0)
    v.set_receptor(f.name)
    v.compute_vina_maps(center=list(box.center), box_size=list(box.size))
    scores = []
    for text in pdbqts:
        v.set_ligand_from_string(text)
        v.dock(exhaustiveness=EX, n_poses=5)
        scores.append(float(v.energies(n_poses=1)[0][0]))
    os.unlink(f.name)
    return time.perf_counter() - t0, scores


def _app(target, settings, cpus):
    t0 = time.perf_counter()
    evs = list(dock_ligands(target, settings, [LigandJob(i, s) for i, s in enumerate(LIGANDS)], cpus=cpus))
    took = time.perf_counter() - t0
    assert all(e["type"] != "error" for e in evs), [e for e in evs if e["type"] == "error"]
    return took, [e["score"] for e in sorted((e for e in evs if e["type"] == "result"), key=lambda e: e["index"])]


def test_throughput_app_against_vina_alone():
    rec = prepare_receptor(DATA / "1hvr.pdb", ligand="XK2")
    box = rec.box_from_reference()
    n = usable_cpus()
    bare = make_target(rec, box, analyse=False)
    full = make_target(rec, box)
    plain = Settings(exhaustiveness=EX, n_poses=5, seed=SEED, checks=False, interactions=False)
    users = Settings(exhaustiveness=EX, n_poses=5, seed=SEED)
    pdbqts = [prepare_ligand(s, SEED)[0] for s in LIGANDS]
    rounds = int(os.environ.get("LOGOS_BENCH_ROUNDS", "2"))
    times = {"vina": [], "app": [], "app+analysis": [], "app 1 worker": []}
    for _ in range(rounds):  # alternate, so the machine's slow spells hit every side
        times["vina"].append(_vina_alone(rec, box, pdbqts, n)[0])
        times["app"].append(_app(bare, plain, n)[0])
        times["app+analysis"].append(_app(full, users, n)[0])
        times["app 1 worker"].append(_app(bare, plain, 1)[0])
    best = {k: min(v) for k, v in times.items()}
    rate = {k: len(LIGANDS) / t * 60 for k, t in best.items()}
    print(f"\n{len(LIGANDS)} ligands on 1HVR, exhaustiveness {EX}, {n} cores, best of {rounds} alternating rounds")
    for k in times:
        print(f"{k:14} {rate[k]:7.2f} ligands/min  ({', '.join(f'{t:.1f}' for t in times[k])} s)")
    print(f"app / Vina alone: {rate['app'] / rate['vina']:.1%} (goal ≥ 95 %); with PoseBusters + ProLIF: "
          f"{rate['app+analysis'] / rate['vina']:.1%}")
    print(f"scaling, 1 → {n} workers: {rate['app'] / rate['app 1 worker']:.2f}×")
