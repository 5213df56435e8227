"""Chemistry helpers for the grammar: canonical isomeric SMILES and sanitisation with RDKit's words."""

from __future__ import annotations

import re
from contextlib import contextmanager

_TS = re.compile(r"^\[\d\d:\d\d:\d\d\]\s*")


@contextmanager
def rdkit_messages():
    """Capture RDKit's error log; yields a list filled with its message lines (no timestamps) on exit."""
    from rdkit import rdBase

    out: list[str] = []
    with rdBase.CaptureErrorLog() as cap:
        yield out
    for ln in (cap.messages or "").split("\n"):
        ln = _TS.sub("", ln).strip()
        if ln and not set(ln) <= set("*") and ln not in out:
            out.append(ln)


def canonical_smiles(mol) -> str:
    """RDKit canonical isomeric SMILES, explicit hydrogens folded in."""
    from rdkit import Chem

    m = mol
    if any(a.GetAtomicNum() == 1 for a in mol.GetAtoms()):
        try:
            m = Chem.RemoveHs(mol, sanitize=True)
        except Exception:  # noqa: BLE001 - keep explicit H rather than fail
            m = mol
    return Chem.MolToSmiles(m, isomericSmiles=True, canonical=True)


def parse_smiles(smiles: str):
    """(mol or None, reasons): RDKit's parse/sanitisation messages verbatim when it fails."""
    from rdkit import Chem

    if not smiles or not smiles.strip():
        return None, ["empty SMILES"]
    if any(c.isspace() for c in smiles.strip()):
        return None, [f"SMILES contains whitespace: {smiles.strip()!r}"]
    with rdkit_messages() as msgs:
        mol = Chem.MolFromSmiles(smiles.strip(), sanitize=False)
    if mol is None:
        return None, msgs or [f"SMILES Parse Error: {smiles!r}"]
    try:
        with rdkit_messages() as msgs2:
            Chem.SanitizeMol(mol)
    except Exception as exc:  # noqa: BLE001 - Chem.MolSanitizeException and subclasses
        text = str(exc).strip()
        return None, [text] if text else (msgs2 or ["sanitisation failed"])
    return mol, []


def canonicalize(smiles: str) -> str | None:
    mol, _ = parse_smiles(smiles)
    return canonical_smiles(mol) if mol is not None else None
