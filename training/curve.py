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
* molecules: validity at temperature 1 (the MOSES convention);
* ligands: share of ligands for the XK2 pocket of 1HVR, drawn with the app's sampling from the
  ligand task's prompt, that the task accepts (the figure the card and the app's tour show).

    python -m training.curve OUT [--items 60] [--samples 200] [--ligands 100]

writes ``OUT/curve.json`` and prints one row per checkpoint. It answers the question the issue
asks where a goal is out of reach: how fast the held-out figure still rises with more tokens.
A checkpoint already in ``curve.json`` with the same settings is not scored again, so the command
can follow a run that is still training; a row scored before the ligand figure existed (or with
another ``--ligands``) gets only that figure added.

    python -m training.curve --compare OUT OUT ...

prints the curves of several runs (model sizes or recipes) side by side, matched by tokens seen,
with each run's layers, parameters and training time to that checkpoint: what size and time reach
a figure.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path


def checkpoint_facts(folder: Path) -> dict:
    """The model's size and the training time behind a checkpoint folder: layers and parameters
    from its config and its safetensors header (shapes only, no weights read), minutes from its
    trainer state."""
    from safetensors import safe_open

    facts = {"layers": None, "parameters": None, "train_minutes": _train_minutes(folder)}
    try:
        facts["layers"] = json.loads((folder / "config.json").read_text()).get("num_hidden_layers")
        with safe_open(str(folder / "model.safetensors"), framework="numpy") as f:
            facts["parameters"] = sum(math.prod(f.get_slice(name).get_shape()) for name in f.keys())
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return facts


def _recipe(out: Path) -> str:
    """Which reaction records' parts a demo run learnt (its saved training settings' masks)."""
    import yaml

    from training import checkpoint as ckpt
    from training.config import TrainConfig

    try:
        cfg = TrainConfig.load(Path(out) / "run" / ckpt.CONFIG)
    except (OSError, ValueError, TypeError, yaml.YAMLError):
        return "?"
    if cfg.answer_only:
        return "answer-only"
    if cfg.first_block_only:
        return "first block only"
    return "whole records"


def _train_minutes(folder: Path) -> float | None:
    """Training wall time up to a checkpoint (all runs of a resumed run), from its trainer state."""
    from training import checkpoint as ckpt
    from training.train import _seconds_before

    try:
        state = ckpt.load_state(folder)
        cfg = json.loads((folder / "metrics.json").read_text()) if (folder / "metrics.json").is_file() else {}
        step = state.get("step") or cfg.get("step")
        per_step = (state.get("tokens_seen") or 0) / step if step else 0
        return round(_seconds_before(state, int(per_step)) / 60, 1)
    except (OSError, KeyError, RuntimeError, ValueError):
        return None


def checkpoint_row(folder: Path, items: list[dict], n_samples: int, seed: int = 0, check_k: int = 4,
                   n_ligands: int = 100) -> dict:
    from training.evaluate import _generate, _load, ligand_valid, material_metrics, reaction_top1, retro_check_pass

    model, tok = _load(folder)
    state = json.loads((folder / "metrics.json").read_text()) if (folder / "metrics.json").is_file() else {}
    t = time.time()
    row = {"checkpoint": folder.name, "step": state.get("step"), "tokens_seen": state.get("tokens_seen"),
           "val_loss": state.get("val_loss"), "samples": n_samples, **checkpoint_facts(folder)}
    row.update(reaction_top1(model, tok, items))
    if check_k:
        row.update(retro_check_pass(model, tok, items, check_k, seed))
    mats = _generate(model, tok, "<MaterialS>", n_samples, "<MaterialE>", 200, False, seed + 1, sampling="reference")
    row["materials_metal_and_valid_linkers"] = material_metrics(mats)["metal_and_valid_linkers"]
    from rdkit import Chem, RDLogger

    RDLogger.DisableLog("rdApp.*")
    mols = _generate(model, tok, "<MoleculeS>", n_samples, "<MoleculeE>", 120, False, seed, sampling="t1")
    row["molecule_validity_t1"] = sum(Chem.MolFromSmiles(s) is not None for s in mols if s) / max(1, len(mols))
    if n_ligands:
        row.update(ligand_valid(model, tok, n_ligands, seed + 2))
    row["seconds"] = round(time.time() - t, 1)
    return row


