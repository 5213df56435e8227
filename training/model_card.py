"""MODEL_CARD.md for the demonstration model, written from the run's ``demo.json``."""

from __future__ import annotations

import json
from pathlib import Path

SOURCES = [
    ("molecules", "MOSES train split, `moses/dataset/data/train.csv.gz` in molsets 0.3.1 (wheel, read without "
                  "installing)", "MIT", "MOSES `test_scaffolds` is never used for training (checked by exact SMILES)"),
    ("reactions", "TEMPLATE-GENERATED pairs (`training/reactions.py`): datamol 0.13's retro templates "
                  "(`datamol/data/reactions.json`) and rxn-insight 0.1.3's forward SMIRKS (`rxn_insight/data/smirks.json`) "
                  "applied to MOSES train molecules and datamol's ChEMBL drugs; a disconnection is kept when its "
                  "forward template gives the product back and the engine's reaction check passes; one target per "
                  "product (fixed template order); a retrosynthesis and a forward record each; split by "
                  "Bemis–Murcko scaffold of the product", "Apache-2.0 / MIT (templates), MIT (MOSES), "
                  "CC BY-SA 3.0 (ChEMBL part of datamol)", "NOT USPTO and not experimental reactions; held-out "
                  "scaffolds never in training"),
    ("proteins", "UniProt sequences of Debian `mmseqs2-examples` (`DB.fasta.gz`), ≤ 250 residues",
     "CC BY 4.0 (UniProt)", ""),
    ("materials", "CoRE MOF 2019-ASR CIFs (core-mof 2019.1), decomposed into metal node + linkers by "
                  "`engine.structures.framework`; only complete records", "CC BY 4.0 (data), MIT (package)", ""),
    ("pockets", "real protein–ligand complexes from posebusters 0.6.5 and MDAnalysisTests 2.11 through "
                "`engine.structures.pocket` (contacts ≤ 4.5 Å); chains cut to a 100-residue window around the "
                "pocket; records repeated ×20", "PDB coordinates CC0 (packages BSD-3 / LGPL-3)", ""),
]


# short names of training.evaluate.SAMPLINGS in the metrics table
SAMPLING_NAMES = {"t1": "T = 1", "reference": "authors' sampling (app default)"}


def _pct(x) -> str:
    return "n/a" if x is None else f"{100 * x:.1f} %"


