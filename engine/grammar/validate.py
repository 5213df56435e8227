"""Validity checks with reasons for every record kind.

Each ``check_*`` returns a list of reasons (empty = valid). SMILES failures carry RDKit's own
sanitisation message verbatim.
"""

from __future__ import annotations

import re
from functools import lru_cache

from engine.grammar import records as R
from engine.grammar.chem import canonical_smiles, parse_smiles

# 20 standard residues + selenocysteine (U), pyrrolysine (O) and unknown (X)
PROTEIN_LETTERS = frozenset("ACDEFGHIKLMNPQRSTVWYUOX")

# Free L-amino acids (the residue SMILES of the SMILES-expanded pocket, DEFAULT in LOGOS-GRAMMAR.md).
_AA_SMILES = {
    "A": "C[C@H](N)C(=O)O",
    "R": "N=C(N)NCCC[C@H](N)C(=O)O",
    "N": "NC(=O)C[C@H](N)C(=O)O",
    "D": "O=C(O)C[C@H](N)C(=O)O",
    "C": "N[C@@H](CS)C(=O)O",
    "Q": "NC(=O)CC[C@H](N)C(=O)O",
    "E": "O=C(O)CC[C@H](N)C(=O)O",
    "G": "NCC(=O)O",
    "H": "N[C@@H](Cc1c[nH]cn1)C(=O)O",
    "I": "CC[C@H](C)[C@H](N)C(=O)O",
    "L": "CC(C)C[C@H](N)C(=O)O",
    "K": "NCCCC[C@H](N)C(=O)O",
    "M": "CSCC[C@H](N)C(=O)O",
    "F": "N[C@@H](Cc1ccccc1)C(=O)O",
    "P": "O=C(O)[C@@H]1CCCN1",
    "S": "N[C@@H](CO)C(=O)O",
    "T": "C[C@@H](O)[C@H](N)C(=O)O",
    "W": "N[C@@H](Cc1c[nH]c2ccccc12)C(=O)O",
    "Y": "N[C@@H](Cc1ccc(O)cc1)C(=O)O",
    "V": "CC(C)[C@H](N)C(=O)O",
    "U": "N[C@@H](C[SeH])C(=O)O",
}


@lru_cache(maxsize=1)
def residue_smiles_table() -> dict[str, str]:
    """letter -> canonical isomeric SMILES of the free L-amino acid."""
    out = {}
    for letter, smi in _AA_SMILES.items():
        mol, _ = parse_smiles(smi)
        out[letter] = canonical_smiles(mol)
    return out


@lru_cache(maxsize=1)
def _smiles_to_letter() -> tuple[dict[str, str], dict[str, str]]:
    from rdkit import Chem

    exact, flat = {}, {}
    for letter, smi in residue_smiles_table().items():
        exact[smi] = letter
        m = Chem.MolFromSmiles(smi)
        Chem.RemoveStereochemistry(m)
        flat[Chem.MolToSmiles(m)] = letter
    return exact, flat


def residue_smiles(letter: str) -> str:
    table = residue_smiles_table()
    if letter not in table:
        raise ValueError(f"no residue SMILES for {letter!r}")
    return table[letter]


def letter_for_smiles(smiles: str) -> tuple[str | None, list[str]]:
    """The amino-acid letter whose free-acid SMILES this is, with reasons when it is none."""
    from rdkit import Chem

    mol, reasons = parse_smiles(smiles)
    if mol is None:
        return None, reasons
    exact, flat = _smiles_to_letter()
    can = canonical_smiles(mol)
    if can in exact:
        return exact[can], []
    m = Chem.Mol(mol)
    Chem.RemoveStereochemistry(m)
    f = Chem.MolToSmiles(m)
    if f in flat:
        return flat[f], [f"pocket residue SMILES {smiles!r} is {flat[f]} with non-L or missing stereochemistry"]
    return None, [f"pocket residue SMILES {smiles!r} is not a standard amino acid"]


def check_sequence(seq: str, what: str = "protein") -> list[str]:
    if not seq:
        return [f"{what} sequence is empty"]
    bad = {}
    for i, c in enumerate(seq):
        if c not in PROTEIN_LETTERS:
            bad.setdefault(c, []).append(i + 1)
    if not bad:
        return []
    parts = [f"{c!r} at {', '.join(map(str, pos[:5]))}{' …' if len(pos) > 5 else ''}" for c, pos in bad.items()]
    return [f"unknown residue letter(s) in {what}: " + "; ".join(parts)]


def check_molecule(smiles: str, what: str = "molecule") -> tuple[str | None, list[str]]:
    """(canonical SMILES or None, reasons)."""
    mol, reasons = parse_smiles(smiles)
    if mol is None:
        return None, [f"{what}: {r}" for r in reasons]
    if mol.GetNumAtoms() == 0:
        return None, [f"{what}: no atoms"]
    return canonical_smiles(mol), []


# --- materials ---------------------------------------------------------------------------------

_NONMETALS = frozenset({"H", "He", "B", "C", "N", "O", "F", "Ne", "Si", "P", "S", "Cl", "Ar", "As", "Se",
                        "Br", "Kr", "Te", "I", "Xe", "At", "Rn", "Ge", "Sb"})


@lru_cache(maxsize=1)
def _elements() -> frozenset[str]:
    from rdkit import Chem

    pt = Chem.GetPeriodicTable()
    return frozenset(pt.GetElementSymbol(z) for z in range(1, 119))


