"""Template-generated reaction pairs (retrosynthesis and forward) with a product-scaffold split.

TEMPLATE-GENERATED, not USPTO: reaction templates that ship in registry data packages are applied
in the retro direction to real molecules, and a disconnection is kept only when the product-side
chemistry checks out:

* templates: datamol 0.13's ``retro_smarts`` (Apache-2.0; the loader of training/data.py) and
  rxn-insight 0.1.3's forward SMIRKS (MIT, ``rxn_insight/data/smirks.json``, one JSON object a line,
  ``reactants>>product``), reversed here into ``product>>reactants``. Each template keeps a forward
  version (rxn-insight: the SMIRKS itself; datamol: its ``syn_smarts``) for the product check.
  Templates RDKit cannot read are skipped and counted.
* products: MOSES train molecules (molsets 0.3.1, MIT; a seeded sample) and datamol's ChEMBL drugs
  (``datamol/data/chembl_drugs.csv``, largest fragment of each salt).
* the product check: every candidate reactant set must sanitise, carry no radical, not contain the
  product; the forward template run on the reactants must give back the product (rxn-insight
  templates; canonical SMILES compared), and ``engine.tasks.reaction_check.reactants_supply_product``
  (every reactant takes part) must pass, the same check the app's retrosynthesis task applies.
  Both are required wherever the template has a forward version (all rxn-insight templates, the
  datamol templates with ``syn_smarts``); a datamol template without one has the engine check only.
* the training target: ONE disconnection per product, the first template that passes in a fixed
  priority order: datamol templates by tier then name (as training/data.py orders them), then
  rxn-insight in file order; within a template the most convergent candidate first (the smallest
  largest reactant: the cut nearest the middle of the molecule), then by SMILES. Held-out
  products also keep every passing reactant set of every template (``all_targets``).
* the split: by Bemis-Murcko scaffold of the product (RDKit ``MurckoScaffold``). Whole scaffolds go
  to held-out or validation; acyclic products (scaffold "") and scaffolds with more products than a
  twentieth of the held-out size (benzene, ...) stay in train, so no held-out or validation
  scaffold appears in train.

Records: retrosynthesis ``<MoleculeS>P<MoleculeE><ReverseReact><MoleculeS>R1<MoleculeE>...``
(training.data.retro_record) and forward ``<MoleculeS>R1<MoleculeE>...<React><MoleculeS>P<MoleculeE>``,
the layout engine/tasks/forward.py prompts with.

    python -m training.reactions --products 40000 --out DIR
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from engine import datasets
from engine.grammar import tags as T
from training import data as D
from training.data import BuildReport, Split

RXN_INSIGHT = "rxn-insight"
RXN_INSIGHT_SMIRKS = "rxn_insight/data/smirks.json"
CHEMBL_DRUGS = "datamol/data/chembl_drugs.csv"
SOURCE = ("TEMPLATE-GENERATED reaction pairs (no reaction database): datamol 0.13 retro templates (Apache-2.0) and "
          "rxn-insight 0.1.3 forward SMIRKS reversed (MIT) applied to MOSES train molecules (molsets 0.3.1, "
          "MIT) and datamol's ChEMBL drugs; product-side check: forward template round trip and "
          "engine.tasks.reaction_check; split by Bemis-Murcko scaffold of the product")
MAX_OUTCOMES = 20  # RunReactants outcomes per template and product
MAX_PRODUCT_CHARS = 90  # longer products are left out (the demo model's context is short)


@dataclass
class Template:
    name: str
    source: str  # "datamol" or "rxn-insight"
    rank: int  # priority: lower fires first
    retro: object  # rdkit ChemicalReaction product>>reactants
    forward: object | None  # rdkit ChemicalReaction reactants>>product
    query: object = None  # the retro template's product pattern (prefilter)

    def __getstate__(self):  # ChemicalReaction pickles through its binary form
        from rdkit.Chem import rdChemReactions as R

        return {"name": self.name, "source": self.source, "rank": self.rank,
                "retro": self.retro.ToBinary(), "forward": self.forward.ToBinary() if self.forward else None}

    def __setstate__(self, st):
        from rdkit.Chem import rdChemReactions as R

        self.name, self.source, self.rank = st["name"], st["source"], st["rank"]
        self.retro = R.ChemicalReaction(st["retro"])
        self.retro.Initialize()
        self.forward = R.ChemicalReaction(st["forward"]) if st["forward"] else None
        if self.forward:
            self.forward.Initialize()
        self.query = self.retro.GetReactantTemplate(0)


@dataclass
class TemplateSet:
    templates: list[Template] = field(default_factory=list)
    skipped: Counter = field(default_factory=Counter)  # source -> templates RDKit cannot read


# ----------------------------------------------------------------------------------------------
# templates

_UNMAPPED = re.compile(r"\[([^\]:]+)\]")


def _leaving_group_atoms(side: str) -> str:
    """Unmapped bracket atoms of a reaction side that will be CREATED (retro products: leaving groups
    such as ``[Cl,F,Br,I]``) take their first alternative, so RDKit makes a real atom, not a dummy."""
    def first(m):
        body = m.group(1)
        alt = re.split(r"[,;&]", body, maxsplit=1)[0]
        return f"[{alt}]"
    return _UNMAPPED.sub(first, side)


def _reaction(smarts: str):
    from rdkit.Chem import AllChem

    rxn = AllChem.ReactionFromSmarts(smarts)
    rxn.Initialize()
    return rxn


def load_templates() -> TemplateSet:
    """datamol retro templates (tier, then name: training.data's order), then rxn-insight's forward
    SMIRKS reversed, in file order. Templates RDKit cannot read, or whose retro side is not a single
    product pattern, are skipped and counted."""
    from rdkit import RDLogger

    RDLogger.DisableLog("rdApp.*")
    out = TemplateSet()
    data = json.loads(datasets.read_text(D.DATAMOL, D.DATAMOL_REACTIONS))
    for name, rxn in D.load_templates():
        fwd = None
        syn = data.get(name, {}).get("syn_smarts")
        if syn:
            try:
                fwd = _reaction(syn)
            except Exception:  # noqa: BLE001 - no forward template: the engine check stays the gate
                fwd = None
        out.templates.append(Template(f"datamol:{name}", "datamol", len(out.templates), rxn, fwd,
                                      rxn.GetReactantTemplate(0)))
    out.skipped["datamol"] = sum(1 for v in data.values() if v.get("retro_smarts")) - len(out.templates)
    text = datasets.read_text(RXN_INSIGHT, RXN_INSIGHT_SMIRKS)
    for line_no, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            smirks = obj["smirks"]
            reac, prod = smirks.split(">>")
            if "." in prod or not prod:
                raise ValueError("more than one product")
            fwd = _reaction(smirks)
            retro = _reaction(f"{prod}>>{_leaving_group_atoms(reac)}")
            if retro.GetNumReactantTemplates() != 1:
                raise ValueError("retro side is not one pattern")
        except Exception:  # noqa: BLE001 - counted below
            out.skipped["rxn-insight"] += 1
            continue
        out.templates.append(Template(f"rxn-insight:{line_no}:{obj.get('name', '')}", "rxn-insight",
                                      len(out.templates), retro, fwd, retro.GetReactantTemplate(0)))
    return out


# ----------------------------------------------------------------------------------------------
# applying one product

def _odd_bonds():
    from rdkit import Chem

    B = Chem.BondType
    return {B.UNSPECIFIED, B.ZERO, B.OTHER, B.DATIVE}


_ODD_BONDS = _odd_bonds()


def _canon_mol(frag):
    """Canonical SMILES of a sanitised, radical-free fragment, else (None, reason)."""
    from rdkit import Chem

    try:
        Chem.SanitizeMol(frag)
        s = Chem.MolToSmiles(frag)
    except Exception:  # noqa: BLE001
        return None, "reactant does not sanitise"
    m = Chem.MolFromSmiles(s)
    if m is None:
        return None, "reactant does not sanitise"
    if any(a.GetNumRadicalElectrons() for a in m.GetAtoms()):
        return None, "reactant has a radical"
    if any(a.GetAtomicNum() == 0 for a in m.GetAtoms()):
        return None, "reactant has a dummy atom"
    if "~" in s or any(b.GetBondType() in _ODD_BONDS for b in m.GetBonds()):
        return None, "reactant has a bond of no definite order"  # a SMARTS '~' carried into it
    return Chem.MolToSmiles(m), None


def _forward_gives(template: Template, reactants: list[str], product: str) -> bool:
    """The forward template run on the reactants (template order, then the other order) gives back
    the product (canonical SMILES)."""
    from itertools import permutations

    from rdkit import Chem

    fwd = template.forward
    if fwd is None or fwd.GetNumReactantTemplates() != len(reactants):
        return False
    mols = [Chem.MolFromSmiles(r) for r in reactants]
    for order in permutations(range(len(mols))):
        try:
            outcomes = fwd.RunReactants(tuple(mols[i] for i in order), MAX_OUTCOMES)
        except Exception:  # noqa: BLE001
            continue
        for outcome in outcomes:
            for frag in outcome:
                s, _ = _canon_mol(frag)
                if s == product:
                    return True
    return False


def _sorted_set(parts: list[str]) -> list[str]:
    from rdkit import Chem

    return sorted(parts, key=lambda s: (-Chem.MolFromSmiles(s).GetNumHeavyAtoms(), s))


def _convergent(key: tuple) -> tuple:
    """Candidate order within one template: the most convergent disconnection first (the smallest
    largest reactant, i.e. a cut nearest the middle), then the SMILES."""
    from rdkit import Chem

    return (Chem.MolFromSmiles(key[0]).GetNumHeavyAtoms(), key)


def _rooted(frag, rank: dict[int, int], canonical: str) -> tuple[int, str]:
    """``frag``'s SMILES started at the atom that comes first in the product's canonical SMILES
    (RDKit marks each atom a template carried over with ``react_atom_idx``, its product index), so
    the reactant's string follows the product's: the root-aligned SMILES of Zhong et al., Chem. Sci.
    2022 (R-SMILES), without their augmentation. Returns (the root's place in the product, the
    SMILES); the canonical SMILES (place: after every mapped one) where no atom maps or the rooted
    string reads back as another molecule."""
    mapped = [(rank[a.GetIntProp("react_atom_idx")], a.GetIdx()) for a in frag.GetAtoms()
              if a.HasProp("react_atom_idx") and a.GetIntProp("react_atom_idx") in rank]
    last = (len(rank), canonical)
    if not mapped:
        return last
    place, root = min(mapped)
    s = _rooted_at(frag, root, canonical)
    return (place, s) if s is not None else last


def _rooted_at(mol, atom: int, canonical: str) -> str | None:
    """``mol``'s SMILES started at ``atom``, or None where RDKit cannot write it so or it reads
    back as another molecule than ``canonical``."""
    from rdkit import Chem

    try:
        s = Chem.MolToSmiles(mol, rootedAtAtom=int(atom))
    except Exception:  # noqa: BLE001
        return None
    m = Chem.MolFromSmiles(s)
    return s if m is not None and Chem.MolToSmiles(m) == canonical else None


def _first_mapped(frag, canonical: str) -> int | None:
    """The product atom (``react_atom_idx``) of the first atom of ``frag``'s canonical SMILES that a
    template carried over from the product, or None (no atom maps, or ``frag`` writes another
    string than ``canonical``). ``frag`` is sanitised (``_canon_mol``)."""
    from rdkit import Chem

    try:
        if Chem.MolToSmiles(frag) != canonical:
            return None
        order = frag.GetPropsAsDict(True, True)["_smilesAtomOutputOrder"]
    except Exception:  # noqa: BLE001
        return None
    for idx in order:
        atom = frag.GetAtomWithIdx(int(idx))
        if atom.HasProp("react_atom_idx"):
            return atom.GetIntProp("react_atom_idx")
    return None


def _product_aligned(mol, product: str, reactants: list[str], firsts: dict[str, int | None]) -> str:
    """The forward answer root-aligned to its prompt (R-SMILES, the forward direction): the
    product's SMILES started at the atom that the first atom of the first reactant (in the prompt's
    order) became, so that the answer begins as the prompt does. The canonical product where no
    reactant's first atom maps or the rooted string reads back as another molecule."""
    idx = next((firsts[r] for r in reactants if firsts.get(r) is not None), None)
    if idx is None:
        return product
    return _rooted_at(mol, idx, product) or product