def render(summary: dict) -> str:
    s = summary["settings"]
    t = s["train"]
    m = t["model"]
    met = summary.get("metrics", {})
    rep = summary["data_report"]
    kept = rep["kept"]
    lines = [
        "# LOGOS Desktop demonstration model (`logos-demo-q8_0.gguf`)",
        "",
        "A small Llama-architecture model trained from scratch by LOGOS Desktop's own training code "
        "(`training/`, `logos train demo`) on real public data, so that the app does something real on "
        "a machine without LOGOS weights. It is a demonstration, NOT a LOGOS model: it has seen very "
        "little data and its outputs are not scientifically useful.",
        "",
        "## Model",
        f"- Llama architecture: hidden {m['hidden_size']}, intermediate {m['intermediate_size']}, "
        f"{m['num_hidden_layers']} layers, {m['num_attention_heads']} heads, context {m['max_position_embeddings']}, "
        f"untied output; {summary.get('n_params', 0) / 1e6:.2f} M parameters.",
        f"- Tokenizer: byte-level BPE (`tokenizers`), {s['vocab_size']} tokens, Qwen2 pre-tokenizer split; "
        "every LOGOS tag is ONE added token that is NOT special (llama.cpp shows it as text and can stop on it); "
        "BOS `<|begin_of_text|>`, EOS `<|end_of_text|>`.",
        f"- File: GGUF Q8_0 ({summary.get('gguf_bytes', 0) / 1e6:.1f} MB), converted by `engine.models.convert` "
        "and quantised by `engine.models.quantize` (llama.cpp). SHA-256 "
        f"`{summary.get('gguf_sha256', '?')}`.",
        "",
        "## Training",
        f"- Steps: {summary['steps']} (status: {summary['status']}), batch {t['batch_size']} × {t['block_size']} tokens, "
        f"AdamW lr {t['lr']} → {t['min_lr']} (cosine, {t['warmup_steps']} warm-up steps), seed {s['seed']}.",
        f"- Tokens seen: {summary['tokens_seen']:,}; wall time {summary['train_seconds'] / 60:.1f} min on "
        f"{summary.get('hardware', 'a 2-core CPU (2 threads)')}, {summary['tokens_per_s']:.0f} tokens/s on average.",
        f"- Final training loss {summary['train_loss']:.3f}, validation loss {summary['val_loss']:.3f}"
        if summary.get("val_loss") is not None else f"- Final training loss {summary['train_loss']:.3f}",
        f"- Training rows: {summary['rows']['train']:,} (validation {summary['rows']['validation']:,}); "
        f"data SHA-256 `{summary['data_sha256'][:16]}…`.",
    ]
    if t.get("answer_only"):
        lines.append("- Records holding " + ", ".join(f"`{x}`" for x in t["answer_only"])
                     + " are trained on their answers only: the task's prompt before the tag is read, "
                     "not a target (the validation loss is over the same tokens).")
    if t.get("first_block_only"):
        lines.append("- Records holding " + ", ".join(f"`{x}`" for x in t["first_block_only"])
                     + " are trained without their first molecule block: the tokens up to its `<MoleculeE>` "
                     "are read, not targets (the validation loss is over the same tokens).")
    lines += [
        "",
        "## Data sources and licences",
        "| part | source | licence | kept | note |",
        "|---|---|---|---|---|",
    ]
    for key, src, lic, note in SOURCES:
        lines.append(f"| {key} | {src} | {lic} | {kept.get(key, 0):,} | {note} |")
    lines += [
        "",
        f"Skipped while building (reasons counted in `data/report.json`): "
        + ", ".join(f"{k} {sum(v.values())}" for k, v in rep["skipped"].items()) + ".",
        "",
        *_card_section(summary),
        "## Metrics on held-out data",
        f"Sampler: {met.get('sampler', 'n/a')}, except the rows marked llama.cpp.",
        *[f"- {SAMPLING_NAMES.get(k, k)}: {v}." for k, v in met.get("samplings", {}).items()],
        "",
        "| task | metric | value | on |",
        "|---|---|---|---|",
    ]
    # the goals are judged at the LOGOS authors' sampling, which is what the app and the CLI use
    for suffix, label, goal in (("_reference", "reference", True), ("", "t1", False)):
        name = SAMPLING_NAMES[label]
        mo = met.get("moses" + suffix, {})
        if mo:
            g90, g95 = (" (goal ≥ 90 %)", " (goal ≥ 95 %)") if goal else ("", "")
            lines += [
                f"| molecule generation (`<MoleculeS>`), {name}; torch | validity{g90} | {_pct(mo.get('validity'))} | {mo.get('samples')} samples |",
                f"| | uniqueness{g95} | {_pct(mo.get('uniqueness'))} | valid samples |",
                f"| | novelty vs MOSES train | {_pct(mo.get('novelty'))} | unique valid samples |",
            ]
        mg = met.get("moses_gguf" + suffix, {})
        if mg:
            per = ", ".join(_pct(v) for v in mg.get("validity_per_seed", []))
            lines += [
                f"| same sampling, shipped Q8_0 GGUF, llama.cpp | validity{' (goal ≥ 90 %)' if goal else ''} | "
                f"{_pct(mg.get('validity'))} | {mg.get('samples')} samples, {mg.get('seeds', 1)} seeds ({per}) |",
                f"| | uniqueness | {_pct(mg.get('uniqueness'))} | valid samples |",
                f"| | novelty vs MOSES train | {_pct(mg.get('novelty'))} | unique valid samples |",
            ]
        ma = met.get("materials" + suffix, {})
        if ma:
            lines.append(f"| material generation (`<MaterialS>`), {name}; torch | metal node and valid linkers | "
                         f"{_pct(ma.get('metal_and_valid_linkers'))} (has a metal: {_pct(ma.get('has_metal'))}) | {ma.get('samples')} samples |")
    re_ = met.get("retrosynthesis", {})
    if re_:
        lines.append(f"| retrosynthesis (template-generated pairs) | exact match, top-1 greedy | "
                     f"{_pct(re_.get('exact_match_top1'))} | {re_.get('pairs')} held-out products |")
    rt = met.get("reactions", {})
    if rt:
        on = f"{rt.get('items')} held-out products (scaffold split)"
        lines += [f"| retrosynthesis (template-generated pairs); torch | top-1 exact, greedy | {_pct(rt.get('retro_top1'))} | {on} |",
                  f"| | top-1, any template's reactants | {_pct(rt.get('retro_top1_any_template'))} | {on} |",
                  f"| forward reaction (same pairs); torch | top-1 exact, greedy | {_pct(rt.get('forward_top1'))} | {on} |"]
    rg = met.get("reactions_gguf", {})
    if rg:
        k = rg.get("k", 10)
        on = f"{rg.get('products')} held-out products, seeds {rg.get('seeds')}"

        def ms(v):
            return f"{_pct(v['mean'])} ± {100 * v['spread']:.1f}" if isinstance(v, dict) else _pct(v)
        lines += [
            f"| retrosynthesis, shipped Q8_0 GGUF, llama.cpp (app's task path) | top-1 exact, greedy (goal ≥ 30 %) | {_pct(rg.get('retro_top1_greedy'))} | {on} |",
            f"| | top-{k} exact, app sampling (goal ≥ 60 %) | {ms(rg.get(f'retro_top{k}'))} | {on} |",
            f"| | samples passing the reaction check (goal ≥ 90 %) | {ms(rg.get('retro_check_pass'))} | {k} samples each |",
            f"| forward reaction, same | top-1 exact, greedy (goal ≥ 50 %) | {_pct(rg.get('forward_top1_greedy'))} | {on} |",
            f"| | top-1 exact, first app sample | {ms(rg.get('forward_top1_first_sample'))} | {on} |",
        ]
    po = met.get("pockets", {})
    if po:
        items = met.get("pockets_items", {})
        lines.append(f"| binding-site search (`<Search>`) | well-formed pocket annotation | {_pct(po.get('well_formed'))} | "
                     f"{po.get('items')} held-out sequences ({items.get('heldout_complex_chains', '?')} complex chains, "
                     f"{items.get('heldout_uniprot_sequences', '?')} UniProt) |")
    lines += [
        "",
        "Well-formed pocket annotation: the answer decodes, repeats the query sequence letter for letter and marks "
        "at least one residue (no claim that the marked residues are the true pocket). Novelty is measured "
        "against the raw MOSES train strings, which RDKit 2026.09 canonicalises unchanged (checked on 600).",
        "",
        *([ "## Notes", *[f"- {n}" for n in summary.get("notes", [])], ""] if summary.get("notes") else []),
        "## Rebuild",
        "`logos train demo --install` rebuilds this file from the registries' data with the same seed and settings "
        "(`training/demo.py: DemoSettings`); the numbers above come from `demo.json` of that run. MOSES's suite "
        "(FCD/Test, SNN/Test, Frag/Test, Scaf/Test, IntDiv in the molecule task's card) is measured apart: "
        "`python -m training.moses_metrics --model resources/models/logos-demo-q8_0.gguf -n 30000 --seed 1 --card`.",
        "",
    ]
    return "\n".join(lines)


def _card_section(summary: dict) -> list[str]:
    """The per-task table of the card embedded in the GGUF (training.card), when the run measured it."""
    if not summary.get("card"):
        return []
    from engine.models.card import ModelCard
    from training.card import card_markdown

    return card_markdown(ModelCard.from_dict(summary["card"], origin="gguf")).splitlines()


def write(summary_path: Path, out: Path) -> Path:
    summary = json.loads(Path(summary_path).read_text())
    out.write_text(render(summary))
    return out
