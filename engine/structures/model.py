"""The headless structure model shared by the engine, the GUI and training."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

KINDS = ("molecule", "protein", "complex", "crystal", "sequence")
FORMATS = ("sdf", "mol", "mol2", "xyz", "smi", "pdb", "mmcif", "cif", "poscar", "fasta")


class StructureReadError(ValueError):
    """A file (or pasted text) that cannot be read. ``str()`` is ``FILE:LINE: reason``."""

    def __init__(self, reason: str, path: str | Path | None = None, line: int | None = None):
        self.reason = str(reason).strip() or "unreadable input"
        self.path = Path(path) if path is not None else None
        self.line = line
        super().__init__(str(self))

    def __str__(self) -> str:
        where = str(self.path) if self.path is not None else "<text>"
        if self.line is not None:
            where += f":{self.line}"
        return f"{where}: {self.reason}"


@dataclass
class LoadedObject:
    kind: str  # "molecule" | "protein" | "complex" | "crystal" | "sequence"
    name: str
    source: Path | None
    fmt: str
    mol: Any = None  # rdkit.Chem.Mol | None
    structure: Any = None  # gemmi.Structure | None
    crystal: Any = None  # pymatgen.core.Structure | None
    sequence: str | None = None
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> dict:
        """{"atoms": n, "residues": n, "chains": n, "sites": n} (zeros where not applicable)."""
        out = {"atoms": 0, "residues": 0, "chains": 0, "sites": 0}
        if self.mol is not None:
            out["atoms"] = self.mol.GetNumAtoms()
        if self.structure is not None and len(self.structure) > 0:
            model = self.structure[0]
            out["chains"] = len({ch.name for ch in model})
            out["residues"] = sum(len(ch) for ch in model)
            out["atoms"] = model.count_atom_sites()
        if self.crystal is not None:
            out["sites"] = len(self.crystal)
            out["atoms"] = len(self.crystal)
        if self.sequence is not None and self.structure is None:
            out["residues"] = len(self.sequence)
            out["chains"] = out["chains"] or 1
        return out