METAL_NODE_RE = re.compile(r"^(?:(rod|layer)\[(.+)\]|(.+))$")


def metal_elements(node: str) -> tuple[list[str], list[str]]:
    """(metal element symbols in the node formula, unknown symbols)."""
    m = METAL_NODE_RE.match(node.strip())
    body = (m.group(2) or m.group(3)) if m else node
    symbols = re.findall(r"[A-Z][a-z]?", body)
    elements = _elements()
    unknown = [s for s in symbols if s not in elements]
    metals = [s for s in symbols if s in elements and s not in _NONMETALS]
    return metals, unknown


def check_metal_node(node: str) -> list[str]:
    node = node.strip()
    if not node:
        return ["material has no metal node (empty <MetalS><MetalE>)"]
    if not re.fullmatch(r"[A-Za-z0-9()\[\]{}·.,+\-]+", node):
        return [f"metal node {node!r} is not a formula (letters, digits, brackets)"]
    metals, unknown = metal_elements(node)
    reasons = []
    if unknown:
        reasons.append(f"metal node {node!r}: unknown element symbol(s) {', '.join(sorted(set(unknown)))}")
    if not metals:
        reasons.append(f"material has no metal: node {node!r} contains no metal element")
    return reasons


# --- records -------------------------------------------------------------------------------------


def check_protein(p: R.Protein, what: str = "protein") -> list[str]:
    reasons = check_sequence(p.sequence, what)
    out = [i for i in p.pockets if not 0 <= i < len(p.sequence)]
    if out:
        reasons.append(f"{what}: pocket position(s) {out} outside the sequence of length {len(p.sequence)}")
    return reasons


def check_record(rec) -> list[str]:
    """Reasons why ``rec`` is not a valid record (empty list: valid)."""
    if isinstance(rec, R.Protein):
        return check_protein(rec)
    if isinstance(rec, R.Molecule):
        return check_molecule(rec.smiles)[1]
    if isinstance(rec, R.Antibody):
        return check_sequence(rec.heavy, "antibody heavy chain") + (
            check_sequence(rec.light, "antibody light chain") if rec.light is not None else [])
    if isinstance(rec, R.Material):
        reasons = check_metal_node(rec.metal)
        if not rec.linkers:
            reasons.append("material has no linker")
        for i, s in enumerate(rec.linkers, 1):
            reasons += check_molecule(s, f"linker {i}")[1]
        return reasons
    if isinstance(rec, R.Complex):
        reasons = []
        if not rec.proteins:
            reasons.append("complex has no protein block")
        for i, p in enumerate(rec.proteins, 1):
            reasons += check_protein(p, f"protein {i}")
        if rec.granularity != "plain" and rec.proteins and not any(p.pockets for p in rec.proteins):
            reasons.append("complex has no pocket residue marked")
        reasons += check_molecule(rec.ligand.smiles, "ligand")[1]
        return reasons
    if isinstance(rec, R.Reaction):
        return check_reaction(rec)
    if isinstance(rec, R.Search):
        reasons = check_protein(rec.query, "query protein")
        if rec.query.pockets:
            reasons.append("the protein before <Search> must be plain (it has pocket marks)")
        if rec.answer is not None:
            reasons += check_protein(rec.answer, "answer protein")
            if rec.answer.sequence != rec.query.sequence:
                reasons.append("the protein after <Search> is not the same sequence as the one before it")
            if not rec.answer.pockets:
                reasons.append("the protein after <Search> has no pocket residue marked")
        return reasons
    if isinstance(rec, R.Trans):
        reasons = check_protein(rec.source, "letter-marked protein")
        if rec.source.style != "letter":
            reasons.append("the protein before <Trans> must mark pockets with letters")
        if rec.target is not None:
            reasons += check_protein(rec.target, "SMILES-marked protein")
            if rec.target.style != "smiles" and rec.target.pockets:
                reasons.append("the protein after <Trans> must mark pockets with residue SMILES")
            if rec.target.sequence != rec.source.sequence:
                reasons.append("the protein after <Trans> is not the same sequence as the one before it")
            if rec.target.pockets != rec.source.pockets:
                reasons.append("the pocket residues after <Trans> differ from those before it")
        return reasons
    return [f"unknown record type {type(rec).__name__}"]


def _heavy_elements(smiles: str) -> set[str]:
    from rdkit import Chem

    m = Chem.MolFromSmiles(smiles)
    return {a.GetSymbol() for a in m.GetAtoms() if a.GetAtomicNum() > 1} if m is not None else set()


def check_reaction(rec: R.Reaction) -> list[str]:
    reasons: list[str] = []
    side_r, side_p = "reactant", "product"
    if not rec.reactants:
        reasons.append("reaction has no reactant")
    if not rec.products:
        reasons.append("reaction has no product")
    ok = True
    for label, mols in ((side_r, rec.reactants), (side_p, rec.products)):
        for i, m in enumerate(mols, 1):
            can, rs = check_molecule(m.smiles, f"{label} {i}")
            reasons += rs
            ok &= can is not None
            if "." in m.smiles:
                reasons.append(f"{label} {i} is dot-joined; each molecule takes its own <MoleculeS> block")
    if ok and rec.reactants and rec.products:
        have = set().union(*(_heavy_elements(m.smiles) for m in rec.reactants))
        need = set().union(*(_heavy_elements(m.smiles) for m in rec.products))
        extra = sorted(need - have)
        if extra:
            reasons.append(f"product contains element(s) {', '.join(extra)} found in no reactant")
    return reasons
