"""The demonstration model's card per task: measured through the app's own path, embedded in its GGUF.

    python -m training.card demo [--gguf resources/models/logos-demo-q8_0.gguf] [--quick]
    python -m training.card demo --from resources/models/logos-demo-card.json   # embed a saved card

``demo`` measures what can be measured in a few minutes of CPU on the shipped GGUF, with the
engine's task path (``engine.process.jobs.run_job``: the task's prompt, the app's default sampling,
the task's own validator, exactly what the Generate panel runs), writes the card as JSON beside
the model (``logos-demo-card.json``), embeds it into the GGUF's metadata
(``engine.models.card.embed_card``: tensors copied byte for byte, checked by hash) and rewrites
``MODEL_CARD.md``'s per-task section. Figures that need the float32 checkpoint and the training
run's held-out split (greedy retrosynthesis exact match, pocket annotation) are carried from the
run of 2026-11-26 (``training/evaluate.py``, the run's ``demo.json``), with that source named.

Also ``write_checkpoint_card(hf_dir, card)``: the training writes ``logos_card.json`` into a
checkpoint folder, and ``engine.models.convert`` embeds it in every GGUF made from it.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import threading
import time
from pathlib import Path

from engine.models.card import (
    CARD_FILE,
    Figure,
    ModelCard,
    TaskCard,
    card_json,
    embed_card,
    load_card_json,
    task_names,
)

CARD_JSON = "logos-demo-card.json"  # the card as JSON, beside the model
RUN_2026_11_26 = "run of 2026-11-26 (training/evaluate.py, demo.json of the shipped model)"
SUMMARY = ("LOGOS Desktop demonstration model: a 3.9 M-parameter Llama trained from scratch on 2 CPU cores "
           "(9.8 M tokens); a molecule generator, not a LOGOS model")


def write_checkpoint_card(hf_dir: str | Path, card: ModelCard) -> Path:
    """``hf_dir/logos_card.json``: what the converter embeds in the GGUF."""
    path = Path(hf_dir) / CARD_FILE
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(card_json(card), encoding="utf-8")
    tmp.replace(path)
    return path


def record_task(row: str) -> str | None:
    """The task of the catalogue a grammar record trains (by its tags), or None (a plain protein,
    a <Trans> record, anything else)."""
    row = row.strip()
    if "<ReverseReact>" in row:
        return "retro"
    if "<React>" in row:
        return "forward"
    if "<Search>" in row:
        return "binding-site"
    if row.startswith("<MaterialS>"):
        return "material"
    if row.startswith("<AntibodyS>"):
        return "antibody"
    if row.startswith("<ProteinS>") and row.endswith("<MoleculeE>"):
        return "ligand"
    if row.startswith("<MoleculeS>") and row.endswith("<MoleculeE>") and row.count("<MoleculeS>") == 1:
        return "molecule"
    return None


def data_card(rows: list[str], sources: str, base: str, base_card: ModelCard | None = None,
              summary: str = "") -> ModelCard:
    """The card the training writes into its checkpoint (``logos_card.json``): a task whose records
    are in the data is trained on them (no figures: nothing measured yet); the others keep the base
    model's card, are ``not_trained`` for a model trained from scratch, and unknown otherwise."""
    from collections import Counter

    counts = Counter(t for t in (record_task(r) for r in rows) if t)
    tasks: dict[str, TaskCard] = {}
    if base_card is not None:
        tasks.update({k: v for k, v in base_card.tasks.items() if v.status != "unknown"})
    for task in counts:
        before = tasks.get(task)
        note = "not measured after this training; run the task on held-out inputs to measure it"
        if before is not None and before.status != "not_trained":
            note = f"fine-tuned; the base model's figures no longer apply ({note})"
        tasks[task] = TaskCard("trained", f"{counts[task]:,} records from {sources}", note=note)
    if base == "scratch":
        for task in set(task_names()) - set(tasks):
            tasks[task] = TaskCard("not_trained", note="no records of this task in its training data")
    return ModelCard(tasks, summary or f"trained by logos train from {base}", f"logos train, {_today()}")


