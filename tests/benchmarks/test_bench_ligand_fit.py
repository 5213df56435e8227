"""Benchmark: are a model's ligands for a pocket better than molecules that were not designed for it?

Run by its own command, never in CI:  .venv/bin/python -m pytest tests/benchmarks/test_bench_ligand_fit.py -s

The ligand task draws samples for the XK2 pocket of PDB 1HVR (HIV-1 protease, tests/data) with the
app's sampling (``logos generate --task ligand``, seed 1); the first N valid unique ones and N
molecules drawn at random (seed 1) from MOSES's test_scaffolds set are docked in ONE ``logos dock``
run (same receptor, box, exhaustiveness and seed), with XK2 redocked beside them. Printed: medians of
the Vina score, of the heavy atoms and of the score per heavy atom for both sets, and XK2's score.
A model that designs for the pocket scores better than the random molecules; small fragments score
better per heavy atom whatever their fit, so the absolute score is the one to read.

Environment: LOGOS_BENCH_MODEL (a GGUF; default the bundled model), LOGOS_BENCH_LIGANDS (N, default
20), LOGOS_BENCH_SAMPLES (ligands drawn, default 100), LOGOS_BENCH_EXHAUSTIVENESS (default 4).
"""

from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import sys
from pathlib import Path

from rdkit import Chem

from engine import paths

HVR = Path(__file__).resolve().parents[1] / "data" / "structures" / "1hvr.pdb"
LOGOS = [sys.executable, "-m", "engine"]


def _json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_ligands_against_random_molecules_in_the_pocket():
    from training.data import MOSES_TEST_SCAFFOLDS, moses_smiles

    model = os.environ.get("LOGOS_BENCH_MODEL") or str(paths.bundled_models()[0])
    n = int(os.environ.get("LOGOS_BENCH_LIGANDS", "20"))
    samples = int(os.environ.get("LOGOS_BENCH_SAMPLES", "100"))
    ex = os.environ.get("LOGOS_BENCH_EXHAUSTIVENESS", "4")
    gen = subprocess.run([*LOGOS, "generate", "--task", "ligand", "--input", str(HVR), "--ligand", "XK2",
                          "-n", str(samples), "--seed", "1", "--model", model, "--threads", "2", "--json"],
                         capture_output=True, text=True, timeout=1800)
    assert gen.returncode == 0, gen.stderr
    rows = _json_lines(gen.stdout)
    designed: list[str] = []
    for r in rows:
        if r["valid"] and r["objects"]["smiles"] not in designed:
            designed.append(r["objects"]["smiles"])
    valid = sum(r["valid"] for r in rows)
    designed = designed[:n]
    assert designed, f"no valid ligand among {len(rows)} samples"
    reference = random.Random(1).sample(moses_smiles(MOSES_TEST_SCAFFOLDS), len(designed))
    ligands = designed + reference
    cmd = [*LOGOS, "dock", str(HVR), "--ligand", "XK2", "--redock", "--exhaustiveness", ex, "--poses", "1",
           "--no-checks", "--cpus", "2", "--seed", "0", "--json"]
    for smi in ligands:
        cmd += ["--smiles", smi]
    dock = subprocess.run(cmd, capture_output=True, text=True, timeout=7200)
    assert dock.returncode == 0, dock.stderr
    docked = {r["index"]: r for r in _json_lines(dock.stdout)}

    def summary(name: str, smiles: list[str], offset: int) -> dict:
        scores, heavy = [], []
        for i, smi in enumerate(smiles):
            r = docked.get(offset + i)
            if r is None or "score" not in r:
                continue
            scores.append(r["score"])
            heavy.append(Chem.MolFromSmiles(smi).GetNumHeavyAtoms())
        per_atom = [s / h for s, h in zip(scores, heavy)]
        print(f"| {name} | {len(scores)} of {len(smiles)} | {statistics.median(scores):.2f} "
              f"(best {min(scores):.2f}) | {statistics.median(heavy):g} | {statistics.median(per_atom):.3f} |")
        return {"docked": len(scores), "median": statistics.median(scores)}

    print(f"\n{Path(model).name}: {valid} of {len(rows)} samples valid, {len(designed)} unique valid docked; "
          f"exhaustiveness {ex}, 1HVR around XK2")
    print("| set | docked | Vina median, kcal/mol | heavy atoms, median | Vina per heavy atom, median |")
    print("|---|---|---|---|---|")
    mine = summary("the model's ligands", designed, 0)
    ref = summary("MOSES test_scaffolds, random", reference, len(designed))
    xk2 = docked.get(-1)
    if xk2 is not None:
        heavy = Chem.MolFromSmiles(xk2["smiles"]).GetNumHeavyAtoms()
        print(f"| XK2 redocked (the crystal ligand) | 1 | {xk2['score']:.2f} (RMSD {xk2['rmsd']:.2f} Å) | {heavy} | "
              f"{xk2['score'] / heavy:.3f} |")
    assert mine["docked"] and ref["docked"]
