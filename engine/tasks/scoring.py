"""Scores shared by the tasks: RDKit validity with reasons, QED, SA score, Lipinski, Veber,
element balance, and run-level uniqueness and novelty.

SA score is Ertl and Schuffenhauer's synthetic accessibility (RDKit Contrib ``SA_Score``, 1 easy …
10 hard). The default novelty reference is the NCI set that ships inside RDKit
(``rdkit/Data/NCI/first_5K.smi``, BSD-3); a task option or the engine request can name another
SMILES file (one molecule per line, first column).
"""

from __future__ import annotations

import os
import sys
import threading
from collections import Counter
from functools import lru_cache
from pathlib import Path

from engine.grammar.chem import canonical_smiles, parse_smiles


def check_molecule(smiles: str, *, single_fragment: bool = True) -> tuple[object | None, list[str], str | None]:
    """(mol, reasons, canonical SMILES). Reasons quote RDKit (parse, valence, aromaticity) and add
    our own rules: one fragment per molecule block, no radicals."""
    mol, reasons = parse_smiles(smiles)
    if mol is None:
        return None, reasons, None
    if mol.GetNumAtoms() == 0:
        return None, ["empty molecule"], None
    extra = []
    if single_fragment and "." in smiles:
        extra.append(f"{smiles.count('.') + 1} fragments in one molecule block (each molecule is its own block)")
    radicals = sum(a.GetNumRadicalElectrons() for a in mol.GetAtoms())
    if radicals:
        extra.append(f"{radicals} radical electron(s)")
    return mol, extra, canonical_smiles(mol)


@lru_cache(maxsize=1)
def _sascorer():
    from rdkit import RDConfig

    folder = os.path.join(RDConfig.RDContribDir, "SA_Score")
    if folder not in sys.path:
        sys.path.append(folder)
    import sascorer  # RDKit Contrib module; reads its fragment table fpscores.pkl.gz beside it

    return sascorer


def drug_scores(mol) -> dict:
    """QED, SA score, Lipinski's rule of five and Veber's rules for one sanitised molecule."""
    from rdkit.Chem import QED, Crippen, Descriptors, Lipinski, rdMolDescriptors

    mw = Descriptors.MolWt(mol)
    logp = Crippen.MolLogP(mol)
    hbd = Lipinski.NumHDonors(mol)
    hba = Lipinski.NumHAcceptors(mol)
    rotb = rdMolDescriptors.CalcNumRotatableBonds(mol)
    tpsa = rdMolDescriptors.CalcTPSA(mol)
    lip_viol = int(mw > 500) + int(logp > 5) + int(hbd > 5) + int(hba > 10)
    try:
        qed = QED.qed(mol)
    except Exception:  # noqa: BLE001 - QED fails on a few exotic valences
        qed = None
    try:
        sa = _sascorer().calculateScore(mol)
    except Exception:  # noqa: BLE001
        sa = None
    return {
        "qed": round(qed, 4) if qed is not None else None,
        "sa": round(sa, 3) if sa is not None else None,
        "mw": round(mw, 2), "logp": round(logp, 3), "hbd": hbd, "hba": hba,
        "rotatable_bonds": rotb, "tpsa": round(tpsa, 2), "heavy_atoms": mol.GetNumHeavyAtoms(),
        "lipinski_violations": lip_viol, "lipinski": lip_viol <= 1,
        "veber": rotb <= 10 and tpsa <= 140,
    }


def heavy_atom_counts(mol) -> Counter:
    return Counter(a.GetSymbol() for a in mol.GetAtoms() if a.GetAtomicNum() > 1)


def balance(product_mols: list, reactant_mols: list) -> tuple[bool, dict]:
    """Every heavy atom of the products must come from the reactants (leaving groups allowed).
    Returns (balanced, {"missing": {element: n}, "product_heavy": n, "reactant_heavy": n})."""
    prod = Counter()
    for m in product_mols:
        prod += heavy_atom_counts(m)
    reac = Counter()
    for m in reactant_mols:
        reac += heavy_atom_counts(m)
    missing = {el: n - reac.get(el, 0) for el, n in prod.items() if n > reac.get(el, 0)}
    return not missing, {"missing": missing, "product_heavy": sum(prod.values()),
                         "reactant_heavy": sum(reac.values())}


# ---------------------------------------------------------------- novelty reference

def default_reference_path() -> Path:
    from rdkit import RDConfig

    return Path(RDConfig.RDDataDir) / "NCI" / "first_5K.smi"


_REF_LOCK = threading.Lock()
_REF_CACHE: dict[str, frozenset] = {}


def reference_set(path: str | os.PathLike | None = None) -> frozenset:
    """Canonical SMILES of a reference file (first whitespace-separated column; unparsable lines
    skipped). Cached per path."""
    p = Path(path) if path else default_reference_path()
    key = str(p.resolve()) if p.exists() else str(p)
    with _REF_LOCK:
        if key in _REF_CACHE:
            return _REF_CACHE[key]
    if not p.is_file():
        raise FileNotFoundError(f"{p}: novelty reference file not found")
    from rdkit import Chem, RDLogger

    RDLogger.DisableLog("rdApp.*")
    try:
        out = set()
        for line in p.read_text(errors="replace").splitlines():
            parts = line.split()
            if not parts or parts[0].lower() == "smiles":
                continue
            m = Chem.MolFromSmiles(parts[0])
            if m is not None:
                out.add(Chem.MolToSmiles(m))
    finally:
        RDLogger.EnableLog("rdApp.*")
    ref = frozenset(out)
    with _REF_LOCK:
        _REF_CACHE[key] = ref
    return ref


class RunTracker:
    """Uniqueness within a run and novelty against a reference, filled in as results arrive."""

    def __init__(self, reference: frozenset | None = None) -> None:
        self.reference = reference
        self.seen: Counter = Counter()
        self.n = 0
        self.n_valid = 0

    def add(self, key: str | None, valid: bool) -> dict:
        self.n += 1
        out: dict = {}
        if valid and key is not None:
            self.n_valid += 1
            out["unique"] = self.seen[key] == 0
            self.seen[key] += 1
            if self.reference is not None:
                out["novel"] = key not in self.reference
        return out

    def summary(self) -> dict:
        uniq = len(self.seen)
        out = {"samples": self.n, "valid": self.n_valid,
               "validity": round(self.n_valid / self.n, 4) if self.n else None,
               "uniqueness": round(uniq / self.n_valid, 4) if self.n_valid else None}
        if self.reference is not None and self.n_valid:
            novel = sum(1 for k in self.seen if k not in self.reference)
            out["novelty"] = round(novel / uniq, 4) if uniq else None
        return out