# ------------------------------------------------------------------------------ measuring

def _run(rt, task: str, n: int, seed: int, inputs: dict | None = None, options: dict | None = None,
         sampling: dict | None = None) -> list[dict]:
    """The result events of one job run as the app runs it (no project)."""
    from engine.process.jobs import run_job

    events: list[dict] = []
    req = {"id": f"card-{task}", "task": task, "inputs": inputs or {}, "options": options or {}, "n": n,
           "seed": seed, "sampling": sampling or {}}
    run_job(rt, req, lambda ev: events.append(ev) if ev.get("type") == "result" else None, threading.Event())
    return events


def _today() -> str:
    return _dt.date.today().isoformat()


def measure_demo(gguf: str | Path, n_mol: int = 3000, n_mat: int = 400, k_retro: int = 10,
                 n_ligand: int = 40, seed: int = 20261205, log=print, reactions: list | None = None,
                 n_reactions: int = 100, seeds=(0, 1, 2), train_records: list | None = None,
                 ligand_heldout: bool | None = None) -> dict:
    """Figures of the shipped GGUF through the engine's task path, app sampling (each task's
    defaults). Returns {task: [Figure, ...]}. ``ligand_heldout``: whether the run held the ligand
    figure's complex (1HVR) out of its training data (None: not known, not said)."""
    from rdkit import Chem, RDLogger

    from engine.runtime.llama import Runtime
    from training import data as D

    RDLogger.DisableLog("rdApp.*")
    src = f"llama.cpp on the Q8_0 GGUF through the engine's task path, {_today()}, python -m training.card demo"
    out: dict[str, list[Figure]] = {}
    rt = Runtime.load(gguf, n_gpu_layers=0, n_ctx=512, n_threads=2, n_seq_max=64)
    try:
        # molecules: the molecule task's validator (RDKit), uniqueness and novelty vs MOSES train
        t = time.time()
        res = _run(rt, "molecule", n_mol, seed)
        valid = [r["objects"].get("smiles") for r in res if r["valid"]]
        unique = {s for s in valid if s}
        train = set(D.moses_smiles())
        novel = unique - train
        out["molecule"] = [
            Figure("MOSES validity", 100 * len(valid) / len(res), "%", f"app sampling, {len(res):,} samples", src),
            Figure("uniqueness", 100 * len(unique) / max(1, len(valid)), "%", "of the valid samples", src),
            Figure("novelty vs MOSES train", 100 * len(novel) / max(1, len(unique)), "%",
                   "of the unique valid samples", src),
        ]
        log(f"molecule: {[f.text() for f in out['molecule']]} ({time.time() - t:.0f} s)")

        # materials: the material task's validator; metal node and valid linkers as training/evaluate
        t = time.time()
        res = _run(rt, "material", n_mat, seed + 1)
        from training.evaluate import material_metrics

        bodies = [r["record"][len("<MaterialS>"):].split("<MaterialE>", 1)[0] for r in res]
        mm = material_metrics(bodies)
        out["material"] = [
            Figure("metal node and valid linkers", 100 * mm["metal_and_valid_linkers"], "%",
                   f"app sampling, {len(res):,} samples", src),
            Figure("valid by the material task", 100 * sum(r["valid"] for r in res) / len(res), "%",
                   f"app sampling, {len(res):,} samples", src),
        ]
        if train_records:
            from training.evaluate import material_vnu

            vnu = material_vnu(bodies, train_records)
            out["material"].append(Figure(
                "VNU (valid, novel, unique)", 100 * vnu["vnu"], "%",
                f"app sampling, {len(res):,} samples; novel against {vnu['training_materials']:,} training materials",
                src))
        log(f"material: {[f.text() for f in out['material']]} ({time.time() - t:.0f} s)")

        # retrosynthesis and forward reaction: held-out products of the run's scaffold split
        # (training.reactions, template-generated), through the same task path
        if reactions:
            from training.evaluate import reaction_metrics

            t = time.time()
            items = list(reactions)[:n_reactions]
            rm = reaction_metrics(rt, items, k=k_retro, seeds=seeds)
            on = f"{len(items)} held-out products (scaffold split), {len(seeds)} seeds"
            rsrc = src + "; template-generated pairs of training.reactions, products whose scaffolds were never trained on"
            out["retro"] = [
                Figure("pass the retrosynthesis check", 100 * rm["retro_check_pass"]["mean"], "%",
                       f"app sampling, {k_retro} samples each of {on}", rsrc),
                Figure("top-1 exact (greedy)", 100 * rm["retro_top1_greedy"], "%", on.split(",")[0], rsrc),
                Figure(f"top-{k_retro} exact", 100 * rm[f"retro_top{k_retro}"]["mean"], "%",
                       f"app sampling, {on}", rsrc),
            ]
            out["forward"] = [
                Figure("top-1 exact (greedy)", 100 * rm["forward_top1_greedy"], "%", on.split(",")[0], rsrc),
                Figure("top-1 exact (first app sample)", 100 * rm["forward_top1_first_sample"]["mean"], "%",
                       f"app sampling, {on}", rsrc),
            ]
            out["_reactions"] = rm
            log(f"reactions: {[f.text() for f in out['retro'] + out['forward']]} ({time.time() - t:.0f} s)")

        # ligand design: the pocket of XK2 in 1HVR (tests/data), as the Generate panel sends it
        from training.evaluate import LIGAND_POCKET

        pdb, ligand = LIGAND_POCKET
        if pdb.is_file() and n_ligand:
            t = time.time()
            res = _run(rt, "ligand", n_ligand, seed + 2, inputs={"file": str(pdb)}, options={"ligand": ligand})
            where = {True: ", a complex held out of training", False: ", a complex in the training data"}
            out["ligand"] = [Figure("valid molecules", 100 * sum(r["valid"] for r in res) / len(res), "%",
                                    f"app sampling, {len(res)} samples",
                                    src + "; the XK2 pocket of 1HVR" + where.get(ligand_heldout, ""))]
            log(f"ligand: {[f.text() for f in out['ligand']]} ({time.time() - t:.0f} s)")
    finally:
        rt.close()
    return out


