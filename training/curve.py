"""Learning curve of a ``logos train demo`` run: held-out figures against tokens seen.

Every checkpoint the run kept (``OUT/run/step-*``, Hugging Face folders) is scored with torch on
the float32 weights, greedy where a task has one right answer:

* retrosynthesis top-1: the greedy reactant set equals the held-out product's template target
  (the scaffold-split reaction pairs of ``training.reactions``); "any" also counts another
  template's reactants for that product;
* retrosynthesis check: share of 4 samples per product, drawn with the app's sampling, that the
  retrosynthesis task accepts (the reactants can make the product);
* forward top-1: the greedy product equals the held-out product (canonical SMILES);
* materials: share of samples with a metal node and only valid linkers (the app's sampling);
* molecules: validity at temperature 1 (the MOSES convention).

    python -m training.curve OUT [--items 60] [--samples 200]

writes ``OUT/curve.json`` and prints one row per checkpoint. It answers the question the issue
asks where a goal is out of reach: how fast the held-out figure still rises with more tokens.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def checkpoint_row(folder: Path, items: list[dict], n_samples: int, seed: int = 0, check_k: int = 4) -> dict:
    from training.evaluate import _generate, _load, material_metrics, reaction_top1, retro_check_pass

    model, tok = _load(folder)
    state = json.loads((folder / "metrics.json").read_text()) if (folder / "metrics.json").is_file() else {}
    t = time.time()
    row = {"checkpoint": folder.name, "step": state.get("step"), "tokens_seen": state.get("tokens_seen"),
           "val_loss": state.get("val_loss")}
    row.update(reaction_top1(model, tok, items))
    if check_k:
        row.update(retro_check_pass(model, tok, items, check_k, seed))
    mats = _generate(model, tok, "<MaterialS>", n_samples, "<MaterialE>", 200, False, seed + 1, sampling="reference")
    row["materials_metal_and_valid_linkers"] = material_metrics(mats)["metal_and_valid_linkers"]
    from rdkit import Chem, RDLogger

    RDLogger.DisableLog("rdApp.*")
    mols = _generate(model, tok, "<MoleculeS>", n_samples, "<MoleculeE>", 120, False, seed, sampling="t1")
    row["molecule_validity_t1"] = sum(Chem.MolFromSmiles(s) is not None for s in mols if s) / max(1, len(mols))
    row["seconds"] = round(time.time() - t, 1)
    return row


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.curve", description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path, help="the demo run's folder (holds run/ and data/)")
    ap.add_argument("--items", type=int, default=60, help="held-out reaction products scored per checkpoint")
    ap.add_argument("--samples", type=int, default=200, help="material and molecule samples per checkpoint")
    ap.add_argument("--every", type=int, default=1, help="score every k-th checkpoint (the last always)")
    ap.add_argument("--check-k", type=int, default=4,
                    help="retrosynthesis samples per product for the check rate (0: not measured)")
    args = ap.parse_args(argv)
    from training import checkpoint as ckpt

    held = json.loads((args.out / "data" / "heldout.json").read_text())["heldout"]
    items = held.get("reactions", [])[: args.items]
    folders = ckpt.list_checkpoints(args.out / "run")
    folders = [f for i, f in enumerate(folders) if i % args.every == 0 or f == folders[-1]]
    rows = []
    for f in folders:
        row = checkpoint_row(f, items, args.samples, check_k=args.check_k)
        rows.append(row)
        print(json.dumps(row), flush=True)
    (args.out / "curve.json").write_text(json.dumps(rows, indent=1))
    print(f"{'step':>6} {'tokens':>11} {'val loss':>8} {'retro@1':>8} {'any@1':>6} {'check':>6} {'fwd@1':>6} {'material':>8} {'mol T1':>7}")
    for r in rows:
        print(f"{r['step'] or 0:>6} {r['tokens_seen'] or 0:>11,} {r['val_loss'] or float('nan'):>8.3f} "
              f"{100 * r['retro_top1']:>7.1f}% {100 * r['retro_top1_any_template']:>5.1f}% "
              f"{100 * r.get('retro_check_pass', float('nan')):>5.1f}% {100 * r['forward_top1']:>5.1f}% "
              f"{100 * r['materials_metal_and_valid_linkers']:>7.1f}% {100 * r['molecule_validity_t1']:>6.1f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