def add_ligands(folder: Path, row: dict, n_ligands: int, seed: int = 0) -> dict:
    """A row scored earlier, with the ligand figure of its checkpoint added (the rest kept)."""
    from training.evaluate import _load, ligand_valid

    model, tok = _load(folder)
    return {**row, **ligand_valid(model, tok, n_ligands, seed + 2)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.curve", description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path, nargs="?", help="the demo run's folder (holds run/ and data/)")
    ap.add_argument("--items", type=int, default=60, help="held-out reaction products scored per checkpoint")
    ap.add_argument("--samples", type=int, default=200, help="material and molecule samples per checkpoint")
    ap.add_argument("--every", type=int, default=1, help="score every k-th checkpoint (the last always)")
    ap.add_argument("--ligands", type=int, default=100,
                    help="ligands sampled per checkpoint for the XK2 pocket of 1HVR (0: not measured)")
    ap.add_argument("--check-k", type=int, default=4,
                    help="retrosynthesis samples per product for the check rate (0: not measured)")
    ap.add_argument("--compare", nargs="+", type=Path, metavar="OUT",
                    help="print these runs' curve.json side by side (scores nothing)")
    args = ap.parse_args(argv)
    if args.compare:
        return compare(([args.out] if args.out else []) + args.compare)
    if args.out is None:
        ap.error("name the demo run's folder (OUT), or --compare OUT OUT ...")
    from training import checkpoint as ckpt

    held = json.loads((args.out / "data" / "heldout.json").read_text())["heldout"]
    items = held.get("reactions", [])[: args.items]
    folders = ckpt.list_checkpoints(args.out / "run")
    folders = [f for i, f in enumerate(folders) if i % args.every == 0 or f == folders[-1]]
    path = args.out / "curve.json"
    done = {}
    if path.is_file():  # rows scored earlier with the same settings are kept, not scored again
        try:
            done = {r["checkpoint"]: r for r in json.loads(path.read_text())
                    if r.get("items") == len(items) and r.get("samples") == args.samples
                    and r.get("retro_check_samples", 0) == len(items) * args.check_k}
        except (ValueError, TypeError, KeyError, AttributeError):
            done = {}
    rows = []
    for f in folders:
        row = done.get(f.name)
        if row is None:
            row = checkpoint_row(f, items, args.samples, check_k=args.check_k, n_ligands=args.ligands)
        elif args.ligands and row.get("ligand_samples") != args.ligands:
            row = add_ligands(f, row, args.ligands)
        else:
            rows.append(row)
            continue
        rows.append(row)
        print(json.dumps(row), flush=True)
        # written after every checkpoint: an interrupted scoring keeps what it measured
        path.write_text(json.dumps(rows + [r for n, r in done.items() if n not in {x["checkpoint"] for x in rows}],
                                   indent=1))
    path.write_text(json.dumps(rows, indent=1))
    print(f"{'step':>6} {'tokens':>11} {'val loss':>8} {'retro@1':>8} {'any@1':>6} {'check':>6} {'fwd@1':>6} "
          f"{'material':>8} {'mol T1':>7} {'ligand':>7}")
    for r in rows:
        print(f"{r['step'] or 0:>6} {r['tokens_seen'] or 0:>11,} {r['val_loss'] or float('nan'):>8.3f} "
              f"{100 * r['retro_top1']:>7.1f}% {100 * r['retro_top1_any_template']:>5.1f}% "
              f"{100 * r.get('retro_check_pass', float('nan')):>5.1f}% {100 * r['forward_top1']:>5.1f}% "
              f"{100 * r['materials_metal_and_valid_linkers']:>7.1f}% {100 * r['molecule_validity_t1']:>6.1f}% "
              f"{100 * r.get('ligand_valid', float('nan')):>6.1f}%")
    return 0


FIGURES = (("val loss", "val_loss", 1, "{:.3f}"), ("retro@1", "retro_top1", 100, "{:.1f}%"),
           ("check", "retro_check_pass", 100, "{:.1f}%"), ("fwd@1", "forward_top1", 100, "{:.1f}%"),
           ("material", "materials_metal_and_valid_linkers", 100, "{:.0f}%"),
           ("mol T1", "molecule_validity_t1", 100, "{:.0f}%"), ("ligand", "ligand_valid", 100, "{:.0f}%"),
           ("minutes", "train_minutes", 1, "{:.0f}"))


def compare(outs: list[Path]) -> int:
    """The runs' curves side by side: one line per tokens-seen value, each figure as a / b / c in
    the order of the runs named; '-' where a run has no checkpoint scored there."""
    runs = []
    for out in outs:
        path = Path(out) / "curve.json"
        try:
            rows = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            print(f"{path}: cannot read the curve ({exc}); run python -m training.curve {out} first",
                  file=sys.stderr)
            return 1
        if not isinstance(rows, list) or not rows:
            print(f"{path}: no scored checkpoint in it", file=sys.stderr)
            return 1
        rows = [r for r in rows if isinstance(r, dict)]
        for r in rows:  # rows scored before these facts were kept: read them from the checkpoint
            folder = Path(out) / "run" / str(r.get("checkpoint"))
            if r.get("layers") is None and folder.is_dir():
                r.update({k: v for k, v in checkpoint_facts(folder).items() if r.get(k) is None})
        runs.append((Path(out), {r.get("tokens_seen"): r for r in rows}))
    for i, (out, rows) in enumerate(runs):
        last = rows[max(rows, key=lambda t: t or 0)]
        size = f"{last['parameters'] / 1e6:.2f} M parameters" if last.get("parameters") else "size unknown"
        print(f"run {chr(97 + i)}: {out}  {last.get('layers') or '?'} layers, {size}, {_recipe(out)}")
    tokens = sorted({t for _, rows in runs for t in rows if t is not None})
    head = ["tokens"] + [name for name, *_ in FIGURES]
    table = []
    for t in tokens:
        line = [f"{t / 1e6:.1f} M" if t >= 100_000 else f"{t:,}"]
        for _, key, scale, fmt in FIGURES:
            cells = []
            for _, rows in runs:
                v = rows.get(t, {}).get(key)
                cells.append("-" if v is None else fmt.format(v * scale))
            line.append(" / ".join(cells))
        table.append(line)
    widths = [max(len(r[c]) for r in [head] + table) for c in range(len(head))]
    for r in [head] + table:
        print("  ".join(cell.rjust(w) for cell, w in zip(r, widths)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
