"""Held-out metrics for a trained checkpoint (Hugging Face directory), sampled with torch generate.

* molecules: MOSES validity / uniqueness / novelty over N samples from the prompt ``<MoleculeS>``,
  novelty against the MOSES train split, with two samplers (``SAMPLINGS``): plain sampling at
  temperature 1 (the MOSES convention) and the LOGOS authors' parameters, which are the app's
  defaults (temperature 1.2, top-k 50, top-p 0.85, repetition penalty 1.05).
* materials: fraction of samples from ``<MaterialS>`` that decode to a record with a metal node and
  only valid linkers (engine.grammar.codec), with the same two samplers.
* retrosynthesis: exact match (greedy, top-1) of the reactant set on held-out template-generated pairs.
* pockets: fraction of well-formed ``<Search>`` answers on held-out complexes: the answer decodes,
  keeps the query sequence letter for letter and marks at least one residue.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import Path

from engine.runtime.sampling import SamplingParams

_APP = SamplingParams()  # the engine's defaults: the LOGOS authors' sampling
# name -> (temperature, top_k, top_p, repetition_penalty); top_k 0 / top_p 1 switch the filter off
SAMPLINGS = {
    "t1": (1.0, 0, 1.0, 1.0),
    "reference": (_APP.temperature, _APP.top_k, _APP.top_p, _APP.repetition_penalty),
}
SAMPLING_LABELS = {
    "t1": "temperature 1, no top-k / top-p, no penalty (MOSES convention)",
    "reference": (f"T {_APP.temperature:g}, top-k {_APP.top_k}, top-p {_APP.top_p:g}, repetition penalty "
                  f"{_APP.repetition_penalty:g} (the LOGOS authors' parameters)"),
}


def _load(hf_dir):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(hf_dir), local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(str(hf_dir), dtype=torch.float32, use_safetensors=True,
                                                 local_files_only=True)
    model.eval()
    return model, tok


def _generate(model, tok, prompt: str, n: int, stop: str, max_new: int, greedy: bool, seed: int,
              batch: int = 100, sampling: str = "t1", keep_stop: bool = False) -> list[str]:
    """Completions (text between the prompt and the stop tag) for one prompt; with ``keep_stop``
    the stop tag stays at the end of a completion that reached it (as the engine hands a sample to
    its task's parser), and a completion cut by ``max_new`` has none."""
    import torch

    ids = tok(prompt, add_special_tokens=True, return_tensors="pt")["input_ids"]
    stop_ids = [tok.convert_tokens_to_ids(stop), tok.eos_token_id]
    out: list[str] = []
    torch.manual_seed(seed)
    while len(out) < n:
        k = min(batch, n - len(out))
        temperature, top_k, top_p, penalty = SAMPLINGS[sampling]
        kw = dict(do_sample=False) if greedy else dict(do_sample=True, temperature=temperature, top_k=top_k,
                                                        top_p=top_p, repetition_penalty=penalty)
        with torch.no_grad():
            gen = model.generate(ids.repeat(k, 1), attention_mask=torch.ones_like(ids).repeat(k, 1),
                                 max_new_tokens=max_new, eos_token_id=stop_ids, pad_token_id=tok.eos_token_id,
                                 **kw)
        for row in gen[:, ids.shape[1]:]:
            text = tok.decode(row, skip_special_tokens=False)
            stopped = stop in text
            for s in (stop, tok.eos_token):
                text = text.split(s, 1)[0]
            out.append(text + stop if keep_stop and stopped else text)
    return out


def moses_metrics(samples: list[str], train_smiles: set[str]) -> dict:
    from rdkit import Chem, RDLogger

    RDLogger.DisableLog("rdApp.*")
    valid = []
    for s in samples:
        m = Chem.MolFromSmiles(s) if s and "<" not in s else None
        if m is not None and m.GetNumAtoms() > 0:
            valid.append(Chem.MolToSmiles(m))
    unique = set(valid)
    novel = unique - train_smiles
    n = len(samples)
    return {"samples": n, "validity": len(valid) / n if n else 0.0,
            "uniqueness": len(unique) / len(valid) if valid else 0.0,
            "novelty": len(novel) / len(unique) if unique else 0.0,
            "examples": sorted(unique)[:5]}


def material_metrics(records: list[str]) -> dict:
    from engine.grammar import codec

    ok = 0
    metal_ok = 0
    for body in records:
        d = codec.decode(f"<MaterialS>{body}<MaterialE>")
        mats = [o for o in d.objects if o.get("type") == "material"]
        if mats and mats[0].get("metals"):
            metal_ok += 1
            if d.valid and mats[0].get("linkers"):
                ok += 1
    n = len(records)
    return {"samples": n, "metal_and_valid_linkers": ok / n if n else 0.0,
            "has_metal": metal_ok / n if n else 0.0}


def material_key(body: str) -> tuple | None:
    """A valid material record's identity: (metal node, sorted canonical linkers), else None.

    Valid as ``material_metrics`` counts it: a metal node and only valid linkers."""
    from rdkit import Chem

    from engine.grammar import codec

    d = codec.decode(f"<MaterialS>{body}<MaterialE>")
    mats = [o for o in d.objects if o.get("type") == "material"]
    if not (d.valid and mats and mats[0].get("metals") and mats[0].get("linkers")):
        return None
    links = []
    for s in mats[0]["linkers"]:
        m = Chem.MolFromSmiles(s)
        if m is None:
            return None
        links.append(Chem.MolToSmiles(m))
    return (mats[0].get("metal") or "", tuple(sorted(links)))


def material_vnu(bodies: list[str], train_records: list[str]) -> dict:
    """VNU as the LOGOS paper reports material generation: the share of ALL samples that are valid
    (metal node, only valid linkers), novel (no training record has the same node and linker set)
    and unique (each such material counted once). ``bodies`` are the texts inside ``<MaterialS>``;
    ``train_records`` whole training rows (``<MaterialS>...<MaterialE>``)."""
    train = set()
    for r in train_records:
        if r.startswith("<MaterialS>"):
            k = material_key(r[len("<MaterialS>"):].split("<MaterialE>", 1)[0])
            if k is not None:
                train.add(k)
    keys = [material_key(b) for b in bodies]
    valid = [k for k in keys if k is not None]
    novel = [k for k in valid if k not in train]
    n = len(bodies)
    return {"samples": n, "valid": len(valid) / n if n else 0.0, "novel_of_valid": len(novel) / len(valid) if valid else 0.0,
            "unique_of_valid": len(set(valid)) / len(valid) if valid else 0.0,
            "vnu": len(set(novel)) / n if n else 0.0, "training_materials": len(train)}


def _reactant_set(text: str) -> tuple[str, ...] | None:
    from rdkit import Chem

    parts = [p.split("<MoleculeE>", 1)[0] for p in text.split("<MoleculeS>")[1:]]
    out = []
    for p in parts:
        m = Chem.MolFromSmiles(p) if p and "<" not in p else None
        if m is None:
            return None
        out.append(Chem.MolToSmiles(m))
    return tuple(sorted(out)) if out else None


def retro_metrics(model, tok, pairs, max_new: int = 120) -> dict:
    hits = 0
    for product, reactants, _template in pairs:
        prompt = f"<MoleculeS>{product}<MoleculeE><ReverseReact>"
        got = _generate(model, tok, prompt, 1, tok.eos_token, max_new, True, 0)[0]
        ref = tuple(sorted(reactants))
        if _reactant_set(got) == ref:
            hits += 1
    n = len(pairs)
    return {"pairs": n, "exact_match_top1": hits / n if n else 0.0, "decoding": "greedy"}


def _canon(smiles: str) -> str | None:
    from rdkit import Chem

    m = Chem.MolFromSmiles(smiles) if smiles and "<" not in smiles else None
    return Chem.MolToSmiles(m) if m is not None else None


def _targets(item: dict) -> tuple[tuple, set]:
    target = tuple(sorted(c for c in (_canon(s) for s in item["target"]) if c))
    every = {tuple(sorted(c for c in (_canon(s) for s in t) if c)) for t in item.get("all_targets") or [item["target"]]}
    return target, every | {target}


def reaction_top1(model, tok, items: list[dict]) -> dict:
    """Greedy top-1 of retrosynthesis and forward reaction on held-out items."""
    retro = retro_any = fwd = 0
    for it in items:
        target, every = _targets(it)
        got = _reactant_set(_generate(model, tok, f"<MoleculeS>{it['product']}<MoleculeE><ReverseReact>", 1,
                                      tok.eos_token, 160, True, 0)[0])
        retro += got == target
        retro_any += got in every
        prompt = "".join(f"<MoleculeS>{r}<MoleculeE>" for r in it["target"]) + "<React><MoleculeS>"
        prod = _generate(model, tok, prompt, 1, "<MoleculeE>", 120, True, 0)[0]
        fwd += _canon(prod) is not None and _canon(prod) == _canon(it["product"])
    n = max(1, len(items))
    return {"items": len(items), "retro_top1": retro / n, "retro_top1_any_template": retro_any / n,
            "forward_top1": fwd / n}


def retro_check_pass(model, tok, items: list[dict], k: int = 4, seed: int = 0) -> dict:
    """Share of ``k`` retrosynthesis samples per held-out product, drawn with the app's sampling,
    that the retrosynthesis task accepts (its parse and validate: the reactants can make the
    product), as the app checks every sample."""
    from engine.tasks.retro import RetroTask

    task = RetroTask()
    passed = total = 0
    for i, it in enumerate(items):
        prompt = task.build_prompt({}, {"smiles": it["product"]})
        for text in _generate(model, tok, prompt.text, k, tok.eos_token, 160, False, seed + i,
                              sampling="reference"):
            objects, reasons = task.parse(text, prompt)
            passed += not (reasons or task.validate(objects, prompt))
            total += 1
    return {"retro_check_pass": passed / total if total else 0.0, "retro_check_samples": total}


# ligand design for a pocket, as the app's tour runs it: the pocket of XK2 in 1HVR (HIV-1 protease)
LIGAND_POCKET = (Path(__file__).resolve().parents[1] / "tests" / "data" / "structures" / "1hvr.pdb", "XK2")


def ligand_pocket_heldout(pocket_heldout) -> bool | None:
    """True when LIGAND_POCKET's complex is among the complexes a run held out by name (PDB codes,
    ``DemoSettings.pocket_heldout``); None otherwise (the rest of the split is drawn: not known here)."""
    return (LIGAND_POCKET[0].stem.lower() in {str(c).lower() for c in pocket_heldout or ()}) or None


def ligand_valid(model, tok, n: int, seed: int = 0, pocket: tuple = LIGAND_POCKET) -> dict:
    """Share of ``n`` ligands for a pocket, drawn with the app's sampling from the prompt the ligand
    task builds (the Generate panel's path), that the ligand task accepts: the record closes and
    holds one valid molecule. ``pocket``: (structure file, residue name of the bound ligand)."""
    from engine.tasks.ligand import LigandTask

    task = LigandTask()
    pdb, ligand = pocket
    prompt = task.build_prompt({"file": str(pdb)}, {"ligand": ligand})
    close = prompt.stop_tags[0]
    passed = 0
    for text in _generate(model, tok, prompt.text, n, close, task.sampling["max_new_tokens"], False, seed,
                          sampling="reference", keep_stop=True):
        objects, reasons = task.parse(text, prompt)
        passed += not (reasons or task.validate(objects, prompt))
    return {"ligand_valid": passed / n if n else 0.0, "ligand_samples": n,
            "ligand_pocket": f"{ligand} of {Path(pdb).name}"}


def pocket_metrics(model, tok, items, max_new: int = 600) -> dict:
    """items: (sequence, pocket positions) pairs from held-out complexes."""
    from engine.grammar import codec

    well = 0
    for seq, _pockets in items:
        prompt = f"<ProteinS>{seq}<ProteinE><Search><ProteinS>"
        body = _generate(model, tok, prompt, 1, "<ProteinE>", max_new, True, 0)[0]
        d = codec.decode(f"<ProteinS>{seq}<ProteinE><Search><ProteinS>{body}<ProteinE>")
        if d.valid and d.records:
            ans = d.records[0].answer
            if ans is not None and ans.sequence == seq and len(ans.pockets) > 0:
                well += 1
    n = len(items)
    return {"items": n, "well_formed": well / n if n else 0.0, "decoding": "greedy"}


def moses_with_llama_cpp(gguf, n_samples: int, train_smiles: set[str], seed: int = 0, sampling: str = "t1",
                         seeds: int = 3) -> dict:
    """MOSES metrics of the shipped GGUF, sampled by llama.cpp through engine.runtime (min-p 0), for
    ``seeds`` independent sets of ``n_samples``: one set of 1,000 moves by about ±2 points."""
    from engine.runtime.llama import Runtime

    t = time.time()
    temperature, top_k, top_p, penalty = SAMPLINGS[sampling]
    params = SamplingParams(temperature=temperature, top_k=top_k, top_p=top_p, min_p=0.0,
                            repetition_penalty=penalty, max_new_tokens=120)
    rt = Runtime.load(gguf, n_gpu_layers=0, n_ctx=512, n_threads=2, n_seq_max=64)
    runs = []
    try:
        stop = rt.token_id("<MoleculeE>")
        for k_seed in range(seeds):
            base = seed + 1_000_003 * k_seed
            texts: list[str] = []
            while len(texts) < n_samples:
                k = min(64, n_samples - len(texts))
                samples, _ = rt.generate("<MoleculeS>", n=k, params=params, seed=base + len(texts),
                                         stop_ids=[stop] if stop is not None else ())
                texts += [smp.text.split("<MoleculeE>", 1)[0] for smp in samples]
            runs.append(moses_metrics(texts, train_smiles))
    finally:
        rt.close()
    out = dict(runs[0])
    for key in ("validity", "uniqueness", "novelty"):
        out[key] = sum(r[key] for r in runs) / len(runs)
        out[f"{key}_per_seed"] = [round(r[key], 4) for r in runs]
    out["samples"] = n_samples * len(runs)
    out["seeds"] = len(runs)
    out["sampling"] = SAMPLING_LABELS[sampling]
    out["sampler"] = "llama.cpp (engine.runtime) on the Q8_0 GGUF"
    out["seconds"] = round(time.time() - t, 1)
    return out


def evaluate_all(hf_dir, heldout: dict, moses_train_loader, n_samples: int = 1000, seed: int = 0,
                 log=print) -> dict:
    model, tok = _load(hf_dir)
    out: dict = {"sampler": "torch (transformers generate) on the float32 checkpoint",
                 "samplings": dict(SAMPLING_LABELS)}
    train = set(moses_train_loader())
    for sampling, suffix in (("t1", ""), ("reference", "_reference")):
        t = time.time()
        samples = _generate(model, tok, "<MoleculeS>", n_samples, "<MoleculeE>", 120, False, seed,
                            sampling=sampling)
        out["moses" + suffix] = moses_metrics(samples, train)
        log(f"MOSES ({sampling}): {out['moses' + suffix]} ({time.time() - t:.0f} s)")
        if heldout.get("materials") is not None:
            t = time.time()
            mats = _generate(model, tok, "<MaterialS>", 200, "<MaterialE>", 200, False, seed + 1,
                             sampling=sampling)
            out["materials" + suffix] = material_metrics(mats)
            log(f"materials ({sampling}): {out['materials' + suffix]} ({time.time() - t:.0f} s)")
    if heldout.get("reactions"):
        t = time.time()
        out["reactions"] = reaction_top1(model, tok, heldout["reactions"][:100])
        log(f"reactions (torch, greedy): {out['reactions']} ({time.time() - t:.0f} s)")
    if heldout.get("retrosynthesis"):
        t = time.time()
        out["retrosynthesis"] = retro_metrics(model, tok, heldout["retrosynthesis"])
        log(f"retrosynthesis: {out['retrosynthesis']} ({time.time() - t:.0f} s)")
    if heldout.get("pockets"):
        t = time.time()
        out["pockets"] = pocket_metrics(model, tok, heldout["pockets"])
        log(f"pockets: {out['pockets']} ({time.time() - t:.0f} s)")
    return out


# ------------------------------------------------------------------------------ reactions (issue 20)

def _canon_set(smiles_list) -> tuple[str, ...] | None:
    """Sorted canonical SMILES of a reactant list; None when one does not parse."""
    from rdkit import Chem

    out = []
    for s in smiles_list or []:
        m = Chem.MolFromSmiles(s) if s else None
        if m is None:
            return None
        out.append(Chem.MolToSmiles(m))
    return tuple(sorted(out)) if out else None


def _mean_spread(values: list[float]) -> dict:
    import statistics

    return {"mean": sum(values) / len(values) if values else 0.0,
            "spread": statistics.stdev(values) if len(values) > 1 else 0.0,
            "per_seed": [round(v, 4) for v in values]}


@contextmanager
def reaction_runtime(gguf_or_runtime):
    """The runtime the reaction figures sample from: a model file is loaded here (CPU, 2 threads,
    room for a retrosynthesis job's prompt and answer) and closed on leaving; a runtime passed in
    is used as it is and left open."""
    if not (isinstance(gguf_or_runtime, (str, bytes)) or hasattr(gguf_or_runtime, "__fspath__")):
        yield gguf_or_runtime
        return
    from engine.runtime.llama import Runtime

    rt = Runtime.load(gguf_or_runtime, n_gpu_layers=0, n_ctx=1024, n_threads=2, n_seq_max=64)
    try:
        yield rt
    finally:
        rt.close()


def reaction_metrics(gguf_or_runtime, heldout: list[dict], k: int = 10, seeds=(0, 1, 2),
                     max_new_tokens: int | None = None, log=None) -> dict:
    """Retrosynthesis and forward-reaction figures on held-out template-generated pairs
    (training.reactions: {product, target, all_targets, template}), sampled through the engine's
    task path exactly as the app runs a job (engine.process.jobs.run_job, the task's validator).

    * retro top-1 (greedy): the reactant set of the greedy answer (temperature 0) equals the target
      (sorted canonical SMILES); greedy does not depend on the seed, so it is run once.
    * retro top-1 (first app sample): the first of the ``k`` samples drawn with the app's sampling.
    * retro top-k: the target is among the ``k`` app samples; "any template": one of the product's
      passing disconnections (all_targets) is.
    * retro check pass: share of all app samples the retrosynthesis task's validator accepts
      (engine.tasks.reaction_check: the reactants can make the product).
    * forward top-1 (greedy) and (first app sample): the forward task, prompted with the target
      reactants, gives the product (canonical SMILES).
    Seed-dependent figures: mean and spread (sample standard deviation) over ``seeds``.
    ``max_new_tokens`` None keeps each task's own limit (as the app)."""
    from rdkit import Chem

    from training.card import _run

    extra = {"max_new_tokens": max_new_tokens} if max_new_tokens else {}
    greedy = {"temperature": 0.0, **extra}
    t0 = time.time()

    def canon(s):
        m = Chem.MolFromSmiles(s) if s else None
        return Chem.MolToSmiles(m) if m is not None else None

    with reaction_runtime(gguf_or_runtime) as rt:
        n = len(heldout)
        g_retro = g_fwd = 0
        for i, h in enumerate(heldout):
            res = _run(rt, "retro", 1, 0, options={"smiles": h["product"]}, sampling=greedy)
            g_retro += bool(res) and _canon_set(res[0]["objects"].get("reactants")) == tuple(sorted(h["target"]))
            res = _run(rt, "forward", 1, 0, options={"smiles": ".".join(h["target"])}, sampling=greedy)
            g_fwd += bool(res) and canon(res[0]["objects"].get("product")) == h["product"]
        per_seed = {key: [] for key in ("retro_top1_first_sample", f"retro_top{k}", f"retro_top{k}_any_template",
                                        "retro_check_pass", "forward_top1_first_sample", "forward_check_pass")}
        for seed in seeds:
            first = topk = anyt = passed = total = f_first = f_pass = f_total = 0
            for i, h in enumerate(heldout):
                target = tuple(sorted(h["target"]))
                alls = {tuple(sorted(t)) for t in h.get("all_targets") or [h["target"]]}
                res = sorted(_run(rt, "retro", k, 1_000_003 * seed + i, options={"smiles": h["product"]},
                                  sampling=dict(extra)), key=lambda r: r["index"])  # first drawn first
                sets = [_canon_set(r["objects"].get("reactants")) for r in res]
                first += bool(sets) and sets[0] == target
                topk += target in sets
                anyt += bool(alls & set(sets))
                passed += sum(bool(r["valid"]) for r in res)
                total += len(res)
                res = _run(rt, "forward", 1, 1_000_003 * seed + i, options={"smiles": ".".join(h["target"])},
                           sampling=dict(extra))
                f_first += bool(res) and canon(res[0]["objects"].get("product")) == h["product"]
                f_pass += sum(bool(r["valid"]) for r in res)
                f_total += len(res)
            per_seed["retro_top1_first_sample"].append(first / n if n else 0.0)
            per_seed[f"retro_top{k}"].append(topk / n if n else 0.0)
            per_seed[f"retro_top{k}_any_template"].append(anyt / n if n else 0.0)
            per_seed["retro_check_pass"].append(passed / total if total else 0.0)
            per_seed["forward_top1_first_sample"].append(f_first / n if n else 0.0)
            per_seed["forward_check_pass"].append(f_pass / f_total if f_total else 0.0)
            if log:
                log(f"reactions seed {seed}: " + ", ".join(f"{a} {v[-1]:.3f}" for a, v in per_seed.items()))
    out = {"products": n, "k": k, "seeds": list(seeds),
           "retro_top1_greedy": g_retro / n if n else 0.0,
           "forward_top1_greedy": g_fwd / n if n else 0.0,
           "sampling": "app sampling (the engine's SamplingParams defaults and each task's own limits)"
                       + (f", max_new_tokens {max_new_tokens}" if max_new_tokens else "")
                       + "; greedy = temperature 0, run once (it does not depend on the seed)",
           "sampler": "engine task path (engine.process.jobs.run_job) on the runtime",
           "data": "held-out products of training.reactions (TEMPLATE-GENERATED pairs, split by product scaffold)"}
    for key, vals in per_seed.items():
        out[key] = _mean_spread(vals)
    out["seconds"] = round(time.time() - t0, 1)
    return out