# ------------------------------------------------------------------------------ the card

# A task counts as learnt when the held-out figures clear these (otherwise "not_learnt": its records
# were in the data, the model does not do the task): greedy top-1 exact or the share of samples the
# task's own chemical check accepts. 30 % top-1 is issue 20's bar for retrosynthesis.
LEARNT_TOP1 = 30.0
LEARNT_CHECK = 50.0
# Ligand design has no answer to compare with: it counts as trained when at least half of its
# samples for a pocket are valid molecules, and its note says what that does not show (fit).
LEARNT_LIGAND = 50.0


def _fig(figures: list[Figure], name: str) -> float | None:
    return next((f.value for f in figures if f.name == name), None)


def _learnt(figures: list[Figure], check: str | None) -> bool:
    top1 = _fig(figures, "top-1 exact (greedy)") or 0.0
    passed = (_fig(figures, check) or 0.0) if check else 0.0
    return top1 >= LEARNT_TOP1 or passed >= LEARNT_CHECK


def run_facts(summary: dict, task_rows: dict) -> dict:
    """What the card says about a ``logos train demo`` run: training records per task, data kept,
    parameters and tokens (``summary``: the run's demo.json; ``task_rows``: record_task counts)."""
    kept = summary.get("data_report", {}).get("kept", {})
    return {"rows": dict(task_rows), "kept": dict(kept), "n_params": summary.get("n_params"),
            "tokens_seen": summary.get("tokens_seen"), "precision": summary.get("precision"), "date": _today(),
            "metrics": {k: summary.get("metrics", {}).get(k) for k in ("pockets", "moses_gguf") if summary.get("metrics", {}).get(k)}}


