"""Why retrosynthesis samples fail the task's check: each failing sample in one class, with counts.

The card's retrosynthesis check figure is the share of app-sampled answers that the retrosynthesis
task accepts (engine.tasks.retro: every reactant a valid molecule, not the product itself, and
engine.tasks.reaction_check: the reactants can make the product). This module draws the same
samples through the engine's task path and sorts each rejected one by the first reason the task
gave, so the figure can be read: how much is broken SMILES, how much is chemistry. It also checks
the held-out template answers themselves, which tells a strict check from a weak model.

    python -m training.retro_failures MODEL.gguf HELDOUT.json [--products 100] [--samples 10]
        [--sampling '{"repetition_penalty": 1.0}']

HELDOUT.json is the ``data/heldout.json`` that ``logos train demo`` writes in its work directory.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections import Counter
from pathlib import Path

# (class, pattern of the task's first reason). Order matters: the first match wins.
CLASSES = (
    ("no reactant block", re.compile(r"^no reactant block")),
    ("a reactant is not a valid molecule", re.compile(r"^reactant \d+: ")),
    ("the product itself among the reactants", re.compile(r"^the product itself is among the reactants")),
    ("product atoms supplied by no reactant", re.compile(r"^product atoms supplied by no reactant")),
    ("a reactant supplies nothing to the product",
     re.compile(r"^reactant \d+ \(.*\) (supplies no product atom|shares no substructure)")),
    ("too many bonds made or broken", re.compile(r"^the reactants fit the product only with \d+ bonds")),
    ("the comparison timed out", re.compile(r"^the substructure comparison timed out")),
)
OTHER = "other"


def failure_class(reasons: list[str]) -> str | None:
    """The class of a sample from the retrosynthesis task's reasons (parse, then validate); None
    when there is no reason (the sample passed)."""
    if not reasons:
        return None
    first = reasons[0]
    for name, pattern in CLASSES:
        if pattern.search(first):
            return name
    return OTHER


def analyse(gguf_or_runtime, items: list[dict], k: int = 10, sampling: dict | None = None, log=None) -> dict:
    """Draw ``k`` retrosynthesis samples per held-out product (seed = product index, as
    training.evaluate's first seed) and count the rejected ones by class. ``gguf_or_runtime``: a
    model file (loaded and closed here) or a loaded runtime."""
    from engine.tasks.reaction_check import reactants_supply_product
    from training.card import _run
    from training.evaluate import reaction_runtime

    classes: Counter = Counter()
    examples: dict[str, list] = {}
    total = passed = truth_total = truth_pass = 0
    t0 = time.time()
    with reaction_runtime(gguf_or_runtime) as rt:
        for i, h in enumerate(items):
            for r in _run(rt, "retro", k, i, options={"smiles": h["product"]}, sampling=dict(sampling or {})):
                total += 1
                # a rejected sample always lands in a class, even if it came without a reason
                cls = None if r["valid"] else (failure_class(list(r.get("reasons") or [])) or OTHER)
                if cls is None:
                    passed += 1
                    continue
                classes[cls] += 1
                examples.setdefault(cls, [])
                if len(examples[cls]) < 3:
                    examples[cls].append({"product": h["product"], "reason": (r.get("reasons") or [""])[0][:160]})
            for t in h.get("all_targets") or [h["target"]]:
                truth_total += 1
                truth_pass += reactants_supply_product(h["product"], t).ok
            if log and (i + 1) % 20 == 0:
                log(f"{i + 1}/{len(items)} products, {passed}/{total} samples pass")
    return {"products": len(items), "samples_per_product": k, "sampling": sampling or "app sampling",
            "samples": total, "passed": passed, "pass_rate": passed / total if total else 0.0,
            "classes": dict(classes.most_common()), "examples": examples,
            "template_answers": truth_total, "template_answers_passing": truth_pass,
            "seconds": round(time.time() - t0, 1)}


def format_report(rep: dict) -> str:
    n = rep["samples"] or 1
    lines = [f"{rep['products']} held-out products x {rep['samples_per_product']} samples ({rep['sampling']}): "
             f"{rep['passed']}/{rep['samples']} pass the check ({rep['pass_rate']:.1%}), {rep['seconds']:.0f} s",
             "| failure class | samples | share of all samples |", "|---|---|---|"]
    for cls, m in rep["classes"].items():
        lines.append(f"| {cls} | {m} | {m / n:.1%} |")
    lines.append(f"template answers of these products (all passing disconnections) that pass the same check: "
                 f"{rep['template_answers_passing']}/{rep['template_answers']}")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.retro_failures", description=__doc__.split("\n\n")[0])
    ap.add_argument("gguf")
    ap.add_argument("heldout", help="data/heldout.json of a logos train demo work directory")
    ap.add_argument("--products", type=int, default=100)
    ap.add_argument("--samples", type=int, default=10)
    ap.add_argument("--sampling", default=None, help="sampling fields as JSON (default: the app's)")
    ap.add_argument("--json", default=None, help="also write the report here")
    a = ap.parse_args(argv)
    from rdkit import RDLogger

    RDLogger.DisableLog("rdApp.*")
    try:
        items = json.loads(Path(a.heldout).read_text())["heldout"]["reactions"][: a.products]
        sampling = json.loads(a.sampling) if a.sampling else None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(f"error: {a.heldout}: not a held-out file of logos train demo ({exc})", file=sys.stderr)
        return 2
    if not Path(a.gguf).is_file():
        print(f"error: {a.gguf}: no such model file", file=sys.stderr)
        return 2
    try:
        rep = analyse(a.gguf, items, a.samples, sampling, log=lambda m: print(m, file=sys.stderr))
    except (OSError, ValueError, RuntimeError) as exc:  # a file that is not a model, bad sampling fields
        print(f"error: {a.gguf}: {exc}", file=sys.stderr)
        return 2
    print(format_report(rep))
    if a.json:
        Path(a.json).write_text(json.dumps(rep, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