def disconnect(product: str, templates: list[Template], stats: Counter | None = None, *,
               first_only: bool = True, aligned: bool = False) -> list[tuple]:
    """Passing disconnections of ``product`` (canonical SMILES): [(template name, reactants)], in
    priority order; with ``first_only`` only the first (the training target). ``stats`` counts
    reject reasons. With ``aligned`` each item also carries the reactants' root-aligned SMILES
    (``_rooted``), ordered as their roots come in the product's SMILES, and the product's SMILES
    root-aligned to the reactants (``_product_aligned``)."""
    from rdkit import Chem

    from engine.tasks.reaction_check import reactants_supply_product

    stats = stats if stats is not None else Counter()
    mol = Chem.MolFromSmiles(product)
    if mol is None:
        stats["product does not parse"] += 1
        return []
    rank: dict[int, int] = {}
    if aligned:
        Chem.MolToSmiles(mol)
        rank = {a: i for i, a in enumerate(mol.GetPropsAsDict(True, True)["_smilesAtomOutputOrder"])}
    found: list[tuple] = []
    for t in templates:
        if not mol.HasSubstructMatch(t.query):
            continue
        try:
            outcomes = t.retro.RunReactants((mol,), MAX_OUTCOMES)
        except Exception:  # noqa: BLE001
            stats["RDKit cannot run the template"] += 1
            continue
        cands: dict[tuple, list[str]] = {}  # sorted set -> template-order reactants
        roots: dict[tuple, dict[str, str]] = {}  # sorted set -> canonical -> root-aligned
        heads: dict[tuple, dict[str, int | None]] = {}  # sorted set -> canonical -> product atom of its first atom
        for outcome in outcomes:
            parts, why, rooted, firsts = [], None, {}, {}
            for frag in outcome:
                s, why = _canon_mol(frag)
                if s is None:
                    break
                parts.append(s)
                if aligned:
                    rooted[s] = _rooted(frag, rank, s)
                    firsts[s] = _first_mapped(frag, s)
            if why is not None:
                stats[why] += 1
                continue
            if product in parts:
                stats["a reactant is the product"] += 1
                continue
            cands.setdefault(tuple(_sorted_set(parts)), parts)
            roots.setdefault(tuple(_sorted_set(parts)), rooted)
            heads.setdefault(tuple(_sorted_set(parts)), firsts)
        for key in sorted(cands, key=_convergent):
            reactants = list(key)
            if t.forward is not None and not _forward_gives(t, cands[key], product):
                stats[f"{t.source}: forward template does not give back the product"] += 1
                continue
            check = reactants_supply_product(product, reactants, every_reactant=True)
            if not check.ok:
                stats["engine check fails: " + _reason_class(check.reasons[0])] += 1
                continue
            why = D.validate_record(D.retro_record(product, reactants)) or D.validate_record(
                forward_record(reactants, product))
            if why is not None:  # e.g. an element that only a reagent brings (the grammar's rule)
                stats["the grammar rejects the record: " + why[:60]] += 1
                continue
            if aligned:
                # root-aligned reactants in the order their roots come in the product's SMILES
                found.append((t.name, reactants, [s for _, s in sorted(roots[key].get(r, (len(rank), r))
                                                                       for r in reactants)],
                              _product_aligned(mol, product, reactants, heads[key])))
            else:
                found.append((t.name, reactants))
            if first_only:
                return found
    if not found:
        stats["no passing template"] += 1
    return found