def demo_card(measured: dict[str, list[Figure]], source: str, run: dict | None = None,
              previous: ModelCard | None = None) -> ModelCard:
    """The demonstration model's card: what it was trained on and the figures, measured now
    (``measured``) or carried from the training run. ``run`` (``run_facts``) describes the training
    data; without it (re-measuring a shipped model) the data lines and summary of ``previous`` stay."""
    m = measured
    prev = previous.tasks if previous is not None else {}

    def data(task: str, text: str) -> str:
        if run is not None:
            return text
        return prev[task].data if task in prev else ""

    rows = (run or {}).get("rows", {})
    kept = (run or {}).get("kept", {})
    when = f"logos train demo, {(run or {}).get('date', '')}"
    mol_figs = list(m.get("molecule", []))
    mg = (run or {}).get("metrics", {}).get("moses_gguf")
    if mg:
        mol_figs.append(Figure("MOSES validity at T = 1", round(100 * mg["validity"], 1), "%",
                               f"{mg.get('seeds', 1)} × {mg['samples'] // max(1, mg.get('seeds', 1)):,} samples",
                               f"llama.cpp on the GGUF, {when}"))
    elif "molecule" in prev:
        mol_figs += [f for f in prev["molecule"].figures if f.name == "MOSES validity at T = 1"]
    if run is None and "molecule" in prev:  # re-measuring the same model: its MOSES suite figures stay
        mol_figs += [f for f in prev["molecule"].figures if f.name in SUITE_FIGURES]
    retro_figs, fwd_figs = m.get("retro", []), m.get("forward", [])
    retro_ok = _learnt(retro_figs, "pass the retrosynthesis check")
    fwd_ok = _learnt(fwd_figs, None)
    reactions = (f"{rows.get('retro', 0):,} retrosynthesis and {rows.get('forward', 0):,} forward records: "
                 "TEMPLATE-GENERATED pairs (datamol and rxn-insight templates applied to MOSES and ChEMBL-drug "
                 "products, each checked; split by product scaffold; not USPTO)")
    ligand_ok = (_fig(m.get("ligand", []), "valid molecules") or 0.0) >= LEARNT_LIGAND
    pocket_figs = []
    po = (run or {}).get("metrics", {}).get("pockets")
    if po:
        pocket_figs = [Figure("well-formed pocket annotation", round(100 * po["well_formed"], 1), "%",
                              f"greedy, {po['items']} held-out sequences", f"torch on the float32 checkpoint, {when}")]
    elif "binding-site" in prev:
        pocket_figs = prev["binding-site"].figures
    tasks = {
        "molecule": TaskCard(
            "trained", data("molecule", f"{rows.get('molecule', 0):,} MOSES train molecules (molsets 0.3.1, MIT); "
                                        "MOSES test_scaffolds never used"),
            figures=mol_figs),
        "material": TaskCard(
            "trained", data("material", f"{kept.get('materials', 0):,} material records (×3 in training): CoRE MOF "
                                        "2019-ASR CIFs decomposed by engine.structures.framework (CC BY 4.0)"),
            figures=m.get("material", [])),
        "retro": TaskCard(
            "trained" if retro_ok else "not_learnt", data("retro", reactions),
            note=("template-generated chemistry only: one-step disconnections that the templates know, "
                  "not a route planner" if retro_ok else "expect invalid output (reactants unrelated to the product)"),
            figures=retro_figs),
        "forward": TaskCard(
            "trained" if fwd_ok else "not_learnt", data("forward", reactions),
            note=("template-generated chemistry only" if fwd_ok else "expect invalid output"),
            figures=fwd_figs),
        "binding-site": TaskCard(
            "not_learnt", data("binding-site", f"{rows.get('binding-site', 0):,} pocket records of real complexes "
                                              "(posebusters, MDAnalysisTests; repeated) and UniProt sequences"),
            note="expect invalid output", figures=pocket_figs),
        "ligand": TaskCard(
            "trained" if ligand_ok else "not_learnt",
            data("ligand", f"{rows.get('ligand', 0):,} complex records of the same few training "
                           "complexes (repeated)"),
            note=("valid molecules, not shown to fit the pocket (a few complexes seen): dock them to judge"
                  if ligand_ok else "molecules that parse, not designed for this pocket (a few complexes seen)"),
            figures=m.get("ligand", [])),
        "antibody": TaskCard("not_trained", note="no antibody records in its training data"),
    }
    if run is not None and run.get("n_params"):
        summary = (f"LOGOS Desktop demonstration model: a {run['n_params'] / 1e6:.1f} M-parameter Llama trained from "
                   f"scratch on 2 CPU cores ({run['tokens_seen'] / 1e6:.1f} M tokens"
                   f"{', bfloat16 mixed precision' if run.get('precision') == 'bfloat16' else ''}); "
                   "a demonstration, not a LOGOS model")
    else:
        summary = previous.summary if previous is not None else SUMMARY
    return ModelCard(tasks, summary, source)


def card_markdown(card: ModelCard) -> str:
    """The per-task section of MODEL_CARD.md, written from the embedded card."""
    lines = ["## Tasks (the card embedded in the GGUF)",
             "",
             "The same card is in the GGUF's metadata (`logos.task.*` keys) and in `logos-demo-card.json`; "
             "`logos models info resources/models/logos-demo-q8_0.gguf --json` prints it under `tasks`, and the "
             "Generate panel shows each task's line next to the task.",
             f"Card: {card.source}.",
             "",
             "| task | status | training data | figures |",
             "|---|---|---|---|"]
    for name, t in card.tasks.items():
        figs = "<br>".join(f.text(with_source=True) for f in t.figures) or "—"
        data = t.data or "none"
        if t.note:
            data += f" ({t.note})"
        lines.append(f"| {name} | {t.status.replace('_', ' ')} | {data} | {figs} |")
    lines += ["", "Status: *trained* — trained for the task, figures as measured; *not learnt* — its records "
              "were in the training data but the figures show the model did not learn the task (expect "
              "invalid output); *not trained* — never seen.", ""]
    return "\n".join(lines)


SUITE_FIGURES = ("FCD/Test", "SNN/Test", "Frag/Test", "Scaf/Test", "IntDiv")  # MOSES's suite, in the molecule task


def suite_figures(result: dict, source: str) -> list[Figure]:
    """The molecule task's figures from a run of ``training.moses_metrics`` (its ``compute``
    result): MOSES's own metrics at T = 1 against the full test set, as MOSES reports them."""
    on = f"MOSES suite, {result['samples']:,} samples at T = 1, {result.get('test_molecules', 0):,} test molecules"
    return [Figure(name, round(float(result[name]), 4), "", on, source)
            for name in SUITE_FIGURES if result.get(name) is not None]


def add_suite_figures(gguf: Path, figures: list[Figure]) -> ModelCard:
    """Put the suite's figures in the molecule task of the GGUF's embedded card (replacing those
    of an earlier suite run), embed it again (tensors unchanged), and update the card JSON and
    MODEL_CARD.md beside the model when they are there. Raises ValueError for a GGUF without a card."""
    from dataclasses import replace

    from engine.models.card import read_card

    card = read_card(gguf)
    if card is None or "molecule" not in card.tasks:
        raise ValueError(f"{gguf} carries no card with a molecule task")
    mol = card.tasks["molecule"]
    kept = [f for f in mol.figures if f.name not in SUITE_FIGURES]
    card.tasks["molecule"] = replace(mol, figures=kept + list(figures))
    publish_card(gguf, card, write_json=gguf.with_name(CARD_JSON).is_file())
    return card