def _reason_class(reason: str) -> str:
    for key in ("shares no substructure", "supplies no product atom", "supplied by no reactant",
                "bonds made or broken", "not a valid molecule", "timed out"):
        if key in reason:
            return key
    return reason[:60]


# ----------------------------------------------------------------------------------------------
# products and records

def forward_record(reactants: list[str], product: str) -> str:
    """Reactant blocks, ``<React>``, the product block (engine/tasks/forward.py's prompt + answer)."""
    return "".join(D.molecule_record(r) for r in reactants) + T.token("React") + D.molecule_record(product)


def scaffold(smiles: str) -> str:
    from rdkit import Chem
    from rdkit.Chem.Scaffolds import MurckoScaffold

    mol = Chem.MolFromSmiles(smiles)
    return MurckoScaffold.MurckoScaffoldSmiles(mol=mol) if mol is not None else ""


def chembl_drugs() -> list[str]:
    """Canonical largest fragment of each ChEMBL drug in datamol's file (salts and counter-ions off)."""
    from rdkit import Chem

    rows = datasets.read_text(D.DATAMOL, CHEMBL_DRUGS).splitlines()
    col = rows[0].split(",").index("smiles")
    out, seen = [], set()
    for row in rows[1:]:
        smi = row.split(",")[col].strip().strip('"') if row else ""
        if not smi:
            continue
        frags = [Chem.MolFromSmiles(f) for f in smi.split(".")]
        frags = [f for f in frags if f is not None]
        if not frags:
            continue
        big = max(frags, key=lambda m: (m.GetNumHeavyAtoms(), Chem.MolToSmiles(m)))
        s = Chem.MolToSmiles(big)
        if s not in seen:
            seen.add(s)
            out.append(s)
    return out