def publish_card(gguf: Path, card: ModelCard, write_json: bool) -> tuple[Path | None, Path | None]:
    """The card into the model's files: ``logos-demo-card.json`` beside the GGUF (``write_json``),
    embedded in the GGUF (tensors unchanged), and MODEL_CARD.md's per-task section beside it when
    that file is there. Returns the JSON and the MODEL_CARD.md written (None where not)."""
    json_path = md = None
    if write_json:
        json_path = gguf.with_name(CARD_JSON)
        json_path.write_text(card_json(card) + "\n", encoding="utf-8")
    embed_card(gguf, gguf, card)
    if gguf.with_name("MODEL_CARD.md").is_file():
        md = gguf.with_name("MODEL_CARD.md")
        update_model_card_md(md, card, gguf)
    return json_path, md


def update_model_card_md(md_path: Path, card: ModelCard, gguf: Path | None = None) -> None:
    """Replace (or insert before '## Metrics on held-out data') the per-task section; with ``gguf``,
    the file's SHA-256 in the Model section too (the card keys change the file, not its tensors)."""
    import re

    from engine.modelfiles.gguf_info import sha256_file
    from engine.models.card import tensor_data_hash

    text = md_path.read_text(encoding="utf-8")
    if gguf is not None:
        note = f" (tensor data SHA-256 `{tensor_data_hash(gguf)[:16]}…`, unchanged by the card)"
        text = re.sub(r"SHA-256 `[0-9a-f]{64}`(?: \(tensor data SHA-256 `[0-9a-f]{16}…`, unchanged by the card\))?",
                      f"SHA-256 `{sha256_file(gguf)}`{note}", text, count=1)
    section = card_markdown(card)
    start = text.find("## Tasks (the card embedded in the GGUF)")
    if start >= 0:
        end = text.find("\n## ", start + 3)
        text = text[:start] + section + (text[end + 1:] if end >= 0 else "")
    else:
        at = text.find("## Metrics on held-out data")
        text = text[:at] + section + "\n" + text[at:] if at >= 0 else text + "\n" + section
    md_path.write_text(text, encoding="utf-8")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.card", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("demo", help="measure the demonstration model and embed its card")
    root = Path(__file__).resolve().parents[1] / "resources" / "models"
    d.add_argument("--gguf", default=str(root / "logos-demo-q8_0.gguf"))
    d.add_argument("--from", dest="from_json", help="embed this saved card instead of measuring")
    d.add_argument("--quick", action="store_true", help="small sample counts (a smoke run)")
    d.add_argument("--data", type=Path, help="the training run's data folder (heldout.json, train.txt): measures "
                                             "retrosynthesis and forward reaction on its held-out products and "
                                             "material novelty against its training records")
    args = ap.parse_args(argv)
    gguf = Path(args.gguf)
    if args.from_json:
        card = load_card_json(args.from_json)
    else:
        from engine.models.card import read_card

        t = time.time()
        kw = dict(n_mol=100, n_mat=20, n_reactions=3, k_retro=4, n_ligand=4) if args.quick else {}
        previous = read_card(gguf)
        if args.data:
            import json as _json

            saved = _json.loads((args.data / "heldout.json").read_text())
            kw["reactions"] = saved["heldout"].get("reactions")
            from training.evaluate import ligand_pocket_heldout

            kw["ligand_heldout"] = ligand_pocket_heldout((saved.get("settings") or {}).get("pocket_heldout"))
            kw["train_records"] = [r for r in (args.data / "train.txt").read_text().splitlines()
                                   if r.startswith("<MaterialS>")]
        measured = measure_demo(gguf, **kw)
        if not args.data and previous is not None:  # not re-measured: the card's figures stay
            for task in ("retro", "forward"):
                measured.setdefault(task, previous.task(task).figures)
        card = demo_card(measured, f"measured {_today()} by python -m training.card demo in "
                                   f"{time.time() - t:.0f} s on 2 CPU threads; carried figures name their run",
                         previous=previous)
    json_path, md = publish_card(gguf, card, write_json=not args.from_json)
    if json_path is not None:
        print(f"wrote {json_path}")
    print(f"embedded the card in {gguf} (tensor data unchanged)")
    if md is not None:
        print(f"updated {md}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