def products(n_products: int, seed: int, report: BuildReport) -> list[tuple[str, str]]:
    """(canonical SMILES, origin) for ``n_products`` products: ChEMBL drugs (up to a quarter, seeded
    sample) then a seeded sample of MOSES train molecules; duplicates and long SMILES left out."""
    rng = random.Random(seed)
    drugs = [s for s in chembl_drugs() if len(s) <= MAX_PRODUCT_CHARS]
    rng.shuffle(drugs)
    drugs = drugs[:n_products // 4]
    out = [(s, "chembl_drugs") for s in drugs]
    seen = set(drugs)
    moses = D.moses_smiles()
    for i in rng.sample(range(len(moses)), min(len(moses), 2 * n_products)):
        if len(out) >= n_products:
            break
        can = D.canonical(moses[i])
        if can is None:
            report.skip("reactions", "RDKit cannot parse the SMILES", f"{D.MOSES} {D.MOSES_TRAIN}:{i + 2}")
            continue
        if can in seen or len(can) > MAX_PRODUCT_CHARS:
            continue
        seen.add(can)
        out.append((can, "moses"))
    return out


# ----------------------------------------------------------------------------------------------
# the builder

def _work(args):
    product, templates = args
    stats: Counter = Counter()
    found = disconnect(product, templates, stats, aligned=True)
    return product, (found[0] if found else None), stats


_POOL_TEMPLATES: list[Template] = []


def _pool_init(templates):
    global _POOL_TEMPLATES
    _POOL_TEMPLATES = templates


def _pool_work(product):
    return _work((product, _POOL_TEMPLATES))


def _pool_all(product):
    return disconnect(product, _POOL_TEMPLATES, Counter(), first_only=False)


def split_by_scaffold(items: list[tuple[str, str]], n_val: int, n_heldout: int, seed: int
                      ) -> tuple[list[str], list[str], list[str], dict]:
    """Products (product, scaffold) -> train, validation, held-out products, whole scaffolds each.

    Scaffolds in seeded order; one goes to held-out while it fits in what held-out still needs and has
    at most max(1, n_heldout // 20) products, then likewise validation; the rest (acyclic "" and big
    scaffolds too) to train."""
    groups: dict[str, list[str]] = {}
    for p, sc in items:
        groups.setdefault(sc, []).append(p)
    names = sorted(k for k in groups if k)
    random.Random(seed).shuffle(names)
    train, val, held = list(groups.get("", [])), [], []
    s_train, s_val, s_held = {""} if "" in groups else set(), set(), set()
    cap_h, cap_v = max(1, n_heldout // 20), max(1, n_val // 20)
    for name in names:
        g = groups[name]
        if len(g) <= min(cap_h, n_heldout - len(held)):
            held += g
            s_held.add(name)
        elif len(g) <= min(cap_v, n_val - len(val)):
            val += g
            s_val.add(name)
        else:
            train += g
            s_train.add(name)
    info = {"scaffolds": {"train": len(s_train), "validation": len(s_val), "heldout": len(s_held)},
            "acyclic_products_in_train": len(groups.get("", []))}
    return train, val, held, info


def build_reactions(n_products: int, n_val: int, n_heldout: int, seed: int, report: BuildReport,
                    processes: int = 1, log=None, rooted: bool = False,
                    forward_rooted: bool = False) -> tuple[Split, list[dict]]:
    """Template-generated retrosynthesis and forward records, split by product scaffold.

    Returns (Split(train, validation), heldout) where each held-out item is {product, target,
    all_targets, template}. Fills ``report`` (sources, read/kept, reject reasons, template counts)."""
    from rdkit import RDLogger

    RDLogger.DisableLog("rdApp.*")
    t0 = time.time()
    report.sources["reactions"] = SOURCE
    tset = load_templates()
    templates = tset.templates
    prods = products(n_products, seed, report)
    report.read["reactions"] += len(prods)
    origin = dict(prods)
    stats: Counter = Counter()
    results: dict[str, tuple[str, list[str]]] = {}
    plist = [p for p, _ in prods]
    if processes > 1:
        import multiprocessing as mp

        with mp.get_context("fork").Pool(processes, _pool_init, (templates,)) as pool:
            it = pool.imap(_pool_work, plist, chunksize=64)
            outs = list(it)
    else:
        outs = (_work((p, templates)) for p in plist)
    for k, (p, hit, st) in enumerate(outs, 1):
        stats.update(st)
        if hit is not None:
            results[p] = hit
        if log and k % 2000 == 0:
            log(f"reactions: {k:,}/{len(plist):,} products, {len(results):,} kept, {time.time() - t0:.0f} s")
    t_apply = time.time() - t0
    kept = [p for p in plist if p in results]
    report.kept["reactions"] += len(kept)
    scaff = {p: scaffold(p) for p in kept}
    train_p, val_p, held_p, split_info = split_by_scaffold([(p, scaff[p]) for p in kept], n_val, n_heldout, seed)
    # held-out products: every passing reactant set of every template
    t_all = time.time()
    heldout = []
    if processes > 1:
        import multiprocessing as mp

        with mp.get_context("fork").Pool(processes, _pool_init, (templates,)) as pool:
            every = pool.map(_pool_all, held_p, chunksize=4)
    else:
        every = [disconnect(p, templates, Counter(), first_only=False) for p in held_p]
    for p, alls in zip(held_p, every):
        all_targets = []
        for _, r in alls:
            if r not in all_targets:
                all_targets.append(r)
        name, target = results[p][:2]
        heldout.append({"product": p, "target": target, "all_targets": all_targets, "template": name,
                        "scaffold": scaff[p], "origin": origin[p]})

    def records(ps):
        rows = []
        for p in ps:
            # the app sends canonical SMILES (engine.tasks.reactions): a prompt keeps the canonical
            # molecules; an answer may be root-aligned to its prompt (retrosynthesis: the reactants
            # to the product; forward: the product to the first reactant)
            r = results[p][1]
            rows += [D.retro_record(p, results[p][2] if rooted else r),
                     forward_record(r, results[p][3] if forward_rooted else p)]
        return rows

    train_rows, val_rows = records(train_p), records(val_p)
    rng = random.Random(seed)
    rng.shuffle(train_rows)
    fired = Counter(results[p][0] for p in kept)
    for reason, n in stats.items():
        report.skipped.setdefault("reactions", Counter())[reason] += n
    extra = {
        "source": SOURCE,
        "templates": {"loaded": Counter(t.source for t in templates), "skipped": dict(tset.skipped)},
        "products": {"read": len(plist), "with_target": len(kept),
                     "by_origin": Counter(origin[p] for p in plist),
                     "kept_by_origin": Counter(origin[p] for p in kept)},
        "split": {"train_products": len(train_p), "validation_products": len(val_p),
                  "heldout_products": len(held_p), **split_info},
        "records": {"train": len(train_rows), "validation": len(val_rows)},
        "fired": dict(fired.most_common()),
        "reasons": dict(stats.most_common()),
        "seconds": {"apply": round(t_apply, 1), "heldout_all_targets": round(time.time() - t_all, 1),
                    "total": round(time.time() - t0, 1)},
        "processes": processes,
    }
    report.__dict__.setdefault("extra", {})["reactions"] = extra
    return Split(train_rows, val_rows), heldout


def reactions_report(report: BuildReport) -> dict:
    return getattr(report, "extra", {}).get("reactions", {})


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.reactions", description=__doc__.split("\n")[0])
    ap.add_argument("--products", type=int, default=2000)
    ap.add_argument("--val", type=int, default=None, help="validation products (default 2 %%)")
    ap.add_argument("--heldout", type=int, default=None, help="held-out products (default 2 %%, at most 200)")
    ap.add_argument("--seed", type=int, default=20261205)
    ap.add_argument("--processes", type=int, default=1)
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args(argv)
    n_val = a.val if a.val is not None else max(1, a.products // 50)
    n_held = a.heldout if a.heldout is not None else min(200, max(1, a.products // 50))
    report = BuildReport()
    split, held = build_reactions(a.products, n_val, n_held, a.seed, report, processes=a.processes,
                                  log=lambda m: print(m, file=sys.stderr))
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "train.txt").write_text("\n".join(split.train) + "\n")
    (a.out / "validation.txt").write_text("\n".join(split.validation) + "\n")
    (a.out / "heldout.json").write_text(json.dumps(held, indent=1))
    rep = {**report.to_dict(), "reactions": reactions_report(report)}
    (a.out / "report.json").write_text(json.dumps(rep, indent=1, default=dict))
    ex = reactions_report(report)
    print(f"{ex['products']['with_target']:,} of {ex['products']['read']:,} products kept "
          f"({len(split.train):,} train and {len(split.validation):,} validation records, {len(held)} held-out "
          f"products) in {ex['seconds']['total']:.0f} s")
    print("templates:", dict(ex["templates"]["loaded"]), "skipped:", ex["templates"]["skipped"])
    print("split:", ex["split"])
    print("fired (top 15):")
    for name, n in list(ex["fired"].items())[:15]:
        print(f"  {n:6d}  {name}")
    print("reasons:")
    for name, n in ex["reasons"].items():
        print(f"  {n:6d}  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
